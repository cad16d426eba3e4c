// `fields` of `#[track_cost]` takes a list, as `#[pipeline_step]`'s does.
#[flujo::track_cost(model = "gpt-4o-mini", fields = "temperature")]
fn ask(temperature: f64) -> flujo::TokenUsage {
    flujo::TokenUsage::new(temperature as u64, 1)
}

fn main() {}
