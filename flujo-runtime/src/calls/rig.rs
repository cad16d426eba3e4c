//! [`ReportsUsage`] for `rig-core`'s completion response and usage (feature `rig`, which
//! needs Rust 1.95: rig's own `rust-version`). rig counts as the OpenTelemetry conventions do,
//! for every provider it speaks to: `input_tokens` holds the cache reads and writes and the
//! hosted tools' prompt, `output_tokens` the reasoning.
//!
//! rig's streamed turn reports its usage only in the response `Streamed::finish` returns, not
//! in its events: track the function that awaits it (`#[track_cost]` on an `async fn` that
//! forwards the events and returns `finish().await`).

use std::borrow::Cow;

use flujo_pricing::TokenUsage;
use rig_core::completion::{AssistantContent, CompletionResponse, FinishReason, Usage};

use super::usage::ReportsUsage;

impl ReportsUsage for Usage {
    fn token_usage(&self) -> Option<TokenUsage> {
        if self.input_tokens.is_none() && self.output_tokens.is_none() {
            return None;
        }
        Some(
            TokenUsage::new(
                self.input_tokens.unwrap_or(0),
                self.output_tokens.unwrap_or(0),
            )
            .with_cache_read(self.cached_input_tokens.unwrap_or(0))
            .with_cache_write(self.cache_creation_input_tokens.unwrap_or(0))
            .with_reasoning(self.reasoning_tokens.unwrap_or(0)),
        )
    }
}

impl ReportsUsage for CompletionResponse {
    fn token_usage(&self) -> Option<TokenUsage> {
        self.usage.token_usage()
    }

    fn response_model(&self) -> Option<&str> {
        self.model()
    }

    fn response_id(&self) -> Option<&str> {
        CompletionResponse::response_id(self)
    }

    /// rig's reason, as the conventions spell the usual ones; another in the provider's
    /// own spelling.
    fn finish_reasons(&self) -> Vec<Cow<'_, str>> {
        self.finish_reason()
            .map(|reason| match reason {
                FinishReason::Stop => Cow::Borrowed("stop"),
                FinishReason::Length => Cow::Borrowed("length"),
                FinishReason::ToolCalls => Cow::Borrowed("tool_calls"),
                FinishReason::ContentFilter => Cow::Borrowed("content_filter"),
                FinishReason::Other(other) => Cow::Owned(other),
                // A reason a later rig adds: its debug name until flujo spells it.
                other => Cow::Owned(format!("{other:?}").to_lowercase()),
            })
            .into_iter()
            .collect()
    }

    fn output_texts(&self) -> Vec<Cow<'_, str>> {
        self.choice
            .iter()
            .filter_map(|content| match content {
                AssistantContent::Text(text) => Some(Cow::Borrowed(text.text.as_str())),
                _ => None,
            })
            .collect()
    }
}
