//! OTLP span export (feature `otlp`), through the official `opentelemetry-otlp` exporters.
//!
//! The export worker converts each batch of finished spans into `SpanData` and hands it to a
//! bounded queue; the `flujo-otlp` thread, which owns a small current-thread tokio runtime,
//! sends the batches over gRPC or HTTP/protobuf. Transient failures (gRPC UNAVAILABLE, HTTP
//! 429/502/503/504) are retried up to 3 times with exponential backoff and jitter
//! (100 ms .. 1.6 s, honouring a server's retry-after). A slow or
//! absent collector fills the queue, and further batches are dropped and counted: neither the
//! application nor the export worker ever waits on the network.

use std::borrow::Cow;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::thread;
use std::time::{Duration, Instant};

use opentelemetry::trace::{SpanContext, SpanKind, Status, TraceFlags, TraceState};
use opentelemetry::{InstrumentationScope, KeyValue, Value};
use opentelemetry_otlp::tonic_types::metadata::MetadataMap;
use opentelemetry_otlp::tonic_types::transport::{Certificate, ClientTlsConfig};
use opentelemetry_otlp::{
    Compression, Protocol, RetryPolicy, WithExportConfig, WithHttpConfig, WithTonicConfig,
};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::{SpanData, SpanEvents, SpanExporter as _, SpanLinks};

use crate::attribute::AttributeValue;
use crate::config::{OtlpProtocol, TelemetryError, TelemetrySettings};
use crate::export::SpanExporter;
use crate::span::{FinishedSpan, SpanStatus};

/// A one-worker tokio runtime for exporters that the OpenTelemetry SDK drives from plain
/// threads (its log and metric processors). It is never dropped in place: dropping a runtime
/// inside an application's async context would panic, so it shuts down in the background.
pub(crate) struct ExportRuntime(Option<tokio::runtime::Runtime>);

impl ExportRuntime {
    pub(crate) fn new(thread_name: &str) -> Result<ExportRuntime, String> {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name(thread_name)
            .enable_all()
            .build()
            .map(|runtime| ExportRuntime(Some(runtime)))
            .map_err(|error| error.to_string())
    }

    /// Runs `build` inside the runtime (exporter builders need its reactor).
    pub(crate) fn build<T>(&self, build: impl FnOnce() -> Result<T, String>) -> Result<T, String> {
        let _entered = self.0.as_ref().map(tokio::runtime::Runtime::enter);
        build()
    }

    pub(crate) fn handle(&self) -> Option<tokio::runtime::Handle> {
        self.0.as_ref().map(|runtime| runtime.handle().clone())
    }
}

impl Drop for ExportRuntime {
    fn drop(&mut self) {
        if let Some(runtime) = self.0.take() {
            runtime.shutdown_background();
        }
    }
}

impl std::fmt::Debug for ExportRuntime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ExportRuntime")
    }
}

/// Sends finished spans to an OTLP endpoint; see the module docs.
pub(crate) struct OtlpExporter {
    queue: Option<SyncSender<Vec<SpanData>>>,
    batch_size: usize,
    scope: InstrumentationScope,
    finished: Receiver<()>,
}

/// An OTLP signal, which decides the path of an HTTP endpoint.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Signal {
    Traces,
    Metrics,
    #[cfg_attr(not(feature = "logfire"), allow(dead_code))]
    Logs,
}

impl Signal {
    fn path(self) -> &'static str {
        match self {
            Signal::Traces => "/v1/traces",
            Signal::Metrics => "/v1/metrics",
            Signal::Logs => "/v1/logs",
        }
    }
}

fn endpoint(settings: &TelemetrySettings, signal: Signal) -> String {
    let base = settings
        .otlp_endpoint
        .clone()
        .unwrap_or_else(|| match settings.otlp_protocol {
            OtlpProtocol::Grpc => "http://localhost:4317".to_owned(),
            OtlpProtocol::HttpProtobuf => "http://localhost:4318".to_owned(),
        });
    match settings.otlp_protocol {
        OtlpProtocol::Grpc => base,
        // A base URL gets the signal's path, as the OTLP spec asks of
        // OTEL_EXPORTER_OTLP_ENDPOINT.
        OtlpProtocol::HttpProtobuf => match base.parse::<http::Uri>() {
            Ok(uri) if matches!(uri.path(), "" | "/") => {
                format!("{}{}", base.trim_end_matches('/'), signal.path())
            }
            _ => base,
        },
    }
}

pub(crate) fn resource(settings: &TelemetrySettings) -> Resource {
    let mut attributes = vec![KeyValue::new(
        "deployment.environment.name",
        settings.environment.clone(),
    )];
    if let Some(version) = &settings.version {
        attributes.push(KeyValue::new("service.version", version.clone()));
    }
    Resource::builder()
        .with_service_name(settings.service_name.clone())
        .with_attributes(attributes)
        .build()
}

/// The configured headers, checked: a header the transport cannot carry is an error, not a
/// silently missing authorization.
fn header_map(settings: &TelemetrySettings) -> Result<http::HeaderMap, String> {
    let mut headers = http::HeaderMap::new();
    for (key, value) in &settings.otlp_headers {
        let name = http::HeaderName::from_bytes(key.as_bytes())
            .map_err(|_| format!("OTLP header name `{key}` is not a valid HTTP header name"))?;
        let value = http::HeaderValue::from_str(value.expose()).map_err(|_| {
            format!("the value of OTLP header `{key}` is not a valid HTTP header value")
        })?;
        headers.insert(name, value);
    }
    Ok(headers)
}

/// The extra CA certificates of `otlp_certificate`, read once: a missing or unreadable file
/// is an error naming it.
fn ca_pem(settings: &TelemetrySettings) -> Result<Option<Vec<u8>>, String> {
    settings
        .otlp_certificate
        .as_ref()
        .map(|path| {
            std::fs::read(path).map_err(|error| {
                format!(
                    "cannot read the OTLP CA certificate file {}: {error}",
                    path.display()
                )
            })
        })
        .transpose()
}

/// The transport settings every OTLP exporter shares (endpoint, headers, TLS, timeout,
/// compression, retries), checked once and applied to any signal's exporter builder.
pub(crate) struct Transport {
    endpoint: String,
    headers: http::HeaderMap,
    ca_pem: Option<Vec<u8>>,
    timeout: Duration,
    gzip: bool,
}

impl Transport {
    pub(crate) fn new(settings: &TelemetrySettings, signal: Signal) -> Result<Transport, String> {
        Ok(Transport {
            endpoint: endpoint(settings, signal),
            headers: header_map(settings)?,
            ca_pem: ca_pem(settings)?,
            timeout: settings.otlp_timeout,
            gzip: settings.otlp_gzip,
        })
    }

    /// Configures a gRPC exporter builder.
    pub(crate) fn grpc<B: WithExportConfig + WithTonicConfig>(&self, builder: B) -> B {
        let mut builder = builder
            .with_endpoint(self.endpoint.clone())
            .with_timeout(self.timeout)
            .with_protocol(Protocol::Grpc)
            .with_metadata(MetadataMap::from_headers(self.headers.clone()))
            .with_retry_policy(RetryPolicy::recommended());
        if self.endpoint.starts_with("https://") {
            // OTLP/gRPC is HTTP/2 by definition: also talk to TLS terminators (load
            // balancers, proxies) that do not negotiate it through ALPN.
            let mut tls = ClientTlsConfig::new()
                .with_enabled_roots()
                .assume_http2(true);
            if let Some(pem) = &self.ca_pem {
                tls = tls.ca_certificate(Certificate::from_pem(pem));
            }
            builder = builder.with_tls_config(tls);
        }
        if self.gzip {
            builder = builder.with_compression(Compression::Gzip);
        }
        builder
    }

    /// Configures an HTTP/protobuf exporter builder.
    pub(crate) fn http<B: WithExportConfig + WithHttpConfig>(
        &self,
        builder: B,
    ) -> Result<B, String> {
        let mut client = reqwest::Client::builder().timeout(self.timeout);
        if let Some(pem) = &self.ca_pem {
            let certificates = reqwest::Certificate::from_pem_bundle(pem).map_err(|error| {
                format!("the OTLP CA certificate file holds no valid PEM certificate: {error}")
            })?;
            client = client.tls_certs_merge(certificates);
        }
        let client = client
            .build()
            .map_err(|error| format!("cannot build the OTLP HTTP client: {error}"))?;
        let headers = self
            .headers
            .iter()
            .filter_map(|(key, value)| Some((key.to_string(), value.to_str().ok()?.to_owned())))
            .collect();
        let mut builder = builder
            .with_http_client(client)
            .with_endpoint(self.endpoint.clone())
            .with_timeout(self.timeout)
            .with_protocol(Protocol::HttpBinary)
            .with_headers(headers)
            .with_retry_policy(RetryPolicy::recommended());
        if self.gzip {
            builder = builder.with_compression(Compression::Gzip);
        }
        Ok(builder)
    }
}

fn build_exporter(
    settings: &TelemetrySettings,
) -> Result<opentelemetry_otlp::SpanExporter, String> {
    let transport = Transport::new(settings, Signal::Traces)?;
    let builder = opentelemetry_otlp::SpanExporter::builder();
    match settings.otlp_protocol {
        OtlpProtocol::Grpc => transport.grpc(builder.with_tonic()).build(),
        OtlpProtocol::HttpProtobuf => transport.http(builder.with_http())?.build(),
    }
    .map_err(|error| error.to_string())
}

impl OtlpExporter {
    /// Starts the `flujo-otlp` thread, which builds the exporter and reports back. The tokio
    /// runtime lives and dies on that thread, so starting and stopping are safe from inside
    /// an application's own async runtime.
    pub(crate) fn start(settings: &TelemetrySettings) -> Result<OtlpExporter, TelemetryError> {
        let start_error = |reason: String| TelemetryError::ExporterStart {
            exporter: "OTLP",
            reason,
        };
        let batch_size = settings.max_export_batch_size;
        let queued_batches = settings.max_queue_size.div_ceil(batch_size).max(1);
        let (queue, batches) = mpsc::sync_channel(queued_batches);
        let (finished_tx, finished) = mpsc::channel();
        let (built_tx, built) = mpsc::channel();
        let thread_settings = settings.clone();
        thread::Builder::new()
            .name("flujo-otlp".to_owned())
            .spawn(move || {
                let runtime = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(runtime) => runtime,
                    Err(error) => {
                        let _ = built_tx.send(Err(error.to_string()));
                        return;
                    }
                };
                // tonic's lazy channel needs the runtime's reactor while it is built.
                let exporter = {
                    let _runtime = runtime.enter();
                    build_exporter(&thread_settings)
                };
                let mut exporter = match exporter {
                    Ok(exporter) => exporter,
                    Err(error) => {
                        let _ = built_tx.send(Err(error));
                        return;
                    }
                };
                exporter.set_resource(&resource(&thread_settings));
                let _ = built_tx.send(Ok(()));
                send_batches(&runtime, &mut exporter, &batches);
                let _ = exporter.shutdown();
                let _ = finished_tx.send(());
            })
            .map_err(|error| start_error(error.to_string()))?;
        built
            .recv()
            .map_err(|_| start_error("the export thread stopped while starting".to_owned()))?
            .map_err(start_error)?;
        Ok(OtlpExporter {
            queue: Some(queue),
            batch_size,
            scope: InstrumentationScope::builder("flujo")
                .with_version(env!("CARGO_PKG_VERSION"))
                .build(),
            finished,
        })
    }
}

fn send_batches(
    runtime: &tokio::runtime::Runtime,
    exporter: &mut opentelemetry_otlp::SpanExporter,
    batches: &Receiver<Vec<SpanData>>,
) {
    let mut failing = false;
    while let Ok(batch) = batches.recv() {
        let spans = batch.len() as u64;
        match runtime.block_on(exporter.export(batch)) {
            Ok(()) => {
                metrics::counter!("flujo_telemetry_spans_exported_total").increment(spans);
                if failing {
                    tracing::info!(target: "flujo", "OTLP export recovered");
                    failing = false;
                }
            }
            Err(error) => {
                metrics::counter!("flujo_telemetry_export_errors_total").increment(1);
                metrics::counter!("flujo_telemetry_spans_dropped_total", "reason" => "export_failed")
                    .increment(spans);
                // One line per outage, not one per batch.
                if !failing {
                    tracing::warn!(target: "flujo", %error, "OTLP export failed; spans are dropped and counted until it recovers");
                    failing = true;
                }
            }
        }
    }
}

impl SpanExporter for OtlpExporter {
    fn export(&mut self, spans: &[FinishedSpan]) {
        let Some(queue) = &self.queue else {
            return;
        };
        for chunk in spans.chunks(self.batch_size) {
            let batch: Vec<SpanData> = chunk
                .iter()
                .map(|span| span_data(span, &self.scope))
                .collect();
            if let Err(TrySendError::Full(batch) | TrySendError::Disconnected(batch)) =
                queue.try_send(batch)
            {
                metrics::counter!("flujo_telemetry_spans_dropped_total", "reason" => "export_queue_full")
                    .increment(batch.len() as u64);
            }
        }
    }

    fn shutdown(&mut self, timeout: Duration) {
        // Closing the queue lets the thread send what is queued, then stop.
        drop(self.queue.take());
        let deadline = Instant::now() + timeout;
        if let Err(RecvTimeoutError::Timeout) = self
            .finished
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
        {
            tracing::warn!(
                target: "flujo",
                timeout_ms = timeout.as_millis() as u64,
                "OTLP export did not finish before the shutdown timeout; the rest is dropped"
            );
        }
    }
}

fn span_data(span: &FinishedSpan, scope: &InstrumentationScope) -> SpanData {
    SpanData {
        span_context: SpanContext::new(
            span.trace_id.0.into(),
            span.span_id.0.into(),
            TraceFlags::SAMPLED,
            false,
            TraceState::default(),
        ),
        parent_span_id: span.parent_span_id.map_or(0, |id| id.0).into(),
        parent_span_is_remote: false,
        span_kind: SpanKind::Internal,
        name: span.name.clone(),
        start_time: span.start_time(),
        end_time: span.end_time(),
        attributes: span
            .attributes()
            .map(|(key, value)| KeyValue::new(key.to_owned(), otel_value(value)))
            .collect(),
        dropped_attributes_count: 0,
        events: span_events(span),
        links: SpanLinks::default(),
        status: match &span.status {
            SpanStatus::Unset => Status::Unset,
            SpanStatus::Ok => Status::Ok,
            SpanStatus::Error { message } => Status::error(message.clone()),
        },
        instrumentation_scope: scope.clone(),
    }
}

fn span_events(span: &FinishedSpan) -> SpanEvents {
    let mut events = SpanEvents::default();
    events.events = span
        .events()
        .iter()
        .map(|event| {
            let attributes = event
                .attributes
                .iter()
                .map(|(key, value)| KeyValue::new(key.clone(), otel_value(value.clone())))
                .collect();
            opentelemetry::trace::Event::new(event.name.clone(), event.time(), attributes, 0)
        })
        .collect();
    events
}

fn otel_value(value: AttributeValue) -> Value {
    match value {
        AttributeValue::Bool(b) => Value::Bool(b),
        AttributeValue::Int(i) => Value::I64(i),
        AttributeValue::Float(f) => Value::F64(f),
        AttributeValue::String(Cow::Borrowed(s)) => Value::from(s),
        AttributeValue::String(Cow::Owned(s)) => Value::from(s),
    }
}
