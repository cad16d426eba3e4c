#[flujo::pipeline_step(skip_all, skip(prompt))]
fn call(prompt: &str) -> usize {
    prompt.len()
}

fn main() {}
