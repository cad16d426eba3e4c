//! The way every OpenTelemetry destination of flujo's spans is fed: OTLP, an application's
//! SDK span exporter, an application's span processor.
//!
//! The export worker hands each batch of finished spans to a queue bounded in spans and in
//! bytes; a sending thread of its own, which owns a small current-thread tokio runtime, hands
//! the batches to the destination (OTLP encodes them itself; an application's SDK exporter
//! or processor gets them as the SDK's `SpanData`). An attempt
//! the destination did not answer within the timeout is transient: it is sent again, twice
//! at most. A slow or absent destination fills the queue, and further batches are dropped
//! and counted: neither the application nor the export worker ever waits on it.
//!
//! A batch carries at most `max_export_batch_size` spans and about
//! [`MAX_EXPORT_REQUEST_BYTES`]; a span over [`MAX_EXPORTED_SPAN_BYTES`] is cut to fit (or,
//! when it cannot be, dropped alone), so one huge span never takes its batch down.
//!
//! Every span handed to a destination ends in exactly one counter: exported, unconfirmed
//! (sent, and never answered: it may have arrived), or dropped with the reason
//! `export_failed`, `export_queue_full`, `too_large` or `shutdown`.

use crate::core::names::Metric;
use std::borrow::Cow;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::thread;
use std::time::{Duration, Instant};

use tokio::sync::mpsc::UnboundedSender;

use crate::collect::finished::{Cut, FinishedSpan};
use crate::collect::sink::SpanExporter;
use crate::config::error::TelemetryError;
use crate::config::settings::SpanQueueSettings;

/// The most bytes of spans (names, fields, events, about) the OTLP export queue holds,
/// besides its bound in spans: spans with large fields are dropped and counted
/// (`reason="export_queue_full"`) beyond it, rather than held in memory.
const MAX_EXPORT_QUEUE_BYTES: usize = 64 << 20;
/// The most bytes (about) one exported span may hold: a larger one has its longest text
/// values cut, evenly, until it fits, and is counted in
/// `flujo_telemetry_spans_truncated_total` (its `flujo.span.truncated_bytes` says how much
/// went); one that still does not fit (thousands of fields) is dropped and counted alone
/// (`reason="too_large"`).
const MAX_EXPORTED_SPAN_BYTES: usize = 2 << 20;
/// The most bytes (about) of spans one OTLP request carries, whatever
/// `max_export_batch_size` allows: under the 4 MiB a gRPC collector takes by default.
const MAX_EXPORT_REQUEST_BYTES: usize = 3 << 20;

/// How many times more a batch is sent after an attempt the destination did not answer.
const TIMED_OUT_RESENDS: u32 = 2;
/// The wait before the first resend of a timed-out batch; doubled for the next.
const RESEND_WAIT: Duration = Duration::from_millis(250);

/// How spans travel from the export worker to the sending thread: packed into a batch on
/// the worker, as they are handed over (the worker owns nothing of them after that).
pub(crate) trait Pack: Send + 'static {
    type Batch: Send + Sync + 'static;

    /// Adds `span`, of about `size` bytes ([`FinishedSpan::approximate_size`]), to the batch
    /// being packed.
    fn push(&mut self, span: &FinishedSpan, size: usize);

    /// The batch packed so far, and its size in bytes (what the queue's bound counts); the
    /// next one starts empty.
    fn take(&mut self) -> (Self::Batch, usize);
}

/// Where a sending thread delivers: it is built on that thread, and used only there (by as
/// many requests at once as it allows).
pub(crate) trait Destination: Send + Sync + 'static {
    type Batch: Send + Sync + 'static;

    /// Batches this destination may be sent at once: more than one hides a collector's
    /// latency (a request's round trip, a delayed acknowledgement) behind the next request.
    const IN_FLIGHT: usize = 1;

    /// Delivers one batch, within `timeout` (the sending thread gives up on it at half as
    /// long again).
    fn send(
        &self,
        batch: &Self::Batch,
        timeout: Duration,
    ) -> impl Future<Output = Result<(), Failure>> + Send;

    /// After the last batch: finish within `timeout`.
    fn shutdown(&self, timeout: Duration);
}

/// Spans packed as themselves (a copy each), for a destination that wants them whole: an
/// application's SDK exporter or processor.
#[derive(Default)]
pub(crate) struct Spans {
    spans: Vec<FinishedSpan>,
    bytes: usize,
}

impl Pack for Spans {
    type Batch = Vec<FinishedSpan>;

    fn push(&mut self, span: &FinishedSpan, size: usize) {
        self.bytes += size;
        self.spans.push(span.clone());
    }

    fn take(&mut self) -> (Vec<FinishedSpan>, usize) {
        (
            std::mem::take(&mut self.spans),
            std::mem::take(&mut self.bytes),
        )
    }
}

/// A batch the destination did not take.
#[derive(Debug)]
pub(crate) struct Failure {
    pub(crate) error: String,
    /// Not answered in time: the batch may have arrived, and is sent again.
    pub(crate) timed_out: bool,
}

/// How a queue is bounded and its destination named in what flujo logs.
pub(crate) struct QueueSettings {
    /// What the log lines and start errors call the destination ("OTLP").
    pub(crate) name: &'static str,
    /// The sending thread's name.
    pub(crate) thread: &'static str,
    pub(crate) max_queue_size: usize,
    pub(crate) batch_size: usize,
    pub(crate) timeout: Duration,
    /// Said with a failure (a likely misconfiguration).
    pub(crate) hint: Option<String>,
    /// Where the spans go and over what ("http://collector:4318/v1/traces over
    /// http/protobuf"), said with a failure; `None` for an exporter flujo did not configure.
    pub(crate) target: Option<String>,
    /// Reads a failure's error (and may look at the destination once) for a likely
    /// misconfiguration, such as the other protocol's server; called once per outage, on the
    /// sending thread.
    pub(crate) diagnose: Option<Diagnose>,
}

/// Reads a failed export's error for a hint (see [`QueueSettings::diagnose`]).
pub(crate) type Diagnose = Box<dyn Fn(&str) -> Option<String> + Send + Sync>;

impl QueueSettings {
    /// `timeout`: how long the destination may take with one batch.
    pub(crate) fn new(
        name: &'static str,
        thread: &'static str,
        settings: &SpanQueueSettings,
        timeout: Duration,
    ) -> QueueSettings {
        QueueSettings {
            name,
            thread,
            max_queue_size: settings.max_queue_size,
            batch_size: settings.max_export_batch_size,
            timeout,
            hint: None,
            target: None,
            diagnose: None,
        }
    }
}

/// A batch on its way to the sending thread, with its spans and its size as the queue
/// counted them.
struct Queued<B> {
    batch: B,
    spans: u64,
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

/// Feeds finished spans to a [`Destination`] on a thread of its own; see the module docs.
pub(crate) struct QueuedExporter<P: Pack> {
    /// Unbounded as a channel (it allocates as batches arrive, not `max_queue_size` slots up
    /// front); bounded by `max_queue_size` pending spans and [`MAX_EXPORT_QUEUE_BYTES`].
    queue: Option<UnboundedSender<Queued<P::Batch>>>,
    pack: P,
    max_queue_size: u64,
    batch_size: usize,
    finished: Receiver<()>,
    shared: Arc<Shared>,
    /// Spans lost at shutdown.
    lost: u64,
}

impl<P: Pack> QueuedExporter<P> {
    /// Starts the sending thread, which builds the destination inside its
    /// runtime and reports back; batches are packed by `pack`. The runtime lives and dies on
    /// that thread, so starting and stopping are safe from inside an application's own async
    /// runtime.
    pub(crate) fn start<D: Destination<Batch = P::Batch> + 'static>(
        settings: QueueSettings,
        pack: P,
        build: impl FnOnce(&tokio::runtime::Runtime) -> Result<D, String> + Send + 'static,
    ) -> Result<QueuedExporter<P>, TelemetryError> {
        let name = settings.name;
        let start_error = |reason: String| TelemetryError::ExporterStart {
            exporter: name,
            reason,
        };
        register_health_counters();
        let (queue, mut batches) = tokio::sync::mpsc::unbounded_channel();
        let (finished_tx, finished) = mpsc::channel();
        let shared = Arc::new(Shared {
            pending: AtomicU64::new(0),
            queued_bytes: AtomicUsize::new(0),
            abandoned: AtomicBool::new(false),
        });
        let sending = Arc::clone(&shared);
        let (built_tx, built) = mpsc::channel();
        let max_queue_size = settings.max_queue_size as u64;
        let batch_size = settings.batch_size;
        thread::Builder::new()
            .name(settings.thread.to_owned())
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
                let destination = match build(&runtime) {
                    Ok(destination) => destination,
                    Err(error) => {
                        let _ = built_tx.send(Err(error));
                        return;
                    }
                };
                let _ = built_tx.send(Ok(()));
                let timeout = settings.timeout;
                let sender = Arc::new(BatchSender {
                    destination,
                    settings,
                    shared: sending,
                    failing: AtomicBool::new(false),
                    stalled: AtomicBool::new(false),
                });
                runtime.block_on(async {
                    let slots = Arc::new(tokio::sync::Semaphore::new(D::IN_FLIGHT));
                    while let Some(batch) = batches.recv().await {
                        let Ok(slot) = Arc::clone(&slots).acquire_owned().await else {
                            break;
                        };
                        let sender = Arc::clone(&sender);
                        tokio::spawn(async move {
                            sender.send(batch).await;
                            drop(slot);
                        });
                    }
                    // The queue closed: what is in flight ends before the destination does.
                    let _ = slots.acquire_many(D::IN_FLIGHT as u32).await;
                });
                sender.destination.shutdown(timeout);
                let _ = finished_tx.send(());
            })
            .map_err(|error| start_error(error.to_string()))?;
        built
            .recv()
            .map_err(|_| start_error("the export thread stopped while starting".to_owned()))?
            .map_err(start_error)?;
        Ok(QueuedExporter {
            queue: Some(queue),
            pack,
            max_queue_size,
            batch_size,
            finished,
            shared,
            lost: 0,
        })
    }

    /// Hands the `count` spans packed so far to the sending thread, or drops and counts
    /// them when the queue is full.
    fn enqueue(&mut self, count: u64) {
        let Some(queue) = &self.queue else {
            return;
        };
        let (batch, bytes) = self.pack.take();
        let queued = self.shared.queued_bytes.fetch_add(bytes, Ordering::AcqRel);
        // Counted before the handover: the sending thread may finish with it at once.
        let pending = self.shared.pending.fetch_add(count, Ordering::AcqRel);
        let refused = queued.saturating_add(bytes) > MAX_EXPORT_QUEUE_BYTES
            || pending + count > self.max_queue_size
            || queue
                .send(Queued {
                    batch,
                    spans: count,
                    bytes,
                })
                .is_err();
        if refused {
            self.shared.queued_bytes.fetch_sub(bytes, Ordering::AcqRel);
            self.shared.pending.fetch_sub(count, Ordering::AcqRel);
            metrics::counter!(Metric::SpansDropped.name(), "reason" => "export_queue_full")
                .increment(count);
        }
    }
}

/// How one batch ended.
enum Delivery {
    Exported,
    /// The destination never answered one of the attempts: it may have kept the spans.
    Unconfirmed,
    /// Refused, or never reached the destination.
    Failed(String),
}

/// The sending thread's state: the destination and what has been said about it, shared by
/// the batches in flight.
struct BatchSender<D> {
    destination: D,
    settings: QueueSettings,
    shared: Arc<Shared>,
    /// An outage was said (WARN), its recovery not yet.
    failing: AtomicBool,
    /// A stall was said (WARN), its recovery not yet.
    stalled: AtomicBool,
}

impl<D: Destination> BatchSender<D> {
    async fn send(&self, queued: Queued<D::Batch>) {
        let spans = queued.spans;
        let delivery = self.deliver(&queued.batch).await;
        self.shared
            .queued_bytes
            .fetch_sub(queued.bytes, Ordering::AcqRel);
        let settled = self.shared.settle(spans);
        let name = self.settings.name;
        match delivery {
            Delivery::Exported => {
                metrics::counter!(Metric::SpansExported.name()).increment(settled);
                let failing = self.failing.swap(false, Ordering::AcqRel);
                let stalled = self.stalled.swap(false, Ordering::AcqRel);
                if failing || stalled {
                    tracing::info!(target: "flujo", "{name} export recovered");
                }
            }
            Delivery::Unconfirmed => {
                metrics::counter!(Metric::SpansUnconfirmed.name()).increment(settled);
            }
            Delivery::Failed(error) => {
                metrics::counter!(Metric::ExportErrors.name()).increment(1);
                metrics::counter!(Metric::SpansDropped.name(), "reason" => "export_failed")
                    .increment(settled);
                // One line per outage, not one per batch.
                if !self.failing.swap(true, Ordering::AcqRel) {
                    let hint = self
                        .settings
                        .diagnose
                        .as_ref()
                        .and_then(|diagnose| diagnose(&error))
                        .or_else(|| self.settings.hint.clone());
                    let to = self
                        .settings
                        .target
                        .as_deref()
                        .map_or_else(String::new, |target| format!(" to {target}"));
                    tracing::warn!(target: "flujo", %error, hint,
                        "{name} export{to} failed; spans are dropped and counted until it recovers");
                }
            }
        }
    }

    /// Sends `batch`, again after an attempt the destination did not answer in time.
    async fn deliver(&self, batch: &D::Batch) -> Delivery {
        let mut unanswered = false;
        let mut wait = RESEND_WAIT;
        for attempt in 0..=TIMED_OUT_RESENDS {
            let timeout = self.settings.timeout;
            // A destination bounds its own attempts (OTLP's at the timeout); the margin only
            // guards against one that would not end.
            let sent =
                tokio::time::timeout(timeout + timeout / 2, self.destination.send(batch, timeout));
            let failure = match sent.await {
                Ok(Ok(())) => return Delivery::Exported,
                Ok(Err(failure)) => failure,
                Err(_) => Failure {
                    error: "the export did not end".to_owned(),
                    timed_out: true,
                },
            };
            // A timed-out attempt is transient (a stalled or overloaded destination) and may
            // have arrived; any other failure reached no destination, or was refused by it.
            if !failure.timed_out {
                return if unanswered {
                    Delivery::Unconfirmed
                } else {
                    Delivery::Failed(failure.error)
                };
            }
            unanswered = true;
            self.say_stalled();
            if attempt == TIMED_OUT_RESENDS || self.shared.abandoned.load(Ordering::Acquire) {
                break;
            }
            tokio::time::sleep(wait).await;
            wait *= 2;
        }
        Delivery::Unconfirmed
    }

    /// Said once per stall: the destination stopped answering.
    fn say_stalled(&self) {
        if !self.stalled.swap(true, Ordering::AcqRel) {
            metrics::counter!(Metric::ExportStalls.name()).increment(1);
            tracing::warn!(
                target: "flujo",
                waited_ms = u64::try_from(self.settings.timeout.as_millis()).unwrap_or(u64::MAX),
                "the {} destination is not answering; spans wait in the export queue \
                 (dropped and counted when it is full) and are sent again",
                self.settings.name
            );
        }
    }
}

impl<P: Pack> SpanExporter for QueuedExporter<P> {
    fn export(&mut self, spans: &[FinishedSpan]) {
        if self.queue.is_none() {
            return;
        }
        let (mut count, mut bytes) = (0, 0);
        for span in spans {
            let Some((span, size)) = fitted(span) else {
                continue;
            };
            if count > 0 && (count == self.batch_size || bytes + size > MAX_EXPORT_REQUEST_BYTES) {
                self.enqueue(count as u64);
                (count, bytes) = (0, 0);
            }
            self.pack.push(&span, size);
            count += 1;
            bytes += size;
        }
        if count > 0 {
            self.enqueue(count as u64);
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
            metrics::counter!(Metric::SpansDropped.name(), "reason" => "shutdown")
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
        metrics::counter!(Metric::SpansDropped.name(), "reason" => "too_large").increment(1);
        return None;
    }
    metrics::counter!(Metric::SpansTruncated.name()).increment(1);
    let size = cut.approximate_size();
    Some((Cow::Owned(cut), size))
}

/// The export's counters, at zero before anything happens: a healthy exporter shows its
/// zeros to dashboards and alerts, rather than series that do not exist.
fn register_health_counters() {
    for name in [
        Metric::SpansExported.name(),
        Metric::SpansUnconfirmed.name(),
        Metric::ExportErrors.name(),
        Metric::ExportStalls.name(),
        Metric::SpansTruncated.name(),
    ] {
        metrics::counter!(name).increment(0);
    }
    for reason in [
        "export_queue_full",
        "export_failed",
        "shutdown",
        "too_large",
    ] {
        metrics::counter!(Metric::SpansDropped.name(), "reason" => reason).increment(0);
    }
}
