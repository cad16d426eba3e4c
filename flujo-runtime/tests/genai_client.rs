//! `ReportsUsage` and `StreamChunk` for the `genai` crate (feature `genai`), with responses as
//! genai builds them from each provider's answer.

use flujo::TokenUsage;
use flujo::cost::ReportsUsage;
use flujo::testing::Capture;
use flujo::track_cost;
use genai::ModelIden;
use genai::adapter::AdapterKind;
use genai::chat::{
    CacheCreationDetails, ChatResponse, ChatStreamEvent, CompletionTokensDetails, MessageContent,
    PromptTokensDetails, StopReason, StreamEnd, Usage,
};

/// What genai makes of Anthropic's answer: the cache reads and writes inside `prompt_tokens`.
fn anthropic_usage() -> Usage {
    Usage {
        prompt_tokens: Some(2095 + 2051 + 14200),
        prompt_tokens_details: Some(PromptTokensDetails {
            cache_creation_tokens: Some(2051),
            cache_creation_details: Some(CacheCreationDetails {
                ephemeral_5m_tokens: Some(51),
                ephemeral_1h_tokens: Some(2000),
            }),
            cached_tokens: Some(14200),
            audio_tokens: None,
        }),
        completion_tokens: Some(503),
        completion_tokens_details: Some(CompletionTokensDetails {
            reasoning_tokens: Some(120),
            ..CompletionTokensDetails::default()
        }),
        total_tokens: Some(2095 + 2051 + 14200 + 503),
    }
}

fn response(raw_body: Option<serde_json::Value>) -> ChatResponse {
    ChatResponse {
        content: MessageContent::from_text("Hi!"),
        reasoning_content: None,
        model_iden: ModelIden::new(AdapterKind::Anthropic, "claude-sonnet-4-5"),
        provider_model_iden: ModelIden::new(AdapterKind::Anthropic, "claude-sonnet-4-5-20250929"),
        stop_reason: Some(StopReason::from("end_turn".to_owned())),
        usage: anthropic_usage(),
        captured_raw_body: raw_body,
        response_id: Some("msg_013Zva2CMHLNnXjNJJKqJ2EF".to_owned()),
    }
}

fn expected() -> TokenUsage {
    TokenUsage::new(2095 + 2051 + 14200, 503)
        .with_cache_read(14200)
        .with_cache_write(2051)
        .with_cache_write_1h(2000)
        .with_reasoning(120)
}

#[test]
fn genai_usage_is_read_as_the_conventions_count() {
    assert_eq!(response(None).token_usage(), Some(expected()));
    let mut negative = anthropic_usage();
    negative.completion_tokens = Some(-1);
    assert_eq!(negative.token_usage(), None, "a count that cannot be true");
}

#[track_cost(model = "claude-sonnet-4-5", provider = "anthropic")]
async fn ask_claude(raw_body: Option<serde_json::Value>) -> Result<ChatResponse, anyhow::Error> {
    Ok(response(raw_body))
}

#[test]
fn a_genai_response_is_priced_and_its_details_recorded() {
    let capture = Capture::start();
    futures::executor::block_on(ask_claude(None)).unwrap();
    let record = &capture.cost_records()[0];
    assert_eq!(record.usage, expected());
    let prices = flujo::cost::model_prices("claude-sonnet-4-5").unwrap();
    assert_eq!(record.cost, Some(prices.cost(&expected())));
    let span = &capture.spans_named("chat claude-sonnet-4-5")[0];
    assert_eq!(
        span.attribute("gen_ai.response.model").unwrap().as_str(),
        Some("claude-sonnet-4-5-20250929")
    );
    assert_eq!(
        span.attribute("gen_ai.response.finish_reasons")
            .unwrap()
            .as_str_array()
            .unwrap(),
        ["end_turn"]
    );
}

/// With the raw body captured, the provider's own answer is read: its web searches are priced.
#[test]
fn a_captured_raw_body_prices_what_the_typed_usage_leaves_out() {
    let raw = serde_json::json!({
        "id": "msg_013Zva2CMHLNnXjNJJKqJ2EF", "type": "message", "model": "claude-sonnet-4-5-20250929",
        "usage": {"input_tokens": 2095, "cache_creation_input_tokens": 2051, "cache_read_input_tokens": 14200,
                  "cache_creation": {"ephemeral_5m_input_tokens": 51, "ephemeral_1h_input_tokens": 2000},
                  "output_tokens": 503, "server_tool_use": {"web_search_requests": 2}}
    });
    let capture = Capture::start();
    futures::executor::block_on(ask_claude(Some(raw))).unwrap();
    let record = &capture.cost_records()[0];
    let tokens = TokenUsage::new(2095 + 2051 + 14200, 503)
        .with_cache_read(14200)
        .with_cache_write(2051)
        .with_cache_write_1h(2000);
    assert_eq!(record.usage, tokens);
    let prices = flujo::cost::model_prices("claude-sonnet-4-5").unwrap();
    // Two searches at $10 per thousand.
    assert_eq!(
        record.cost,
        Some(prices.cost(&tokens) + flujo::Usd::parse("0.02").unwrap())
    );
}

type GenaiStream =
    std::pin::Pin<Box<dyn futures::Stream<Item = Result<ChatStreamEvent, anyhow::Error>> + Send>>;

/// What `client.exec_chat_stream(...)` yields, with `ChatOptions::with_capture_usage(true)`.
#[track_cost(model = "claude-sonnet-4-5", provider = "anthropic", stream)]
async fn stream_claude() -> Result<GenaiStream, anyhow::Error> {
    let events = vec![
        Ok(ChatStreamEvent::Start),
        Ok(ChatStreamEvent::End(StreamEnd {
            captured_usage: Some(anthropic_usage()),
            captured_stop_reason: Some(StopReason::from("end_turn".to_owned())),
            ..StreamEnd::default()
        })),
    ];
    Ok(Box::pin(futures::stream::iter(events)))
}

#[test]
fn a_genai_stream_is_priced_from_its_end_event() {
    use futures::StreamExt;
    let capture = Capture::start();
    let n = futures::executor::block_on(async { stream_claude().await.unwrap().count().await });
    assert_eq!(n, 2);
    let record = &capture.cost_records()[0];
    assert_eq!(record.usage, expected());
    assert!(record.cost.is_some());
}
