//! Sinks: the application's OpenTelemetry SDK exporters and processors, OTLP (traces,
//! metrics, the shared transport), Prometheus, Logfire. They see spans
//! as `FinishedSpan`s and metrics through the recorder: never a cost or pipeline type.

#[cfg(feature = "logfire")]
pub(crate) mod logfire;
#[cfg(feature = "opentelemetry")]
pub(crate) mod otel;
#[cfg(feature = "otlp")]
pub(crate) mod otlp;
#[cfg(feature = "prometheus")]
pub(crate) mod prometheus;
