#[flujo::pipeline_step]
const fn answer() -> u32 {
    42
}

fn main() {}
