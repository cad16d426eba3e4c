#[flujo::pipeline_step(timeout_ms = 0)]
async fn zero() -> Result<(), std::io::Error> {
    Ok(())
}

#[flujo::pipeline_step(timeout_ms = 90_000_000)]
async fn too_long() -> Result<(), std::io::Error> {
    Ok(())
}

#[flujo::pipeline_step(timeout_ms = "30s")]
async fn not_a_number() -> Result<(), std::io::Error> {
    Ok(())
}

fn main() {}
