#[flujo::pipeline_step(timeout_ms = 500)]
fn rank(items: &[u32]) -> Result<u32, std::io::Error> {
    Ok(items.iter().copied().max().unwrap_or(0))
}

fn main() {
    let _ = rank(&[1, 2]);
}
