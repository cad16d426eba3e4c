#[flujo::pipeline_step(fields(user_id))]
fn call(prompt: &str) -> usize {
    prompt.len()
}

fn main() {}
