//! [`ReportsUsage`] for the `async-openai` response types (Chat Completions, the Responses
//! API, embeddings) and [`StreamChunk`] for its chat chunks and Responses stream events
//! (feature `async-openai`), so that a `#[track_cost]` function can return them as they come
//! from the client (`create` and `create_stream`).

use std::borrow::Cow;

use async_openai::types::chat::{
    CompletionUsage, CreateChatCompletionResponse, CreateChatCompletionStreamResponse, FinishReason,
};
use async_openai::types::embeddings::{
    CreateBase64EmbeddingResponse, CreateEmbeddingResponse, EmbeddingUsage,
};
use async_openai::types::responses::{
    OutputItem, OutputMessageContent, Response, ResponseCompletedEvent, ResponseCreatedEvent,
    ResponseFailedEvent, ResponseInProgressEvent, ResponseIncompleteEvent, ResponseQueuedEvent,
    ResponseStreamEvent, ResponseUsage, Status,
};
use flujo_pricing::TokenUsage;

use super::chunk::{ChunkUsage, StreamChunk};
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
        tier_context(self.service_tier.as_ref().map(serde_json::to_value))
    }

    /// Each choice's text (a choice that answered with tool calls only has none).
    fn output_texts(&self) -> Vec<Cow<'_, str>> {
        self.choices
            .iter()
            .map(|choice| Cow::Borrowed(choice.message.content.as_deref().unwrap_or_default()))
            .collect()
    }
}

/// The tier that served a request, as the API spells it (its serde name), for the price
/// data's variants.
fn tier_context(
    tier: Option<serde_json::Result<serde_json::Value>>,
) -> Vec<(&'static str, Cow<'static, str>)> {
    tier.and_then(Result::ok)
        .and_then(|tier| tier.as_str().map(str::to_owned))
        .map(|tier| ("service_tier", Cow::Owned(tier)))
        .into_iter()
        .collect()
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

    fn price_context(&self) -> Vec<(&'static str, Cow<'_, str>)> {
        tier_context(self.service_tier.as_ref().map(serde_json::to_value))
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

/// The Responses API counts as Chat Completions does: cached tokens inside `input_tokens`,
/// reasoning inside `output_tokens`.
impl ReportsUsage for ResponseUsage {
    fn token_usage(&self) -> Option<TokenUsage> {
        let details = &self.input_tokens_details;
        Some(
            TokenUsage::new(u64::from(self.input_tokens), u64::from(self.output_tokens))
                .with_cache_read(u64::from(details.cached_tokens))
                .with_cache_write(
                    details
                        .cache_write_tokens
                        .map_or(0, |n| u64::try_from(n).unwrap_or(0)),
                )
                .with_reasoning(u64::from(self.output_tokens_details.reasoning_tokens)),
        )
    }
}

/// A Responses API response (`client.responses().create(...)`): its usage, model, id, why it
/// stopped short (`incomplete_details.reason`, or a status other than `completed`), its text
/// and the service tier that served it.
impl ReportsUsage for Response {
    fn token_usage(&self) -> Option<TokenUsage> {
        self.usage.as_ref().and_then(ReportsUsage::token_usage)
    }

    fn response_model(&self) -> Option<&str> {
        Some(&self.model)
    }

    fn response_id(&self) -> Option<&str> {
        Some(&self.id)
    }

    fn finish_reasons(&self) -> Vec<Cow<'_, str>> {
        unfinished(self).into_iter().collect()
    }

    fn price_context(&self) -> Vec<(&'static str, Cow<'_, str>)> {
        tier_context(self.service_tier.as_ref().map(serde_json::to_value))
    }

    fn output_texts(&self) -> Vec<Cow<'_, str>> {
        self.output
            .iter()
            .filter_map(|item| match item {
                OutputItem::Message(message) => Some(
                    message
                        .content
                        .iter()
                        .filter_map(|part| match part {
                            OutputMessageContent::OutputText(text) => Some(text.text.as_str()),
                            OutputMessageContent::Refusal(_) => None,
                        })
                        .collect::<String>(),
                ),
                _ => None,
            })
            .map(Cow::Owned)
            .collect()
    }
}

/// Why a response stopped short: its `incomplete_details.reason`, else a status other than
/// `completed` (`failed`, `cancelled`); `None` for a completed (or unfinished) one.
fn unfinished(response: &Response) -> Option<Cow<'_, str>> {
    if let Some(details) = &response.incomplete_details {
        return Some(Cow::Borrowed(details.reason.as_str()));
    }
    match response.status {
        Status::Failed => Some(Cow::Borrowed("failed")),
        Status::Cancelled => Some(Cow::Borrowed("cancelled")),
        Status::Incomplete => Some(Cow::Borrowed("incomplete")),
        Status::Completed | Status::InProgress | Status::Queued => None,
    }
}

/// A Responses API stream event (`client.responses().create_stream(...)`): the usage is in the
/// `response.completed` event (or `response.incomplete`, `response.failed`), the model and id
/// in every event that carries the response.
impl StreamChunk for ResponseStreamEvent {
    fn chunk_usage(&self) -> ChunkUsage {
        match self {
            ResponseStreamEvent::ResponseCompleted(ResponseCompletedEvent { response, .. })
            | ResponseStreamEvent::ResponseIncomplete(ResponseIncompleteEvent {
                response, ..
            })
            | ResponseStreamEvent::ResponseFailed(ResponseFailedEvent { response, .. }) => response
                .token_usage()
                .map_or(ChunkUsage::none(), ChunkUsage::totals),
            _ => ChunkUsage::none(),
        }
    }

    fn response_model(&self) -> Option<&str> {
        carried(self).map(|response| response.model.as_str())
    }

    fn response_id(&self) -> Option<&str> {
        carried(self).map(|response| response.id.as_str())
    }

    fn finish_reasons(&self) -> Vec<Cow<'_, str>> {
        carried(self).and_then(unfinished).into_iter().collect()
    }

    fn price_context(&self) -> Vec<(&'static str, Cow<'_, str>)> {
        carried(self).map_or_else(Vec::new, ReportsUsage::price_context)
    }
}

/// The response an event carries, for the events that carry one.
fn carried(event: &ResponseStreamEvent) -> Option<&Response> {
    match event {
        ResponseStreamEvent::ResponseCreated(ResponseCreatedEvent { response, .. })
        | ResponseStreamEvent::ResponseInProgress(ResponseInProgressEvent { response, .. })
        | ResponseStreamEvent::ResponseQueued(ResponseQueuedEvent { response, .. })
        | ResponseStreamEvent::ResponseCompleted(ResponseCompletedEvent { response, .. })
        | ResponseStreamEvent::ResponseIncomplete(ResponseIncompleteEvent { response, .. })
        | ResponseStreamEvent::ResponseFailed(ResponseFailedEvent { response, .. }) => {
            Some(response)
        }
        _ => None,
    }
}
