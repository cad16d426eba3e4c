//! Logfire export (feature `logfire`): spans and logs over OTLP/HTTP to Logfire, with the
//! write token in the `authorization` header.
//!
//! Spans use the OTLP exporter of `sinks::otlp`, pointed at `{base}/v1/traces`. Logs go
//! through the official bridge from `tracing` events to OpenTelemetry logs
//! (`opentelemetry-appender-tracing`) and the SDK's batch log processor, whose exporter sends
//! to `{base}/v1/logs` on a small runtime of flujo's own.

use std::time::Duration;

use opentelemetry_appender_tracing::layer::OpenTelemetryTracingBridge;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::logs::{
    BatchLogProcessor, LogBatch, LogExporter, SdkLogger, SdkLoggerProvider,
};

use opentelemetry::trace::{
    SpanContext as OtelSpanContext, TraceContextExt, TraceFlags, TraceState,
};
use tracing_subscriber::layer::{self, Layer};
use tracing_subscriber::registry::LookupSpan;

use super::otlp::transport::{ExportRuntime, Signal, Transport};
use crate::config::error::TelemetryError;
use crate::config::secret::Secret;
use crate::config::settings::{OtlpProtocol, TelemetrySettings};
use crate::core::context::SpanContext;

/// Logfire's regional endpoints, chosen from the token (`pylf_v1_<region>_...`).
fn base_url(settings: &TelemetrySettings, token: &Secret) -> String {
    if let Some(url) = &settings.logfire_base_url {
        return url.trim_end_matches('/').to_owned();
    }
    let region = token.expose().split('_').nth(2).unwrap_or("us");
    match region {
        "eu" => "https://logfire-eu.pydantic.dev",
        _ => "https://logfire-us.pydantic.dev",
    }
    .to_owned()
}

/// The OTLP settings of the exporters that send to Logfire.
pub(crate) fn otlp_settings(settings: &TelemetrySettings, token: &Secret) -> TelemetrySettings {
    let mut logfire = settings.clone();
    logfire.otlp_protocol = OtlpProtocol::HttpProtobuf;
    logfire.otlp_endpoint = Some(base_url(settings, token));
    // Logfire's endpoint for every signal, whatever OTEL_EXPORTER_OTLP_*_ENDPOINT say.
    logfire.otlp_traces_endpoint = None;
    logfire.otlp_metrics_endpoint = None;
    logfire.otlp_headers = vec![("authorization".to_owned(), token.clone())];
    logfire.otlp_gzip = false;
    logfire
}

/// The `tracing` layer that turns events into Logfire log records, linked to the flujo span
/// they were emitted in.
pub(crate) struct LogBridge(OpenTelemetryTracingBridge<SdkLoggerProvider, SdkLogger>);

impl<S> Layer<S> for LogBridge
where
    S: tracing::Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_event(&self, event: &tracing::Event<'_>, ctx: layer::Context<'_, S>) {
        // The SDK logger takes the trace context of a record from OpenTelemetry's current
        // context: make the current flujo span that context while the event is emitted.
        let flujo = SpanContext::current();
        let _attached = flujo
            .trace_id()
            .zip(flujo.span_id())
            .map(|(trace_id, span_id)| {
                let flags = if flujo.is_sampled() {
                    TraceFlags::SAMPLED
                } else {
                    TraceFlags::default()
                };
                opentelemetry::Context::current()
                    .with_remote_span_context(OtelSpanContext::new(
                        trace_id.0.into(),
                        span_id.0.into(),
                        flags,
                        true,
                        TraceState::default(),
                    ))
                    .attach()
            });
        self.0.on_event(event, ctx);
    }
}

/// Logfire's log pipeline; shut it down to send what is buffered.
#[derive(Debug)]
pub(crate) struct LogfireLogs {
    provider: SdkLoggerProvider,
    /// Declared after the provider: it must outlive the provider's last export.
    _runtime: ExportRuntime,
}

/// Runs the OTLP log exporter on flujo's runtime: the SDK's batch processor calls it from a
/// plain thread, while the HTTP client needs a tokio reactor.
#[derive(Debug)]
struct OnRuntime {
    handle: tokio::runtime::Handle,
    inner: opentelemetry_otlp::LogExporter,
}

impl LogExporter for OnRuntime {
    fn export(&self, batch: LogBatch<'_>) -> impl Future<Output = OTelSdkResult> + Send {
        std::future::ready(self.handle.block_on(self.inner.export(batch)))
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.inner.shutdown_with_timeout(timeout)
    }

    fn set_resource(&mut self, resource: &opentelemetry_sdk::Resource) {
        self.inner.set_resource(resource);
    }
}

impl LogfireLogs {
    pub(crate) fn start(
        settings: &TelemetrySettings,
        token: &Secret,
    ) -> Result<(LogfireLogs, LogBridge), TelemetryError> {
        let start_error = |reason: String| TelemetryError::ExporterStart {
            exporter: "Logfire",
            reason,
        };
        let runtime = ExportRuntime::new("flujo-logfire").map_err(start_error)?;
        let logfire = otlp_settings(settings, token);
        let exporter = runtime
            .build(|| {
                Transport::new(&logfire, Signal::Logs)?
                    .http(opentelemetry_otlp::LogExporter::builder().with_http())?
                    .build()
                    .map_err(|error| error.to_string())
            })
            .map_err(start_error)?;
        let handle = runtime
            .handle()
            .ok_or_else(|| start_error("the export runtime stopped".to_owned()))?;
        let provider = SdkLoggerProvider::builder()
            .with_resource(crate::sinks::otel::convert::resource(settings))
            .with_log_processor(
                BatchLogProcessor::builder(OnRuntime {
                    handle,
                    inner: exporter,
                })
                .build(),
            )
            .build();
        let bridge = LogBridge(OpenTelemetryTracingBridge::new(&provider));
        Ok((
            LogfireLogs {
                provider,
                _runtime: runtime,
            },
            bridge,
        ))
    }

    /// Sends the buffered log records, waiting at most `timeout`.
    pub(crate) fn shutdown(&mut self, timeout: Duration) {
        if let Err(error) = self.provider.shutdown_with_timeout(timeout) {
            tracing::warn!(target: "flujo", %error, "Logfire log export did not finish on shutdown");
        }
    }
}
