//! A provider's response as JSON (`serde_json::Value`, what `reqwest` + `serde_json` give),
//! whole or as the events of a stream:
//! its usage is read by the price data's extractors for the call's provider and API flavor
//! (`#[track_cost(provider = ..., api = ...)]`, else the model's provider), so each provider's
//! counting rules hold (xAI's and Gemini's reasoning outside the output count, Anthropic's
//! cache tokens outside the input, Cohere's billed units), and every unit the data prices is
//! priced, not only tokens. The response's model, id, finish reasons, text and service tier
//! are read from the fields each API names them with.

use std::borrow::Cow;

use flujo_pricing::TokenUsage;
use flujo_pricing::extract::Count;
use serde_json::Value;

use super::chunk::{ChunkUsage, StreamChunk};
use super::usage::{CallSite, ReportsUsage};
use crate::accounting::pricing;

/// A response body as JSON. Through `#[track_cost]`, its usage is read with the call site's
/// provider and API flavor; alone ([`ReportsUsage::token_usage`]), with the provider its
/// `model` implies, else with the shapes of OpenAI, Anthropic, Gemini, Bedrock and Cohere.
///
/// ```
/// use flujo::cost::ReportsUsage;
///
/// let body = serde_json::json!({
///     "model": "grok-4-0709",
///     "choices": [{"index": 0, "message": {"role": "assistant", "content": "303"}, "finish_reason": "stop"}],
///     "usage": {"prompt_tokens": 32, "completion_tokens": 9,
///               "completion_tokens_details": {"reasoning_tokens": 94}}
/// });
/// // xAI counts reasoning outside `completion_tokens`: both are billed as output.
/// let usage = body.token_usage().unwrap();
/// assert_eq!((usage.input, usage.output, usage.reasoning_output), (32, 103, 94));
/// assert_eq!(body.finish_reasons(), ["stop"]);
/// ```
impl ReportsUsage for Value {
    fn token_usage(&self) -> Option<TokenUsage> {
        let model = model_of(self).unwrap_or_default();
        pricing::read_body(self, model, None, None).usage
    }

    fn response_model(&self) -> Option<&str> {
        model_of(self)
    }

    fn response_id(&self) -> Option<&str> {
        id_of(self)
    }

    /// Chat completions' `choices[].finish_reason`, Gemini's `candidates[].finishReason`,
    /// Anthropic's `stop_reason`, Bedrock's `stopReason`, Cohere's `finish_reason`, and a
    /// Responses API `status` other than `completed` (`incomplete`, `failed`).
    fn finish_reasons(&self) -> Vec<Cow<'_, str>> {
        finish_reasons_of(self)
    }

    /// The text of each choice (chat completions), candidate (Gemini) or message (Anthropic,
    /// Bedrock, Cohere, the Responses API).
    fn output_texts(&self) -> Vec<Cow<'_, str>> {
        let texts = |parts: Option<&Value>, field: &str| -> Option<Cow<'_, str>> {
            let text: String = parts?
                .as_array()?
                .iter()
                .filter_map(|part| part.get(field)?.as_str())
                .collect();
            (!text.is_empty()).then_some(Cow::Owned(text))
        };
        if let Some(choices) = self.get("choices").and_then(Value::as_array) {
            return choices
                .iter()
                .filter_map(|choice| at(choice, &["message", "content"])?.as_str())
                .map(Cow::Borrowed)
                .collect();
        }
        if let Some(candidates) = self.get("candidates").and_then(Value::as_array) {
            return candidates
                .iter()
                .filter_map(|candidate| texts(at(candidate, &["content", "parts"]), "text"))
                .collect();
        }
        if let Some(output) = self.get("output").and_then(Value::as_array) {
            return output
                .iter()
                .filter_map(|item| texts(item.get("content"), "text"))
                .collect();
        }
        [
            self.get("content"),
            at(self, &["output", "message", "content"]),
            at(self, &["message", "content"]),
        ]
        .into_iter()
        .find_map(|parts| texts(parts, "text"))
        .into_iter()
        .collect()
    }

    /// The service tier the response was served at (`service_tier`: OpenAI's `flex`,
    /// `priority`, ...; Anthropic's `batch`, in its usage, as the data's `processing`).
    fn price_context(&self) -> Vec<(&'static str, Cow<'_, str>)> {
        price_context_of(self)
    }

    fn json_body(&self) -> Option<&Value> {
        Some(self)
    }
}

/// The events of a streamed response parsed as JSON, as a raw HTTP client reads its
/// server-sent events (or an SDK yields them): OpenAI-compatible chat chunks (the last with
/// `usage` when the request sets `stream_options.include_usage`: OpenAI, Mistral, DeepSeek,
/// xAI, Together, Fireworks, ...; Groq's in `x_groq.usage`), the Responses API's events
/// (`response.completed` with `response.usage`), Anthropic's (`message_start`,
/// `message_delta`), Gemini's `streamGenerateContent` chunks (`usageMetadata`, running totals),
/// Bedrock's `ConverseStream` events as boto3 and the AWS SDKs yield them
/// (`{"metadata": {"usage": ...}}`, `{"messageStop": ...}`) and Cohere v2's `message-end`.
/// Each usage is read with the provider's rules (the call site's provider and API flavor when
/// it names them); each report is the call's usage so far, replacing the last.
///
/// ```
/// use flujo::cost::StreamChunk;
///
/// let last = serde_json::json!({
///     "type": "response.completed",
///     "response": {"id": "resp_1", "object": "response", "model": "gpt-4.1", "status": "completed",
///                  "usage": {"input_tokens": 36, "output_tokens": 87,
///                            "output_tokens_details": {"reasoning_tokens": 0}}}
/// });
/// assert_eq!(last.chunk_usage().total(), Some(flujo::TokenUsage::new(36, 87)));
/// assert_eq!(last.response_id(), Some("resp_1"));
/// ```
impl StreamChunk for Value {
    fn chunk_usage(&self) -> ChunkUsage {
        let model = model_of(self).unwrap_or_default();
        let site = CallSite {
            model,
            provider: None,
            api: None,
        };
        chunk_usage(self, &site).usage
    }

    fn response_model(&self) -> Option<&str> {
        model_of(self)
    }

    fn response_id(&self) -> Option<&str> {
        id_of(self)
    }

    fn finish_reasons(&self) -> Vec<Cow<'_, str>> {
        finish_reasons_of(self)
    }

    fn price_context(&self) -> Vec<(&'static str, Cow<'_, str>)> {
        price_context_of(self)
    }

    fn json_chunk(&self) -> Option<&Value> {
        Some(self)
    }
}

/// Where a streamed event keeps a usage the price data's extractors read, and the provider
/// and flavor its shape is (the call site's win when it names them).
type Carrier<'v> = (&'v Value, Option<&'static str>, Option<&'static str>);

fn carrier(event: &Value) -> Option<Carrier<'_>> {
    let kind = event.get("type").and_then(Value::as_str);
    if let Some(kind) = kind
        && matches!(
            kind,
            "response.completed" | "response.incomplete" | "response.failed"
        )
    {
        return Some((event.get("response")?, Some("openai"), Some("responses")));
    }
    if kind == Some("message-end") {
        return Some((event.get("delta")?, Some("cohere"), Some("default")));
    }
    if at(event, &["metadata", "usage"]).is_some() {
        return Some((event.get("metadata")?, Some("aws"), Some("default")));
    }
    if event.get("usageMetadata").is_some() {
        return Some((event, Some("google"), Some("default")));
    }
    if at(event, &["x_groq", "usage"]).is_some() {
        return Some((event.get("x_groq")?, Some("groq"), Some("default")));
    }
    event
        .get("usage")
        .filter(|usage| usage.is_object())
        .map(|_| (event, None, None))
}

/// What a streamed event reports: its usage, and the units beyond tokens it counts so far
/// (web searches, audio tokens: every event that reports them says the call's total).
pub(crate) struct ChunkRead {
    pub(crate) usage: ChunkUsage,
    pub(crate) other_units: Vec<(String, Count)>,
}

/// The usage a streamed event reports, read for the call at `site`.
pub(crate) fn chunk_usage(event: &Value, site: &CallSite<'_>) -> ChunkRead {
    if let Some(usage) = anthropic(event) {
        // Its server tools (web searches) are units the data's extractor prices; it requires
        // the input and output counts, which a `message_delta` may leave out (the tokens are
        // read above: only the other units are taken from this read).
        let other_units = match event.get("usage") {
            Some(Value::Object(usage)) if usage.contains_key("server_tool_use") => {
                let mut usage = usage.clone();
                for count in ["input_tokens", "output_tokens"] {
                    usage.entry(count).or_insert(Value::from(0));
                }
                let body = serde_json::json!({ "usage": usage });
                pricing::read_body(&body, site.model, Some("anthropic"), None).other_units
            }
            _ => Vec::new(),
        };
        return ChunkRead { usage, other_units };
    }
    let Some((body, shape_provider, shape_flavor)) = carrier(event) else {
        return ChunkRead {
            usage: ChunkUsage::none(),
            other_units: Vec::new(),
        };
    };
    let read = |provider: Option<&str>, api: Option<&str>| {
        Some(pricing::read_body(body, site.model, provider, api))
            .filter(|read| read.usage.is_some())
    };
    let read = match (site.provider, shape_provider) {
        (Some(provider), Some(shape)) => read(Some(provider), site.api.or(shape_flavor))
            .or_else(|| read(Some(shape), shape_flavor)),
        (provider, shape) => read(provider.or(shape), site.api.or(shape_flavor)),
    };
    match read {
        Some(read) => ChunkRead {
            usage: read.usage.map_or(ChunkUsage::none(), ChunkUsage::totals),
            other_units: read.other_units,
        },
        None => ChunkRead {
            usage: ChunkUsage::none(),
            other_units: Vec::new(),
        },
    }
}

/// Anthropic's events: `message_start` has the input (without the cache reads and writes)
/// and the output so far, `message_delta` the output so far (and, lately, the input again).
fn anthropic(event: &Value) -> Option<ChunkUsage> {
    let usage = match event.get("type").and_then(Value::as_str)? {
        "message_start" => at(event, &["message", "usage"])?,
        "message_delta" => event.get("usage")?,
        _ => return None,
    };
    let count = |key: &str| usage.get(key)?.as_u64();
    let split = ChunkUsage::anthropic(
        count("input_tokens"),
        count("cache_read_input_tokens"),
        count("cache_creation_input_tokens"),
        count("output_tokens"),
    );
    Some(
        match at(usage, &["cache_creation", "ephemeral_1h_input_tokens"]).and_then(Value::as_u64) {
            Some(one_hour) => split.with_cache_write_1h(one_hour),
            None => split,
        },
    )
}

/// The value at `path` (object keys) in `value`. `Value::pointer` would do, but it allocates
/// a string per key, and this runs on every chunk of a stream.
fn at<'v>(value: &'v Value, path: &[&str]) -> Option<&'v Value> {
    path.iter().try_fold(value, |value, key| value.get(key))
}

/// How a body or event says the request was served: `service_tier` (OpenAI's chat bodies and
/// chunks; a Responses API event's `response`), Anthropic's `batch` in its usage as the
/// data's `processing`.
fn price_context_of(value: &Value) -> Vec<(&'static str, Cow<'_, str>)> {
    let mut context = Vec::new();
    let tier = value
        .get("service_tier")
        .or_else(|| at(value, &["response", "service_tier"]))
        .and_then(Value::as_str);
    if let Some(tier) = tier {
        context.push(("service_tier", Cow::Borrowed(tier)));
    }
    if at(value, &["usage", "service_tier"]).and_then(Value::as_str) == Some("batch") {
        context.push(("processing", Cow::Borrowed("batch")));
    }
    context
}

/// The model a body or event names: chat's `model`, Gemini's `modelVersion`, Anthropic's
/// `message.model`, the Responses API's `response.model`, Cloudflare's `result.model`.
fn model_of(value: &Value) -> Option<&str> {
    const PATHS: [&[&str]; 5] = [
        &["model"],
        &["modelVersion"],
        &["message", "model"],
        &["response", "model"],
        &["result", "model"],
    ];
    PATHS.iter().find_map(|path| at(value, path)?.as_str())
}

/// The id a body or event names: `id`, Gemini's `responseId`, Anthropic's `message.id`, the
/// Responses API's `response.id`.
fn id_of(value: &Value) -> Option<&str> {
    const PATHS: [&[&str]; 4] = [
        &["id"],
        &["responseId"],
        &["message", "id"],
        &["response", "id"],
    ];
    PATHS.iter().find_map(|path| at(value, path)?.as_str())
}

/// Why the model stopped, as each API says it in a body or an event.
fn finish_reasons_of(value: &Value) -> Vec<Cow<'_, str>> {
    let listed = |list: &str, field: &str| -> Vec<Cow<'_, str>> {
        value
            .get(list)
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|item| item.get(field)?.as_str())
            .map(Cow::Borrowed)
            .collect()
    };
    for (list, field) in [("choices", "finish_reason"), ("candidates", "finishReason")] {
        let reasons = listed(list, field);
        if !reasons.is_empty() {
            return reasons;
        }
    }
    let response = if value.get("object").and_then(Value::as_str) == Some("response") {
        Some(value)
    } else {
        value.get("response")
    };
    let unfinished = response.and_then(|response| {
        let status = response.get("status")?.as_str()?;
        if matches!(status, "completed" | "in_progress" | "queued") {
            return None;
        }
        at(response, &["incomplete_details", "reason"])
            .and_then(Value::as_str)
            .or(Some(status))
    });
    const PATHS: [&[&str]; 6] = [
        &["stop_reason"],
        &["stopReason"],
        &["finish_reason"],
        &["delta", "stop_reason"],
        &["delta", "finish_reason"],
        &["messageStop", "stopReason"],
    ];
    PATHS
        .iter()
        .find_map(|path| at(value, path)?.as_str())
        .or(unfinished)
        .map(|reason| vec![Cow::Borrowed(reason)])
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use crate::accounting::pricing;

    /// The guide's table of the providers and API flavors a body is read with is the shipped
    /// data's extractors.
    #[test]
    fn the_guides_usage_flavor_table_is_the_shipped_extractors() {
        let catalog = flujo_pricing::genai::Catalog::shipped().unwrap();
        let mut table = String::from(
            "\n| `provider =` | the data's provider | API flavors (`api =`) |\n|---|---|---|\n",
        );
        for provider in catalog
            .providers
            .iter()
            .filter(|p| !p.extractors.is_empty())
        {
            let flavors: Vec<String> = provider
                .extractors
                .iter()
                .map(|e| format!("`{}`", e.flavor))
                .collect();
            table.push_str(&format!(
                "| `{}` | {} (`{}`) | {} |\n",
                pricing::provider_name(&provider.id),
                provider.name,
                provider.id,
                flavors.join(", ")
            ));
        }
        crate::core::names::keep_equal("cost.md", "usage-flavors", &table, "UPDATE_USAGE_TABLE");
    }
}
