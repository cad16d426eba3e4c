#[flujo::pipeline_step(skip(promt))]
fn call(prompt: &str, model: &str) -> usize {
    prompt.len() + model.len()
}

fn main() {}
