#[flujo::pipeline_step(retries = 0)]
fn call() -> Result<(), String> {
    Ok(())
}

fn main() {}
