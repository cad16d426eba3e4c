//! The runtime of [flujo](https://docs.rs/flujo): what `#[pipeline_step]` expands to calls
//! into this crate. Depend on `flujo` rather than on this crate directly.
//!
//! The crate is layers that only look down, one folder each: what each holds and the layers
//! it may import are the `RULES` table of `flujo-runtime/tests/layers.rs`, the one source of
//! the rules (that test checks every `use crate::` path against it, and that the imports
//! have no cycle). `runtime` is the composition root and `lib.rs` the public face.

#![warn(missing_docs)]
#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod accounting;
mod bridge;
mod calls;
mod collect;
pub mod config;
mod core;
mod ledger;
mod metrics;
pub mod pipeline;
mod run;
mod runtime;
mod sinks;
mod step;
pub mod testing;

pub use crate::accounting::pricing::prices_version;
pub use crate::config::error::TelemetryError;
pub use crate::config::settings::TelemetryConfig;
pub use crate::core::context::SpanContext;
pub use crate::core::retry_after::retry_after;
pub use crate::pipeline::runner::{Flujo, Pipeline};
pub use crate::run::handle::{ContextHandle, StepFutureExt};
pub use crate::run::limits::{UsageLimitExceeded, UsageLimits};
pub use crate::runtime::{TelemetryGuard, init_telemetry, init_telemetry_with};
pub use crate::step::advice::{RetryAdvice, retryable_response};
pub use crate::step::timeout::StepTimeout;
pub use flujo_pricing::{TokenUsage, Usd};

/// The future wrappers that carry a span (and a run) across `.await` points, and the error of
/// a `traceparent` header.
pub mod context {
    pub use crate::core::context::{TraceparentError, WithSpan};
    pub use crate::core::propagation::Propagators;
    pub use crate::run::handle::WithContext;
}

/// Cost tracking: token usage, prices, usage limits, the ledger and reports (the public face of
/// the `calls`, `accounting` and `ledger` layers).
pub mod cost {
    pub use crate::accounting::budget::WhenUnreachable;
    pub use crate::accounting::pricing::{model_prices, set_model_price};
    pub use crate::calls::chunk::{ChunkUsage, StreamChunk};
    pub use crate::calls::content::{GenAiMessages, REDACTED, redact};
    pub use crate::calls::stream::TrackedStream;
    pub use crate::calls::usage::ReportsUsage;
    pub use crate::core::record::{Operation, StreamTiming};
    pub use crate::ledger::error::CostError;
    #[cfg(feature = "postgres")]
    pub use crate::ledger::postgres::SCHEMA_VERSION as POSTGRES_SCHEMA_VERSION;
    #[cfg(durable_ledger)]
    pub use crate::ledger::query::CostLedger;
    pub use crate::ledger::query::{get_cost_report, utc_today};
    pub use crate::ledger::report::{CostGroup, CostReport, GroupBy, ReportDate};
    pub use crate::ledger::{CostRecord, LedgerLocation, recent_cost_records};
    pub use crate::run::limits::Limit;
    /// A unit a price is for: input, output, cache reads and writes, reasoning, requests.
    pub use flujo_pricing::genai::Unit as PriceUnit;
    pub use flujo_pricing::genai::{Prices, UnitPrice};
    pub use flujo_pricing::{
        Date, MAX_TOKENS_PER_CALL, MAX_USD_PER_MILLION_TOKENS, ModelPrice, PerMillionTokens,
        PricingError,
    };
}

/// What exporters see and the exporters flujo ships: `SpanExporter`, finished spans, the
/// `tracing` bridge, `OpenTelemetryHook`, Prometheus, and the delivery counters.
pub mod export {
    pub use crate::bridge::layer::{TracingBridge, tracing_layer};
    pub use crate::collect::finished::{FinishedSpan, SpanKind, SpanStatus};
    pub use crate::collect::sink::SpanExporter;
    pub use crate::collect::worker::{dropped_spans, late_records};
    pub use crate::core::attribute::{AttributeValue, ToAttributeValue};
    pub use crate::core::ids::{SpanId, TraceId};
    pub use crate::core::names::{Metric, MetricKind};
    pub use crate::core::record::SpanEvent;
    pub use crate::runtime::otel_hook::OpenTelemetryHook;
    /// flujo inside the application's OpenTelemetry SDK setup (feature `opentelemetry`):
    /// the processor to share with a tracer provider, and the `opentelemetry` and
    /// `opentelemetry_sdk` crates flujo builds with (0.33), to name their types in the version
    /// flujo's methods take.
    #[cfg(feature = "opentelemetry")]
    pub mod otel {
        pub use crate::sinks::otel::destination::SharedSpanProcessor;
        pub use opentelemetry;
        pub use opentelemetry_sdk;
    }
    #[cfg(feature = "prometheus")]
    pub use crate::sinks::prometheus::{
        PrometheusServer, start_prometheus_server, start_prometheus_server_on,
    };
}

/// Quality metrics of the guide: checklists, scores, validators.
pub mod quality {
    pub use crate::pipeline::quality::{
        ChecklistResult, FromValidationError, ValidationError, checklist_pass_rate,
        record_checklist, record_score, record_validation, validate,
    };
}

pub use crate::bridge::logfire;

/// What generated code calls. Not a public API: it changes without notice.
#[doc(hidden)]
pub mod __private {
    pub use crate::calls::model_call::{
        FromUsageLimitExceeded, ModelCall, ModelCallSite, ModelName, model_name,
    };
    pub use crate::calls::stream::{track_stream, track_stream_result};
    pub use crate::calls::usage::IntoTokenUsage;
    pub use crate::collect::ring::allocated_ring_slots;
    pub use crate::config::settings::settings_table;
    pub use crate::core::record::Operation;
    pub use crate::core::site::StepRole;
    pub use crate::pipeline::quality::{FromValidationError, validate_attempt};
    pub use crate::pipeline::runner::{
        FutureStage, IntoStepSource, Pipeline, PipelineError, PipelineInfo, PlainStage, RunState,
        Stage, StageValue,
    };
    #[cfg(feature = "otlp")]
    pub use crate::sinks::otlp::proto::trace_request_both_ways;
    pub use crate::step::advice::{Advice, Advise, ViaRetryAdvice, WithoutRetryAdvice, retry_if};
    pub use crate::step::call::{Step, StepCall, StepError};
    pub use crate::step::retry::{
        Backoff, Jitter, RetryArgument, RetryPolicy, retry_delay, sleep_between_attempts,
    };
    pub use crate::step::stream::{BoxedStream, step_stream, step_stream_result};
    pub use crate::step::timeout::{FromStepTimeout, deadline};
    pub use tracing;
}
