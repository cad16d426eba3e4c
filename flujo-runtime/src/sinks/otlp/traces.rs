//! OTLP span export (feature `otlp`), through the official `opentelemetry-otlp` exporters.
//!
//! The export worker hands each batch of finished spans to a queue bounded in spans and in
//! bytes; the `flujo-otlp` thread, which owns a small current-thread tokio runtime, converts
//! and sends the batches over gRPC or HTTP/protobuf. Transient failures (gRPC UNAVAILABLE,
//! HTTP 429/502/503/504) are retried by the SDK within `otlp_timeout` (100 ms .. 1.6 s with
//! jitter, honouring a server's retry-after). An attempt that the collector did not answer
//! within `otlp_timeout` is transient too: it is sent again, twice at most. A slow or absent
//! collector fills the queue, and further batches are dropped and counted: neither the
//! application nor the export worker ever waits on the network.
//!
//! A request carries at most `max_export_batch_size` spans and about
//! [`MAX_EXPORT_REQUEST_BYTES`]; a span over [`MAX_EXPORTED_SPAN_BYTES`] is cut to fit (or,
//! when it cannot be, dropped alone), so one huge span never takes its batch down.
//!
//! Every span handed to this exporter ends in exactly one counter: exported, unconfirmed
//! (sent, and the collector never answered: it may have kept them), or dropped with the
//! reason `export_failed`, `export_queue_full`, `too_large` or `shutdown`.

use std::borrow::Cow;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::thread;
use std::time::{Duration, Instant};

use opentelemetry::trace::{SpanContext, SpanKind, Status, TraceFlags, TraceState};
use opentelemetry::{Array, InstrumentationScope, Key, KeyValue, StringValue, Value};
use opentelemetry_sdk::trace::{SpanData, SpanEvents, SpanExporter as _, SpanLinks};

use super::transport::{Signal, TimeoutWitness, Transport, protocol_hint, resource};
use crate::collect::finished::{
    AttributeKey, Cut, FinishedSpan, SpanKind as FlujoSpanKind, SpanStatus,
};
use crate::collect::sink::SpanExporter;
use crate::config::error::TelemetryError;
use crate::config::settings::{
    MAX_EXPORT_QUEUE_BYTES, MAX_EXPORT_REQUEST_BYTES, MAX_EXPORTED_SPAN_BYTES, OtlpProtocol,
    TelemetrySettings,
};
use crate::core::attribute::AttributeValue;

/// How many times more a batch is sent after an attempt the collector did not answer.
const TIMED_OUT_RESENDS: u32 = 2;
/// The wait before the first resend of a timed-out batch; doubled for the next.
const RESEND_WAIT: Duration = Duration::from_millis(250);

/// A batch on its way to the sending thread, with its size as the queue counted it.
struct Batch {
    spans: Vec<FinishedSpan>,
    bytes: usize,
}

/// What the exporter and its sending thread share.
struct Shared {
    /// Spans handed to the sending thread and not yet settled (exported or counted): what a
    /// shutdown that times out loses, and counts.
    pending: AtomicU64,
    /// Bytes of the batches queued or being sent.
    queued_bytes: AtomicUsize,
    /// Set when shutdown gave up on what is pending: the sending thread stops resending.
    abandoned: AtomicBool,
}

impl Shared {
    /// Takes `spans` off the pending count, returning how many were still pending (none
    /// after a shutdown counted them as lost: each span lands in one counter).
    fn settle(&self, spans: u64) -> u64 {
        let before = self
            .pending
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |p| {
                Some(p.saturating_sub(spans))
            })
            .unwrap_or(0);
        before.min(spans)
    }
}

/// Sends finished spans to an OTLP endpoint; see the module docs.
pub(crate) struct OtlpExporter {
    /// Unbounded as a channel (it allocates as batches arrive, not `max_queue_size` slots up
    /// front); bounded by `max_queue_size` pending spans and [`MAX_EXPORT_QUEUE_BYTES`].
    queue: Option<Sender<Batch>>,
    max_queue_size: u64,
    batch_size: usize,
    finished: Receiver<()>,
    shared: Arc<Shared>,
    /// Spans lost at shutdown.
    lost: u64,
}

fn build_exporter(
    settings: &TelemetrySettings,
) -> Result<(opentelemetry_otlp::SpanExporter, TimeoutWitness), String> {
    let transport = Transport::new(settings, Signal::Traces)?;
    let builder = opentelemetry_otlp::SpanExporter::builder();
    let exporter = match settings.otlp_protocol {
        OtlpProtocol::Grpc => transport.grpc(builder.with_tonic()).build(),
        OtlpProtocol::HttpProtobuf => transport.http(builder.with_http())?.build(),
    }
    .map_err(|error| error.to_string())?;
    Ok((exporter, transport.witness()))
}

impl OtlpExporter {
    /// Hands `spans` (`bytes` of them) to the sending thread, or drops and counts them when
    /// the queue is full.
    fn enqueue(&mut self, spans: Vec<FinishedSpan>, bytes: usize) {
        let Some(queue) = &self.queue else {
            return;
        };
        let count = spans.len() as u64;
        let queued = self.shared.queued_bytes.fetch_add(bytes, Ordering::AcqRel);
        // Counted before the handover: the sending thread may finish with it at once.
        let pending = self.shared.pending.fetch_add(count, Ordering::AcqRel);
        let refused = queued.saturating_add(bytes) > MAX_EXPORT_QUEUE_BYTES
            || pending + count > self.max_queue_size
            || queue.send(Batch { spans, bytes }).is_err();
        if refused {
            self.shared.queued_bytes.fetch_sub(bytes, Ordering::AcqRel);
            self.shared.pending.fetch_sub(count, Ordering::AcqRel);
            metrics::counter!("flujo_telemetry_spans_dropped_total", "reason" => "export_queue_full")
                .increment(count);
        }
    }

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
        let (queue, batches) = mpsc::channel();
        let (finished_tx, finished) = mpsc::channel();
        let shared = Arc::new(Shared {
            pending: AtomicU64::new(0),
            queued_bytes: AtomicUsize::new(0),
            abandoned: AtomicBool::new(false),
        });
        let sending = Arc::clone(&shared);
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
                let (mut exporter, witness) = match exporter {
                    Ok(built) => built,
                    Err(error) => {
                        let _ = built_tx.send(Err(error));
                        return;
                    }
                };
                exporter.set_resource(&resource(&thread_settings));
                let _ = built_tx.send(Ok(()));
                let mut sender = BatchSender {
                    runtime: &runtime,
                    exporter: &mut exporter,
                    scope: InstrumentationScope::builder("flujo")
                        .with_version(env!("CARGO_PKG_VERSION"))
                        .build(),
                    hint: protocol_hint(&thread_settings),
                    timeout: thread_settings.otlp_timeout,
                    witness,
                    shared: &sending,
                    failing: false,
                    stalled: false,
                };
                while let Ok(batch) = batches.recv() {
                    sender.send(batch);
                }
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
            max_queue_size: settings.max_queue_size as u64,
            batch_size,
            finished,
            shared,
            lost: 0,
        })
    }
}

/// How one batch ended.
enum Delivery {
    Exported,
    /// The collector never answered one of the attempts: it may have kept the spans.
    Unconfirmed,
    /// Refused, or never reached the collector.
    Failed(String),
}

/// The sending thread's state: the exporter and what has been said about the collector.
struct BatchSender<'a> {
    runtime: &'a tokio::runtime::Runtime,
    exporter: &'a mut opentelemetry_otlp::SpanExporter,
    scope: InstrumentationScope,
    hint: Option<String>,
    timeout: Duration,
    witness: TimeoutWitness,
    shared: &'a Shared,
    /// An outage was said (WARN), its recovery not yet.
    failing: bool,
    /// A stall was said (WARN), its recovery not yet.
    stalled: bool,
}

impl BatchSender<'_> {
    fn send(&mut self, batch: Batch) {
        let spans = batch.spans.len() as u64;
        let delivery = self.deliver(&batch.spans);
        self.shared
            .queued_bytes
            .fetch_sub(batch.bytes, Ordering::AcqRel);
        let settled = self.shared.settle(spans);
        match delivery {
            Delivery::Exported => {
                metrics::counter!("flujo_telemetry_spans_exported_total").increment(settled);
                if self.failing || self.stalled {
                    tracing::info!(target: "flujo", "OTLP export recovered");
                    self.failing = false;
                    self.stalled = false;
                }
            }
            Delivery::Unconfirmed => {
                metrics::counter!("flujo_telemetry_spans_unconfirmed_total").increment(settled);
            }
            Delivery::Failed(error) => {
                metrics::counter!("flujo_telemetry_export_errors_total").increment(1);
                metrics::counter!("flujo_telemetry_spans_dropped_total", "reason" => "export_failed")
                    .increment(settled);
                // One line per outage, not one per batch.
                if !self.failing {
                    tracing::warn!(target: "flujo", %error, hint = self.hint.as_deref(),
                        "OTLP export failed; spans are dropped and counted until it recovers");
                    self.failing = true;
                }
            }
        }
    }

    /// Sends `spans`, again after an attempt the collector did not answer in time.
    fn deliver(&mut self, spans: &[FinishedSpan]) -> Delivery {
        let mut unanswered = false;
        let mut wait = RESEND_WAIT;
        for attempt in 0..=TIMED_OUT_RESENDS {
            let data = spans
                .iter()
                .map(|span| span_data(span, &self.scope))
                .collect();
            let result = self.runtime.block_on(async {
                // The SDK ends an attempt at `timeout`; the margin only guards against an
                // attempt that would not.
                tokio::time::timeout(self.timeout + self.timeout / 2, self.exporter.export(data))
                    .await
            });
            let (error, timed_out) = match result {
                Ok(Ok(())) => return Delivery::Exported,
                Ok(Err(error)) => {
                    let error = error.to_string();
                    let timed_out = self.witness.timed_out(&error);
                    (error, timed_out)
                }
                Err(_) => ("the OTLP export did not end".to_owned(), true),
            };
            // A timed-out attempt is transient (a stalled or overloaded collector) and may have
            // arrived; any other failure reached no collector, or was refused by it.
            if !timed_out {
                return if unanswered {
                    Delivery::Unconfirmed
                } else {
                    Delivery::Failed(error)
                };
            }
            unanswered = true;
            self.say_stalled();
            if attempt == TIMED_OUT_RESENDS || self.shared.abandoned.load(Ordering::Acquire) {
                break;
            }
            thread::sleep(wait);
            wait *= 2;
        }
        Delivery::Unconfirmed
    }

    /// Said once per stall: the collector stopped answering.
    fn say_stalled(&mut self) {
        if !self.stalled {
            self.stalled = true;
            metrics::counter!("flujo_telemetry_export_stalls_total").increment(1);
            tracing::warn!(
                target: "flujo",
                waited_ms = u64::try_from(self.timeout.as_millis()).unwrap_or(u64::MAX),
                "the OTLP collector is not answering; spans wait in the export queue \
                 (dropped and counted when it is full) and are sent again"
            );
        }
    }
}

impl SpanExporter for OtlpExporter {
    fn export(&mut self, spans: &[FinishedSpan]) {
        if self.queue.is_none() {
            return;
        }
        let mut batch = Vec::new();
        let mut bytes = 0;
        for span in spans {
            let Some((span, size)) = fitted(span) else {
                continue;
            };
            if !batch.is_empty()
                && (batch.len() == self.batch_size || bytes + size > MAX_EXPORT_REQUEST_BYTES)
            {
                self.enqueue(std::mem::take(&mut batch), bytes);
                bytes = 0;
            }
            batch.push(span.into_owned());
            bytes += size;
        }
        if !batch.is_empty() {
            self.enqueue(batch, bytes);
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
            self.shared.abandoned.store(true, Ordering::Release);
            self.lost = self.shared.pending.swap(0, Ordering::AcqRel);
            metrics::counter!("flujo_telemetry_spans_dropped_total", "reason" => "shutdown")
                .increment(self.lost);
        }
    }

    fn undelivered(&self) -> u64 {
        self.lost
    }
}

/// `span` as it is exported, with its size: cut to [`MAX_EXPORTED_SPAN_BYTES`] when it is
/// larger (counted), `None` when it cannot be (dropped and counted alone).
fn fitted(span: &FinishedSpan) -> Option<(Cow<'_, FinishedSpan>, usize)> {
    let size = span.approximate_size();
    if size <= MAX_EXPORTED_SPAN_BYTES {
        return Some((Cow::Borrowed(span), size));
    }
    let mut cut = span.clone();
    if cut.cut_to(MAX_EXPORTED_SPAN_BYTES) == Cut::TooLarge {
        metrics::counter!("flujo_telemetry_spans_dropped_total", "reason" => "too_large")
            .increment(1);
        return None;
    }
    metrics::counter!("flujo_telemetry_spans_truncated_total").increment(1);
    let size = cut.approximate_size();
    Some((Cow::Owned(cut), size))
}

fn span_data(span: &FinishedSpan, scope: &InstrumentationScope) -> SpanData {
    SpanData {
        span_context: SpanContext::new(
            span.trace_id.0.into(),
            span.span_id.0.into(),
            TraceFlags::SAMPLED,
            false,
            span.trace_state()
                .and_then(|state| state.parse::<TraceState>().ok())
                .unwrap_or_default(),
        ),
        parent_span_id: span.parent_span_id.map_or(0, |id| id.0).into(),
        parent_span_is_remote: span.parent_is_remote(),
        span_kind: match span.kind() {
            FlujoSpanKind::Client => SpanKind::Client,
            _ => SpanKind::Internal,
        },
        name: span.name.clone(),
        start_time: span.start_time(),
        end_time: span.end_time(),
        attributes: span
            .keyed_attributes()
            .map(|(key, value)| {
                let key = match key {
                    AttributeKey::Static(key) => Key::from_static_str(key),
                    AttributeKey::Owned(key) => Key::from(key.to_owned()),
                };
                KeyValue::new(key, otel_value(value))
            })
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
        AttributeValue::String(s) => Value::String(string_value(s)),
        AttributeValue::StringArray(strings) => Value::Array(Array::String(
            strings.into_iter().map(string_value).collect(),
        )),
    }
}

/// A string as the SDK keeps one: a static one stays static, an owned one is moved.
fn string_value(text: Cow<'static, str>) -> StringValue {
    match text {
        Cow::Borrowed(text) => StringValue::from(text),
        Cow::Owned(text) => StringValue::from(text),
    }
}
