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
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::thread;
use std::time::{Duration, Instant};

use opentelemetry::trace::{SpanContext, SpanKind, Status, TraceFlags, TraceState};
use opentelemetry::{InstrumentationScope, KeyValue, Value};
use opentelemetry_sdk::trace::{SpanData, SpanEvents, SpanExporter as _, SpanLinks};

use super::transport::{Signal, Transport, protocol_hint, resource};
use crate::collect::finished::{FinishedSpan, SpanStatus};
use crate::collect::sink::SpanExporter;
use crate::config::error::TelemetryError;
use crate::config::settings::{OtlpProtocol, TelemetrySettings};
use crate::core::attribute::AttributeValue;

/// Sends finished spans to an OTLP endpoint; see the module docs.
pub(crate) struct OtlpExporter {
    queue: Option<SyncSender<Vec<SpanData>>>,
    batch_size: usize,
    scope: InstrumentationScope,
    finished: Receiver<()>,
    /// Spans handed to the sending thread and not yet exported or counted as failed: what a
    /// shutdown that times out loses, and counts.
    pending: Arc<AtomicU64>,
    /// Spans lost at shutdown.
    lost: u64,
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
        if let Some(hint) = protocol_hint(settings) {
            tracing::warn!(target: "flujo", "{hint}");
        }
        let start_error = |reason: String| TelemetryError::ExporterStart {
            exporter: "OTLP",
            reason,
        };
        let batch_size = settings.max_export_batch_size;
        let queued_batches = settings.max_queue_size.div_ceil(batch_size).max(1);
        let (queue, batches) = mpsc::sync_channel(queued_batches);
        let (finished_tx, finished) = mpsc::channel();
        let pending = Arc::new(AtomicU64::new(0));
        let sending = Arc::clone(&pending);
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
                let hint = protocol_hint(&thread_settings);
                let stall_after = thread_settings.otlp_timeout;
                send_batches(
                    &runtime,
                    &mut exporter,
                    &batches,
                    hint.as_deref(),
                    &sending,
                    stall_after,
                );
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
            pending,
            lost: 0,
        })
    }
}

fn send_batches(
    runtime: &tokio::runtime::Runtime,
    exporter: &mut opentelemetry_otlp::SpanExporter,
    batches: &Receiver<Vec<SpanData>>,
    hint: Option<&str>,
    pending: &AtomicU64,
    stall_after: Duration,
) {
    let mut failing = false;
    let mut stalled = false;
    while let Ok(batch) = batches.recv() {
        let spans = batch.len() as u64;
        // A collector that stops answering (a stalled process) makes one export take as long
        // as its retries: said once, when it has not answered for `stall_after`.
        let (result, stalled_now) = runtime.block_on(async {
            let mut export = std::pin::pin!(exporter.export(batch));
            match tokio::time::timeout(stall_after, &mut export).await {
                Ok(result) => (result, false),
                Err(_) => {
                    if !stalled {
                        metrics::counter!("flujo_telemetry_export_stalls_total").increment(1);
                        tracing::warn!(
                            target: "flujo",
                            waited_ms = u64::try_from(stall_after.as_millis()).unwrap_or(u64::MAX),
                            "the OTLP collector is not answering; spans wait in the export queue \
                             (dropped and counted when it is full) until it does"
                        );
                    }
                    (export.await, true)
                }
            }
        });
        stalled |= stalled_now;
        // Settled either way (exported or counted as failed), unless shutdown took it already.
        let _ = pending.fetch_update(Ordering::AcqRel, Ordering::Acquire, |p| {
            Some(p.saturating_sub(spans))
        });
        match result {
            Ok(()) => {
                metrics::counter!("flujo_telemetry_spans_exported_total").increment(spans);
                if (failing || stalled) && !stalled_now {
                    tracing::info!(target: "flujo", "OTLP export recovered");
                    failing = false;
                    stalled = false;
                }
            }
            Err(error) => {
                metrics::counter!("flujo_telemetry_export_errors_total").increment(1);
                metrics::counter!("flujo_telemetry_spans_dropped_total", "reason" => "export_failed")
                    .increment(spans);
                // One line per outage, not one per batch.
                if !failing {
                    tracing::warn!(target: "flujo", %error, hint, "OTLP export failed; spans are dropped and counted until it recovers");
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
            let spans = batch.len() as u64;
            // Counted before the handover: the sending thread may finish with it at once.
            self.pending.fetch_add(spans, Ordering::AcqRel);
            if let Err(TrySendError::Full(batch) | TrySendError::Disconnected(batch)) =
                queue.try_send(batch)
            {
                self.pending.fetch_sub(spans, Ordering::AcqRel);
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
            // Whatever the sending thread still holds (queued, or in a request that has not
            // come back) is lost: counted, and said in the guard's WARN line.
            self.lost = self.pending.swap(0, Ordering::AcqRel);
            metrics::counter!("flujo_telemetry_spans_dropped_total", "reason" => "shutdown")
                .increment(self.lost);
        }
    }

    fn undelivered(&self) -> u64 {
        self.lost
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
