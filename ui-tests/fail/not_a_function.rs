#[flujo::pipeline_step]
struct Plan {
    steps: Vec<String>,
}

fn main() {}
