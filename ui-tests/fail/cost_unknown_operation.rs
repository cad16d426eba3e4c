#[flujo::track_cost(model = "gpt-4o", operation = "completion")]
fn ask() -> flujo::TokenUsage {
    flujo::TokenUsage::new(1, 1)
}

fn main() {}
