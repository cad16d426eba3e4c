//! The `flujo-export` worker: drains every thread's ring on a timer (sooner when a ring asks,
//! or when a flush is requested), hands the records to the observers, then the exported
//! spans to the exporters. Records of a session that has ended are late: counted, never
//! delivered to a later session.

use crate::core::names::Metric;
use std::cell::Cell;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Condvar, Mutex};
use std::thread;
use std::time::Duration;

use super::finished::FinishedSpan;
use super::recycle;
use super::ring::{self, DROPPED_RING_FULL};
use super::sink::{self, SINKS, Sinks};
use super::wake::{self, WORKER};
use crate::core::clock;
use crate::core::record::SpanRecord;
use crate::core::state;
use crate::core::sync::lock;

static FLUSH_INTERVAL_MS: AtomicU64 = AtomicU64::new(100);
static FLUSH_REQUESTED: AtomicU64 = AtomicU64::new(0);
static FLUSH_COMPLETED: Mutex<u64> = Mutex::new(0);
static FLUSH_DONE: Condvar = Condvar::new();

/// Exported spans of ended sessions, drained after their session stopped delivering.
pub(crate) static LATE_SPANS: AtomicU64 = AtomicU64::new(0);
/// Cost records (priced or not) of ended sessions: their calls outlived the shutdown.
pub(crate) static LATE_COST_RECORDS: AtomicU64 = AtomicU64::new(0);

/// What [`report_drops`] has already added to the drop counters.
static REPORTED: [AtomicU64; 3] = [AtomicU64::new(0), AtomicU64::new(0), AtomicU64::new(0)];

/// Largest buffers kept between drains; larger ones are released after use.
const KEPT_BUFFER_CAPACITY: usize = 16 * 1024;

thread_local! {
    /// Set while this thread drains: a flush asked for from inside a drain (an exporter
    /// calling back into flujo) returns instead of waiting on itself.
    static DRAINING: Cell<bool> = const { Cell::new(false) };
}

/// Sets how often the worker drains.
pub(crate) fn set_flush_interval(interval: Duration) {
    let ms = u64::try_from(interval.as_millis())
        .unwrap_or(u64::MAX)
        .max(1);
    FLUSH_INTERVAL_MS.store(ms, Ordering::Relaxed);
}

/// Drains every ring into the observers and exporters, on the calling thread; returns how
/// many records it moved.
fn drain() -> usize {
    let mut sinks = lock(&SINKS);
    let Sinks {
        exporters,
        records,
        batch,
    } = &mut *sinks;
    DRAINING.with(|draining| draining.set(true));
    ring::drain_into(records);
    let drained = records.len();
    clock::reanchor_if_stale();
    records.retain(on_time);
    sink::observe(records);
    report_drops();
    if !exporters.is_empty() {
        let anchor = clock::anchor();
        let span = |record| FinishedSpan::from_record(record, &anchor);
        // Nearly always every record is exported (or none is, sampled out): moved out in one
        // pass, without the bookkeeping of picking some.
        if records.iter().all(|record| record.exported) {
            batch.extend(records.drain(..).map(span));
        } else {
            batch.extend(records.extract_if(.., |record| record.exported).map(span));
        }
        if !batch.is_empty() {
            for (_, exporter) in exporters.iter_mut() {
                exporter.export(batch);
            }
        }
    }
    // The extras' boxes go back to the threads that allocated them (taken in place: a move
    // of each span would copy it).
    recycle::send_home(
        records
            .iter_mut()
            .filter_map(|record| record.extras.take())
            .chain(batch.iter_mut().filter_map(FinishedSpan::take_extras)),
    );
    records.clear();
    batch.clear();
    if records.capacity() > KEPT_BUFFER_CAPACITY {
        *records = Vec::new();
    }
    if batch.capacity() > KEPT_BUFFER_CAPACITY {
        *batch = Vec::new();
    }
    DRAINING.with(|draining| draining.set(false));
    drained
}

/// Whether `record`'s session is being delivered; counts it as late otherwise.
fn on_time(record: &SpanRecord) -> bool {
    let on_time = sink::is_accepted(record.session);
    if !on_time {
        LATE_SPANS.fetch_add(u64::from(record.exported), Ordering::Relaxed);
        // A cost observed on time on the calling thread was delivered.
        let cost = u64::from(record.model_call().is_some() && !record.observed);
        LATE_COST_RECORDS.fetch_add(cost, Ordering::Relaxed);
    }
    on_time
}

/// Observes `record` here, on the calling thread: a record its full ring could not take (so
/// that its metrics and cost are never lost; its span is, and was counted), or a model call
/// whose cost goes to a durable ledger at once. False, and counted, when it is late.
pub(crate) fn observe_here(record: &SpanRecord) -> bool {
    let on_time = on_time(record);
    if on_time {
        sink::observe(std::slice::from_ref(record));
    }
    on_time
}

fn report_drops() {
    let counters = [
        (
            &DROPPED_RING_FULL,
            Metric::SpansDropped.name(),
            "queue_full",
        ),
        (&LATE_SPANS, Metric::SpansDropped.name(), "late"),
        (
            &LATE_COST_RECORDS,
            Metric::CostRecordsDropped.name(),
            "late",
        ),
    ];
    for ((total, name, reason), reported) in counters.into_iter().zip(&REPORTED) {
        let total = total.load(Ordering::Relaxed);
        let before = reported.swap(total, Ordering::Relaxed);
        // Also when nothing was dropped: a healthy application exports its zeros, so that
        // dashboards and alerts see a series, not an absent one.
        metrics::counter!(name, "reason" => reason).increment(total.saturating_sub(before));
    }
}

/// Starts the export worker if it is not running, and wakes it. Without a worker (the OS
/// refused a thread) flushes happen on the threads that ask for them.
pub(crate) fn ensure_running() {
    WORKER.get_or_init(|| {
        thread::Builder::new()
            .name("flujo-export".to_owned())
            .spawn(worker_loop)
            .map(|handle| handle.thread().clone())
            .map_err(|error| {
                tracing::warn!(target: "flujo", %error, "flujo could not start its export worker")
            })
            .ok()
    });
    wake::wake();
}

/// After a drain of [`STEADY`] records (threads recording steadily, not flat out), the worker
/// watches the rings for up to [`WATCH`] before it parks: being parked and woken would cost
/// each recording thread a futex wake per few hundred calls and, on a virtual machine whose
/// idle core was descheduled, more wake-up latency than a ring's slack. Flat out (a drain of
/// half a ring or more) it parks, and drains in larger batches.
const STEADY: std::ops::Range<usize> = 64..ring::MAX_RING_CAPACITY / 2;
const WATCH: Duration = Duration::from_micros(200);

fn worker_loop() {
    loop {
        let target = FLUSH_REQUESTED.load(Ordering::Acquire);
        let drained = drain();
        {
            let mut completed = lock(&FLUSH_COMPLETED);
            *completed = (*completed).max(target);
            FLUSH_DONE.notify_all();
        }
        if FLUSH_REQUESTED.load(Ordering::Acquire) != target {
            continue;
        }
        if STEADY.contains(&drained) && ring::fill_within(STEADY.start, WATCH) {
            continue;
        }
        if state::state().is_on() {
            let interval = FLUSH_INTERVAL_MS.load(Ordering::Relaxed);
            thread::park_timeout(Duration::from_millis(interval));
        } else {
            // Nothing records: sleep until something switches recording back on or asks.
            thread::park();
        }
    }
}

/// Delivers everything queued so far and waits for it, at most `timeout`. Returns false
/// when the worker did not finish in time. From inside a drain (an exporter calling back)
/// it returns at once: the drain under way is the one that delivers.
pub(crate) fn flush(timeout: Duration) -> bool {
    if DRAINING.with(Cell::get) {
        return true;
    }
    let Some(Some(worker)) = WORKER.get() else {
        drain();
        return true;
    };
    let ticket = FLUSH_REQUESTED.fetch_add(1, Ordering::AcqRel) + 1;
    worker.unpark();
    let completed = lock(&FLUSH_COMPLETED);
    let (completed, wait) = FLUSH_DONE
        .wait_timeout_while(completed, timeout, |done| *done < ticket)
        .unwrap_or_else(|e| e.into_inner());
    drop(completed);
    !wait.timed_out()
}

/// Exported spans dropped because a thread's ring was full (the worker fell behind), since
/// the process started. Also exported as `flujo_telemetry_spans_dropped_total{reason="queue_full"}`.
pub fn dropped_spans() -> u64 {
    DROPPED_RING_FULL.load(Ordering::Relaxed)
}

/// Spans and cost records of calls that ended after their telemetry session shut down
/// (counted, never delivered to a later session), since the process started. Also exported
/// as `flujo_telemetry_spans_dropped_total{reason="late"}` and
/// `flujo_cost_records_dropped_total{reason="late"}`.
pub fn late_records() -> (u64, u64) {
    (
        LATE_SPANS.load(Ordering::Relaxed),
        LATE_COST_RECORDS.load(Ordering::Relaxed),
    )
}
