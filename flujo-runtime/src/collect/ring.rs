//! Per-thread rings: a finished call's record is pushed onto its thread's own
//! single-producer ring (`rtrb`: wait-free, one release store per push, no compare-and-swap);
//! that is all the calling thread pays.
//!
//! A ring starts small and is replaced by one twice its size whenever it fills, up to
//! [`MAX_RING_CAPACITY`]: a pool of hundreds of threads that each record a few spans costs a
//! few MiB, not hundreds. A ring that is full at its largest wakes the worker and hands the
//! record back to the caller.

use std::cell::RefCell;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use rtrb::{Consumer, Producer, RingBuffer};

use super::wake::wake;
use crate::core::record::SpanRecord;
use crate::core::sync::lock;

/// Slots of a thread's first ring (a record is 112 bytes: 28 KiB).
pub(crate) const FIRST_RING_CAPACITY: usize = 256;
/// Slots of a thread's largest ring (448 KiB).
pub(crate) const MAX_RING_CAPACITY: usize = 4096;
/// Every this many pushes the recording thread wakes the worker, leaving the rest of the ring
/// as slack for the time the worker takes to be scheduled.
pub(crate) const WAKE_EVERY: u32 = 256;

/// The consumer ends of every thread's rings. Taken by a thread once per ring it allocates,
/// and by the worker for as long as it takes to move records out (never while it applies
/// them).
pub(crate) static RINGS: Mutex<Vec<Consumer<SpanRecord>>> = Mutex::new(Vec::new());

/// Exported spans dropped because a thread's ring was full at its largest.
pub(crate) static DROPPED_RING_FULL: AtomicU64 = AtomicU64::new(0);

/// This thread's end of its ring (allocated on the first push).
struct LocalRing {
    producer: Option<Producer<SpanRecord>>,
    pushed: u32,
}

thread_local! {
    static LOCAL: RefCell<LocalRing> = const {
        RefCell::new(LocalRing { producer: None, pushed: 0 })
    };
}

fn new_ring(capacity: usize) -> Producer<SpanRecord> {
    let (producer, consumer) = RingBuffer::new(capacity);
    lock(&RINGS).push(consumer);
    producer
}

impl LocalRing {
    /// Pushes `record`; the first ring, a grown one and a full one are out of line.
    #[inline(always)]
    fn push(&mut self, record: SpanRecord, refused: fn(SpanRecord)) {
        match &mut self.producer {
            Some(producer) => {
                if let Err(rtrb::PushError::Full(record)) = producer.push(record) {
                    return self.push_when_full(record, refused);
                }
            }
            None => self.push_into_new(FIRST_RING_CAPACITY, record, refused),
        }
        self.pushed = self.pushed.wrapping_add(1);
        if self.pushed.is_multiple_of(WAKE_EVERY) {
            wake();
        }
    }

    /// Pushes `record` into a new ring of `capacity` slots, which becomes this thread's.
    #[cold]
    #[inline(never)]
    fn push_into_new(&mut self, capacity: usize, record: SpanRecord, refused: fn(SpanRecord)) {
        let mut ring = new_ring(capacity);
        if let Err(rtrb::PushError::Full(record)) = ring.push(record) {
            refused(dropped(record));
        }
        self.producer = Some(ring);
    }

    /// Grows the full ring when it is not yet at its largest; refuses the record when it is.
    #[cold]
    #[inline(never)]
    fn push_when_full(&mut self, record: SpanRecord, refused: fn(SpanRecord)) {
        let capacity = self
            .producer
            .as_ref()
            .map_or(0, |producer| producer.buffer().capacity());
        if capacity >= MAX_RING_CAPACITY {
            wake();
            return refused(dropped(record));
        }
        // The old ring's consumer stays registered until the worker has emptied it.
        self.push_into_new(capacity * 2, record, refused);
        wake();
    }
}

/// Queues the record `make` builds for the worker; never blocks. The record is built where
/// the ring takes it, and a refused one only moves on the cold path: each move of it is a
/// copy of 112 bytes. A record this thread's ring cannot take (full at its largest, or the
/// thread exiting) goes to `refused`; an exported span is then counted as dropped.
#[inline(always)]
pub(crate) fn submit(make: impl FnOnce() -> SpanRecord, refused: fn(SpanRecord)) {
    let mut make = Some(make);
    let _ = LOCAL.try_with(|local| {
        // Never re-entered; a busy ring counts as full rather than panic.
        if let Ok(mut local) = local.try_borrow_mut()
            && let Some(make) = make.take()
        {
            local.push(make(), refused);
        }
    });
    if let Some(make) = make {
        refused(dropped(make()));
    }
}

/// Counts a refused record when its span was to be exported.
#[cold]
fn dropped(record: SpanRecord) -> SpanRecord {
    if record.exported {
        DROPPED_RING_FULL.fetch_add(1, Ordering::Relaxed);
    }
    record
}

/// Moves every queued record into `out`, holding the ring lock only for the moves, and
/// forgets the rings of threads that have exited (or outgrown them) once they are empty.
pub(crate) fn drain_into(out: &mut Vec<SpanRecord>) {
    let mut rings = lock(&RINGS);
    for ring in rings.iter_mut() {
        if let Ok(chunk) = ring.read_chunk(ring.slots()) {
            out.extend(chunk);
        }
    }
    rings.retain(|ring| !ring.is_abandoned() || !ring.is_empty());
}

/// Whether `records` are queued within `watch` (polled by the worker, a few microseconds
/// apart: each look reads the recording threads' cache lines).
pub(crate) fn fill_within(records: usize, watch: std::time::Duration) -> bool {
    let until = std::time::Instant::now() + watch;
    loop {
        let queued: usize = lock(&RINGS).iter().map(Consumer::slots).sum();
        if queued >= records {
            return true;
        }
        if std::time::Instant::now() >= until {
            return false;
        }
        for _ in 0..1024 {
            std::hint::spin_loop();
        }
    }
}

/// What is still queued, without taking it: exported spans and model calls.
pub(crate) fn queued() -> (u64, u64) {
    let mut rings = lock(&RINGS);
    let (mut spans, mut model_calls) = (0, 0);
    for ring in rings.iter_mut() {
        let Ok(chunk) = ring.read_chunk(ring.slots()) else {
            continue;
        };
        let (first, second) = chunk.as_slices();
        for record in first.iter().chain(second) {
            spans += u64::from(record.exported);
            model_calls += u64::from(record.model_call().is_some());
        }
        // Dropped without `commit`: the records stay queued.
    }
    (spans, model_calls)
}

/// Slots allocated in every ring, for tests of the memory bound.
#[doc(hidden)]
pub fn allocated_ring_slots() -> usize {
    lock(&RINGS)
        .iter()
        .map(|ring| ring.buffer().capacity())
        .sum()
}
