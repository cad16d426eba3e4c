//! What the hot path reads before it records anything: whether telemetry is on, which
//! session it belongs to, the sampler; and the per-thread counts of calls in flight that a
//! shutdown waits on.
//!
//! Only the composition root switches the state; everything else reads it.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

/// Calls record metrics and cost.
pub const METRICS: u64 = 1;
/// Calls record spans (some sink wants them).
pub const SPANS: u64 = 2;

const FLAGS: u64 = 0xff;
/// Set when a guard shut telemetry down (not a test capture ending), cleared when recording
/// starts again: a call that finds it says once that it was not recorded, and why.
const SHUT_DOWN: u64 = 0x100;
const SESSION_SHIFT: u32 = 32;
const SESSION_MASK: u64 = 0xffff;

/// Flags in the low byte, the session number above them: one relaxed load tells a call
/// whether to record and which session it records into. Sessions are compared for equality
/// only, so 16 bits (one init after another 65,536 times before one repeats) keep the span
/// record at 112 bytes.
static STATE: AtomicU64 = AtomicU64::new(0);

/// The state a call starts under.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct State(u64);

impl State {
    /// Whether anything records.
    #[inline(always)]
    pub fn is_on(self) -> bool {
        self.0 & FLAGS != 0
    }

    /// Whether anything records, or a guard shut telemetry down and nothing has started it
    /// again (as opposed to never started: the state of a process that never called
    /// `init_telemetry` is 0). One test, so that the off path pays nothing for the second.
    #[inline(always)]
    pub fn is_on_or_after_shutdown(self) -> bool {
        self.0 & (FLAGS | SHUT_DOWN) != 0
    }

    /// Whether spans are recorded.
    #[inline]
    pub fn records_spans(self) -> bool {
        self.0 & SPANS != 0
    }

    /// The session this state belongs to.
    #[inline]
    pub fn session(self) -> u16 {
        ((self.0 >> SESSION_SHIFT) & SESSION_MASK) as u16
    }
}

/// The state right now. One relaxed load on the hot path.
#[inline(always)]
pub fn state() -> State {
    State(STATE.load(Ordering::Relaxed))
}

/// The session that calls starting now record into (whether or not anything records).
pub fn current_session() -> u16 {
    state().session()
}

/// Sets what calls record (`0`, [`METRICS`], `METRICS | SPANS`) within the current session;
/// recording switched on is no longer "after a shutdown".
pub fn set_flags(flags: u64) {
    let _ = STATE.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |state| {
        let kept = if flags & FLAGS == 0 {
            state & !FLAGS
        } else {
            state & !(FLAGS | SHUT_DOWN)
        };
        Some(kept | (flags & FLAGS))
    });
}

/// Ends the current session: nothing records, and calls still running from it are late
/// (their records reach no later session). `shut_down`: a guard ended it (calls starting now
/// say so once), not a test capture. Returns the new session.
pub fn next_session(shut_down: bool) -> u16 {
    let previous = STATE
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |state| {
            let session = ((state >> SESSION_SHIFT) + 1) & SESSION_MASK;
            Some(session << SESSION_SHIFT | if shut_down { SHUT_DOWN } else { 0 })
        })
        .unwrap_or_default();
    State(previous).session().wrapping_add(1)
}

/// A root trace is sampled when the low 64 bits of its id are below this (`u64::MAX`: all).
static SAMPLE_THRESHOLD: AtomicU64 = AtomicU64::new(u64::MAX);

/// Head sampling at the root: a trace-id ratio, so that every service that sees the same
/// trace id makes the same decision.
#[inline]
pub fn sample_root(trace_id: u128) -> bool {
    let threshold = SAMPLE_THRESHOLD.load(Ordering::Relaxed);
    threshold == u64::MAX || (trace_id as u64) < threshold
}

/// Sets the head-sampling ratio (`0.0..=1.0`).
pub fn set_sampling_rate(rate: f64) {
    let threshold = if rate >= 1.0 {
        u64::MAX
    } else {
        // Saturating float-to-int conversion; 0.0 (and NaN) samples nothing.
        (rate * u64::MAX as f64) as u64
    };
    SAMPLE_THRESHOLD.store(threshold, Ordering::Relaxed);
}

/// Calls started and ended on one thread, by session parity. Only the thread that holds the
/// shard writes it (a load and a store, no read-modify-write), any thread reads: counting a
/// call costs no contended cache line. An async call may start on one thread and end on
/// another; the sums over all shards still balance.
///
/// Shards live for the whole process and are recycled: a thread leases one on its first call
/// and gives it back when it exits, so there are never more shards than threads that ran
/// calls at once.
#[derive(Default)]
pub struct Shard {
    started: [AtomicU64; 2],
    ended: [AtomicU64; 2],
}

impl Shard {
    /// Counts a call of `session` that started (single writer: the leasing thread).
    #[inline]
    pub fn count_start(&self, session: u16) {
        bump(&self.started[usize::from(session & 1)]);
    }

    /// Counts a call of `session` that ended and handed over its record.
    #[inline]
    pub fn count_end(&self, session: u16) {
        bump(&self.ended[usize::from(session & 1)]);
    }
}

fn bump(counter: &AtomicU64) {
    counter.store(counter.load(Ordering::Relaxed) + 1, Ordering::Release);
}

struct Shards {
    /// Every shard ever made (never more than the threads that held one at once).
    all: Vec<&'static Shard>,
    /// Shards whose thread has exited, ready for the next thread.
    free: Vec<&'static Shard>,
}

static SHARDS: Mutex<Shards> = Mutex::new(Shards {
    all: Vec::new(),
    free: Vec::new(),
});

/// Counts for threads that call while exiting (their lease is already given back): shared,
/// so updated with read-modify-writes.
static EXITING: [[AtomicU64; 2]; 2] = [
    [AtomicU64::new(0), AtomicU64::new(0)],
    [AtomicU64::new(0), AtomicU64::new(0)],
];

/// A shard for this thread, until it gives it back with [`return_shard`].
pub fn lease_shard() -> &'static Shard {
    let mut shards = SHARDS.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(shard) = shards.free.pop() {
        return shard;
    }
    // Made once per thread that runs calls at the same time as all others: bounded by the
    // peak number of such threads, and reused after them.
    let shard: &'static Shard = Box::leak(Box::default());
    shards.all.push(shard);
    shard
}

/// Gives back a shard whose thread will not write it again.
pub fn return_shard(shard: &'static Shard) {
    SHARDS
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .free
        .push(shard);
}

/// Counts a call of an exiting thread (which holds no shard any more).
pub fn count_exiting(session: u16, ended: bool) {
    EXITING[usize::from(ended)][usize::from(session & 1)].fetch_add(1, Ordering::AcqRel);
}

/// Calls counted as started (or ended) with `parity`, over every shard and the exiting
/// threads' counters.
fn total(shards: &Shards, parity: usize, ended: bool) -> u64 {
    shards
        .all
        .iter()
        .map(|shard| {
            let side = if ended { &shard.ended } else { &shard.started };
            side[parity].load(Ordering::Acquire)
        })
        .sum::<u64>()
        + EXITING[usize::from(ended)][parity].load(Ordering::Acquire)
}

/// Calls of `session` (and of the sessions that share its counters) that have started so far:
/// a guard compares it at its drop with its value at init.
pub fn calls_started(session: u16) -> u64 {
    let shards = SHARDS.lock().unwrap_or_else(|e| e.into_inner());
    total(&shards, usize::from(session & 1), false)
}

/// Calls of `session` (or of a session two before it, which share its counters) that have
/// started and not yet ended.
pub fn calls_in_flight(session: u16) -> u64 {
    let parity = usize::from(session & 1);
    let shards = SHARDS.lock().unwrap_or_else(|e| e.into_inner());
    // Ends first: every end counted had its start counted before it, so the difference is
    // never below the true number in flight.
    let ended = total(&shards, parity, true);
    let started = total(&shards, parity, false);
    started.saturating_sub(ended)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sampling_threshold_follows_the_rate() {
        set_sampling_rate(0.0);
        assert!(!sample_root(0x1234_0000_0000_0000_0000_0000_0000_0001));
        set_sampling_rate(1.0);
        assert!(sample_root(u128::MAX));
        set_sampling_rate(0.5);
        assert!(sample_root(1));
        assert!(!sample_root(u128::from(u64::MAX)));
        set_sampling_rate(1.0);
    }

    #[test]
    fn calls_started_on_one_thread_and_ended_on_another_balance() {
        // A session number no other test uses, so parallel tests do not disturb the count.
        let session = 40_001;
        let before = calls_in_flight(session);
        let here = lease_shard();
        here.count_start(session);
        here.count_start(session);
        assert_eq!(calls_in_flight(session), before + 2);
        std::thread::spawn(move || {
            let there = lease_shard();
            there.count_end(session);
            return_shard(there);
        })
        .join()
        .unwrap();
        assert_eq!(calls_in_flight(session), before + 1);
        count_exiting(session, true);
        assert_eq!(calls_in_flight(session), before);
        return_shard(here);
    }
}
