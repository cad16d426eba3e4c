//! The writer thread of a durable ledger (SQLite or PostgreSQL): callers hand it records
//! through a queue bounded in records and bytes, and it writes them in batches, retrying with
//! backoff while its store cannot take them. The store itself is a [`Backend`].

use crate::core::names::Metric;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use super::Unwritten;
use super::record::CostRecord;
use crate::collect::worker::LATE_COST_RECORDS;
use crate::core::sync::{lock, wait_at_most};

/// A durable store of cost records, driven by its writer thread.
pub(crate) trait Backend: Send + 'static {
    /// Writes `records` in one transaction.
    fn write(&mut self, records: &[CostRecord]) -> Result<(), WriteError>;

    /// Work due at intervals besides writing (PostgreSQL's fleet totals), done when due;
    /// returns when it is next due.
    fn tick(&mut self) -> Option<Instant> {
        None
    }
}

/// Why a batch was not written.
pub(crate) struct WriteError {
    pub(crate) message: String,
    /// A smaller batch may still be written now (a full disk takes some rows); otherwise
    /// (a database that is down) the batch waits whole for the next attempt.
    pub(crate) smaller_may_fit: bool,
}

/// How a writer's queue treats callers.
#[derive(Clone, Debug)]
pub(crate) struct QueuePolicy {
    /// The most records held: queued, and taken by the writer but not yet written.
    pub(crate) max_records: usize,
    /// The most bytes (about) of those records.
    pub(crate) max_bytes: usize,
    /// How long a record waits for room in a full queue while the store writes (the
    /// back-pressure of a cost path faster than a local disk); zero: never waits (a network
    /// database: application calls never wait on it).
    pub(crate) room_patience: Duration,
    /// The `reason` of `flujo_cost_records_dropped_total` for records refused while the store
    /// cannot write.
    pub(crate) failing_reason: &'static str,
    /// The store, as logs name it (a path, or a URL without its password).
    pub(crate) name: String,
}

/// The `reason` of records refused because the queue was full while the store was writing.
const QUEUE_FULL: &str = "ledger_queue_full";
/// The `reason` of records not committed when the session's close stopped waiting for them.
const SHUTDOWN: &str = "shutdown";

/// Records waiting for the writer, and what callers and the writer tell each other.
#[derive(Default)]
struct Queue {
    records: Vec<CostRecord>,
    bytes: usize,
    /// Taken by the writer and not yet written: still held in memory, so within the bounds.
    taken: usize,
    taken_bytes: usize,
    /// Records accepted, ever; committed, ever; refused (the queue was full).
    accepted: u64,
    committed: u64,
    refused: u64,
    /// The last write failed: a full queue then refuses records at once, rather than make
    /// calls wait on a store that may stay down.
    failing: bool,
    /// Refusals of this outage were logged.
    refusal_logged: bool,
    /// The session closed the ledger. Whatever was not committed then (the queue, and the
    /// write in progress, which may still land) was let go and counted: the writer writes
    /// nothing more.
    closed: bool,
    /// The writer thread has stopped: nothing queued now would be written.
    stopped: bool,
}

struct Shared {
    queue: Mutex<Queue>,
    /// Records arrived, or the queue closed.
    arrived: Condvar,
    /// The writer took records, or committed: room, or progress to wait for.
    progressed: Condvar,
    policy: QueuePolicy,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Queue> {
        lock(&self.queue)
    }

    fn wait_for_progress<'a>(
        &self,
        queue: MutexGuard<'a, Queue>,
        at_most: Duration,
    ) -> MutexGuard<'a, Queue> {
        wait_at_most(&self.progressed, queue, at_most)
    }

    /// Waits for records or the close, until `until` when given.
    fn wait_for_records<'a>(
        &self,
        queue: MutexGuard<'a, Queue>,
        until: Option<Instant>,
    ) -> MutexGuard<'a, Queue> {
        match until {
            Some(at) => wait_at_most(
                &self.arrived,
                queue,
                at.saturating_duration_since(Instant::now()),
            ),
            None => self
                .arrived
                .wait(queue)
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        }
    }
}

/// The writer thread of an open ledger.
pub(crate) struct Writer {
    handle: Handle,
    thread: Option<JoinHandle<()>>,
}

/// What callers hold of an open ledger's writer, to give it records and wait for it without
/// holding the ledger's lock.
#[derive(Clone)]
pub(crate) struct Handle(Arc<Shared>);

impl Handle {
    /// Queues `record` for the writer. A full queue makes the caller wait for room while the
    /// store writes (at most the policy's patience); while it cannot write, or once patience
    /// runs out, the record is refused and counted in `flujo_cost_records_dropped_total`.
    pub(crate) fn send(&self, record: CostRecord) {
        let shared = &self.0;
        let policy = &shared.policy;
        let size = record_size(&record);
        let deadline = Instant::now() + policy.room_patience;
        let mut queue = shared.lock();
        loop {
            if queue.stopped {
                // The call took this handle just before its session closed the ledger, and
                // the writer has written everything and stopped: late, as every record after
                // the close is. (Until it stops, a record is still written.)
                drop(queue);
                LATE_COST_RECORDS.fetch_add(1, Ordering::Relaxed);
                return;
            }
            let full = queue.records.len() + queue.taken >= policy.max_records
                || queue.bytes + queue.taken_bytes + size > policy.max_bytes;
            if !full {
                break;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if queue.failing || queue.closed || left.is_zero() {
                queue.refused += 1;
                let reason = if queue.failing {
                    policy.failing_reason
                } else {
                    QUEUE_FULL
                };
                let first = !std::mem::replace(&mut queue.refusal_logged, true);
                drop(queue);
                metrics::counter!(Metric::CostRecordsDropped.name(), "reason" => reason)
                    .increment(1);
                if first {
                    tracing::warn!(target: "flujo", ledger = %policy.name, reason,
                        max_records = policy.max_records,
                        "the cost ledger's buffer is full: cost records are dropped until it \
                         has room (counted in flujo_cost_records_dropped_total{{reason}}; \
                         budgets and metrics still count them); logged once until records \
                         are written again");
                }
                return;
            }
            queue = shared.wait_for_progress(queue, left);
        }
        queue.accepted += 1;
        queue.bytes += size;
        queue.records.push(record);
        drop(queue);
        shared.arrived.notify_one();
    }

    /// Waits until everything accepted so far is committed; false after `timeout`.
    pub(crate) fn wait(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let mut queue = self.0.lock();
        let target = queue.accepted;
        while queue.committed < target {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            queue = self.0.wait_for_progress(queue, left);
        }
        true
    }
}

/// About how many bytes `record` holds.
fn record_size(record: &CostRecord) -> usize {
    let optional = |text: &Option<String>| text.as_ref().map_or(0, String::len);
    std::mem::size_of::<CostRecord>()
        + optional(&record.request_id)
        + optional(&record.pipeline)
        + optional(&record.step)
        + record.model.len()
        + record.provider.len()
        + record.operation.len()
        + record.price_version.len()
}

impl Writer {
    /// Starts the writer thread of `store`.
    pub(crate) fn start(store: impl Backend, policy: QueuePolicy) -> std::io::Result<Writer> {
        // At zero from the start: dashboards and alerts see a healthy ledger's series.
        metrics::counter!(Metric::LedgerWriteErrors.name()).increment(0);
        for reason in [policy.failing_reason, QUEUE_FULL, SHUTDOWN] {
            metrics::counter!(Metric::CostRecordsDropped.name(), "reason" => reason).increment(0);
        }
        let shared = Arc::new(Shared {
            queue: Mutex::new(Queue::default()),
            arrived: Condvar::new(),
            progressed: Condvar::new(),
            policy,
        });
        let writer_shared = Arc::clone(&shared);
        let thread = thread::Builder::new()
            .name("flujo-ledger".to_owned())
            .spawn(move || write_loop(store, &writer_shared))?;
        Ok(Writer {
            handle: Handle(shared),
            thread: Some(thread),
        })
    }

    pub(crate) fn handle(&self) -> Handle {
        self.handle.clone()
    }

    /// Commits everything and stops the writer, waiting at most `timeout`. Returns how many
    /// records were not committed by then and how many the ledger refused during the
    /// session. What was not committed is let go and counted in
    /// `flujo_cost_records_dropped_total{reason="shutdown"}`: the writer stops after the
    /// write in progress, if any (a store that answers late may still take that batch; its
    /// records' identities keep a later copy out).
    pub(crate) fn close(mut self, timeout: Duration) -> Unwritten {
        let done = self.handle.wait(timeout);
        let shared = &self.handle.0;
        let mut queue = shared.lock();
        queue.closed = true;
        let closed = Unwritten {
            uncommitted: queue.accepted - queue.committed,
            refused: queue.refused,
        };
        queue.records = Vec::new();
        queue.bytes = 0;
        drop(queue);
        metrics::counter!(Metric::CostRecordsDropped.name(), "reason" => SHUTDOWN)
            .increment(closed.uncommitted);
        shared.arrived.notify_all();
        shared.progressed.notify_all();
        if done && let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        closed
    }
}

/// Waits between attempts to write a batch that failed: doubling from the first to the last.
const RETRY_FIRST: Duration = Duration::from_millis(100);
const RETRY_MAX: Duration = Duration::from_secs(5);

/// The most records written in one transaction.
const MAX_BATCH: usize = 4096;

fn write_loop(mut store: impl Backend, shared: &Shared) {
    let name = &shared.policy.name;
    let mut batch: Vec<CostRecord> = Vec::new();
    let mut retry_in = RETRY_FIRST;
    // After a failure that a smaller batch may avoid, records are written in smaller
    // transactions: a full disk may still take some of them.
    let mut chunk = MAX_BATCH;
    let mut failing = false;
    loop {
        if batch.is_empty() {
            let mut queue = shared.lock();
            loop {
                if !queue.records.is_empty() || queue.closed {
                    break;
                }
                drop(queue);
                let next_tick = store.tick();
                queue = shared.lock();
                if queue.records.is_empty() && !queue.closed {
                    queue = shared.wait_for_records(queue, next_tick);
                }
            }
            if queue.records.is_empty() {
                queue.stopped = true;
                return;
            }
            batch = std::mem::take(&mut queue.records);
            queue.taken = batch.len();
            queue.taken_bytes = std::mem::take(&mut queue.bytes);
        }
        let mut failed = None;
        while !batch.is_empty() {
            let n = chunk.min(batch.len());
            match store.write(&batch[..n]) {
                Ok(()) => {
                    let written_bytes: usize = batch.drain(..n).map(|r| record_size(&r)).sum();
                    let mut queue = shared.lock();
                    if queue.closed {
                        queue.stopped = true;
                        return;
                    }
                    queue.committed += n as u64;
                    queue.taken -= n;
                    queue.taken_bytes = queue.taken_bytes.saturating_sub(written_bytes);
                    queue.failing = false;
                    queue.refusal_logged = false;
                    drop(queue);
                    shared.progressed.notify_all();
                    chunk = (chunk * 2).min(MAX_BATCH);
                }
                Err(error) if n > 1 && error.smaller_may_fit => {
                    chunk = n / 2;
                    failed = Some(error);
                }
                Err(error) => {
                    failed = Some(error);
                    break;
                }
            }
        }
        store.tick();
        if batch.is_empty() {
            if failing {
                tracing::info!(target: "flujo", ledger = %name, "cost records are written again");
                failing = false;
            }
            retry_in = RETRY_FIRST;
            continue;
        }
        let error = failed.map_or_else(String::new, |e| e.message);
        let mut queue = shared.lock();
        if queue.closed {
            queue.stopped = true;
            return;
        }
        queue.failing = true;
        drop(queue);
        // Callers waiting for room are refused now, not after their patience.
        shared.progressed.notify_all();
        metrics::counter!(Metric::LedgerWriteErrors.name()).increment(1);
        // One line per outage (a full disk or a database down fails every retry), and one
        // when it ends.
        if !failing {
            tracing::error!(target: "flujo", ledger = %name, %error,
                records = batch.len(),
                "could not write cost records; retrying with backoff (up to 5 s apart) while \
                 they wait, then refusing new records once {} wait \
                 (counted in flujo_cost_records_dropped_total{{reason=\"{}\"}})",
                shared.policy.max_records, shared.policy.failing_reason);
            failing = true;
        }
        // The whole backoff, whatever arrives meanwhile (the store's interval work goes on);
        // closed while failing, what is left is counted as uncommitted.
        let retry_at = Instant::now() + retry_in;
        loop {
            let next_tick = store.tick();
            let mut queue = shared.lock();
            if queue.closed {
                queue.stopped = true;
                return;
            }
            if Instant::now() >= retry_at {
                break;
            }
            let until = next_tick.map_or(retry_at, |tick| tick.min(retry_at));
            drop(shared.wait_for_records(queue, Some(until)));
        }
        retry_in = (retry_in * 2).min(RETRY_MAX);
    }
}

#[cfg(test)]
mod tests {
    use std::time::SystemTime;

    use super::*;

    /// A store that writes nothing anywhere, and counts what it was given.
    struct Counting(Arc<Mutex<usize>>);

    impl Backend for Counting {
        fn write(&mut self, records: &[CostRecord]) -> Result<(), WriteError> {
            *lock(&self.0) += records.len();
            Ok(())
        }
    }

    fn record() -> CostRecord {
        CostRecord::sample(fastrand::u128(..), SystemTime::now(), None)
    }

    /// A store whose writes wait until the test says how they end.
    struct Gated(std::sync::mpsc::Receiver<bool>);

    impl Backend for Gated {
        fn write(&mut self, _: &[CostRecord]) -> Result<(), WriteError> {
            match self.0.recv() {
                Ok(true) => Ok(()),
                _ => Err(WriteError {
                    message: "the disk is full".to_owned(),
                    smaller_may_fit: false,
                }),
            }
        }
    }

    fn policy(max_records: usize, room_patience: Duration) -> QueuePolicy {
        QueuePolicy {
            max_records,
            max_bytes: 1 << 20,
            room_patience,
            failing_reason: "test_failing",
            name: "test".to_owned(),
        }
    }

    /// Waits until the writer has taken what was queued (the queue has room for no more).
    fn wait_taken(handle: &Handle, n: usize) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while handle.0.lock().taken < n {
            assert!(Instant::now() < deadline, "the writer never took the batch");
            thread::sleep(Duration::from_millis(1));
        }
    }

    #[test]
    fn a_call_waiting_for_room_is_refused_as_soon_as_the_writer_fails() {
        let (outcome, gate) = std::sync::mpsc::channel();
        let writer = Writer::start(Gated(gate), policy(1, Duration::from_secs(10))).unwrap();
        let handle = writer.handle();
        handle.send(record());
        wait_taken(&handle, 1);
        let waiting = handle.clone();
        let caller = thread::spawn(move || {
            let started = Instant::now();
            waiting.send(record());
            started.elapsed()
        });
        thread::sleep(Duration::from_millis(100));
        outcome.send(false).unwrap();
        let waited = caller.join().unwrap();
        // The bound the docs state: a failed write refuses the callers waiting for room at
        // once (not after their patience, 10 s here).
        assert!(
            waited < Duration::from_secs(1),
            "a caller waited {waited:?} on a writer that had failed"
        );
        assert_eq!(handle.0.lock().refused, 1);
        drop(outcome);
        writer.close(Duration::from_millis(10));
    }

    #[test]
    fn what_is_not_committed_when_the_close_gives_up_is_counted_at_once() {
        let (outcome, gate) = std::sync::mpsc::channel();
        let writer = Writer::start(Gated(gate), policy(64, Duration::ZERO)).unwrap();
        let handle = writer.handle();
        handle.send(record());
        wait_taken(&handle, 1);
        for _ in 0..9 {
            handle.send(record());
        }
        let started = Instant::now();
        let unwritten = writer.close(Duration::from_millis(200));
        let took = started.elapsed();
        assert!(took < Duration::from_secs(1), "the close waited {took:?}");
        assert_eq!(
            unwritten,
            Unwritten {
                uncommitted: 10,
                refused: 0
            }
        );
        // The write in progress ends after the close: the writer writes nothing more.
        outcome.send(true).unwrap();
        thread::sleep(Duration::from_millis(50));
        let queue = handle.0.lock();
        assert!(queue.records.is_empty(), "queued records were let go");
        assert!(queue.stopped);
    }

    #[test]
    fn a_record_handed_over_after_the_close_is_counted_late_never_lost() {
        let written = Arc::new(Mutex::new(0));
        let policy = QueuePolicy {
            max_records: 16,
            max_bytes: 1 << 20,
            room_patience: Duration::ZERO,
            failing_reason: "test",
            name: "test".to_owned(),
        };
        let writer = Writer::start(Counting(Arc::clone(&written)), policy).unwrap();
        // A call took the writer's handle just before the session closed it.
        let handle = writer.handle();
        handle.send(record());
        assert_eq!(writer.close(Duration::from_secs(10)), Unwritten::default());
        let late = LATE_COST_RECORDS.load(Ordering::Relaxed);
        handle.send(record());
        assert_eq!(*lock(&written), 1);
        assert_eq!(
            LATE_COST_RECORDS.load(Ordering::Relaxed) - late,
            1,
            "the record that arrived after the close is counted late"
        );
    }
}
