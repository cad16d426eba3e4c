fn plan(x: u32) -> u32 {
    x
}

flujo::pipeline! {
    pipeline answer(x: u32) {
        plan
    }
}

fn main() {}
