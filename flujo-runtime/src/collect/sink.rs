//! Where drained records go: observers (step metrics, cost application and the ledger),
//! which see every record, and span exporters, which see the exported spans.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use super::finished::FinishedSpan;
use crate::core::record::SpanRecord;
use crate::core::sync::lock;

/// Receives finished spans, in batches, on flujo's export worker thread.
///
/// Register one with `TelemetryGuard::add_span_exporter`. `export` runs off the
/// application's threads, so it may take its time, but while it runs the next batch waits:
/// an exporter that talks to the network should hand the batch on rather than block. It may
/// call back into flujo (a cost report, a flush): a flush asked for from the worker returns
/// at once instead of waiting on itself.
///
/// ```
/// use flujo::export::{FinishedSpan, SpanExporter};
///
/// struct PrintNames;
///
/// impl SpanExporter for PrintNames {
///     fn export(&mut self, spans: &[FinishedSpan]) {
///         for span in spans {
///             println!("{} took {:?}", span.name, span.duration());
///         }
///     }
/// }
///
/// let mut telemetry = flujo::init_telemetry().unwrap();
/// telemetry.add_span_exporter(PrintNames);
/// ```
pub trait SpanExporter: Send {
    /// Receives a batch of finished spans.
    fn export(&mut self, spans: &[FinishedSpan]);

    /// Called once when telemetry shuts down, after the last batch: finish sending within
    /// `timeout`. The default does nothing.
    fn shutdown(&mut self, timeout: Duration) {
        let _ = timeout;
    }

    /// After [`SpanExporter::shutdown`]: how many spans it was given and could not deliver
    /// in time (said in the shutdown's WARN line). The default: none.
    fn undelivered(&self) -> u64 {
        0
    }
}

/// Derives something from every record (metrics, cost): on the worker, after it has moved
/// the records out of the rings and released every lock application threads take; or on the
/// calling thread, for a record its full ring could not take and for a model call while a
/// durable ledger is open. Either way exactly once: a record marked `observed` is skipped.
pub(crate) trait Observer: Send + Sync {
    /// Handles `records`, in the order they were drained (per thread, in the order they
    /// ended), skipping those already `observed`.
    fn observe(&self, records: &[SpanRecord]);
}

/// Set while a durable ledger is open: model calls are observed on the calling thread.
static MODEL_CALLS_AT_ONCE: AtomicBool = AtomicBool::new(false);

/// Observe model calls on the calling thread (`true`) or on the worker.
#[cfg_attr(not(feature = "sqlite"), allow(dead_code))]
pub(crate) fn observe_model_calls_at_once(at_once: bool) {
    MODEL_CALLS_AT_ONCE.store(at_once, Ordering::Release);
}

pub(crate) fn observes_model_calls_at_once() -> bool {
    MODEL_CALLS_AT_ONCE.load(Ordering::Acquire)
}

/// The observers, installed once by the composition root before anything records.
static OBSERVERS: OnceLock<Vec<Box<dyn Observer>>> = OnceLock::new();

/// Installs the observers (only the first call counts).
pub(crate) fn install_observers(make: impl FnOnce() -> Vec<Box<dyn Observer>>) {
    OBSERVERS.get_or_init(make);
}

pub(crate) fn observe(records: &[SpanRecord]) {
    if let Some(observers) = OBSERVERS.get() {
        for observer in observers {
            observer.observe(records);
        }
    }
}

pub(crate) type SinkId = u64;

/// The exporters and the batch buffers (reused so that draining allocates only when a batch
/// is larger than any before).
#[derive(Default)]
pub(crate) struct Sinks {
    pub(crate) exporters: Vec<(SinkId, Box<dyn SpanExporter>)>,
    pub(crate) records: Vec<SpanRecord>,
    pub(crate) batch: Vec<FinishedSpan>,
}

/// Held by the worker for a whole drain; taken by application threads only to change what is
/// registered (init, shutdown, a capture, a hook), never by a call.
pub(crate) static SINKS: Mutex<Sinks> = Mutex::new(Sinks {
    exporters: Vec::new(),
    records: Vec::new(),
    batch: Vec::new(),
});

static NEXT_SINK_ID: AtomicU64 = AtomicU64::new(1);

/// Registers an exporter; spans drained from now on reach it.
pub(crate) fn add_sink(sink: Box<dyn SpanExporter>) -> SinkId {
    let id = NEXT_SINK_ID.fetch_add(1, Ordering::Relaxed);
    lock(&SINKS).exporters.push((id, sink));
    id
}

/// Unregisters an exporter and gives it back (to be shut down).
pub(crate) fn remove_sink(id: SinkId) -> Option<Box<dyn SpanExporter>> {
    let mut sinks = lock(&SINKS);
    let index = sinks
        .exporters
        .iter()
        .position(|(sink_id, _)| *sink_id == id)?;
    Some(sinks.exporters.remove(index).1)
}

/// Whether any exporter wants spans.
pub(crate) fn has_sinks() -> bool {
    !lock(&SINKS).exporters.is_empty()
}

const NOT_ACCEPTING: u64 = u64::MAX;

/// The telemetry session whose records are delivered; [`NOT_ACCEPTING`] between sessions,
/// when every record drained is late.
static ACCEPTING: AtomicU64 = AtomicU64::new(NOT_ACCEPTING);

/// Delivers the records of `session` from now on (`None`: none, every record is late). Waits
/// for a drain under way, so that no record is delivered under the old setting afterwards.
pub(crate) fn accept_session(session: Option<u16>) {
    let _drain = lock(&SINKS);
    ACCEPTING.store(session.map_or(NOT_ACCEPTING, u64::from), Ordering::SeqCst);
}

/// Whether records of `session` are delivered now.
pub(crate) fn is_accepted(session: u16) -> bool {
    ACCEPTING.load(Ordering::Acquire) == u64::from(session)
}
