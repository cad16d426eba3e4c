//! The span record: what the hot path writes when a call ends, as plain data (integer ids,
//! raw clock readings, the call site), model-call details included. Everything else, the
//! metrics and the exported shape among it, is derived from it on the export worker.

use std::borrow::Cow;
use std::sync::Arc;
use std::time::SystemTime;

use flujo_pricing::{TokenUsage, Usd};

use crate::core::attribute::AttributeValue;
use crate::core::clock::{self, Anchor};
use crate::core::site::CallSite;

/// How a span ended. The error details are boxed: they exist only on the error path, and
/// keeping them out of line keeps every record small.
#[derive(Debug)]
pub enum Outcome {
    /// The call returned a value (`Ok` for a `Result`).
    Ok,
    /// The call returned an error.
    Error(Box<ErrorDetails>),
    /// The call panicked.
    Panicked,
    /// The call was dropped before it finished (a cancelled future).
    Cancelled,
}

impl Outcome {
    /// The index of the `status` label (`ok`, `error`, `cancelled`) in [`STATUSES`].
    pub fn status_index(&self) -> usize {
        match self {
            Outcome::Ok => 0,
            Outcome::Error(_) | Outcome::Panicked => 1,
            Outcome::Cancelled => 2,
        }
    }

    /// The `error.type` of a call that did not succeed: the error's type name, `panic`, or
    /// `cancelled`; `None` for a success.
    pub fn error_type(&self) -> Option<&'static str> {
        match self {
            Outcome::Ok => None,
            Outcome::Error(details) => Some(details.error_type),
            Outcome::Panicked => Some("panic"),
            Outcome::Cancelled => Some("cancelled"),
        }
    }
}

/// The `status` label values of call metrics, in [`Outcome::status_index`] order.
pub const STATUSES: [&str; 3] = ["ok", "error", "cancelled"];

/// Why a call failed.
#[derive(Debug)]
pub struct ErrorDetails {
    /// The error's type name (`error.type`).
    pub error_type: &'static str,
    /// The error's message.
    pub message: String,
}

/// What the hot path writes (112 bytes).
pub struct SpanRecord {
    /// The call site.
    pub site: &'static CallSite,
    /// The telemetry session the call ran in: a record of an earlier session (a call that
    /// outlived its guard) is counted as late, never handed to a later session's sinks.
    pub session: u16,
    /// Whether the span is exported; unsampled calls still send a record for their metrics
    /// and cost.
    pub exported: bool,
    /// Observed on the calling thread already (metrics, cost, ledger): observers skip it.
    pub observed: bool,
    /// The trace id.
    pub trace_id: u128,
    /// The span id.
    pub span_id: u64,
    /// The parent's span id, 0 for a root.
    pub parent_span_id: u64,
    /// Raw clock reading at the start.
    pub start: u64,
    /// Raw clock reading at the end.
    pub end: u64,
    /// How it ended.
    pub outcome: Outcome,
    /// Attempts made (1 without retries).
    pub attempts: u32,
    /// `fields(...)` attributes.
    pub attributes: Vec<(Cow<'static, str>, AttributeValue)>,
    /// What only some spans have (a model call's usage, events, a name of their own).
    pub extras: Option<Box<SpanExtras>>,
}

// The per-thread rings are sized from this: keep records small.
const _: () = assert!(std::mem::size_of::<SpanRecord>() <= 112);

impl SpanRecord {
    /// The model call's details, when the record is one.
    pub fn model_call(&self) -> Option<&ModelCallRecord> {
        self.extras.as_ref().and_then(|e| e.model_call.as_ref())
    }
}

/// The rarer parts of a span, kept out of line so that every record stays small.
#[derive(Clone, Debug, Default)]
pub struct SpanExtras {
    /// What a `#[track_cost]` call adds: model, usage, cost.
    pub model_call: Option<ModelCallRecord>,
    /// Events in the span (retries, validations, bridged `tracing` events).
    pub events: Vec<SpanEvent>,
    /// Bridged `tracing` events past `OTEL_SPAN_EVENT_COUNT_LIMIT`, not kept.
    pub dropped_events: u32,
    /// A name other than the call site's (bridged `tracing` spans).
    pub name: Option<Cow<'static, str>>,
    /// The parent is a span of another process (a `traceparent` continued here): rare, so
    /// kept here rather than in every record.
    pub parent_is_remote: bool,
    /// The id of the trace's W3C `tracestate` in [`trace_state`](super::trace_state)'s table
    /// (0: none), looked up on the export worker.
    pub trace_state: u32,
    /// The recording thread the box goes back to once exported (0: none).
    pub(crate) home: u32,
}

/// The events a span keeps unless `OTEL_SPAN_EVENT_COUNT_LIMIT` says: the specification's
/// default.
pub(crate) const DEFAULT_SPAN_EVENT_LIMIT: usize = 128;

/// Something that happened during a span, at one instant (an OpenTelemetry span event).
#[derive(Clone, Debug, PartialEq)]
pub struct SpanEvent {
    /// Event name, e.g. `flujo.retry`.
    pub name: Cow<'static, str>,
    /// Event attributes.
    pub attributes: Vec<(Cow<'static, str>, AttributeValue)>,
    /// Raw clock reading.
    at: u64,
    /// Wall-clock time, set when the span is handed to exporters.
    time: Option<SystemTime>,
}

impl SpanEvent {
    /// An event named `name` happening now.
    pub fn now(
        name: impl Into<Cow<'static, str>>,
        attributes: Vec<(Cow<'static, str>, AttributeValue)>,
    ) -> SpanEvent {
        SpanEvent {
            name: name.into(),
            attributes,
            at: clock::now(),
            time: None,
        }
    }

    /// When it happened.
    pub fn time(&self) -> SystemTime {
        self.time
            .unwrap_or_else(|| clock::anchor().to_system_time(self.at))
    }

    /// Fixes the wall-clock time with the anchor of the span it belongs to.
    pub(crate) fn anchor_with(&mut self, anchor: &Anchor) {
        self.time = Some(anchor.to_system_time(self.at));
    }

    /// The value of attribute `key`, if the event has it.
    pub fn attribute(&self, key: &str) -> Option<&AttributeValue> {
        self.attributes
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, value)| value)
    }
}

/// The kind of model call, as `gen_ai.operation.name` spells it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Operation {
    /// A chat completion (`chat`).
    Chat,
    /// A plain text completion (`text_completion`).
    TextCompletion,
    /// An embeddings request (`embeddings`).
    Embeddings,
    /// A Gemini `generateContent` call (`generate_content`).
    GenerateContent,
}

impl Operation {
    /// The `gen_ai.operation.name` value.
    pub const fn as_str(self) -> &'static str {
        match self {
            Operation::Chat => "chat",
            Operation::TextCompletion => "text_completion",
            Operation::Embeddings => "embeddings",
            Operation::GenerateContent => "generate_content",
        }
    }
}

/// What a model call adds to its span record (in its boxed extras: most records are steps).
#[derive(Clone, Debug)]
pub struct ModelCallRecord {
    /// `gen_ai.operation.name`.
    pub operation: Operation,
    /// The model as the call named it.
    pub model: Cow<'static, str>,
    /// `gen_ai.provider.name`.
    pub provider: &'static str,
    /// What the response said about itself: the model that answered, its id, why it
    /// stopped.
    pub response: ResponseDetails,
    /// Tokens used, when the response reported them.
    pub usage: Option<TokenUsage>,
    /// `None`: no usage reported, or the model has no price.
    pub cost: Option<Usd>,
    /// The part of `cost` that paid for output tokens (the rest paid for input).
    pub output_cost: Option<Usd>,
    /// The price table that priced the call.
    pub price_version: Arc<str>,
    /// The `#[pipeline_step]` the call ran in.
    pub step: Option<&'static str>,
    /// The pipeline the call ran in.
    pub pipeline: Option<&'static str>,
    /// The run's request id.
    pub request_id: Option<Arc<str>>,
    /// The run's conversation (`RunOptions::conversation_id`).
    pub conversation_id: Option<Arc<str>>,
    /// How the chunks of a streamed call arrived (`None`: not streamed).
    pub stream: Option<StreamTiming>,
    /// The call ended and its response (or stream) reported no usage.
    pub usage_missing: bool,
    /// When the call ended.
    pub timestamp: SystemTime,
}

/// How the chunks of a streamed model call arrived.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StreamTiming {
    /// From the call's start to its first chunk (`None`: no chunk came).
    pub time_to_first_chunk: Option<std::time::Duration>,
    /// Chunks received.
    pub chunks: u32,
}

/// What a model's response says about itself, when it says it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ResponseDetails {
    /// `gen_ai.response.model`: the model that answered.
    pub model: Option<String>,
    /// `gen_ai.response.id`.
    pub id: Option<String>,
    /// `gen_ai.response.finish_reasons`, one per choice.
    pub finish_reasons: Vec<Cow<'static, str>>,
}

impl ModelCallRecord {
    /// Priced nowhere although it reported usage.
    pub fn is_unpriced(&self) -> bool {
        self.usage.is_some() && self.cost.is_none()
    }

    /// The span name: `{operation} {model}`, as the GenAI conventions name model-call spans.
    pub fn span_name(&self) -> String {
        format!("{} {}", self.operation.as_str(), self.model)
    }
}
