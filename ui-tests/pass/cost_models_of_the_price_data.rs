// Models the shipped genai-prices data knows compile without the unknown-model warning (denied
// here): its own ids, dated snapshots, router prefixes and Bedrock ids.
#![deny(deprecated)]

#[flujo::track_cost(model = "kimi-k2")]
fn kimi() -> flujo::TokenUsage {
    flujo::TokenUsage::new(1, 1)
}

#[flujo::track_cost(model = "glm-4.6")]
fn glm() -> flujo::TokenUsage {
    flujo::TokenUsage::new(1, 1)
}

#[flujo::track_cost(model = "us.anthropic.claude-sonnet-4-20250514-v1:0")]
fn bedrock() -> flujo::TokenUsage {
    flujo::TokenUsage::new(1, 1)
}

#[flujo::track_cost(model = "openai/gpt-4.1")]
fn routed() -> flujo::TokenUsage {
    flujo::TokenUsage::new(1, 1)
}

fn main() {
    let _ = (kimi(), glm(), bedrock(), routed());
}
