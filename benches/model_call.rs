//! Cost of `#[track_cost]` on a model call and of a `Flujo` pipeline run, against the plain
//! code and against the peer doing the model-call job by hand: `#[tracing::instrument]` with
//! the GenAI fields, exported through `tracing-opentelemetry` (batch processor, exporter that
//! discards), plus token and cost metrics with `metrics::counter!`/`histogram!` and an f64
//! price computation (what users write today without flujo).
//!
//! Run: `cargo bench --bench model_call`. Calls are back to back, so these figures are the
//! instrumentation's own cost; a real model call takes 100 ms or more.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use flujo::{Flujo, TokenUsage, pipeline, pipeline_step, track_cost};
use opentelemetry::trace::TracerProvider as _;
use tracing_subscriber::layer::SubscriberExt;

#[path = "support/discard.rs"]
mod discard;
use discard::{DiscardSpans, peer_provider};

/// Stands in for the provider's answer: usage that varies a little per call.
#[inline(never)]
fn respond(x: u64) -> TokenUsage {
    let x = black_box(x);
    TokenUsage::new(1_000 + x % 7, 200).with_cache_read(512)
}

#[inline(never)]
fn plain_call(x: u64) -> Result<TokenUsage, anyhow::Error> {
    Ok(respond(x))
}

#[track_cost(model = "gpt-4o-mini-2024-07-18")]
#[inline(never)]
fn flujo_call(x: u64) -> Result<TokenUsage, anyhow::Error> {
    Ok(respond(x))
}

#[tracing::instrument(
    skip_all,
    name = "chat gpt-4o-mini-2024-07-18",
    fields(
        gen_ai.operation.name = "chat",
        gen_ai.provider.name = "openai",
        gen_ai.request.model = "gpt-4o-mini-2024-07-18",
        gen_ai.usage.input_tokens,
        gen_ai.usage.output_tokens,
        gen_ai.usage.cost.amount,
    )
)]
#[inline(never)]
fn peer_call(x: u64) -> Result<TokenUsage, anyhow::Error> {
    let usage = respond(x);
    let cost = (usage.input - usage.cache_read_input) as f64 * 0.15e-6
        + usage.cache_read_input as f64 * 0.075e-6
        + usage.output as f64 * 0.6e-6;
    let span = tracing::Span::current();
    span.record("gen_ai.usage.input_tokens", usage.input);
    span.record("gen_ai.usage.output_tokens", usage.output);
    span.record("gen_ai.usage.cost.amount", cost);
    let labels = [("model", "gpt-4o-mini-2024-07-18"), ("provider", "openai")];
    metrics::counter!("peer_tokens_total", &labels).increment(usage.input + usage.output);
    metrics::counter!("peer_requests_total", &labels).increment(1);
    metrics::histogram!("peer_cost_usd", &labels).record(cost);
    Ok(usage)
}

#[pipeline_step]
fn first(x: u64) -> u64 {
    black_box(x) + 1
}

#[pipeline_step]
fn second(x: u64) -> Result<u64, std::num::TryFromIntError> {
    Ok(black_box(x) * 2)
}

#[pipeline_step]
fn third(x: u64) -> u64 {
    black_box(x) ^ 0x5A
}

pipeline! {
    pipeline three_steps(x: u64) -> u64 {
        first >> second? >> third
    }
}

#[inline(never)]
fn plain_three(x: u64) -> u64 {
    (black_box(x + 1) * 2) ^ 0x5A
}

fn model_and_pipeline(c: &mut Criterion) {
    let mut telemetry = flujo::init_telemetry_with(
        flujo::TelemetryConfig::builder().flush_interval(std::time::Duration::from_millis(10)),
    )
    .expect("telemetry starts");
    telemetry.add_span_exporter(DiscardSpans);
    let mut x = 0u64;

    let mut group = c.benchmark_group("model_call");
    group.bench_function("plain_fn", |b| {
        b.iter(|| {
            x += 1;
            plain_call(x)
        })
    });
    group.bench_function("flujo_track_cost", |b| {
        b.iter(|| {
            x += 1;
            flujo_call(x)
        })
    });
    let provider = peer_provider();
    let subscriber = tracing_subscriber::registry()
        .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("bench")));
    tracing::subscriber::with_default(subscriber, || {
        group.bench_function("tracing_opentelemetry_peer", |b| {
            b.iter(|| {
                x += 1;
                peer_call(x)
            })
        });
    });
    group.finish();
    drop(provider);

    let mut group = c.benchmark_group("pipeline_run");
    group.bench_function("plain_three_calls", |b| {
        b.iter(|| {
            x += 1;
            plain_three(x)
        })
    });
    let flujo = Flujo::new(three_steps::new());
    group.bench_function("flujo_run_three_steps", |b| {
        b.iter(|| {
            x += 1;
            flujo.run(x).output.ok()
        })
    });
    group.finish();
    eprintln!(
        "flujo spans dropped (queue full): {}",
        flujo::export::dropped_spans()
    );
    drop(telemetry);
}

criterion_group!(benches, model_and_pipeline);
criterion_main!(benches);
