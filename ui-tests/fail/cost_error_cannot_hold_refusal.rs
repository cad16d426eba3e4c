#[derive(Debug)]
struct ProviderError;

impl std::fmt::Display for ProviderError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("provider error")
    }
}

#[flujo::track_cost(model = "gpt-4o")]
fn ask() -> Result<flujo::TokenUsage, ProviderError> {
    Ok(flujo::TokenUsage::new(1, 1))
}

fn main() {
    let _ = ask();
}
