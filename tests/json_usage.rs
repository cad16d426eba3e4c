//! A `#[track_cost]` function that returns the provider's response as JSON
//! (`serde_json::Value`) is recorded as one that returns a typed response: the same tokens,
//! cost, response model, id and finish reasons, read with the provider's counting rules.

use flujo::cost::{CostRecord, ReportsUsage};
use flujo::export::FinishedSpan;
use flujo::testing::Capture;
use flujo::{TokenUsage, Usd, track_cost};
use serde_json::{Value, json};

/// A Gemini `generateContent` response: thoughts are outside `candidatesTokenCount`, cached
/// tokens inside `promptTokenCount`.
fn gemini_body() -> Value {
    json!({
        "candidates": [{"content": {"parts": [{"text": "Blue light scatters more."}], "role": "model"},
                        "finishReason": "STOP", "index": 0}],
        "usageMetadata": {"promptTokenCount": 12841, "candidatesTokenCount": 212,
                          "thoughtsTokenCount": 600, "cachedContentTokenCount": 12288,
                          "totalTokenCount": 13653},
        "modelVersion": "gemini-2.5-flash",
        "responseId": "mKdSaLm3GuyW1dkP3ZSGsAQ"
    })
}

#[track_cost(model = "gemini-2.5-flash", provider = "gcp.gemini")]
fn ask_gemini_json() -> Result<Value, flujo::UsageLimitExceeded> {
    Ok(gemini_body())
}

/// The same response, typed by hand as a careful user would.
struct Typed;

impl ReportsUsage for Typed {
    fn token_usage(&self) -> Option<TokenUsage> {
        Some(
            TokenUsage::new(12841, 212 + 600)
                .with_cache_read(12288)
                .with_reasoning(600),
        )
    }
    fn response_model(&self) -> Option<&str> {
        Some("gemini-2.5-flash")
    }
    fn response_id(&self) -> Option<&str> {
        Some("mKdSaLm3GuyW1dkP3ZSGsAQ")
    }
    fn finish_reasons(&self) -> Vec<std::borrow::Cow<'_, str>> {
        vec!["STOP".into()]
    }
}

#[track_cost(model = "gemini-2.5-flash", provider = "gcp.gemini")]
fn ask_gemini_typed() -> Result<Typed, flujo::UsageLimitExceeded> {
    Ok(Typed)
}

fn only(records: Vec<CostRecord>) -> CostRecord {
    assert_eq!(records.len(), 1, "{records:?}");
    records.into_iter().next().unwrap()
}

fn model_call(capture: &Capture) -> FinishedSpan {
    let spans = capture.spans_named("chat gemini-2.5-flash");
    assert_eq!(spans.len(), 1, "{}", capture.span_tree());
    spans.into_iter().next().unwrap()
}

#[test]
fn a_json_body_is_recorded_as_the_typed_response_is() {
    let json = Capture::start();
    ask_gemini_json().unwrap();
    let (json_record, json_span) = (only(json.cost_records()), model_call(&json));
    drop(json);
    let typed = Capture::start();
    ask_gemini_typed().unwrap();
    let (typed_record, typed_span) = (only(typed.cost_records()), model_call(&typed));

    assert_eq!(json_record.usage, typed_record.usage);
    assert_eq!(json_record.cost, typed_record.cost);
    assert!(json_record.cost.is_some_and(|cost| cost > Usd::ZERO));
    assert_eq!(json_record.provider, "gcp.gemini");
    for key in [
        "gen_ai.usage.input_tokens",
        "gen_ai.usage.output_tokens",
        "gen_ai.usage.cache_read.input_tokens",
        "gen_ai.response.model",
        "gen_ai.response.id",
        "gen_ai.response.finish_reasons",
        "operation.cost",
    ] {
        assert_eq!(
            json_span.attribute(key),
            typed_span.attribute(key),
            "{key} differs"
        );
    }
}

/// xAI's chat completions count reasoning outside `completion_tokens`; both are billed as
/// output. No provider is named: the model's name says xAI.
#[track_cost(model = "grok-4-0709")]
fn ask_grok() -> Value {
    json!({
        "id": "a3d1008e-4544-40d4-d075-11527e794e4a", "object": "chat.completion",
        "model": "grok-4-0709",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "303"}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 32, "completion_tokens": 9, "total_tokens": 135,
                  "prompt_tokens_details": {"cached_tokens": 6},
                  "completion_tokens_details": {"reasoning_tokens": 94}}
    })
}

#[test]
fn a_provider_s_counting_rule_is_applied_without_being_named() {
    let capture = Capture::start();
    ask_grok();
    let record = only(capture.cost_records());
    let usage = record.usage;
    assert_eq!(
        (
            usage.input,
            usage.output,
            usage.reasoning_output,
            usage.cache_read_input
        ),
        (32, 103, 94, 6)
    );
    let prices = flujo::cost::model_prices("grok-4-0709").expect("priced");
    assert_eq!(record.cost, Some(prices.cost(&usage)));
}

/// Anthropic's web searches are priced per thousand: a body that reports them costs them.
#[track_cost(model = "claude-sonnet-4-5", provider = "anthropic")]
fn ask_claude_with_search() -> Value {
    json!({
        "id": "msg_013Zva2CMHLNnXjNJJKqJ2EF", "type": "message", "role": "assistant",
        "model": "claude-sonnet-4-5-20250929",
        "content": [{"type": "text", "text": "Hi!"}], "stop_reason": "end_turn",
        "usage": {"input_tokens": 2095, "cache_creation_input_tokens": 2051,
                  "cache_read_input_tokens": 14200,
                  "cache_creation": {"ephemeral_5m_input_tokens": 51, "ephemeral_1h_input_tokens": 2000},
                  "output_tokens": 503, "server_tool_use": {"web_search_requests": 2}}
    })
}

#[test]
fn units_beyond_tokens_that_a_body_reports_are_priced() {
    let capture = Capture::start();
    ask_claude_with_search();
    let record = only(capture.cost_records());
    let usage = record.usage;
    // Anthropic's `input_tokens` excludes the cache: flujo's input is the whole prompt.
    assert_eq!(usage.input, 2095 + 2051 + 14200);
    assert_eq!(usage.cache_write_1h_input, 2000);
    let tokens_only = flujo::cost::model_prices("claude-sonnet-4-5")
        .expect("priced")
        .cost(&usage);
    // Two searches at $10 per thousand.
    assert_eq!(
        record.cost,
        Some(tokens_only + Usd::parse("0.02").unwrap()),
        "{record:?}"
    );
}

/// The same answer streamed: `message_start` says the input, `message_delta` the output and
/// the searches so far.
#[test]
fn units_beyond_tokens_that_a_stream_reports_are_priced_as_the_body_s() {
    let capture = Capture::start();
    ask_claude_with_search();
    let body = only(capture.cost_records());
    drop(capture);
    let streamed = streamed(
        "claude-sonnet-4-5",
        vec![
            json!({"type": "message_start", "message": {
                "id": "msg_013Zva2CMHLNnXjNJJKqJ2EF", "type": "message", "role": "assistant",
                "model": "claude-sonnet-4-5-20250929", "content": [],
                "usage": {"input_tokens": 2095, "cache_creation_input_tokens": 2051,
                          "cache_read_input_tokens": 14200,
                          "cache_creation": {"ephemeral_5m_input_tokens": 51, "ephemeral_1h_input_tokens": 2000},
                          "output_tokens": 1}}}),
            json!({"type": "content_block_delta", "index": 0,
                   "delta": {"type": "text_delta", "text": "Hi!"}}),
            json!({"type": "message_delta", "delta": {"stop_reason": "end_turn"},
                   "usage": {"output_tokens": 503, "server_tool_use": {"web_search_requests": 2}}}),
            json!({"type": "message_stop"}),
        ],
    );
    assert_eq!(streamed.usage, body.usage);
    assert_eq!(
        streamed.cost, body.cost,
        "the two searches are priced: {streamed:?}"
    );
}

/// OpenAI's audio tokens, priced apart from text tokens, in a body and in a stream's final
/// usage chunk.
#[track_cost(model = "gpt-audio", provider = "openai")]
fn ask_with_audio() -> Value {
    json!({
        "id": "chatcmpl-audio", "object": "chat.completion", "model": "gpt-audio-2025-08-28",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": null}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 120, "completion_tokens": 90,
                  "prompt_tokens_details": {"audio_tokens": 80, "cached_tokens": 0},
                  "completion_tokens_details": {"audio_tokens": 70, "reasoning_tokens": 0}}
    })
}

#[test]
fn audio_tokens_of_a_stream_are_priced_as_the_body_s() {
    let capture = Capture::start();
    ask_with_audio();
    let body = only(capture.cost_records());
    drop(capture);
    let tokens_only = flujo::cost::model_prices("gpt-audio")
        .expect("priced")
        .cost(&body.usage);
    assert!(
        body.cost > Some(tokens_only),
        "audio costs more than text: {body:?}"
    );
    let streamed = streamed(
        "gpt-audio",
        vec![
            json!({"id": "chatcmpl-audio", "object": "chat.completion.chunk", "model": "gpt-audio-2025-08-28",
                   "choices": [{"index": 0, "delta": {"role": "assistant"}, "finish_reason": null}]}),
            json!({"id": "chatcmpl-audio", "object": "chat.completion.chunk", "model": "gpt-audio-2025-08-28",
                   "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}),
            json!({"id": "chatcmpl-audio", "object": "chat.completion.chunk", "model": "gpt-audio-2025-08-28",
                   "choices": [],
                   "usage": {"prompt_tokens": 120, "completion_tokens": 90,
                             "prompt_tokens_details": {"audio_tokens": 80, "cached_tokens": 0},
                             "completion_tokens_details": {"audio_tokens": 70, "reasoning_tokens": 0}}}),
        ],
    );
    assert_eq!(streamed.usage, body.usage);
    assert_eq!(streamed.cost, body.cost);
}

#[track_cost(model = "gpt-4o-mini", provider = "openai")]
fn ask_with_bad_usage(usage: Value) -> Value {
    json!({"model": "gpt-4o-mini", "usage": usage})
}

#[test]
fn a_body_whose_usage_cannot_be_read_is_unpriced_never_zero() {
    for usage in [
        json!({"prompt_tokens": -3, "completion_tokens": 5}),
        json!({"prompt_tokens": "12", "completion_tokens": 5}),
        json!({"completion_tokens": 5}),
        json!(null),
    ] {
        let capture = Capture::start();
        ask_with_bad_usage(usage.clone());
        assert!(
            capture.cost_records().is_empty(),
            "{usage}: never a silent $0"
        );
        let span = model_call_named(&capture, "chat gpt-4o-mini");
        assert_eq!(
            span.attribute("flujo.usage.missing")
                .and_then(|v| v.as_bool()),
            Some(true),
            "{usage}"
        );
        assert_eq!(
            capture.counter(
                "flujo_model_usage_missing_total",
                &[("model", "gpt-4o-mini")]
            ),
            1,
            "{usage}"
        );
    }
}

#[test]
fn a_count_beyond_the_bound_is_recorded_clamped_and_unpriced() {
    let capture = Capture::start();
    ask_with_bad_usage(json!({"prompt_tokens": 5e12, "completion_tokens": 5}));
    let record = only(capture.cost_records());
    assert_eq!(record.usage.input, flujo::cost::MAX_TOKENS_PER_CALL);
    assert_eq!(record.cost, None);
    assert_eq!(
        capture.counter(
            "flujo_token_usage_out_of_bounds_total",
            &[("model", "gpt-4o-mini")]
        ),
        1
    );
}

#[track_cost(model = "gpt-4.1", provider = "openai", api = "responses")]
fn ask_responses() -> Value {
    json!({
        "id": "resp_67ccd2bed1ec8190", "object": "response", "status": "completed",
        "model": "gpt-4.1-2025-04-14",
        "output": [{"type": "message", "role": "assistant",
                    "content": [{"type": "output_text", "text": "In a peaceful grove..."}]}],
        "service_tier": "flex",
        "usage": {"input_tokens": 36, "input_tokens_details": {"cached_tokens": 0},
                  "output_tokens": 87, "output_tokens_details": {"reasoning_tokens": 0}}
    })
}

#[test]
fn the_responses_api_is_read_with_its_flavor() {
    let capture = Capture::start();
    ask_responses();
    let record = only(capture.cost_records());
    assert_eq!(record.usage, TokenUsage::new(36, 87));
    let span = model_call_named(&capture, "chat gpt-4.1");
    assert_eq!(
        span.attribute("gen_ai.response.id")
            .and_then(|v| v.as_str().map(str::to_owned)),
        Some("resp_67ccd2bed1ec8190".to_owned())
    );
}

fn model_call_named(capture: &Capture, name: &str) -> FinishedSpan {
    let spans = capture.spans_named(name);
    assert_eq!(spans.len(), 1, "{}", capture.span_tree());
    spans.into_iter().next().unwrap()
}

#[derive(Debug, thiserror::Error)]
#[error("the stream broke")]
struct StreamError;

/// A streamed call whose events arrive as JSON, as a raw HTTP client parses server-sent
/// events (or an SDK yields them).
#[track_cost(model = model)]
fn stream_events(
    model: &str,
    events: Vec<Value>,
) -> impl futures::Stream<Item = Result<Value, StreamError>> + use<> {
    futures::stream::iter(events.into_iter().map(Ok))
}

#[track_cost(model = "gpt-4.1", provider = "azure.ai.openai", api = "responses")]
fn stream_azure_responses(
    events: Vec<Value>,
) -> impl futures::Stream<Item = Result<Value, StreamError>> + use<> {
    futures::stream::iter(events.into_iter().map(Ok))
}

fn streamed(model: &str, events: Vec<Value>) -> CostRecord {
    use futures::StreamExt;
    let capture = Capture::start();
    let all: Vec<_> = futures::executor::block_on(stream_events(model, events).collect());
    assert!(all.iter().all(Result::is_ok));
    only(capture.cost_records())
}

#[test]
fn every_providers_stream_reports_its_usage_with_its_rules() {
    let cases: Vec<(&str, Vec<Value>, TokenUsage)> = vec![
        // OpenAI chat with `stream_options.include_usage`: the last chunk has no choices.
        (
            "gpt-4o-mini",
            vec![
                json!({"id": "c1", "object": "chat.completion.chunk", "model": "gpt-4o-mini",
                   "choices": [{"index": 0, "delta": {"content": "Hi"}, "finish_reason": null}]}),
                json!({"id": "c1", "object": "chat.completion.chunk", "model": "gpt-4o-mini",
                   "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}),
                json!({"id": "c1", "object": "chat.completion.chunk", "model": "gpt-4o-mini", "choices": [],
                   "usage": {"prompt_tokens": 1200, "completion_tokens": 40,
                             "prompt_tokens_details": {"cached_tokens": 1024},
                             "completion_tokens_details": {"reasoning_tokens": 0}}}),
            ],
            TokenUsage::new(1200, 40).with_cache_read(1024),
        ),
        // The Responses API: `response.completed` carries the whole response.
        (
            "gpt-4.1",
            vec![
                json!({"type": "response.created", "response": {"id": "resp_1", "object": "response",
                   "model": "gpt-4.1-2025-04-14", "status": "in_progress"}}),
                json!({"type": "response.output_text.delta", "delta": "In a"}),
                json!({"type": "response.completed", "response": {"id": "resp_1", "object": "response",
                   "model": "gpt-4.1-2025-04-14", "status": "completed",
                   "usage": {"input_tokens": 36, "input_tokens_details": {"cached_tokens": 0},
                             "output_tokens": 87, "output_tokens_details": {"reasoning_tokens": 0}}}}),
            ],
            TokenUsage::new(36, 87),
        ),
        // Gemini's `streamGenerateContent`: running totals in every chunk, thoughts apart.
        (
            "gemini-2.5-flash",
            vec![
                json!({"candidates": [{"content": {"parts": [{"text": "Blue"}]}}],
                   "usageMetadata": {"promptTokenCount": 900, "candidatesTokenCount": 2, "thoughtsTokenCount": 300},
                   "modelVersion": "gemini-2.5-flash"}),
                json!({"candidates": [{"content": {"parts": [{"text": " light"}]}, "finishReason": "STOP"}],
                   "usageMetadata": {"promptTokenCount": 900, "candidatesTokenCount": 40, "thoughtsTokenCount": 300},
                   "modelVersion": "gemini-2.5-flash"}),
            ],
            TokenUsage::new(900, 340).with_reasoning(300),
        ),
        // Bedrock's ConverseStream, as boto3 yields its events.
        (
            "us.anthropic.claude-sonnet-4-20250514-v1:0",
            vec![
                json!({"messageStart": {"role": "assistant"}}),
                json!({"contentBlockDelta": {"delta": {"text": "Hello"}, "contentBlockIndex": 0}}),
                json!({"messageStop": {"stopReason": "end_turn"}}),
                json!({"metadata": {"usage": {"inputTokens": 1500, "outputTokens": 300, "totalTokens": 4300,
                                          "cacheReadInputTokens": 2500, "cacheWriteInputTokens": 0},
                                "metrics": {"latencyMs": 1180}}}),
            ],
            TokenUsage::new(4000, 300).with_cache_read(2500),
        ),
        // Cohere v2: `message-end` has the billed units.
        (
            "command-r-plus-08-2024",
            vec![
                json!({"type": "message-start", "id": "c14c80c3"}),
                json!({"type": "content-delta", "index": 0, "delta": {"message": {"content": {"text": "LLMs"}}}}),
                json!({"type": "message-end", "delta": {"finish_reason": "COMPLETE",
                   "usage": {"billed_units": {"input_tokens": 17, "output_tokens": 386},
                             "tokens": {"input_tokens": 83, "output_tokens": 386}}}}),
            ],
            TokenUsage::new(17, 386),
        ),
        // xAI: the final chunk's reasoning is outside `completion_tokens`.
        (
            "grok-4-0709",
            vec![
                json!({"id": "x1", "object": "chat.completion.chunk", "model": "grok-4-0709",
                   "choices": [{"index": 0, "delta": {"content": "303"}, "finish_reason": "stop"}],
                   "usage": {"prompt_tokens": 32, "completion_tokens": 9,
                             "completion_tokens_details": {"reasoning_tokens": 94}}}),
            ],
            TokenUsage::new(32, 103).with_reasoning(94),
        ),
        // Groq: the usage is in `x_groq` of the last chunk.
        (
            "llama-3.3-70b-versatile",
            vec![
                json!({"id": "g1", "object": "chat.completion.chunk", "model": "llama-3.3-70b-versatile",
                   "choices": [{"index": 0, "delta": {"content": "Fast"}, "finish_reason": null}]}),
                json!({"id": "g1", "object": "chat.completion.chunk", "model": "llama-3.3-70b-versatile",
                   "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}],
                   "x_groq": {"id": "req_01", "usage": {"prompt_tokens": 18, "completion_tokens": 556}}}),
            ],
            TokenUsage::new(18, 556),
        ),
        // DeepSeek: cache hits in the last chunk.
        (
            "deepseek-chat",
            vec![
                json!({"id": "d1", "object": "chat.completion.chunk", "model": "deepseek-chat", "choices": [],
                   "usage": {"prompt_tokens": 1600, "completion_tokens": 90,
                             "prompt_tokens_details": {"cached_tokens": 1536},
                             "prompt_cache_hit_tokens": 1536, "prompt_cache_miss_tokens": 64}}),
            ],
            TokenUsage::new(1600, 90).with_cache_read(1536),
        ),
        // Anthropic: the input in `message_start`, the output so far in `message_delta`.
        (
            "claude-sonnet-4-5",
            vec![
                json!({"type": "message_start", "message": {"id": "msg_1", "model": "claude-sonnet-4-5-20250929",
                   "usage": {"input_tokens": 25, "cache_read_input_tokens": 1000, "output_tokens": 1}}}),
                json!({"type": "message_delta", "delta": {"stop_reason": "end_turn"}, "usage": {"output_tokens": 15}}),
            ],
            TokenUsage::new(1025, 15).with_cache_read(1000),
        ),
    ];
    for (model, events, expected) in cases {
        let record = streamed(model, events);
        assert_eq!(record.usage, expected, "{model}");
        assert!(record.cost.is_some(), "{model}: priced");
    }
}

#[test]
fn a_call_site_s_provider_and_api_read_a_stream_of_another_provider_s_shape() {
    use futures::StreamExt;
    let capture = Capture::start();
    let events = vec![
        json!({"type": "response.completed", "response": {"id": "resp_2",
        "object": "response", "model": "gpt-4.1", "status": "completed",
        "usage": {"input_tokens": 10, "output_tokens": 5}}}),
    ];
    let _: Vec<_> = futures::executor::block_on(stream_azure_responses(events).collect());
    let record = only(capture.cost_records());
    assert_eq!(record.usage, TokenUsage::new(10, 5));
    assert_eq!(record.provider, "azure.ai.openai");
}

#[test]
fn a_json_stream_served_at_the_flex_tier_is_priced_at_it() {
    let record = streamed(
        "gpt-5-mini",
        vec![
            json!({"id": "c2", "object": "chat.completion.chunk", "model": "gpt-5-mini-2025-08-07",
                   "service_tier": "flex",
                   "choices": [{"index": 0, "delta": {"content": "Hi"}, "finish_reason": "stop"}]}),
            json!({"id": "c2", "object": "chat.completion.chunk", "model": "gpt-5-mini-2025-08-07",
                   "service_tier": "flex", "choices": [],
                   "usage": {"prompt_tokens": 1000, "completion_tokens": 500}}),
        ],
    );
    let catalog = flujo_pricing::genai::Catalog::shipped().unwrap();
    let index = catalog.locate("gpt-5-mini", Some("openai")).unwrap();
    let price = |context: &[(&str, &str)]| {
        catalog
            .prices_for(index, record.timestamp, context)
            .cost(&record.usage)
    };
    assert!(price(&[("service_tier", "flex")]) < price(&[]));
    assert_eq!(record.cost, Some(price(&[("service_tier", "flex")])));
}

/// A model priced in code (at run time: `unpriced` silences the build-time warning), its web
/// searches included: a body that reports them costs them.
#[track_cost(model = "acme-search-1", provider = "anthropic", unpriced)]
fn ask_acme_with_search() -> Value {
    json!({
        "id": "msg_acme", "type": "message", "role": "assistant", "model": "acme-search-1",
        "content": [{"type": "text", "text": "Found it."}], "stop_reason": "end_turn",
        "usage": {"input_tokens": 1000, "output_tokens": 100,
                  "server_tool_use": {"web_search_requests": 3}}
    })
}

#[test]
fn a_price_set_in_code_prices_units_beyond_tokens() {
    use flujo::cost::{ModelPrice, PerMillionTokens};
    let usd = |text| PerMillionTokens::parse(text).unwrap();
    flujo::cost::set_model_price(
        ModelPrice::new("acme-search-1", usd("2"), usd("8"))
            .with_provider("anthropic")
            .with_unit_price("web_searches_kcount", usd("10"))
            .unwrap(),
    );
    let capture = Capture::start();
    ask_acme_with_search();
    let record = only(capture.cost_records());
    // 1,000 * $2/M + 100 * $8/M + 3 searches * $10 per thousand.
    assert_eq!(
        record.cost,
        Some(
            Usd::parse("0.002").unwrap()
                + Usd::parse("0.0008").unwrap()
                + Usd::parse("0.03").unwrap()
        )
    );
}
