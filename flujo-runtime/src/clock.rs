//! The cheap clock of the hot path, and its mapping to wall-clock time for export.
//!
//! Spans are timed with `quanta` (a TSC read where the CPU has a stable one), which costs a
//! third of `Instant::now()`. One anchor pairs a `quanta` reading with `SystemTime` so that the
//! export worker can turn raw readings into wall-clock timestamps.

use std::sync::OnceLock;
use std::time::SystemTime;

struct Anchor {
    instant: quanta::Instant,
    system: SystemTime,
}

static ANCHOR: OnceLock<Anchor> = OnceLock::new();

fn anchor() -> &'static Anchor {
    ANCHOR.get_or_init(|| Anchor {
        instant: quanta::Instant::now(),
        system: SystemTime::now(),
    })
}

/// Sets the anchor; called when recording is first switched on, before any span starts.
pub(crate) fn init() {
    anchor();
}

#[inline]
pub(crate) fn now() -> quanta::Instant {
    quanta::Instant::now()
}

pub(crate) fn to_system_time(instant: quanta::Instant) -> SystemTime {
    let anchor = anchor();
    match instant.checked_duration_since(anchor.instant) {
        Some(after) => anchor.system + after,
        None => anchor.system - anchor.instant.duration_since(instant),
    }
}
