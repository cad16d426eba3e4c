//! A provider's response as JSON (`serde_json::Value`, what `reqwest` + `serde_json` give):
//! its usage is read by the price data's extractors for the call's provider and API flavor
//! (`#[track_cost(provider = ..., api = ...)]`, else the model's provider), so each provider's
//! counting rules hold (xAI's and Gemini's reasoning outside the output count, Anthropic's
//! cache tokens outside the input, Cohere's billed units), and every unit the data prices is
//! priced, not only tokens. The response's model, id, finish reasons, text and service tier
//! are read from the fields each API names them with.

use std::borrow::Cow;

use flujo_pricing::TokenUsage;
use serde_json::Value;

use super::usage::ReportsUsage;
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
        let model = self.response_model().unwrap_or_default();
        pricing::read_body(self, model, None, None).usage
    }

    fn response_model(&self) -> Option<&str> {
        [
            "/model",
            "/modelVersion",
            "/response/model",
            "/result/model",
        ]
        .iter()
        .find_map(|path| self.pointer(path)?.as_str())
    }

    fn response_id(&self) -> Option<&str> {
        ["/id", "/responseId", "/response/id"]
            .iter()
            .find_map(|path| self.pointer(path)?.as_str())
    }

    /// Chat completions' `choices[].finish_reason`, Gemini's `candidates[].finishReason`,
    /// Anthropic's `stop_reason`, Bedrock's `stopReason`, Cohere's `finish_reason`, and a
    /// Responses API `status` other than `completed` (`incomplete`, `failed`).
    fn finish_reasons(&self) -> Vec<Cow<'_, str>> {
        let listed = |list: &str, field: &str| -> Vec<Cow<'_, str>> {
            self.get(list)
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(|item| item.get(field)?.as_str())
                .map(Cow::Borrowed)
                .collect()
        };
        let choices = listed("choices", "finish_reason");
        if !choices.is_empty() {
            return choices;
        }
        let candidates = listed("candidates", "finishReason");
        if !candidates.is_empty() {
            return candidates;
        }
        ["/stop_reason", "/stopReason", "/finish_reason"]
            .iter()
            .find_map(|path| self.pointer(path)?.as_str())
            .or_else(|| {
                let status = self.get("status")?.as_str()?;
                (self.get("object")?.as_str()? == "response" && status != "completed")
                    .then_some(status)
            })
            .map(|reason| vec![Cow::Borrowed(reason)])
            .unwrap_or_default()
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
                .filter_map(|choice| choice.pointer("/message/content")?.as_str())
                .map(Cow::Borrowed)
                .collect();
        }
        if let Some(candidates) = self.get("candidates").and_then(Value::as_array) {
            return candidates
                .iter()
                .filter_map(|candidate| texts(candidate.pointer("/content/parts"), "text"))
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
            self.pointer("/output/message/content"),
            self.pointer("/message/content"),
        ]
        .into_iter()
        .find_map(|parts| texts(parts, "text"))
        .into_iter()
        .collect()
    }

    /// The service tier the response was served at (`service_tier`: OpenAI's `flex`,
    /// `priority`, ...; Anthropic's `batch`, in its usage, as the data's `processing`).
    fn price_context(&self) -> Vec<(&'static str, Cow<'_, str>)> {
        let mut context = Vec::new();
        if let Some(tier) = self.get("service_tier").and_then(Value::as_str) {
            context.push(("service_tier", Cow::Borrowed(tier)));
        }
        if self.pointer("/usage/service_tier").and_then(Value::as_str) == Some("batch") {
            context.push(("processing", Cow::Borrowed("batch")));
        }
        context
    }

    fn json_body(&self) -> Option<&Value> {
        Some(self)
    }
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
