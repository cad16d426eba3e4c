#[flujo::track_cost(model = 4, provider = openai, usage = |r: &u32| *r, unpriced = true)]
fn ask() -> flujo::TokenUsage {
    flujo::TokenUsage::new(1, 1)
}

#[flujo::track_cost(model = "gpt-4o", model = "gpt-4o-mini", provider = "")]
fn answer() -> flujo::TokenUsage {
    flujo::TokenUsage::new(1, 1)
}

fn main() {}
