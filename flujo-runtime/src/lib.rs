//! The runtime of [flujo](https://docs.rs/flujo): what `#[pipeline_step]` expands to calls
//! into this crate. Depend on `flujo` rather than on this crate directly.

#![warn(missing_docs)]

mod attribute;
mod bridge;
mod budget;
mod clock;
mod config;
mod context;
mod cost;
mod export;
mod hooks;
mod ledger;
#[cfg(feature = "sqlite")]
mod ledger_sqlite;
mod log;
pub mod logfire;
#[cfg(feature = "logfire")]
mod logfire_export;
mod metrics;
#[cfg(feature = "async-openai")]
mod openai_usage;
#[cfg(feature = "otlp")]
mod otlp;
#[cfg(feature = "otlp")]
mod otlp_metrics;
mod pipeline;
mod pricing;
#[cfg(feature = "prometheus")]
mod prometheus;
pub mod quality;
mod report;
mod run;
mod span;
mod step;
mod telemetry;
pub mod testing;

pub use attribute::{AttributeValue, ToAttributeValue};
pub use bridge::{TracingBridge, tracing_layer};
pub use budget::{Limit, UsageLimitExceeded, UsageLimits};
pub use config::{
    LogFormat, OtlpProtocol, Secret, TelemetryConfig, TelemetryError, TelemetrySettings,
};
pub use context::{ContextHandle, SpanContext, StepFutureExt, WithContext};
pub use cost::{Operation, ReportsUsage};
pub use export::SpanExporter;
pub use flujo_pricing::{
    Date, ModelPrice, PerMillionTokens, PriceTable, PricingError, Rates, TokenUsage, Usd,
};
pub use hooks::{Hook, OpenTelemetryHook, RunInfo};
pub use ledger::{CostRecord, recent_cost_records};
pub use pipeline::{
    Flujo, Pipeline, PipelineError, PipelineInfo, PipelineResult, RunOptions, StepResult,
};
pub use pricing::set_model_price;
#[cfg(feature = "prometheus")]
pub use prometheus::{PrometheusServer, start_prometheus_server, start_prometheus_server_on};
pub use quality::ValidationError;
#[cfg(feature = "sqlite")]
pub use report::CostLedger;
pub use report::{
    CostError, CostGroup, CostReport, GroupBy, ReportDate, get_cost_report, utc_today,
};
pub use span::{FinishedSpan, SpanEvent, SpanId, SpanStatus, TraceId};
pub use telemetry::{TelemetryGuard, init_telemetry, init_telemetry_with};

/// Spans dropped because a thread's span queue was full (the export worker fell behind),
/// since the process started. Also exported as `flujo_telemetry_spans_dropped_total`.
pub fn dropped_spans() -> u64 {
    export::dropped_spans()
}

/// What generated code calls. Not a public API: it changes without notice.
#[doc(hidden)]
pub mod __private {
    pub use crate::cost::{
        FromUsageLimitExceeded, IntoTokenUsage, ModelCall, ModelCallSite, ModelName, Operation,
        model_name,
    };
    pub use crate::pipeline::{IntoStepSource, RunState, Stage};
    pub use crate::quality::FromValidationError;
    pub use crate::step::{
        Backoff, RetryArgument, RetryPolicy, Step, StepCall, StepError, retry_delay,
    };
    pub use tracing;
}
