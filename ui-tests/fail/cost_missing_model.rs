#[flujo::track_cost(provider = "openai")]
fn ask(prompt: &str) -> flujo::TokenUsage {
    flujo::TokenUsage::new(prompt.len() as u64, 1)
}

fn main() {}
