//! From the hot path to the sinks: per-thread bounded queues, one background worker.
//!
//! A finished span is pushed onto its thread's own single-producer ring buffer (`rtrb`:
//! wait-free, one release store per push, no compare-and-swap); that is all the calling
//! thread pays. The `flujo-export` worker drains every thread's ring on a timer (sooner after
//! every few hundred pushes, or when a flush is requested), turns the compact records into
//! [`FinishedSpan`]s and hands them to the exporters. A full ring drops the span and counts
//! it: the application never blocks on telemetry.

use std::cell::RefCell;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Condvar, LazyLock, Mutex, MutexGuard, OnceLock};
use std::thread::{self, Thread};
use std::time::Duration;

use rtrb::{Consumer, Producer, RingBuffer};

use crate::span::{FinishedSpan, SpanRecord};
use crate::step::StepMetricsBatch;
use crate::telemetry;

/// Spans one thread can hold before the worker drains them (a record is 112 bytes, so a
/// thread that records spans holds about 450 KiB).
const THREAD_QUEUE_CAPACITY: usize = 4096;
/// Every this many pushes the recording thread wakes the worker, leaving the rest of the ring
/// as slack for the time the worker takes to be scheduled.
const WAKE_EVERY: u32 = 512;

/// Receives finished spans, in batches, on flujo's export worker thread.
///
/// Register one with [`crate::TelemetryGuard::add_span_exporter`]. `export` runs off the
/// application's threads, so it may take its time, but while it runs the next batch waits:
/// an exporter that talks to the network should hand the batch on rather than block.
///
/// ```
/// use flujo::{FinishedSpan, SpanExporter};
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
}

pub(crate) type SinkId = u64;

/// The exporters, and the batch buffer they are handed (reused so that draining allocates
/// only when a batch is larger than any before).
#[derive(Default)]
struct Sinks {
    exporters: Vec<(SinkId, Box<dyn SpanExporter>)>,
    batch: Vec<FinishedSpan>,
}

struct Collector {
    queues: Mutex<Vec<Consumer<SpanRecord>>>,
    sinks: Mutex<Sinks>,
    next_sink_id: AtomicU64,
    dropped_queue_full: AtomicU64,
    dropped_reported: AtomicU64,
    flush_interval_ms: AtomicU64,
    flush_requested: AtomicU64,
    flush_completed: Mutex<u64>,
    flush_done: Condvar,
}

static COLLECTOR: LazyLock<Collector> = LazyLock::new(|| Collector {
    queues: Mutex::new(Vec::new()),
    sinks: Mutex::new(Sinks::default()),
    next_sink_id: AtomicU64::new(1),
    dropped_queue_full: AtomicU64::new(0),
    dropped_reported: AtomicU64::new(0),
    flush_interval_ms: AtomicU64::new(100),
    flush_requested: AtomicU64::new(0),
    flush_completed: Mutex::new(0),
    flush_done: Condvar::new(),
});

static WORKER: OnceLock<Option<Thread>> = OnceLock::new();

/// This thread's end of its ring.
struct LocalQueue {
    producer: Producer<SpanRecord>,
    pushed: u32,
}

thread_local! {
    static LOCAL_QUEUE: RefCell<LocalQueue> = RefCell::new(register_thread());
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while a lock was held leaves plain data behind: keep using it.
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

fn register_thread() -> LocalQueue {
    let (producer, consumer) = RingBuffer::new(THREAD_QUEUE_CAPACITY);
    lock(&COLLECTOR.queues).push(consumer);
    LocalQueue {
        producer,
        pushed: 0,
    }
}

/// Queues a finished call for the worker; never blocks, never allocates. Gives the record
/// back when this thread's ring is full (or the thread is exiting), counting the dropped span.
#[inline]
pub(crate) fn submit(record: SpanRecord) -> Result<(), SpanRecord> {
    let mut slot = Some(record);
    let _ = LOCAL_QUEUE.try_with(|local| {
        // Never re-entered today; a busy ring would count as full rather than panic.
        let Ok(mut local) = local.try_borrow_mut() else {
            return;
        };
        let Some(record) = slot.take() else {
            return;
        };
        match local.producer.push(record) {
            Ok(()) => {
                local.pushed = local.pushed.wrapping_add(1);
                if local.pushed % WAKE_EVERY == 0 {
                    wake_worker();
                }
            }
            Err(rtrb::PushError::Full(record)) => slot = Some(record),
        }
    });
    // `slot` still holds the record when the ring was full or busy, or the thread-local gone.
    match slot {
        None => Ok(()),
        Some(record) => {
            if record.exported {
                COLLECTOR.dropped_queue_full.fetch_add(1, Ordering::Relaxed);
            }
            Err(record)
        }
    }
}

/// Spans dropped because a thread's queue was full, since the process started.
pub(crate) fn dropped_spans() -> u64 {
    COLLECTOR.dropped_queue_full.load(Ordering::Relaxed)
}

fn wake_worker() {
    if let Some(Some(worker)) = WORKER.get() {
        worker.unpark();
    }
}

pub(crate) fn add_sink(sink: Box<dyn SpanExporter>) -> SinkId {
    let id = COLLECTOR.next_sink_id.fetch_add(1, Ordering::Relaxed);
    lock(&COLLECTOR.sinks).exporters.push((id, sink));
    id
}

pub(crate) fn remove_sink(id: SinkId) -> Option<Box<dyn SpanExporter>> {
    let mut sinks = lock(&COLLECTOR.sinks);
    let index = sinks
        .exporters
        .iter()
        .position(|(sink_id, _)| *sink_id == id)?;
    Some(sinks.exporters.remove(index).1)
}

pub(crate) fn has_sinks() -> bool {
    !lock(&COLLECTOR.sinks).exporters.is_empty()
}

pub(crate) fn set_flush_interval(interval: Duration) {
    let ms = u64::try_from(interval.as_millis())
        .unwrap_or(u64::MAX)
        .max(1);
    COLLECTOR.flush_interval_ms.store(ms, Ordering::Relaxed);
}

/// Largest batch buffer kept between drains; a larger one is released after use.
const KEPT_BATCH_CAPACITY: usize = 16 * 1024;

/// Drains every thread's ring into the exporters, on the calling thread.
fn drain_into_sinks() {
    let mut sinks = lock(&COLLECTOR.sinks);
    let Sinks { exporters, batch } = &mut *sinks;
    {
        let mut queues = lock(&COLLECTOR.queues);
        let export = !exporters.is_empty();
        let mut metrics = StepMetricsBatch::default();
        for queue in queues.iter_mut() {
            if let Ok(chunk) = queue.read_chunk(queue.slots()) {
                for record in chunk {
                    metrics.add(&record);
                    if export && record.exported {
                        batch.push(FinishedSpan::from(record));
                    }
                }
            }
        }
        // The producer of an abandoned ring belonged to a thread that has exited.
        queues.retain(|queue| !queue.is_abandoned() || !queue.is_empty());
    }
    report_drops();
    if !batch.is_empty() {
        for (_, exporter) in exporters.iter_mut() {
            exporter.export(batch);
        }
    }
    batch.clear();
    if batch.capacity() > KEPT_BATCH_CAPACITY {
        *batch = Vec::new();
    }
}

fn report_drops() {
    let dropped = COLLECTOR.dropped_queue_full.load(Ordering::Relaxed);
    let reported = COLLECTOR.dropped_reported.swap(dropped, Ordering::Relaxed);
    if dropped > reported {
        metrics::counter!("flujo_telemetry_spans_dropped_total", "reason" => "queue_full")
            .increment(dropped - reported);
    }
}

/// Starts the export worker if it is not running. Without a worker (the OS refused a
/// thread) flushes happen on the threads that ask for them.
pub(crate) fn ensure_worker() {
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
    wake_worker();
}

fn worker_loop() {
    loop {
        let target = COLLECTOR.flush_requested.load(Ordering::Acquire);
        drain_into_sinks();
        {
            let mut completed = lock(&COLLECTOR.flush_completed);
            *completed = (*completed).max(target);
            COLLECTOR.flush_done.notify_all();
        }
        if COLLECTOR.flush_requested.load(Ordering::Acquire) != target {
            continue;
        }
        if telemetry::state() == 0 {
            // Nothing records spans: sleep until something switches recording back on.
            thread::park();
        } else {
            let interval = COLLECTOR.flush_interval_ms.load(Ordering::Relaxed);
            thread::park_timeout(Duration::from_millis(interval));
        }
    }
}

/// Exports everything queued so far and waits for it, at most `timeout`.
/// Returns false when the worker did not finish in time.
pub(crate) fn flush(timeout: Duration) -> bool {
    let Some(Some(worker)) = WORKER.get() else {
        drain_into_sinks();
        return true;
    };
    if thread::current().id() == worker.id() {
        drain_into_sinks();
        return true;
    }
    let ticket = COLLECTOR.flush_requested.fetch_add(1, Ordering::AcqRel) + 1;
    worker.unpark();
    let completed = lock(&COLLECTOR.flush_completed);
    let (completed, wait) = COLLECTOR
        .flush_done
        .wait_timeout_while(completed, timeout, |done| *done < ticket)
        .unwrap_or_else(|e| e.into_inner());
    drop(completed);
    !wait.timed_out()
}
