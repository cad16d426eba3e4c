// `fields(...)` on `#[track_cost]`: the request's parameters on the model call's span.
struct Request {
    temperature: f64,
    stop: Vec<String>,
}

#[flujo::track_cost(
    model = "gpt-4o-mini",
    fields(
        gen_ai.request.temperature = request.temperature,
        gen_ai.request.stop_sequences = request.stop,
        gen_ai.request.max_tokens = max_tokens,
        "gen_ai.conversation.id" = %conversation,
    )
)]
fn ask(request: &Request, max_tokens: u32, conversation: &str) -> flujo::TokenUsage {
    flujo::TokenUsage::new(u64::from(max_tokens), request.stop.len() as u64)
}

fn main() {
    let request = Request {
        temperature: 0.2,
        stop: vec!["\n\n".to_owned()],
    };
    ask(&request, 256, "conv-1");
}
