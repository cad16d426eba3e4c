// `skip` on the step keeps its promise for the model call's fields too, whichever attribute
// comes first.
struct Reply(flujo::TokenUsage);

impl flujo::cost::ReportsUsage for Reply {
    fn token_usage(&self) -> Option<flujo::TokenUsage> {
        Some(self.0)
    }
}

#[flujo::pipeline_step(skip(prompt))]
#[flujo::track_cost(model = "gpt-4o-mini", fields(prompt_len = prompt.len(), temperature))]
fn step_first(prompt: &str, temperature: f64) -> Reply {
    Reply(flujo::TokenUsage::new(prompt.len() as u64, temperature as u64))
}

#[flujo::track_cost(model = "gpt-4o-mini", fields(echoed = %prompt))]
#[flujo::pipeline_step(skip_all)]
fn cost_first(prompt: &str) -> Reply {
    Reply(flujo::TokenUsage::new(prompt.len() as u64, 1))
}

fn main() {}
