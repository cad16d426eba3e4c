//! The runtime of [flujo](https://docs.rs/flujo): what `#[pipeline_step]` expands to calls
//! into this crate. Depend on `flujo` rather than on this crate directly.
//!
//! The crate is layers that only look down (a test checks every `use crate::` line):
//!
//! | layer | what | imports |
//! |---|---|---|
//! | `core` | clock, ids, attributes, call sites, span record, span context (and its OpenTelemetry form), on/off state | nothing of flujo |
//! | `collect` | per-thread rings, export worker, flush, bridged events, observers and exporters | `core` |
//! | `metrics` | recorder, histograms, step metrics | `core`, `collect` |
//! | `run` | run scope, context handle, usage limits | `core` |
//! | `step` | the step call object and retry policy | `core`, `collect`, `run` |
//! | `cost` | usage, model calls, pricing, budgets, ledger, reports | `core`, `collect`, `metrics`, `run`, `step` |
//! | `config` | settings, `Secret`, `TelemetryError` | `core`, `cost` (error types) |
//! | `pipeline` | `Pipeline`, runner, hooks, quality | `core`, `metrics`, `run`, `step` |
//! | `sinks` | the application's OpenTelemetry exporters and processors, OTLP, Prometheus, Logfire | `core`, `collect`, `metrics`, `config` |
//! | `bridge` | `tracing` layer, stderr logs, `logfire` macros | `core`, `collect`, `run`, `config` |
//! | `runtime` | init, guard, lifecycle, `OpenTelemetryHook` | everything (the composition root) |
//! | `testing` | `Capture`, `StubModel` | anything |

#![warn(missing_docs)]
#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod bridge;
mod collect;
pub mod config;
mod core;
pub mod cost;
mod metrics;
pub mod pipeline;
mod run;
mod runtime;
mod sinks;
mod step;
pub mod testing;

pub use crate::config::error::TelemetryError;
pub use crate::config::settings::TelemetryConfig;
pub use crate::core::context::SpanContext;
pub use crate::cost::prices_version;
pub use crate::pipeline::runner::{Flujo, Pipeline};
pub use crate::run::handle::{ContextHandle, StepFutureExt};
pub use crate::run::limits::{UsageLimitExceeded, UsageLimits};
pub use crate::runtime::{TelemetryGuard, init_telemetry, init_telemetry_with};
pub use crate::step::timeout::StepTimeout;
pub use flujo_pricing::{TokenUsage, Usd};

/// The future wrappers that carry a span (and a run) across `.await` points, and the error of
/// a `traceparent` header.
pub mod context {
    pub use crate::core::context::{SpanContext, TraceparentError, WithSpan};
    pub use crate::core::propagation::Propagators;
    pub use crate::core::trace_state::{
        MAX_BAGGAGE_BYTES, MAX_TRACE_STATE_BYTES, MAX_TRACE_STATES,
    };
    pub use crate::run::handle::{ContextHandle, StepFutureExt, WithContext};
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
    pub use crate::collect::ring::allocated_ring_slots;
    pub use crate::core::record::Operation;
    pub use crate::core::site::StepRole;
    pub use crate::cost::model_call::{
        FromUsageLimitExceeded, ModelCall, ModelCallSite, ModelName, model_name,
    };
    pub use crate::cost::stream::{track_stream, track_stream_result};
    pub use crate::cost::usage::IntoTokenUsage;
    pub use crate::pipeline::quality::{FromValidationError, validate_attempt};
    pub use crate::pipeline::runner::{
        FutureStage, IntoStepSource, Pipeline, PipelineError, PipelineInfo, PlainStage, RunState,
        Stage, StageValue,
    };
    pub use crate::step::call::{Step, StepCall, StepError};
    pub use crate::step::retry::{
        Backoff, RetryArgument, RetryPolicy, retry_delay, sleep_between_attempts,
    };
    pub use crate::step::stream::{BoxedStream, step_stream, step_stream_result};
    pub use crate::step::timeout::{FromStepTimeout, deadline};
    pub use tracing;
}
