#[derive(Debug)]
struct ProviderError;

impl std::fmt::Display for ProviderError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("provider error")
    }
}

#[flujo::pipeline_step(timeout_ms = 500)]
async fn ask() -> Result<String, ProviderError> {
    Ok(String::new())
}

fn main() {
    let _ = ask();
}
