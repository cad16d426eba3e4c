#[flujo::pipeline_step(retries = 2, backoff = "linear")]
fn call() -> Result<(), String> {
    Ok(())
}

fn main() {}
