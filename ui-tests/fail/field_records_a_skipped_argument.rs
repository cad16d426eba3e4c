#[flujo::pipeline_step(skip(prompt), fields(prompt, text = %prompt))]
fn call(prompt: &str) -> usize {
    prompt.len()
}

fn main() {}
