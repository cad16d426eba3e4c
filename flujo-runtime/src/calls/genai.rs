//! [`ReportsUsage`] for the `genai` crate's chat response and [`StreamChunk`] for its stream
//! events (feature `genai`), so that a `#[track_cost]` function can return what
//! `client.exec_chat(...)` and `client.exec_chat_stream(...)` give. genai already counts as
//! the OpenTelemetry conventions do, for every provider it speaks to: `prompt_tokens` holds
//! the cache reads and writes (Anthropic's included), `completion_tokens` the reasoning
//! (Gemini's thoughts included). When the response kept the provider's raw body
//! (`ChatOptions::with_capture_raw_body(true)`), flujo reads that instead, with the price
//! data's extractors, so that units beyond tokens (web searches, audio) are priced too.

use std::borrow::Cow;

use flujo_pricing::TokenUsage;
use genai::chat::{ChatResponse, ChatStreamEvent, Usage};

use super::chunk::{ChunkUsage, StreamChunk};
use super::usage::ReportsUsage;

/// A count genai reported: `None` when it is negative (a usage that cannot be true is not
/// read, and the call is recorded with `flujo.usage.missing`).
fn count(value: Option<i32>) -> Option<u64> {
    u64::try_from(value.unwrap_or(0)).ok()
}

impl ReportsUsage for Usage {
    fn token_usage(&self) -> Option<TokenUsage> {
        if self.prompt_tokens.is_none() && self.completion_tokens.is_none() {
            return None;
        }
        let prompt = self.prompt_tokens_details.as_ref();
        let completion = self.completion_tokens_details.as_ref();
        Some(
            TokenUsage::new(count(self.prompt_tokens)?, count(self.completion_tokens)?)
                .with_cache_read(count(prompt.and_then(|d| d.cached_tokens))?)
                .with_cache_write(count(prompt.and_then(|d| d.cache_creation_tokens))?)
                .with_cache_write_1h(count(
                    prompt
                        .and_then(|d| d.cache_creation_details.as_ref())
                        .and_then(|d| d.ephemeral_1h_tokens),
                )?)
                .with_reasoning(count(completion.and_then(|d| d.reasoning_tokens))?),
        )
    }
}

impl ReportsUsage for ChatResponse {
    fn token_usage(&self) -> Option<TokenUsage> {
        self.usage.token_usage()
    }

    /// The model the provider says answered.
    fn response_model(&self) -> Option<&str> {
        Some(&self.provider_model_iden.model_name)
    }

    fn response_id(&self) -> Option<&str> {
        self.response_id.as_deref()
    }

    /// The provider's own word for why it stopped (`stop`, `end_turn`, `STOP`, ...).
    fn finish_reasons(&self) -> Vec<Cow<'_, str>> {
        self.stop_reason
            .iter()
            .map(|reason| Cow::Borrowed(reason.raw()))
            .collect()
    }

    fn output_texts(&self) -> Vec<Cow<'_, str>> {
        self.texts().into_iter().map(Cow::Borrowed).collect()
    }

    fn json_body(&self) -> Option<&serde_json::Value> {
        self.captured_raw_body.as_ref()
    }
}

/// The stream's `End` event carries the usage when the request captured it
/// (`ChatOptions::with_capture_usage(true)`; without it, the call is recorded with
/// `flujo.usage.missing`).
impl StreamChunk for ChatStreamEvent {
    fn chunk_usage(&self) -> ChunkUsage {
        match self {
            ChatStreamEvent::End(end) => end
                .captured_usage
                .as_ref()
                .and_then(ReportsUsage::token_usage)
                .map_or(ChunkUsage::none(), ChunkUsage::totals),
            _ => ChunkUsage::none(),
        }
    }

    fn response_id(&self) -> Option<&str> {
        match self {
            ChatStreamEvent::End(end) => end.captured_response_id.as_deref(),
            _ => None,
        }
    }

    fn finish_reasons(&self) -> Vec<Cow<'_, str>> {
        match self {
            ChatStreamEvent::End(end) => end
                .captured_stop_reason
                .iter()
                .map(|reason| Cow::Borrowed(reason.raw()))
                .collect(),
            _ => Vec::new(),
        }
    }
}
