#[flujo::pipeline_step(name = 1, retries = 0, backoff = "soon", skip(nothing), colour = "red")]
fn call(prompt: &str) -> Result<(), String> {
    let _ = prompt;
    Ok(())
}

fn main() {}
