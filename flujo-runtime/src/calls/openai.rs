//! [`ReportsUsage`] for the `async-openai` response types and [`StreamChunk`] for its chat
//! stream chunks (feature `async-openai`), so that a `#[track_cost]` function can return them
//! as they come from the client (`create` and `create_stream`).

use std::borrow::Cow;

use async_openai::types::chat::{
    CompletionUsage, CreateChatCompletionResponse, CreateChatCompletionStreamResponse, FinishReason,
};
use async_openai::types::embeddings::{
    CreateBase64EmbeddingResponse, CreateEmbeddingResponse, EmbeddingUsage,
};
use flujo_pricing::TokenUsage;

use super::stream::{ChunkUsage, StreamChunk};
use super::usage::ReportsUsage;

/// OpenAI counts cached tokens inside `prompt_tokens` and reasoning tokens inside
/// `completion_tokens`, as [`TokenUsage`] does.
impl ReportsUsage for CompletionUsage {
    fn token_usage(&self) -> Option<TokenUsage> {
        let prompt = self.prompt_tokens_details.as_ref();
        let completion = self.completion_tokens_details.as_ref();
        let non_negative = |n: i64| u64::try_from(n).unwrap_or(0);
        Some(
            TokenUsage::new(
                u64::from(self.prompt_tokens),
                u64::from(self.completion_tokens),
            )
            .with_cache_read(prompt.and_then(|d| d.cached_tokens).map_or(0, u64::from))
            .with_cache_write(
                prompt
                    .and_then(|d| d.cache_write_tokens)
                    .map_or(0, non_negative),
            )
            .with_reasoning(
                completion
                    .and_then(|d| d.reasoning_tokens)
                    .map_or(0, u64::from),
            ),
        )
    }
}

impl ReportsUsage for CreateChatCompletionResponse {
    fn token_usage(&self) -> Option<TokenUsage> {
        self.usage.as_ref().and_then(ReportsUsage::token_usage)
    }

    fn response_model(&self) -> Option<&str> {
        Some(&self.model)
    }

    fn response_id(&self) -> Option<&str> {
        Some(&self.id)
    }

    /// One reason per choice that has one, as the API spells it.
    fn finish_reasons(&self) -> Vec<Cow<'_, str>> {
        spelled(
            self.choices
                .iter()
                .filter_map(|choice| choice.finish_reason),
        )
    }

    /// The tier that served the request (`flex`, `priority`, ...), which selects the price
    /// data's variant for it.
    fn price_context(&self) -> Vec<(&'static str, Cow<'_, str>)> {
        self.service_tier
            .as_ref()
            .and_then(|tier| serde_json::to_value(tier).ok())
            .and_then(|tier| {
                tier.as_str()
                    .map(|t| ("service_tier", Cow::Owned(t.to_owned())))
            })
            .into_iter()
            .collect()
    }

    /// Each choice's text (a choice that answered with tool calls only has none).
    fn output_texts(&self) -> Vec<Cow<'_, str>> {
        self.choices
            .iter()
            .map(|choice| Cow::Borrowed(choice.message.content.as_deref().unwrap_or_default()))
            .collect()
    }
}

/// Each reason as the API spells it.
fn spelled(reasons: impl Iterator<Item = FinishReason>) -> Vec<Cow<'static, str>> {
    reasons
        .map(|reason| {
            Cow::Borrowed(match reason {
                FinishReason::Stop => "stop",
                FinishReason::Length => "length",
                FinishReason::ToolCalls => "tool_calls",
                FinishReason::ContentFilter => "content_filter",
                FinishReason::FunctionCall => "function_call",
            })
        })
        .collect()
}

/// A `create_stream` chunk: the usage is in the last chunk, when the request sets
/// `stream_options.include_usage` (the call is recorded with `flujo.usage.missing`
/// otherwise).
impl StreamChunk for CreateChatCompletionStreamResponse {
    fn chunk_usage(&self) -> ChunkUsage {
        self.usage
            .as_ref()
            .and_then(ReportsUsage::token_usage)
            .map_or(ChunkUsage::none(), ChunkUsage::totals)
    }

    fn response_model(&self) -> Option<&str> {
        Some(&self.model)
    }

    fn response_id(&self) -> Option<&str> {
        Some(&self.id)
    }

    fn finish_reasons(&self) -> Vec<Cow<'_, str>> {
        spelled(
            self.choices
                .iter()
                .filter_map(|choice| choice.finish_reason),
        )
    }
}

impl ReportsUsage for EmbeddingUsage {
    fn token_usage(&self) -> Option<TokenUsage> {
        Some(TokenUsage::new(u64::from(self.prompt_tokens), 0))
    }
}

impl ReportsUsage for CreateEmbeddingResponse {
    fn token_usage(&self) -> Option<TokenUsage> {
        self.usage.token_usage()
    }

    fn response_model(&self) -> Option<&str> {
        Some(&self.model)
    }
}

impl ReportsUsage for CreateBase64EmbeddingResponse {
    fn token_usage(&self) -> Option<TokenUsage> {
        self.usage.token_usage()
    }

    fn response_model(&self) -> Option<&str> {
        Some(&self.model)
    }
}
