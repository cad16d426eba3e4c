//! The cheap clock of the hot path, and its mapping to wall-clock time for export.
//!
//! Spans are timed with raw `quanta` readings (the TSC where the CPU has a stable one, the
//! monotonic clock otherwise), scaled to nanoseconds only when a duration is needed. One
//! anchor pairs a reading with `SystemTime` so that the export worker can turn readings into
//! wall-clock timestamps.

use std::sync::LazyLock;
use std::time::{Duration, SystemTime};

static CLOCK: LazyLock<quanta::Clock> = LazyLock::new(quanta::Clock::new);

struct Anchor {
    raw: u64,
    system: SystemTime,
}

static ANCHOR: LazyLock<Anchor> = LazyLock::new(|| Anchor {
    raw: CLOCK.raw(),
    system: SystemTime::now(),
});

/// Calibrates the clock and sets the anchor; called when recording is switched on, before
/// any span starts.
pub(crate) fn init() {
    LazyLock::force(&ANCHOR);
}

/// A raw reading: compare and subtract only through [`elapsed`] and [`to_system_time`].
#[inline]
pub(crate) fn now() -> u64 {
    CLOCK.raw()
}

#[inline]
pub(crate) fn elapsed(start: u64, end: u64) -> Duration {
    CLOCK.delta(start, end)
}

pub(crate) fn to_system_time(raw: u64) -> SystemTime {
    let anchor = &*ANCHOR;
    if raw >= anchor.raw {
        anchor.system + CLOCK.delta(anchor.raw, raw)
    } else {
        anchor.system - CLOCK.delta(raw, anchor.raw)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readings_map_to_wall_clock_time_in_order() {
        init();
        let start = now();
        std::thread::sleep(Duration::from_millis(5));
        let end = now();
        assert!(elapsed(start, end) >= Duration::from_millis(5));
        let (a, b) = (to_system_time(start), to_system_time(end));
        assert!(b.duration_since(a).unwrap() >= Duration::from_millis(5));
        let drift = SystemTime::now().duration_since(b).unwrap_or_default();
        assert!(drift < Duration::from_secs(1), "anchored to the wall clock");
    }
}
