//! `ReportsUsage` and `StreamChunk` for the `ollama-rs` crate (feature `ollama`), with
//! responses as Ollama's API returns them.

use flujo::TokenUsage;
use flujo::cost::{ModelPrice, PerMillionTokens, ReportsUsage};
use flujo::testing::Capture;
use flujo::track_cost;
use ollama_rs::generation::chat::ChatMessageResponse;
use ollama_rs::generation::completion::GenerationResponse;

/// `POST /api/chat` with `stream: false`, as Ollama answers it.
fn chat_response() -> ChatMessageResponse {
    serde_json::from_value(serde_json::json!({
        "model": "llama3.2:3b", "created_at": "2026-12-01T10:00:00.000000Z",
        "message": {"role": "assistant", "content": "Paris."},
        "done": true, "done_reason": "stop",
        "total_duration": 512000000, "load_duration": 2000000,
        "prompt_eval_count": 26, "prompt_eval_duration": 130000000,
        "eval_count": 4, "eval_duration": 60000000
    }))
    .expect("Ollama's chat response")
}

#[test]
fn ollama_counts_are_the_input_and_output() {
    assert_eq!(chat_response().token_usage(), Some(TokenUsage::new(26, 4)));
    let generation: GenerationResponse = serde_json::from_value(serde_json::json!({
        "model": "llama3.2:3b", "created_at": "2026-12-01T10:00:00Z", "response": "Paris.",
        "done": true, "prompt_eval_count": 20, "eval_count": 3
    }))
    .unwrap();
    assert_eq!(generation.token_usage(), Some(TokenUsage::new(20, 3)));
}

#[track_cost(model = "llama3.2:3b", provider = "ollama", unpriced)]
fn ask_local() -> Result<ChatMessageResponse, anyhow::Error> {
    Ok(chat_response())
}

#[test]
fn a_local_model_is_counted_and_unpriced_unless_a_price_says() {
    let capture = Capture::start();
    ask_local().unwrap();
    let record = &capture.cost_records()[0];
    assert_eq!(record.usage, TokenUsage::new(26, 4));
    assert_eq!(
        record.cost, None,
        "the price data does not price it: unknown, not $0"
    );
    drop(capture);
    // What a local call costs you (power, hardware), said once in code.
    flujo::cost::set_model_price(
        ModelPrice::new(
            "llama3.2:3b",
            PerMillionTokens::parse("0").unwrap(),
            PerMillionTokens::parse("0").unwrap(),
        )
        .with_provider("ollama"),
    );
    let capture = Capture::start();
    ask_local().unwrap();
    assert_eq!(capture.cost_records()[0].cost, Some(flujo::Usd::ZERO));
}

type OllamaStream = std::pin::Pin<
    Box<dyn futures::Stream<Item = Result<ChatMessageResponse, anyhow::Error>> + Send>,
>;

/// What `send_chat_messages_stream` yields: the last item (`done`) has the counts.
#[track_cost(model = "llama3.2:3b", provider = "ollama", stream, unpriced)]
fn stream_local() -> Result<OllamaStream, anyhow::Error> {
    let partial: ChatMessageResponse = serde_json::from_value(serde_json::json!({
        "model": "llama3.2:3b", "created_at": "2026-12-01T10:00:00Z",
        "message": {"role": "assistant", "content": "Par"}, "done": false
    }))
    .unwrap();
    Ok(Box::pin(futures::stream::iter([
        Ok(partial),
        Ok(chat_response()),
    ])))
}

#[test]
fn an_ollama_stream_is_counted_from_its_last_item() {
    use futures::StreamExt;
    let capture = Capture::start();
    let n = futures::executor::block_on(stream_local().unwrap().count());
    assert_eq!(n, 2);
    assert_eq!(capture.cost_records()[0].usage, TokenUsage::new(26, 4));
}
