#[flujo::pipeline_step(skip_all = true)]
fn call(prompt: &str) -> usize {
    prompt.len()
}

fn main() {}
