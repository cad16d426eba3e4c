#[flujo::track_cost(modle = "gpt-4o")]
fn ask() -> flujo::TokenUsage {
    flujo::TokenUsage::new(1, 1)
}

#[flujo::track_cost(model = "gpt-4o", temperature = 0.2)]
fn answer() -> flujo::TokenUsage {
    flujo::TokenUsage::new(1, 1)
}

fn main() {}
