//! The instruction-count guard's program: runs one hot path many times so that Callgrind can
//! count what one call costs. `scripts/perf-guard.sh` runs it under
//! `valgrind --tool=callgrind --toggle-collect=...` once per scenario and compares the counts
//! with the baselines in `benches/README.md`.
//!
//! Callgrind counts only inside [`measured`] (and, for `worker`, inside the export worker's
//! drain), so set-up, pacing and the waits between bursts are not counted. Two shapes:
//! - `hot`: bursts of [`BURST`] calls, the worker drains between bursts: instructions a call.
//! - `cold`: one call after the caches were flushed by a walk over [`EVICT_BYTES`] (and the
//!   stack warmed again, as a caller leaves it): the cache lines one call touches (what a call
//!   pays after a pause, when its lines have gone cold).
//!
//! Run: `flujo-guard <scenario> <hot|cold>`, scenarios as in [`SCENARIOS`]. Outside Callgrind
//! it runs the same calls and prints how many it made.

use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use flujo::cost::{ChunkUsage, StreamChunk};
use flujo::{Flujo, TokenUsage, pipeline_step, track_cost};
use futures::StreamExt;

#[path = "../support/three_steps.rs"]
mod three_step_pipeline;
use three_step_pipeline::three_steps;

/// Calls in one hot burst (one wake of the worker per burst, as a ring asks every 256 pushes).
const BURST: u64 = 256;
/// Hot bursts counted per scenario.
const HOT_BURSTS: u64 = 40;
/// Cold calls counted per scenario.
const COLD_CALLS: u64 = 40;
/// More stack than a measured call uses.
const STACK_BYTES: usize = 16 << 10;
/// Larger than the last-level cache the guard simulates (`--LL=2097152,16,64`).
const EVICT_BYTES: usize = 8 << 20;

/// The scenarios and what one measured unit of each is.
const SCENARIOS: &[(&str, &str)] = &[
    (
        "step_off",
        "a #[pipeline_step] call, telemetry not initialised",
    ),
    (
        "step_on",
        "a #[pipeline_step] call, spans to an exporter that discards",
    ),
    (
        "step_sampled_out",
        "a #[pipeline_step] call, sampling_rate(0.0)",
    ),
    (
        "model_call",
        "a #[track_cost] call returning TokenUsage, priced",
    ),
    ("stream_chunk", "one chunk of a #[track_cost] stream"),
    ("pipeline_run", "a pipeline run of three steps (Flujo::run)"),
    ("worker", "the export worker's drain, per span (step spans)"),
];

#[inline(never)]
fn work(x: u64) -> u64 {
    black_box(x)
        .wrapping_mul(0x9E37_79B9_7F4A_7C15)
        .rotate_left(17)
}

#[pipeline_step]
#[inline(never)]
fn guard_step(x: u64) -> u64 {
    work(x)
}

#[track_cost(model = "gpt-4o-mini-2024-07-18")]
#[inline(never)]
fn guard_model_call(x: u64) -> Result<TokenUsage, flujo::UsageLimitExceeded> {
    Ok(TokenUsage::new(1_000 + black_box(x) % 7, 200).with_cache_read(512))
}

struct Chunk(u64);

impl StreamChunk for Chunk {
    fn chunk_usage(&self) -> ChunkUsage {
        ChunkUsage::none()
    }
}

#[track_cost(model = "gpt-4o-mini-2024-07-18")]
fn guard_stream(n: u64) -> impl futures::Stream<Item = Result<Chunk, std::convert::Infallible>> {
    futures::stream::iter((0..n).map(|i| Ok(Chunk(black_box(i)))))
}

/// Spans the exporter has seen: the guard waits for a burst's before the next.
static EXPORTED: AtomicU64 = AtomicU64::new(0);

struct Discard;

impl flujo::export::SpanExporter for Discard {
    fn export(&mut self, spans: &[flujo::export::FinishedSpan]) {
        EXPORTED.fetch_add(spans.len() as u64, Ordering::Relaxed);
        black_box(spans.len());
    }
}

/// The only code Callgrind counts (`--toggle-collect=*flujo_guard::measured*`).
#[inline(never)]
fn measured(calls: u64, call: &mut dyn FnMut()) {
    for _ in 0..calls {
        call();
    }
}

/// Pushes every cache line the last call touched out of the simulated caches.
#[inline(never)]
fn evict(buffer: &mut [u8]) {
    for line in buffer.chunks_mut(64) {
        line[0] = line[0].wrapping_add(1);
    }
    black_box(buffer);
}

/// Writes the stack the measured calls will use: after a pause a thread's stack is warm (its
/// caller just ran), so the cold lines counted are the call's own data and code, not stack
/// lines whose number moves with the compiler's frame sizes.
#[inline(never)]
fn warm_stack() {
    let mut frame = [0u8; STACK_BYTES];
    black_box(&mut frame);
}

/// Waits until the worker has drained what was recorded (spans seen by the exporter, or a
/// few flush intervals for a scenario that exports nothing).
fn settle(expected_spans: Option<u64>) {
    match expected_spans {
        Some(expected) => {
            let give_up = std::time::Instant::now() + Duration::from_secs(120);
            while EXPORTED.load(Ordering::Relaxed) < expected {
                assert!(
                    std::time::Instant::now() < give_up,
                    "flujo-guard: the worker exported {} of {expected} spans in 120 s",
                    EXPORTED.load(Ordering::Relaxed)
                );
                std::thread::sleep(Duration::from_micros(200));
            }
        }
        None => std::thread::sleep(Duration::from_millis(3)),
    }
}

fn main() {
    let mut args = std::env::args().skip(1);
    let (Some(scenario), Some(shape)) = (args.next(), args.next()) else {
        eprintln!("usage: flujo-guard <scenario> <hot|cold>; scenarios:");
        for (name, what) in SCENARIOS {
            eprintln!("  {name:18} {what}");
        }
        std::process::exit(2);
    };
    let cold = match shape.as_str() {
        "hot" => false,
        "cold" => true,
        other => {
            eprintln!("flujo-guard: shape {other:?} is not `hot` or `cold`");
            std::process::exit(2);
        }
    };
    // Cold calls run while the worker is parked (it drains when a ring asks, every 256 calls,
    // never on a timer): a worker that ran between the eviction and the call would warm lines
    // for it, and when it runs depends on timing, not on the code measured.
    let interval = if cold {
        Duration::from_secs(3600)
    } else {
        Duration::from_millis(1)
    };
    let config = flujo::TelemetryConfig::builder().flush_interval(interval);
    let config = if scenario == "step_sampled_out" {
        config.sampling_rate(0.0)
    } else {
        config
    };
    let _telemetry = (scenario != "step_off").then(|| {
        let mut telemetry = flujo::init_telemetry_with(config).expect("telemetry starts");
        telemetry.add_span_exporter(Discard);
        telemetry
    });
    // Spans each measured unit exports (for `settle`), and the unit itself.
    let flujo = Flujo::new(three_steps::new());
    let mut x = 0u64;
    let (spans_per_call, mut call): (Option<u64>, Box<dyn FnMut()>) = match scenario.as_str() {
        "step_off" => (None, Box::new(|| x = guard_step(x + 1))),
        "step_on" | "worker" => (Some(1), Box::new(|| x = guard_step(x + 1))),
        "step_sampled_out" => (None, Box::new(|| x = guard_step(x + 1))),
        "model_call" => (
            Some(1),
            Box::new(|| {
                x += 1;
                black_box(guard_model_call(x).ok());
            }),
        ),
        "stream_chunk" => {
            let mut stream = Box::pin(guard_stream(u64::MAX));
            (
                None,
                Box::new(move || {
                    let chunk = futures::executor::block_on(stream.next());
                    black_box(chunk.map(|chunk| chunk.ok().map(|chunk| chunk.0)));
                }),
            )
        }
        "pipeline_run" => (
            Some(4),
            Box::new(|| {
                x += 1;
                black_box(flujo.run(x).output.ok());
            }),
        ),
        other => {
            eprintln!("flujo-guard: no scenario {other:?}; run without arguments for the list");
            std::process::exit(2);
        }
    };
    // Warm-up: rings grown, per-thread caches and metric handles made, code paged in.
    let mut exported = 0;
    for _ in 0..8 {
        for _ in 0..BURST {
            call();
        }
        exported += spans_per_call.map_or(0, |n| n * BURST);
        settle(spans_per_call.map(|_| exported));
    }
    let mut buffer = vec![0u8; EVICT_BYTES];
    let (rounds, calls) = if cold {
        (COLD_CALLS, 1)
    } else {
        (HOT_BURSTS, BURST)
    };
    for _ in 0..rounds {
        if cold {
            // The worker drained (and freed) the previous burst and has parked, past its watch
            // of the rings: the counted call is the first of a burst after a pause.
            std::thread::sleep(Duration::from_millis(20));
            evict(&mut buffer);
            warm_stack();
        }
        measured(calls, &mut call);
        if cold {
            // The burst's other calls, uncounted: the 256th wakes the worker, as it does in
            // every burst, and the settle below waits for its drain.
            for _ in 1..BURST {
                call();
            }
        }
        exported += spans_per_call.map_or(0, |n| n * if cold { BURST } else { calls });
        settle(spans_per_call.map(|_| exported));
    }
    // The worker scenario divides the drain's count by every span drained, warm-up included.
    println!(
        "{scenario} {shape}: {} measured units, {exported} spans exported",
        rounds * calls
    );
    // Without dropping the endless stream (a WARN) or waiting for a shutdown.
    std::process::exit(0);
}
