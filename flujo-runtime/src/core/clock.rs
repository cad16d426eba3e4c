//! The cheap clock of the hot path, and its mapping to wall-clock time for export.
//!
//! Spans are timed with raw `quanta` readings (the TSC where the CPU has a stable one, the
//! monotonic clock otherwise), scaled to nanoseconds only when a duration is needed. An
//! [`Anchor`] pairs a reading with `SystemTime`; the export worker takes a fresh one at most
//! every [`REANCHOR_EVERY`] (as fastrace re-anchors per collection), so that the TSC's drift
//! against the system clock (and NTP's corrections of it) never accumulates: a service up for
//! weeks exports span times that agree with its log lines.

use std::sync::{LazyLock, Mutex};
use std::time::{Duration, SystemTime};

static CLOCK: LazyLock<quanta::Clock> = LazyLock::new(quanta::Clock::new);

/// How old the anchor may get before the worker takes a new one.
pub const REANCHOR_EVERY: Duration = Duration::from_secs(1);

/// A raw reading and the wall-clock time it was taken at.
#[derive(Clone, Copy, Debug)]
pub struct Anchor {
    raw: u64,
    system: SystemTime,
}

impl Anchor {
    /// An anchor taken now.
    pub fn now() -> Anchor {
        Anchor {
            raw: CLOCK.raw(),
            system: SystemTime::now(),
        }
    }

    /// The wall-clock time of the raw reading `raw`.
    pub fn to_system_time(self, raw: u64) -> SystemTime {
        if raw >= self.raw {
            self.system + CLOCK.delta(self.raw, raw)
        } else {
            self.system - CLOCK.delta(raw, self.raw)
        }
    }

    /// How long ago (on the raw clock) this anchor was taken.
    fn age(&self) -> Duration {
        CLOCK.delta(self.raw, CLOCK.raw())
    }
}

static ANCHOR: LazyLock<Mutex<Anchor>> = LazyLock::new(|| Mutex::new(Anchor::now()));

/// Calibrates the clock and sets the first anchor; called when recording is switched on,
/// before any span starts.
pub fn init() {
    LazyLock::force(&CLOCK);
    LazyLock::force(&ANCHOR);
}

/// The anchor in force: every reading of one drained batch is converted with the same one,
/// so durations derived from wall-clock times stay consistent.
pub fn anchor() -> Anchor {
    *ANCHOR.lock().unwrap_or_else(|e| e.into_inner())
}

/// Takes a new anchor when the current one is older than [`REANCHOR_EVERY`] (the worker
/// calls this once per drain).
pub fn reanchor_if_stale() {
    let mut anchor = ANCHOR.lock().unwrap_or_else(|e| e.into_inner());
    if anchor.age() >= REANCHOR_EVERY {
        *anchor = Anchor::now();
    }
}

/// A raw reading: compare and subtract only through [`elapsed`] and an [`Anchor`].
#[inline]
pub fn now() -> u64 {
    CLOCK.raw()
}

/// The time between two raw readings.
#[inline]
pub fn elapsed(start: u64, end: u64) -> Duration {
    CLOCK.delta(start, end)
}

#[cfg(test)]
pub(crate) fn set_anchor_for_test(anchor: Anchor) {
    *ANCHOR.lock().unwrap_or_else(|e| e.into_inner()) = anchor;
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
        let anchor = anchor();
        let (a, b) = (anchor.to_system_time(start), anchor.to_system_time(end));
        assert!(b.duration_since(a).unwrap() >= Duration::from_millis(5));
    }

    #[test]
    fn a_stale_anchor_is_replaced_so_wall_clock_times_stop_drifting() {
        init();
        // An anchor whose wall-clock side is 30 s off, as after weeks of TSC drift or an NTP
        // step of the system clock, and old enough to be replaced.
        let skewed = Anchor {
            raw: now().saturating_sub(1),
            system: SystemTime::now() - Duration::from_secs(30),
        };
        set_anchor_for_test(skewed);
        std::thread::sleep(REANCHOR_EVERY + Duration::from_millis(10));
        let reading = now();
        let drift = |time: SystemTime| {
            SystemTime::now()
                .duration_since(time)
                .unwrap_or_else(|e| e.duration())
        };
        assert!(drift(anchor().to_system_time(reading)) > Duration::from_secs(29));
        reanchor_if_stale();
        assert!(
            drift(anchor().to_system_time(reading)) < Duration::from_millis(500),
            "the worker's re-anchoring puts span times back on the system clock"
        );
    }
}
