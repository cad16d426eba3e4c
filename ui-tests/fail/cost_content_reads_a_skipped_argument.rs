// A skipped parameter is never captured as content, even with content capture on.
struct Reply(flujo::TokenUsage);

impl flujo::cost::ReportsUsage for Reply {
    fn token_usage(&self) -> Option<flujo::TokenUsage> {
        Some(self.0)
    }
}

#[flujo::pipeline_step(skip(prompt, persona))]
#[flujo::track_cost(
    model = "gpt-4o-mini",
    input_messages = [("user", prompt.trim())],
    system_instructions = format!("you are {persona}"),
)]
fn ask(prompt: &str, persona: &str) -> Reply {
    Reply(flujo::TokenUsage::new(prompt.len() as u64, persona.len() as u64))
}

// Not messages: a number.
#[flujo::track_cost(model = "gpt-4o-mini", input_messages = 42)]
fn numbered(question: &str) -> Reply {
    Reply(flujo::TokenUsage::new(question.len() as u64, 1))
}

fn main() {}
