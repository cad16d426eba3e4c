#[flujo::pipeline_step(jitter = "full")]
fn without_retries() -> Result<(), String> {
    Ok(())
}

#[flujo::pipeline_step(retries = 2, jitter = "random")]
fn unknown_jitter() -> Result<(), String> {
    Ok(())
}

fn main() {}
