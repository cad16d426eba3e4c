//! The boxes that hold a span's rarer parts (a model call's record, events) go back to the
//! thread that allocated them once the worker is done with them: a recording thread then
//! allocates nothing that another thread frees. (glibc's `free` of another thread's chunk
//! takes that thread's arena lock, which the recording thread's next `malloc` then waits on:
//! half of a paced `#[track_cost]` call, in the profile of #34.)
//!
//! Each recording thread has a small single-producer ring back from the worker (`rtrb`, as
//! its records' ring), registered once under a key that its boxes carry.

use std::cell::RefCell;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering};

use rtrb::{Consumer, Producer, RingBuffer};

use super::ring::WAKE_EVERY;
use crate::core::record::SpanExtras;
use crate::core::sync::lock;

/// Boxes kept for a thread between drains: as many as the records it makes between two
/// wakes of the worker, so that a thread that only makes model calls reuses a box for each
/// (a box is at most 400 bytes, and keeps room for at most 8 events of ~72 bytes: at most
/// ~250 KiB a recording thread, ~100 KiB for boxes of model calls without events).
const KEPT_PER_THREAD: usize = WAKE_EVERY as usize;

/// Events a returned box keeps room for; a box that held more gives its vector up.
const KEPT_EVENTS: usize = 8;

/// The worker's ends of the return rings, by key (keys only grow: the list stays sorted).
static HOMES: Mutex<Vec<(u32, Producer<Box<SpanExtras>>)>> = Mutex::new(Vec::new());

/// The key of the next thread that records extras (0: a box with no home).
static NEXT_HOME: AtomicU32 = AtomicU32::new(1);

thread_local! {
    /// This thread's key and its end of its return ring.
    static HOME: RefCell<Option<(u32, Consumer<Box<SpanExtras>>)>> = const { RefCell::new(None) };
}

/// A box for a span's extras: one the worker gave back to this thread, else a new one that
/// will come back.
pub(crate) fn extras_box() -> Box<SpanExtras> {
    let returned = HOME.try_with(|home| {
        let mut home = home.try_borrow_mut().ok()?;
        let (key, returned) = home.get_or_insert_with(register);
        let mut extras = returned.pop().unwrap_or_default();
        extras.home = *key;
        Some(extras)
    });
    // A thread that is exiting (or a re-entered borrow) allocates one that is not returned.
    returned.ok().flatten().unwrap_or_default()
}

#[cold]
fn register() -> (u32, Consumer<Box<SpanExtras>>) {
    let key = NEXT_HOME.fetch_add(1, Ordering::Relaxed);
    let (producer, consumer) = RingBuffer::new(KEPT_PER_THREAD);
    lock(&HOMES).push((key, producer));
    (key, consumer)
}

/// Sends each box back to its thread, emptied (the worker drops what it held); a box whose
/// thread has exited, or whose ring is full, is freed here. Forgets exited threads.
pub(crate) fn send_home(boxes: impl Iterator<Item = Box<SpanExtras>>) {
    let mut homes = lock(&HOMES);
    for mut extras in boxes {
        let home = extras.home;
        let Ok(at) = homes.binary_search_by_key(&home, |(key, _)| *key) else {
            continue;
        };
        let ring = &mut homes[at].1;
        if ring.is_abandoned() || ring.is_full() {
            continue;
        }
        let events = if extras.events.capacity() > KEPT_EVENTS {
            Vec::new()
        } else {
            let mut events = std::mem::take(&mut extras.events);
            events.clear();
            events
        };
        *extras = SpanExtras {
            events,
            home,
            ..SpanExtras::default()
        };
        let _ = ring.push(extras);
    }
    homes.retain(|(_, ring)| !ring.is_abandoned());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_box_comes_back_to_its_thread_emptied_and_an_exited_threads_is_freed() {
        // What the module's doc says a kept box costs.
        assert!(
            std::mem::size_of::<SpanExtras>() <= 400,
            "{}",
            std::mem::size_of::<SpanExtras>()
        );
        let mut first = extras_box();
        let home = first.home;
        assert_ne!(home, 0);
        first.parent_is_remote = true;
        first.trace_state = 7;
        let address = &*first as *const SpanExtras as usize;
        send_home(std::iter::once(first));
        let again = extras_box();
        assert_eq!(
            &*again as *const SpanExtras as usize, address,
            "the same box"
        );
        assert_eq!(
            (again.home, again.parent_is_remote, again.trace_state),
            (home, false, 0)
        );
        // A thread that exited: its box is freed by the worker, and its ring forgotten.
        let other = std::thread::spawn(extras_box).join().unwrap();
        let other_home = other.home;
        send_home(std::iter::once(other));
        assert!(lock(&HOMES).iter().all(|(key, _)| *key != other_home));
    }
}
