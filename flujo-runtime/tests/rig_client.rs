//! `ReportsUsage` for `rig-core`'s completion response (feature `rig`), built as rig builds it
//! from a provider's answer.

use flujo::TokenUsage;
use flujo::cost::ReportsUsage;
use flujo::testing::Capture;
use flujo::track_cost;
use rig_core::completion::message::Origin;
use rig_core::completion::{AssistantContent, CompletionResponse, FinishReason, Usage};

/// What rig makes of Anthropic's answer: cache reads and writes inside `input_tokens`.
fn response() -> CompletionResponse {
    let usage = Usage::new()
        .input_tokens(2095 + 2051 + 14200)
        .output_tokens(503)
        .cached_input_tokens(14200)
        .cache_creation_input_tokens(2051)
        .reasoning_tokens(120);
    let mut origin = Origin::new("anthropic-messages", "anthropic", "claude-sonnet-4-5");
    origin.response_model = Some("claude-sonnet-4-5-20250929".to_owned());
    origin.response_id = Some("msg_013Zva2CMHLNnXjNJJKqJ2EF".to_owned());
    CompletionResponse::new(
        vec![AssistantContent::text("Hi!")],
        usage,
        origin,
        serde_json::json!({}),
    )
    .with_finish_reason(FinishReason::Stop)
}

fn expected() -> TokenUsage {
    TokenUsage::new(2095 + 2051 + 14200, 503)
        .with_cache_read(14200)
        .with_cache_write(2051)
        .with_reasoning(120)
}

#[test]
fn rig_usage_is_read_as_the_conventions_count() {
    assert_eq!(response().token_usage(), Some(expected()));
    assert_eq!(Usage::new().token_usage(), None, "no counter reported");
}

#[track_cost(model = "claude-sonnet-4-5", provider = "anthropic")]
async fn ask_claude() -> Result<CompletionResponse, anyhow::Error> {
    Ok(response())
}

#[test]
fn a_rig_response_is_priced_and_its_details_recorded() {
    let capture = Capture::start();
    futures::executor::block_on(ask_claude()).unwrap();
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
        ["stop"]
    );
}
