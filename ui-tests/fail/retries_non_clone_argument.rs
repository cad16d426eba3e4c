struct Prompt(String);

#[flujo::pipeline_step(retries = 2)]
fn call(prompt: Prompt) -> Result<usize, String> {
    Ok(prompt.0.len())
}

fn main() {}
