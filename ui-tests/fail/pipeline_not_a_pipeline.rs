fn plan(x: u32) -> u32 {
    x
}

flujo::pipeline! {
    pub fn answer(x: u32) -> u32 {
        plan
    }
}

fn main() {}
