//! From the hot path to the sinks: per-thread bounded queues, one background worker.
//!
//! A finished span is pushed onto its thread's lock-free bounded queue (`ArrayQueue`); that
//! is all the calling thread pays. The `flujo-export` worker drains every thread's queue on a
//! timer (or sooner when a queue passes half full, or when a flush is requested), turns the
//! compact records into [`FinishedSpan`]s and hands them to the sinks. A full queue drops the
//! span and counts it: the application never blocks on telemetry.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, LazyLock, Mutex, MutexGuard, OnceLock};
use std::thread::{self, Thread};
use std::time::Duration;

use crossbeam_queue::ArrayQueue;

use crate::span::{FinishedSpan, SpanRecord};
use crate::telemetry;

/// Spans one thread can hold before the worker drains them (a record is 160 bytes, so a
/// thread that records spans holds about 330 KiB).
const THREAD_QUEUE_CAPACITY: usize = 2048;
/// Past this many queued spans the recording thread wakes the worker early, leaving the rest
/// of the queue as slack for the time the worker takes to be scheduled.
const WAKE_THRESHOLD: usize = THREAD_QUEUE_CAPACITY / 8;

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
}

pub(crate) type SinkId = u64;

struct ThreadQueue {
    spans: ArrayQueue<SpanRecord>,
}

struct Collector {
    queues: Mutex<Vec<Arc<ThreadQueue>>>,
    sinks: Mutex<Vec<(SinkId, Box<dyn SpanExporter>)>>,
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
    sinks: Mutex::new(Vec::new()),
    next_sink_id: AtomicU64::new(1),
    dropped_queue_full: AtomicU64::new(0),
    dropped_reported: AtomicU64::new(0),
    flush_interval_ms: AtomicU64::new(100),
    flush_requested: AtomicU64::new(0),
    flush_completed: Mutex::new(0),
    flush_done: Condvar::new(),
});

static WORKER: OnceLock<Option<Thread>> = OnceLock::new();

thread_local! {
    static LOCAL_QUEUE: Arc<ThreadQueue> = register_thread();
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while a lock was held leaves plain data behind: keep using it.
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

fn register_thread() -> Arc<ThreadQueue> {
    let queue = Arc::new(ThreadQueue {
        spans: ArrayQueue::new(THREAD_QUEUE_CAPACITY),
    });
    lock(&COLLECTOR.queues).push(Arc::clone(&queue));
    queue
}

/// Queues a finished span for export; never blocks, never allocates.
pub(crate) fn submit(record: SpanRecord) {
    let queued = LOCAL_QUEUE.try_with(|queue| match queue.spans.push(record) {
        Ok(()) => {
            if queue.spans.len() == WAKE_THRESHOLD {
                wake_worker();
            }
            true
        }
        Err(_) => false,
    });
    if queued != Ok(true) {
        COLLECTOR.dropped_queue_full.fetch_add(1, Ordering::Relaxed);
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
    lock(&COLLECTOR.sinks).push((id, sink));
    id
}

pub(crate) fn remove_sink(id: SinkId) {
    lock(&COLLECTOR.sinks).retain(|(sink_id, _)| *sink_id != id);
}

pub(crate) fn has_sinks() -> bool {
    !lock(&COLLECTOR.sinks).is_empty()
}

pub(crate) fn set_flush_interval(interval: Duration) {
    let ms = u64::try_from(interval.as_millis())
        .unwrap_or(u64::MAX)
        .max(1);
    COLLECTOR.flush_interval_ms.store(ms, Ordering::Relaxed);
}

/// Drains every thread's queue into the sinks, on the calling thread.
fn drain_into_sinks() {
    let mut sinks = lock(&COLLECTOR.sinks);
    let mut records = Vec::new();
    {
        let mut queues = lock(&COLLECTOR.queues);
        for queue in queues.iter() {
            while let Some(record) = queue.spans.pop() {
                records.push(record);
            }
        }
        // A queue only this list still holds belongs to a thread that has exited.
        queues.retain(|queue| Arc::strong_count(queue) > 1 || !queue.spans.is_empty());
    }
    report_drops();
    if records.is_empty() || sinks.is_empty() {
        return;
    }
    let spans: Vec<FinishedSpan> = records.into_iter().map(FinishedSpan::from).collect();
    for (_, sink) in sinks.iter_mut() {
        sink.export(&spans);
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
            .map_err(|error| tracing::warn!(%error, "flujo could not start its export worker"))
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
