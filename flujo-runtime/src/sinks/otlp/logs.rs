//! OTLP log export (feature `otlp`; `OTEL_LOGS_EXPORTER=otlp`, and Logfire): flujo's log
//! lines, through the official bridge from `tracing` events to OpenTelemetry logs
//! (`opentelemetry-appender-tracing`) and the SDK's batch log processor, whose exporter
//! sends on a small runtime of flujo's own.

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

use super::transport::{ExportRuntime, Transport};
use crate::config::error::TelemetryError;
use crate::config::settings::{OtlpProtocol, OtlpSignal, ResourceSettings};
use crate::core::context::SpanContext;

/// The `tracing` layer that turns events into OTLP log records, linked to the flujo span they
/// were emitted in.
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

/// A log pipeline (to an OTLP collector, or to Logfire); shut it down to send what is
/// buffered.
#[derive(Debug)]
pub(crate) struct OtlpLogs {
    /// What flujo's log lines call it ("OTLP", "Logfire").
    name: &'static str,
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

impl OtlpLogs {
    /// Starts sending log records to the endpoint of `signal` (`name`: what flujo's log
    /// lines call it).
    pub(crate) fn start(
        name: &'static str,
        signal: &OtlpSignal,
        service: &ResourceSettings,
    ) -> Result<(OtlpLogs, LogBridge), TelemetryError> {
        let start_error = |reason: String| TelemetryError::ExporterStart {
            exporter: name,
            reason,
        };
        let runtime = ExportRuntime::new("flujo-otlp-logs").map_err(start_error)?;
        let exporter = runtime
            .build(|| {
                let transport = Transport::new(signal)?;
                let builder = opentelemetry_otlp::LogExporter::builder();
                match signal.protocol {
                    OtlpProtocol::Grpc => transport.grpc(builder.with_tonic()).build(),
                    OtlpProtocol::HttpProtobuf => transport.http(builder.with_http())?.build(),
                }
                .map_err(|error| error.to_string())
            })
            .map_err(start_error)?;
        let handle = runtime
            .handle()
            .ok_or_else(|| start_error("the export runtime stopped".to_owned()))?;
        let provider = SdkLoggerProvider::builder()
            .with_resource(crate::sinks::otel::convert::resource(service))
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
            OtlpLogs {
                name,
                provider,
                _runtime: runtime,
            },
            bridge,
        ))
    }

    /// Sends the buffered log records, waiting at most `timeout`.
    pub(crate) fn shutdown(&mut self, timeout: Duration) {
        if let Err(error) = self.provider.shutdown_with_timeout(timeout) {
            tracing::warn!(target: "flujo", %error, "{} log export did not finish on shutdown", self.name);
        }
    }
}
