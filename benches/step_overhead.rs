//! Cost of one instrumented call, against a plain function and against the peers doing the
//! same job, all in this one binary and run: fastrace's `#[trace]` (reporter that discards),
//! the OpenTelemetry SDK used directly (span, counter, histogram; batch processor, exporter
//! that discards), and `#[tracing::instrument]` exported through `tracing-opentelemetry`
//! plus `metrics::counter!`/`histogram!`. flujo is measured off, sampled out, on back to back
//! (faster than the export worker drains: drops are said on stderr), on paced (about 400 ns
//! of work between calls, only the calls timed; subtract `paced_plain_fn`), in bursts (256
//! calls after a 200 µs pause, only the bursts timed; subtract `bursts_plain_fn`), and on with
//! a second thread calling the same step.
//!
//! Run: `cargo bench -p flujo-benches --bench step_overhead`. Benchmarks run in the order listed, because
//! "not initialised" must be measured before telemetry is switched on.

use std::hint::black_box;
use std::time::Instant;

use criterion::{Criterion, criterion_group, criterion_main};
use opentelemetry::trace::TracerProvider as _;
use tracing_subscriber::layer::SubscriberExt;

#[path = "support/discard.rs"]
mod discard;
use discard::{DiscardSpans, peer_meters, peer_provider};
#[path = "support/pace.rs"]
mod pace;
use pace::{counting_drops, pace_rounds, time_bursts, time_paced_calls};

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

/// The same step under fastrace's `#[trace]` (spans reach a reporter that discards).
#[fastrace::trace]
#[inline(never)]
fn fastrace_step(x: u64) -> u64 {
    work(x)
}

/// The same step through the OpenTelemetry SDK directly: a span, a call counter and a
/// duration histogram, as flujo records them.
struct OtelDirect {
    tracer: opentelemetry_sdk::trace::SdkTracer,
    calls: opentelemetry::metrics::Counter<u64>,
    durations: opentelemetry::metrics::Histogram<f64>,
    labels: [opentelemetry::KeyValue; 2],
}

impl OtelDirect {
    #[inline(never)]
    fn step(&self, x: u64) -> u64 {
        use opentelemetry::trace::{Span as _, Tracer as _};
        let start = Instant::now();
        let mut span = self.tracer.start("otel_step");
        let result = work(x);
        span.end();
        self.calls.add(1, &self.labels);
        self.durations
            .record(start.elapsed().as_secs_f64(), &self.labels);
        result
    }
}

/// Runs `step` on a second thread for as long as the returned guard lives.
fn second_thread(step: fn(u64) -> u64) -> impl Drop {
    struct Stop(
        std::sync::Arc<std::sync::atomic::AtomicBool>,
        Option<std::thread::JoinHandle<()>>,
    );
    impl Drop for Stop {
        fn drop(&mut self) {
            self.0.store(true, std::sync::atomic::Ordering::Relaxed);
            if let Some(thread) = self.1.take() {
                let _ = thread.join();
            }
        }
    }
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let stopping = std::sync::Arc::clone(&stop);
    let thread = std::thread::spawn(move || {
        let mut x = 0u64;
        while !stopping.load(std::sync::atomic::Ordering::Relaxed) {
            for _ in 0..1000 {
                x += 1;
                black_box(step(x));
            }
        }
    });
    Stop(stop, Some(thread))
}

struct DiscardFastrace;

impl fastrace::collector::Reporter for DiscardFastrace {
    fn report(&mut self, spans: Vec<fastrace::collector::SpanRecord>) {
        black_box(spans.len());
    }
}

fn step_call(c: &mut Criterion) {
    let mut group = c.benchmark_group("step_call");
    let mut x = 0u64;
    let rounds = pace_rounds(400);
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

    // Sampled out: no span is exported, the step's metrics are still counted.
    let mut telemetry = flujo::init_telemetry_with(
        flujo::TelemetryConfig::builder()
            .sampling_rate(0.0)
            .flush_interval(std::time::Duration::from_millis(10)),
    )
    .expect("telemetry starts");
    telemetry.add_span_exporter(DiscardSpans);
    group.bench_function("flujo_sampled_out", |b| {
        b.iter(|| {
            x += 1;
            flujo_step(x)
        })
    });
    drop(telemetry);

    let mut telemetry = flujo::init_telemetry_with(
        flujo::TelemetryConfig::builder().flush_interval(std::time::Duration::from_millis(10)),
    )
    .expect("telemetry starts");
    telemetry.add_span_exporter(DiscardSpans);
    counting_drops("flujo_enabled", || {
        group.bench_function("flujo_enabled", |b| {
            b.iter(|| {
                x += 1;
                flujo_step(x)
            })
        });
    });
    group.bench_function("paced_plain_fn", |b| {
        b.iter_custom(|iterations| {
            time_paced_calls(iterations, rounds, || {
                x += 1;
                plain(x)
            })
        })
    });
    counting_drops("paced_flujo_enabled", || {
        group.bench_function("paced_flujo_enabled", |b| {
            b.iter_custom(|iterations| {
                time_paced_calls(iterations, rounds, || {
                    x += 1;
                    flujo_step(x)
                })
            })
        });
    });
    group.bench_function("bursts_plain_fn", |b| {
        b.iter_custom(|iterations| {
            time_bursts(iterations, || {
                x += 1;
                plain(x)
            })
        })
    });
    counting_drops("bursts_flujo_enabled", || {
        group.bench_function("bursts_flujo_enabled", |b| {
            b.iter_custom(|iterations| {
                time_bursts(iterations, || {
                    x += 1;
                    flujo_step(x)
                })
            })
        });
    });
    counting_drops("flujo_enabled_two_threads", || {
        let _second = second_thread(flujo_step);
        group.bench_function("flujo_enabled_two_threads", |b| {
            b.iter(|| {
                x += 1;
                flujo_step(x)
            })
        });
    });
    drop(telemetry);
    #[cfg(feature = "opentelemetry")]
    otel_context(&mut group, &mut x);

    // fastrace records spans under a root: a root per 1,000 calls, reported and discarded.
    fastrace::set_reporter(DiscardFastrace, fastrace::collector::Config::default());
    group.bench_function("fastrace_peer", |b| {
        b.iter_custom(|iterations| {
            let start = Instant::now();
            let mut left = iterations;
            while left > 0 {
                let root = fastrace::Span::root("root", fastrace::collector::SpanContext::random());
                let _parent = root.set_local_parent();
                for _ in 0..left.min(1_000) {
                    x += 1;
                    black_box(fastrace_step(x));
                }
                left -= left.min(1_000);
            }
            start.elapsed()
        })
    });
    fastrace::flush();

    let otel = {
        use opentelemetry::metrics::MeterProvider as _;
        let meters = peer_meters();
        let meter = meters.meter("bench");
        let provider = peer_provider();
        let direct = OtelDirect {
            tracer: provider.tracer("bench"),
            calls: meter.u64_counter("otel_step_calls_total").build(),
            durations: meter.f64_histogram("otel_step_duration_seconds").build(),
            labels: [
                opentelemetry::KeyValue::new("step", "otel_step"),
                opentelemetry::KeyValue::new("status", "ok"),
            ],
        };
        (direct, provider, meters)
    };
    group.bench_function("opentelemetry_sdk_peer", |b| {
        b.iter(|| {
            x += 1;
            otel.0.step(x)
        })
    });
    drop(otel);

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
}

/// The OpenTelemetry interop's share of a root step (feature `opentelemetry`, which `otlp`
/// turns on): the check for an application's current OpenTelemetry span, with none and with
/// one; and making the step the current OpenTelemetry context (activation, on once the
/// application hands flujo an OpenTelemetry exporter or processor) against not.
#[cfg(feature = "opentelemetry")]
fn otel_context(
    group: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    x: &mut u64,
) {
    use opentelemetry::trace::TraceContextExt as _;
    for activation in [false, true] {
        let mut telemetry = flujo::init_telemetry_with(
            flujo::TelemetryConfig::builder()
                .flush_interval(std::time::Duration::from_millis(10))
                .otel_context_activation(activation),
        )
        .expect("telemetry starts");
        telemetry.add_span_exporter(DiscardSpans);
        let suffix = if activation {
            "activation_on"
        } else {
            "activation_off"
        };
        counting_drops(&format!("flujo_no_otel_context_{suffix}"), || {
            group.bench_function(format!("flujo_no_otel_context_{suffix}"), |b| {
                b.iter(|| {
                    *x += 1;
                    flujo_step(*x)
                })
            });
        });
        let parent = opentelemetry::trace::SpanContext::new(
            opentelemetry::trace::TraceId::from(0x4bf9_2f35_77b3_4da6_a3ce_929d_0e0e_4736_u128),
            opentelemetry::trace::SpanId::from(0x00f0_67aa_0ba9_02b7_u64),
            opentelemetry::trace::TraceFlags::SAMPLED,
            false,
            Default::default(),
        );
        let _current = opentelemetry::Context::new()
            .with_remote_span_context(parent)
            .attach();
        counting_drops(&format!("flujo_under_otel_context_{suffix}"), || {
            group.bench_function(format!("flujo_under_otel_context_{suffix}"), |b| {
                b.iter(|| {
                    *x += 1;
                    flujo_step(*x)
                })
            });
        });
    }
}

criterion_group!(benches, step_call);
criterion_main!(benches);
