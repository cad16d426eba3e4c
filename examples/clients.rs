//! Usage and exact cost from the responses of the clients people use, offline.
//!
//! Run it with `cargo run --example clients --features clients` (async-openai, genai,
//! ollama-rs and rig-core; rig needs Rust 1.95): no network, no API key. Each tracked function
//! returns what its client returns, here replayed from a recording of the provider's answer;
//! flujo reads the usage as each provider counts it and prices it. A raw JSON body (what
//! `reqwest` + `serde_json` give) is read with the price data's usage extractors.

use flujo::testing::Capture;
use flujo::track_cost;
use futures::StreamExt;

/// async-openai, the Responses API: `client.responses().create(request).await`.
#[track_cost(model = "gpt-5-mini")]
async fn summarise() -> Result<async_openai::types::responses::Response, anyhow::Error> {
    Ok(serde_json::from_str(include_str!(
        "../flujo-runtime/tests/recorded/responses_gpt_5_mini.json"
    ))?)
}

type ResponsesStream = std::pin::Pin<
    Box<
        dyn futures::Stream<
                Item = Result<async_openai::types::responses::ResponseStreamEvent, anyhow::Error>,
            > + Send,
    >,
>;

/// async-openai, streamed: `client.responses().create_stream(request).await`; priced from
/// its `response.completed` event when the stream ends.
#[track_cost(model = "gpt-5-mini", stream)]
async fn summarise_streamed() -> Result<ResponsesStream, anyhow::Error> {
    let events: Vec<_> =
        include_str!("../flujo-runtime/tests/recorded/responses_stream_gpt_5_mini.jsonl")
            .lines()
            .map(|line| serde_json::from_str(line).map_err(anyhow::Error::from))
            .collect();
    Ok(Box::pin(futures::stream::iter(events)))
}

/// genai, one client for many providers: `client.exec_chat(model, request, None).await`
/// (Anthropic here: genai counts the cache reads and writes inside the prompt tokens).
#[track_cost(model = "claude-sonnet-4-5", provider = "anthropic")]
async fn ask_with_genai() -> Result<genai::chat::ChatResponse, anyhow::Error> {
    use genai::ModelIden;
    use genai::adapter::AdapterKind;
    use genai::chat::{ChatResponse, MessageContent, PromptTokensDetails, StopReason, Usage};
    Ok(ChatResponse {
        content: MessageContent::from_text("Hi!"),
        reasoning_content: None,
        model_iden: ModelIden::new(AdapterKind::Anthropic, "claude-sonnet-4-5"),
        provider_model_iden: ModelIden::new(AdapterKind::Anthropic, "claude-sonnet-4-5-20250929"),
        stop_reason: Some(StopReason::from("end_turn".to_owned())),
        usage: Usage {
            prompt_tokens: Some(2095 + 2051 + 14200),
            prompt_tokens_details: Some(PromptTokensDetails {
                cache_creation_tokens: Some(2051),
                cache_creation_details: None,
                cached_tokens: Some(14200),
                audio_tokens: None,
            }),
            completion_tokens: Some(503),
            completion_tokens_details: None,
            total_tokens: Some(2095 + 2051 + 14200 + 503),
        },
        captured_raw_body: None,
        response_id: Some("msg_013Zva2CMHLNnXjNJJKqJ2EF".to_owned()),
    })
}

/// ollama-rs: `ollama.send_chat_messages(request).await`. A local model is counted, and
/// priced only where a price row says what it costs you (unpriced otherwise, never $0).
#[track_cost(model = "llama3.2:3b", provider = "ollama", unpriced)]
async fn ask_local() -> Result<ollama_rs::generation::chat::ChatMessageResponse, anyhow::Error> {
    Ok(serde_json::from_value(serde_json::json!({
        "model": "llama3.2:3b", "created_at": "2026-12-01T10:00:00.000000Z",
        "message": {"role": "assistant", "content": "Paris."},
        "done": true, "done_reason": "stop",
        "total_duration": 512000000, "load_duration": 2000000,
        "prompt_eval_count": 26, "prompt_eval_duration": 130000000,
        "eval_count": 4, "eval_duration": 60000000
    }))?)
}

/// rig-core: `model.completion(request).await` (rig counts as the conventions do).
#[track_cost(model = "claude-sonnet-4-5", provider = "anthropic")]
async fn ask_with_rig() -> Result<rig_core::completion::CompletionResponse, anyhow::Error> {
    use rig_core::completion::message::Origin;
    use rig_core::completion::{AssistantContent, CompletionResponse, FinishReason, Usage};
    let usage = Usage::new()
        .input_tokens(2095 + 2051 + 14200)
        .output_tokens(503)
        .cached_input_tokens(14200)
        .cache_creation_input_tokens(2051);
    let origin = Origin::new("anthropic-messages", "anthropic", "claude-sonnet-4-5");
    Ok(CompletionResponse::new(
        vec![AssistantContent::text("Hi!")],
        usage,
        origin,
        serde_json::json!({}),
    )
    .with_finish_reason(FinishReason::Stop))
}

/// A raw body: `reqwest::Client::post(url).json(&request).send()?.json::<Value>()?`. Gemini
/// bills its thoughts as output, outside `candidatesTokenCount`.
#[track_cost(model = "gemini-2.5-flash", provider = "gcp.gemini")]
fn ask_gemini_raw() -> serde_json::Value {
    serde_json::json!({
        "candidates": [{"content": {"parts": [{"text": "Rayleigh scattering."}]}, "finishReason": "STOP"}],
        "usageMetadata": {"promptTokenCount": 12841, "candidatesTokenCount": 212,
                          "thoughtsTokenCount": 600, "cachedContentTokenCount": 12288},
        "modelVersion": "gemini-2.5-flash", "responseId": "mKdSaLm3GuyW1dkP3ZSGsAQ"
    })
}

fn main() -> anyhow::Result<()> {
    let capture = Capture::start();
    futures::executor::block_on(async {
        summarise().await?;
        let mut stream = summarise_streamed().await?;
        while let Some(event) = stream.next().await {
            event?;
        }
        ask_with_genai().await?;
        ask_local().await?;
        ask_with_rig().await?;
        anyhow::Ok(())
    })?;
    ask_gemini_raw();

    println!(
        "{:<10} {:<18} {:>7} {:>7} {:>10} {:>9} {:>13}",
        "provider", "model", "input", "output", "cache read", "reasoning", "cost"
    );
    for record in capture.cost_records() {
        let cost = record
            .cost
            .map_or_else(|| "unpriced".to_owned(), |cost| format!("{cost:.9}"));
        println!(
            "{:<10} {:<18} {:>7} {:>7} {:>10} {:>9} {:>13}",
            record.provider,
            record.model,
            record.usage.input,
            record.usage.output,
            record.usage.cache_read_input,
            record.usage.reasoning_output,
            cost
        );
    }
    Ok(())
}
