// The unknown-model diagnostic is a warning; denied here so that its text is checked.
#![deny(deprecated)]

#[flujo::track_cost(model = "gtp-4o")]
fn ask() -> flujo::TokenUsage {
    flujo::TokenUsage::new(1, 1)
}

// Silenced for a model the application prices itself.
#[flujo::track_cost(model = "acme-llm", unpriced)]
fn acme() -> flujo::TokenUsage {
    flujo::TokenUsage::new(1, 1)
}

fn main() {
    let _ = (ask(), acme());
}
