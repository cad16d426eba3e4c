//! Pacing for the benchmarks' "paced" variants: work between two calls (a calibrated spin),
//! so that the export worker keeps up. Only the call is timed, not the spin (on this VM a
//! spin's own time moves by hundreds of nanoseconds with what the other core does): a paced
//! figure minus its paced plain call is a call's cost when records are not produced faster
//! than they are applied.

use std::hint::black_box;
use std::time::{Duration, Instant};

/// `iterations` calls of `call`, each after a pace of `rounds`: the time spent in the calls.
pub fn time_paced_calls<T>(iterations: u64, rounds: u64, mut call: impl FnMut() -> T) -> Duration {
    let mut spent = Duration::ZERO;
    for _ in 0..iterations {
        pace(rounds);
        let start = Instant::now();
        black_box(call());
        spent += start.elapsed();
    }
    spent
}

/// Calls in one burst of [`time_bursts`], and the pause before each: the shape of a service
/// that handles a request now and then (the worker drains a burst, then watches or parks).
pub const BURST: u64 = 256;
pub const BURST_PAUSE: Duration = Duration::from_micros(200);

/// `iterations` calls of `call` in bursts of [`BURST`], each after a [`BURST_PAUSE`] spent
/// spinning: the time spent in the bursts (two clock reads a burst, none a call).
pub fn time_bursts<T>(iterations: u64, mut call: impl FnMut() -> T) -> Duration {
    let mut spent = Duration::ZERO;
    let mut left = iterations;
    while left > 0 {
        let calls = left.min(BURST);
        let resume = Instant::now() + BURST_PAUSE;
        while Instant::now() < resume {
            std::hint::spin_loop();
        }
        let start = Instant::now();
        for _ in 0..calls {
            black_box(call());
        }
        spent += start.elapsed();
        left -= calls;
    }
    spent
}

/// Spins `rounds` rounds (see [`pace_rounds`]).
#[inline(never)]
fn pace(rounds: u64) {
    let mut x = 0u64;
    for i in 0..rounds {
        x = black_box(x.wrapping_add(i).rotate_left(3));
    }
    black_box(x);
}

/// The spin rounds that take about `nanos` here.
pub fn pace_rounds(nanos: u64) -> u64 {
    let rounds = 10_000;
    let start = Instant::now();
    for _ in 0..100 {
        pace(rounds);
    }
    let per_round = start.elapsed().as_nanos() as f64 / (100 * rounds) as f64;
    (nanos as f64 / per_round) as u64
}

/// Drops of flujo's rings during `run`, said on stderr.
pub fn counting_drops(name: &str, run: impl FnOnce()) {
    let before = flujo::export::dropped_spans();
    run();
    eprintln!(
        "flujo spans dropped (ring full) during {name}: {}",
        flujo::export::dropped_spans() - before
    );
}
