#[flujo::pipeline_step(retries = 1, backoff_ms = 1.5)]
fn call() -> Result<(), String> {
    Ok(())
}

fn main() {}
