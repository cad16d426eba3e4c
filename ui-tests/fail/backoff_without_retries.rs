#[flujo::pipeline_step(backoff = "fixed", backoff_ms = 10)]
fn call() -> Result<(), String> {
    Ok(())
}

fn main() {}
