fn plan(x: u32) -> u32 {
    x
}

flujo::pipeline! {
    #[pipeline(versoin = "1.0")]
    #[derive(Clone)]
    pipeline answer(x: u32) -> u32 {
        plan
    }
}

flujo::pipeline! {
    #[pipeline(version = 1)]
    pipeline numbered(x: u32) -> u32 {
        plan
    }
}

fn main() {}
