//! Events that `tracing` logged directly inside a flujo step, kept by the step's span id
//! until the step ends and takes them into its record.
//!
//! Bounded without a cliff: the map is split in shards by span id, each holding at most
//! [`PENDING_SPANS_PER_SHARD`] spans; a full shard forgets its oldest span (one that ended
//! long ago without collecting, or a remote parent's id) rather than refuse new ones. A step
//! end takes a lock only while some events are pending, and then only its shard's.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{LazyLock, Mutex};

use crate::core::record::{DEFAULT_SPAN_EVENT_LIMIT, SpanEvent};
use crate::core::sync::lock;

const SHARDS: usize = 16;
/// Spans with pending events per shard, at most (4096 in all).
pub(crate) const PENDING_SPANS_PER_SHARD: usize = 256;
/// Events a span keeps, at most (`OTEL_SPAN_EVENT_COUNT_LIMIT`, set at init): a chatty loop
/// inside one step stays bounded, and what it logs past the limit is counted.
static EVENT_LIMIT: AtomicUsize = AtomicUsize::new(DEFAULT_SPAN_EVENT_LIMIT);

/// Sets the events a span keeps from now on (the composition root, at init).
pub(crate) fn set_event_limit(limit: usize) {
    EVENT_LIMIT.store(limit, Ordering::Relaxed);
}

/// A span's bridged events: those kept, and how many more were logged.
#[derive(Default)]
pub(crate) struct Events {
    pub(crate) kept: Vec<SpanEvent>,
    pub(crate) dropped: u32,
}

impl Events {
    /// Keeps `event` if the span has room for it, else counts it.
    pub(crate) fn push(&mut self, event: SpanEvent) {
        if self.kept.len() < EVENT_LIMIT.load(Ordering::Relaxed) {
            self.kept.push(event);
        } else {
            self.dropped = self.dropped.saturating_add(1);
        }
    }
}

#[derive(Default)]
struct Shard {
    events: HashMap<u64, Events>,
    /// Span ids in the order their first event arrived, for forgetting the oldest.
    order: VecDeque<u64>,
}

static PENDING: LazyLock<[Mutex<Shard>; SHARDS]> =
    LazyLock::new(|| std::array::from_fn(|_| Mutex::default()));

/// Spans with events pending, over all shards: zero lets a step end skip every lock.
static PENDING_SPANS: AtomicUsize = AtomicUsize::new(0);

/// Whether a bridge layer exists: step ends only look for events then.
static ACTIVE: AtomicBool = AtomicBool::new(false);

fn shard_of(span_id: u64) -> &'static Mutex<Shard> {
    // Span ids are random: their low bits spread evenly.
    &PENDING[(span_id as usize) % SHARDS]
}

/// A bridge layer was created: step ends look for bridged events from now on.
pub(crate) fn activate() {
    ACTIVE.store(true, Ordering::Relaxed);
}

/// Keeps `event`, logged inside the step with span id `span_id`.
pub(crate) fn push(span_id: u64, event: SpanEvent) {
    let mut shard = lock(shard_of(span_id));
    let Shard { events, order } = &mut *shard;
    if let Some(pending) = events.get_mut(&span_id) {
        pending.push(event);
        return;
    }
    if order.len() >= PENDING_SPANS_PER_SHARD
        && let Some(oldest) = order.pop_front()
        && events.remove(&oldest).is_some()
    {
        PENDING_SPANS.fetch_sub(1, Ordering::Relaxed);
    }
    let mut pending = Events::default();
    pending.push(event);
    events.insert(span_id, pending);
    order.push_back(span_id);
    PENDING_SPANS.fetch_add(1, Ordering::Relaxed);
}

/// The events logged inside the step with span id `span_id` (called when it ends).
/// Whether any span has events waiting: a step's end reads two flags, and only takes its
/// events (a lock and a lookup) when this says some may be its own.
#[inline]
pub(crate) fn any_pending() -> bool {
    ACTIVE.load(Ordering::Relaxed) && PENDING_SPANS.load(Ordering::Relaxed) != 0
}

pub(crate) fn take(span_id: u64) -> Events {
    if !any_pending() {
        return Events::default();
    }
    let mut shard = lock(shard_of(span_id));
    match shard.events.remove(&span_id) {
        Some(events) => {
            shard.order.retain(|id| *id != span_id);
            PENDING_SPANS.fetch_sub(1, Ordering::Relaxed);
            events
        }
        None => Events::default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn orphaned_span_ids_never_stop_new_steps_from_keeping_events() {
        activate();
        // Far more orphans (ids nobody collects) than the map holds.
        for orphan in 0..(SHARDS * PENDING_SPANS_PER_SHARD * 4) as u64 {
            push(orphan << 8, SpanEvent::now("orphan", Vec::new()));
        }
        let step = 0xdead_beef_u64;
        push(step, SpanEvent::now("inside the step", Vec::new()));
        let events = take(step).kept;
        assert_eq!(
            events.len(),
            1,
            "a new step's event is kept after the orphans"
        );
        assert_eq!(events[0].name, "inside the step");
        let held: usize = PENDING.iter().map(|s| lock(s).events.len()).sum();
        assert!(
            held <= SHARDS * PENDING_SPANS_PER_SHARD,
            "memory stays bounded"
        );
    }
}
