//! The runtime of [flujo](https://docs.rs/flujo): what `#[pipeline_step]` expands to calls
//! into this crate. Depend on `flujo` rather than on this crate directly.

#![warn(missing_docs)]

mod attribute;
mod clock;
mod config;
mod context;
mod export;
mod log;
pub mod logfire;
#[cfg(feature = "logfire")]
mod logfire_export;
mod metrics;
#[cfg(feature = "otlp")]
mod otlp;
#[cfg(feature = "otlp")]
mod otlp_metrics;
#[cfg(feature = "prometheus")]
mod prometheus;
mod span;
mod step;
mod telemetry;
pub mod testing;

pub use attribute::{AttributeValue, ToAttributeValue};
pub use config::{
    LogFormat, OtlpProtocol, Secret, TelemetryConfig, TelemetryError, TelemetrySettings,
};
pub use context::{SpanContext, StepFutureExt, WithContext};
pub use export::SpanExporter;
#[cfg(feature = "prometheus")]
pub use prometheus::{PrometheusServer, start_prometheus_server, start_prometheus_server_on};
pub use span::{FinishedSpan, SpanId, SpanStatus, TraceId};
pub use telemetry::{TelemetryGuard, init_telemetry, init_telemetry_with};

/// Spans dropped because a thread's span queue was full (the export worker fell behind),
/// since the process started. Also exported as `flujo_telemetry_spans_dropped_total`.
pub fn dropped_spans() -> u64 {
    export::dropped_spans()
}

/// What generated code calls. Not a public API: it changes without notice.
#[doc(hidden)]
pub mod __private {
    pub use crate::step::{
        Backoff, RetryArgument, RetryPolicy, Step, StepCall, StepError, retry_delay,
    };
    pub use tracing;
}
