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
        Some(
            TokenUsage::new(2841, 412)
                .with_cache_read(2432)
                .with_reasoning(320)
        )
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

// Streams: recorded chunks replayed through a tracked `create_stream`-shaped function.

type ChatStream = std::pin::Pin<
    Box<
        dyn futures::Stream<
                Item = Result<
                    async_openai::types::chat::CreateChatCompletionStreamResponse,
                    async_openai::error::OpenAIError,
                >,
            > + Send,
    >,
>;

/// What `client.chat().create_stream(request)` returns, replayed from a recording.
#[track_cost(model = "gpt-4o-mini", stream)]
async fn stream_invoice_summary() -> Result<ChatStream, anyhow::Error> {
    let chunks: Vec<_> = include_str!("recorded/chat_stream_gpt_4o_mini.jsonl")
        .lines()
        .map(|line| Ok(serde_json::from_str(line).expect("a recorded chunk")))
        .collect();
    Ok(Box::pin(futures::stream::iter(chunks)))
}

#[test]
fn a_create_stream_response_is_priced_from_its_last_usage_chunk() {
    use futures::StreamExt;
    let capture = Capture::start();
    let text = futures::executor::block_on(async {
        let mut stream = stream_invoice_summary().await.unwrap();
        let mut text = String::new();
        while let Some(chunk) = stream.next().await {
            for choice in chunk.unwrap().choices {
                text.push_str(choice.delta.content.as_deref().unwrap_or_default());
            }
        }
        text
    });
    assert_eq!(text, "Invoice 2291 totals $1,240.00.");
    let record = &capture.cost_records()[0];
    // 157 uncached * $0.15/M + 1280 cached * $0.075/M + 86 * $0.60/M = $0.00017115
    assert_eq!(record.cost, Some(Usd::parse("0.00017115").unwrap()));
    let span = &capture.spans_named("chat gpt-4o-mini")[0];
    assert_eq!(
        span.attribute("gen_ai.usage.input_tokens")
            .unwrap()
            .as_i64(),
        Some(1437)
    );
    assert_eq!(
        span.attribute("gen_ai.usage.cache_read.input_tokens")
            .unwrap()
            .as_i64(),
        Some(1280)
    );
    assert_eq!(
        span.attribute("gen_ai.response.model").unwrap().as_str(),
        Some("gpt-4o-mini-2024-07-18")
    );
    assert_eq!(
        span.attribute("gen_ai.response.finish_reasons")
            .unwrap()
            .as_str_array()
            .unwrap(),
        ["stop"]
    );
    assert_eq!(
        span.attribute("gen_ai.request.stream"),
        Some(flujo::export::AttributeValue::Bool(true))
    );
    assert_eq!(
        span.attribute("flujo.stream.chunks").unwrap().as_i64(),
        Some(7)
    );
}

/// Anthropic's Messages API events, parsed as JSON by a raw HTTP client.
#[track_cost(model = "claude-sonnet-4-5")]
fn replay_claude_events()
-> impl futures::Stream<Item = Result<serde_json::Value, serde_json::Error>> {
    futures::stream::iter(
        include_str!("recorded/messages_stream_claude_sonnet_4_5.jsonl")
            .lines()
            .map(serde_json::from_str)
            .collect::<Vec<_>>(),
    )
}

#[test]
fn anthropic_events_split_usage_is_counted_once() {
    let capture = Capture::start();
    let events: Vec<_> = futures::executor::block_on_stream(replay_claude_events()).collect();
    assert_eq!(events.len(), 9);
    let record = &capture.cost_records()[0];
    assert_eq!(
        record.usage,
        TokenUsage::new(2520, 153).with_cache_read(2048),
        "input from message_start with its cache reads, output from message_delta replacing \
         message_start's 2"
    );
    // 472 * $3/M + 2048 cached * $0.30/M + 153 * $15/M = $0.0043254
    assert_eq!(record.cost, Some(Usd::parse("0.0043254").unwrap()));
    let span = &capture.spans_named("chat claude-sonnet-4-5")[0];
    assert_eq!(
        span.attribute("gen_ai.response.id").unwrap().as_str(),
        Some("msg_01XFDUDYJgAACzvnptvVoYEL")
    );
    assert_eq!(
        span.attribute("gen_ai.response.finish_reasons")
            .unwrap()
            .as_str_array()
            .unwrap(),
        ["end_turn"]
    );
}

/// The same answer, served by OpenAI's flex tier.
#[track_cost(model = "o4-mini")]
async fn extract_invoice_flex() -> Result<CreateChatCompletionResponse, anyhow::Error> {
    let mut response: serde_json::Value =
        serde_json::from_str(include_str!("recorded/chat_completion_o4_mini.json")).unwrap();
    response["service_tier"] = "flex".into();
    Ok(serde_json::from_value(response)?)
}

#[test]
fn the_service_tier_of_the_response_selects_the_price_variant() {
    let capture = Capture::start();
    futures::executor::block_on(extract_invoice_flex()).unwrap();
    let record = &capture.cost_records()[0];
    // o4-mini at the flex tier (genai-prices, from 2026-10-12): 409 uncached * $0.55/M +
    // 2432 cached * $0.138/M + 412 * $2.20/M = 224.95 + 335.616 + 906.4 micro-dollars.
    assert_eq!(record.cost, Some(Usd::parse("0.001466966").unwrap()));
}

fn responses_response() -> async_openai::types::responses::Response {
    serde_json::from_str(include_str!("recorded/responses_gpt_5_mini.json")).unwrap()
}

#[track_cost(model = "gpt-5-mini")]
async fn summarise_invoice() -> Result<async_openai::types::responses::Response, anyhow::Error> {
    Ok(responses_response())
}

#[test]
fn a_responses_api_response_is_priced_at_its_service_tier() {
    let response = responses_response();
    assert_eq!(
        response.token_usage(),
        Some(TokenUsage::new(1437, 86).with_cache_read(1280))
    );
    assert_eq!(response.output_texts(), ["Invoice 2291 totals $1,240.00."]);
    let capture = Capture::start();
    futures::executor::block_on(summarise_invoice()).unwrap();
    let record = &capture.cost_records()[0];
    let catalog = flujo_pricing::genai::Catalog::shipped().unwrap();
    let index = catalog.locate("gpt-5-mini", Some("openai")).unwrap();
    let at = |context: &[(&str, &str)]| {
        catalog
            .prices_for(index, record.timestamp, context)
            .cost(&record.usage)
    };
    let flex = at(&[("service_tier", "flex")]);
    assert!(flex < at(&[]), "the flex tier is cheaper");
    assert_eq!(record.cost, Some(flex), "priced at the flex tier");
    let span = &capture.spans_named("chat gpt-5-mini")[0];
    assert_eq!(
        span.attribute("gen_ai.response.id").unwrap().as_str(),
        Some("resp_67ccd2bed1ec8190b14f964abc0542670bb6a6b452d3795b")
    );
}

type ResponsesStream = std::pin::Pin<
    Box<
        dyn futures::Stream<
                Item = Result<async_openai::types::responses::ResponseStreamEvent, anyhow::Error>,
            > + Send,
    >,
>;

/// What `client.responses().create_stream(request)` returns, replayed from a recording.
#[track_cost(model = "gpt-5-mini", stream)]
async fn stream_invoice_with_responses() -> Result<ResponsesStream, anyhow::Error> {
    let events: Vec<_> = include_str!("recorded/responses_stream_gpt_5_mini.jsonl")
        .lines()
        .map(|line| Ok(serde_json::from_str(line).expect("a recorded event")))
        .collect();
    Ok(Box::pin(futures::stream::iter(events)))
}

#[test]
fn a_responses_stream_is_priced_from_its_completed_event() {
    use futures::StreamExt;
    let capture = Capture::start();
    let events = futures::executor::block_on(async {
        stream_invoice_with_responses().await.unwrap().count().await
    });
    assert_eq!(events, 4);
    let record = &capture.cost_records()[0];
    assert_eq!(
        record.usage,
        TokenUsage::new(1437, 86).with_cache_read(1280)
    );
    // The completed response says it was served at the flex tier, as the whole one does.
    let catalog = flujo_pricing::genai::Catalog::shipped().unwrap();
    let index = catalog.locate("gpt-5-mini", Some("openai")).unwrap();
    let flex = catalog
        .prices_for(index, record.timestamp, &[("service_tier", "flex")])
        .cost(&record.usage);
    assert_eq!(record.cost, Some(flex));
    let span = &capture.spans_named("chat gpt-5-mini")[0];
    assert_eq!(
        span.attribute("gen_ai.response.model").unwrap().as_str(),
        Some("gpt-5-mini-2025-08-07")
    );
}
