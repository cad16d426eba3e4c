#[flujo::pipeline_step(retries = "3")]
fn call() -> Result<(), String> {
    Ok(())
}

#[flujo::pipeline_step(retries = -1)]
fn other() -> Result<(), String> {
    Ok(())
}

fn main() {}
