//! `ReportsUsage` for async-openai's response types (feature `async-openai`), read from
//! recorded API responses deserialised into the crate's real types.

use async_openai::types::chat::CreateChatCompletionResponse;
use async_openai::types::embeddings::CreateEmbeddingResponse;
use flujo::cost::ReportsUsage;
use flujo::testing::Capture;
use flujo::{TokenUsage, Usd, track_cost};

fn chat_response() -> CreateChatCompletionResponse {
    serde_json::from_str(include_str!("recorded/chat_completion_o4_mini.json")).unwrap()
}

fn embedding_response() -> CreateEmbeddingResponse {
    serde_json::from_str(include_str!("recorded/embeddings_3_small.json")).unwrap()
}

#[test]
fn chat_usage_keeps_cached_and_reasoning_tokens_inside_the_totals() {
    let response = chat_response();
    assert_eq!(
        response.token_usage(),
        Some(TokenUsage {
            input: 2841,
            output: 412,
            cache_read_input: 2432,
            cache_write_input: 0,
            reasoning_output: 320,
        })
    );
    assert_eq!(response.response_model(), Some("o4-mini-2025-04-16"));
    assert_eq!(
        response.response_id(),
        Some("chatcmpl-BhXv2dDf0pV1tKzqW9d0lLkY3mN8Q")
    );
    assert_eq!(response.finish_reasons(), ["stop"]);
}

#[test]
fn embedding_usage_is_input_only() {
    let response = embedding_response();
    assert_eq!(response.token_usage(), Some(TokenUsage::new(1837, 0)));
    assert_eq!(response.response_model(), Some("text-embedding-3-small"));
}

#[track_cost(model = "o4-mini")]
async fn extract_invoice() -> Result<CreateChatCompletionResponse, anyhow::Error> {
    Ok(chat_response())
}

#[test]
fn a_tracked_async_openai_call_is_priced_from_the_response() {
    let capture = Capture::start();
    futures::executor::block_on(extract_invoice()).unwrap();
    let record = &capture.cost_records()[0];
    // o4-mini: 409 uncached * $1.10/M + 2432 cached * $0.275/M + 412 * $4.40/M
    //        = 449.9 + 668.8 + 1812.8 micro-dollars = $0.0029315
    assert_eq!(record.cost, Some(Usd::parse("0.0029315").unwrap()));
    let span = &capture.spans_named("chat o4-mini")[0];
    assert_eq!(
        span.attribute("gen_ai.response.model").unwrap().as_str(),
        Some("o4-mini-2025-04-16")
    );
    assert_eq!(
        span.attribute("gen_ai.response.id").unwrap().as_str(),
        Some("chatcmpl-BhXv2dDf0pV1tKzqW9d0lLkY3mN8Q")
    );
    let reasons = span.attribute("gen_ai.response.finish_reasons").unwrap();
    assert_eq!(reasons.as_str_array().unwrap(), ["stop"]);
}
