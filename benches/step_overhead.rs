//! Cost of one instrumented call, against a plain function and against the peer doing the
//! same job: `#[tracing::instrument]` exported through `tracing-opentelemetry` (SDK batch
//! processor, exporter that discards) plus `metrics::counter!`/`histogram!`.
//!
//! Run: `cargo bench --bench step_overhead`. Benchmarks run in the order listed, because
//! "not initialised" must be measured before telemetry is switched on.

use std::hint::black_box;
use std::time::Instant;

use criterion::{Criterion, criterion_group, criterion_main};
use opentelemetry::trace::TracerProvider as _;
use tracing_subscriber::layer::SubscriberExt;

#[path = "support/discard.rs"]
mod discard;
use discard::{DiscardSpans, peer_provider};

/// Stands in for the step's real work: a few nanoseconds the optimiser cannot remove.
#[inline(never)]
fn work(x: u64) -> u64 {
    black_box(x)
        .wrapping_mul(0x9E37_79B9_7F4A_7C15)
        .rotate_left(17)
}

#[inline(never)]
fn plain(x: u64) -> u64 {
    work(x)
}

#[flujo::pipeline_step]
#[inline(never)]
fn flujo_step(x: u64) -> u64 {
    work(x)
}

#[tracing::instrument(skip_all)]
#[inline(never)]
fn peer_step(x: u64) -> u64 {
    let start = Instant::now();
    let result = work(x);
    metrics::counter!("peer_step_calls_total", "step" => "peer_step", "status" => "ok")
        .increment(1);
    metrics::histogram!("peer_step_duration_seconds", "step" => "peer_step", "status" => "ok")
        .record(start.elapsed().as_secs_f64());
    result
}

fn step_call(c: &mut Criterion) {
    let mut group = c.benchmark_group("step_call");
    let mut x = 0u64;
    group.bench_function("plain_fn", |b| {
        b.iter(|| {
            x += 1;
            plain(x)
        })
    });
    group.bench_function("flujo_not_initialised", |b| {
        b.iter(|| {
            x += 1;
            flujo_step(x)
        })
    });

    let mut telemetry = flujo::init_telemetry_with(
        flujo::TelemetryConfig::builder().flush_interval(std::time::Duration::from_millis(10)),
    )
    .expect("telemetry starts");
    telemetry.add_span_exporter(DiscardSpans);
    let dropped_before = flujo::export::dropped_spans();
    group.bench_function("flujo_enabled", |b| {
        b.iter(|| {
            x += 1;
            flujo_step(x)
        })
    });
    eprintln!(
        "flujo spans dropped (queue full) during flujo_enabled: {}",
        flujo::export::dropped_spans() - dropped_before
    );

    let provider = peer_provider();
    let subscriber = tracing_subscriber::registry()
        .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("bench")));
    tracing::subscriber::with_default(subscriber, || {
        group.bench_function("tracing_opentelemetry_peer", |b| {
            b.iter(|| {
                x += 1;
                peer_step(x)
            })
        });
    });
    group.finish();
    drop(provider);
    drop(telemetry);
}

criterion_group!(benches, step_call);
criterion_main!(benches);
