#[flujo::track_cost(model = "gpt-4o", provider = "openai", api = "completions")]
fn ask() -> serde_json::Value {
    serde_json::json!({})
}

#[flujo::track_cost(model = "gpt-4o", api = responses)]
fn answer() -> serde_json::Value {
    serde_json::json!({})
}

fn main() {}
