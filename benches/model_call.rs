//! Cost of `#[track_cost]` on a model call and of a `Flujo` pipeline run, against the plain
//! code and against the peer doing the model-call job by hand: `#[tracing::instrument]` with
//! the GenAI fields, exported through `tracing-opentelemetry` (batch processor, exporter that
//! discards), plus token and cost metrics with `metrics::counter!`/`histogram!` and an f64
//! price computation (what users write today without flujo).
//!
//! The second peer is the OpenTelemetry SDK used directly: a span with the same GenAI
//! attributes, the `gen_ai.client.token.usage` and `gen_ai.client.operation.duration`
//! histograms and a cost counter, batch processor and periodic reader that discard.
//!
//! A streamed call (`streamed_call/*`) reads 1 or 101 chunks through a tracked stream and
//! through the same stream untracked: the difference between the two lengths, over 100, is
//! what tracking costs per chunk.
//!
//! A response as JSON (`json_body/*`): an OpenAI chat body parsed from its text, returned
//! from a plain function and from a `#[track_cost]` one (whose usage flujo reads with the
//! price data's extractors); `json_body/parse_only` is the parse the caller pays for anyway.
//! `json_stream/*` reads 101 chat chunks as `serde_json::Value`s, the last with the usage.
//!
//! Run: `cargo bench -p flujo-benches --bench model_call`. Calls are back to back, so these figures are the
//! instrumentation's own cost; a real model call takes 100 ms or more.

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use flujo::cost::{ChunkUsage, StreamChunk};
use flujo::{Flujo, TokenUsage, track_cost};
use futures::{Stream, StreamExt};
use opentelemetry::trace::TracerProvider as _;
use tracing_subscriber::layer::SubscriberExt;

#[path = "support/discard.rs"]
mod discard;
use discard::{DiscardSpans, peer_meters, peer_provider};
#[path = "support/pace.rs"]
mod pace;
#[path = "support/three_steps.rs"]
mod three_step_pipeline;
use pace::{counting_drops, pace_rounds, time_bursts, time_paced_calls};
use three_step_pipeline::three_steps;

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

/// A chunk of a streamed answer; the last one carries the usage, as OpenAI's does.
struct Chunk {
    tokens: u64,
    last: bool,
}

impl StreamChunk for Chunk {
    fn chunk_usage(&self) -> ChunkUsage {
        if self.last {
            ChunkUsage::totals(TokenUsage::new(1_000, self.tokens))
        } else {
            ChunkUsage::none()
        }
    }
}

fn chunks(n: u64) -> impl Stream<Item = Result<Chunk, std::convert::Infallible>> {
    futures::stream::iter((1..=n).map(move |i| {
        Ok(Chunk {
            tokens: black_box(i),
            last: i == n,
        })
    }))
}

#[track_cost(model = "gpt-4o-mini-2024-07-18")]
fn flujo_stream(n: u64) -> impl Stream<Item = Result<Chunk, std::convert::Infallible>> {
    chunks(n)
}

/// An OpenAI chat completion as the API returns it.
const CHAT_BODY: &str = r#"{"id":"chatcmpl-B9MHDbslfkBeAs8l4bebGdFOJ6PeG","object":"chat.completion","created":1741570283,"model":"gpt-4o-mini-2024-07-18","choices":[{"index":0,"message":{"role":"assistant","content":"The answer is 4.","refusal":null,"annotations":[]},"logprobs":null,"finish_reason":"stop"}],"usage":{"prompt_tokens":1117,"completion_tokens":46,"total_tokens":1163,"prompt_tokens_details":{"cached_tokens":1024,"audio_tokens":0},"completion_tokens_details":{"reasoning_tokens":0,"audio_tokens":0,"accepted_prediction_tokens":0,"rejected_prediction_tokens":0}},"service_tier":"default","system_fingerprint":"fp_fc9f1d7035"}"#;

#[inline(never)]
fn plain_json_call(body: &str) -> Result<serde_json::Value, anyhow::Error> {
    Ok(serde_json::from_str(black_box(body))?)
}

#[track_cost(model = "gpt-4o-mini-2024-07-18", provider = "openai")]
#[inline(never)]
fn flujo_json_call(body: &str) -> Result<serde_json::Value, anyhow::Error> {
    Ok(serde_json::from_str(black_box(body))?)
}

#[track_cost(model = "gpt-4o-mini-2024-07-18", provider = "openai", api = "chat")]
#[inline(never)]
fn flujo_json_call_api(body: &str) -> Result<serde_json::Value, anyhow::Error> {
    Ok(serde_json::from_str(black_box(body))?)
}

/// 101 chat chunks as JSON events, the last with the usage (`stream_options.include_usage`).
fn json_chunks() -> Vec<serde_json::Value> {
    let mut chunks: Vec<serde_json::Value> = (0..100)
        .map(|i| {
            serde_json::json!({"id": "chatcmpl-1", "object": "chat.completion.chunk",
                "model": "gpt-4o-mini-2024-07-18",
                "choices": [{"index": 0, "delta": {"content": format!("token{i} ")}, "finish_reason": null}]})
        })
        .collect();
    chunks.push(
        serde_json::json!({"id": "chatcmpl-1", "object": "chat.completion.chunk",
        "model": "gpt-4o-mini-2024-07-18", "choices": [],
        "usage": {"prompt_tokens": 1117, "completion_tokens": 100,
                  "prompt_tokens_details": {"cached_tokens": 1024}}}),
    );
    chunks
}

fn json_stream(
    chunks: Vec<serde_json::Value>,
) -> impl Stream<Item = Result<serde_json::Value, std::convert::Infallible>> {
    futures::stream::iter(chunks.into_iter().map(Ok))
}

#[track_cost(model = "gpt-4o-mini-2024-07-18", provider = "openai")]
fn flujo_json_stream(
    chunks: Vec<serde_json::Value>,
) -> impl Stream<Item = Result<serde_json::Value, std::convert::Infallible>> {
    json_stream(chunks)
}

fn read_json(
    stream: impl Stream<Item = Result<serde_json::Value, std::convert::Infallible>>,
) -> usize {
    futures::executor::block_on(stream.fold(0, |n, chunk| async move {
        n + chunk.map_or(0, |c| c.as_object().map_or(0, |o| o.len()))
    }))
}

/// Reads a stream to its end, as a consumer printing the answer would.
fn read(stream: impl Stream<Item = Result<Chunk, std::convert::Infallible>>) -> u64 {
    futures::executor::block_on(stream.fold(0, |sum, chunk| async move {
        sum + chunk.map_or(0, |c| c.tokens)
    }))
}

/// The peer using the OpenTelemetry SDK directly, instruments made once.
struct OtelModelCall {
    tracer: opentelemetry_sdk::trace::SdkTracer,
    tokens: opentelemetry::metrics::Histogram<u64>,
    durations: opentelemetry::metrics::Histogram<f64>,
    cost: opentelemetry::metrics::Counter<f64>,
    input: [opentelemetry::KeyValue; 4],
    output: [opentelemetry::KeyValue; 4],
    labels: [opentelemetry::KeyValue; 3],
}

impl OtelModelCall {
    fn new(
        tracer: opentelemetry_sdk::trace::SdkTracer,
        meter: &opentelemetry::metrics::Meter,
    ) -> Self {
        use opentelemetry::KeyValue;
        let labels = [
            KeyValue::new("gen_ai.operation.name", "chat"),
            KeyValue::new("gen_ai.provider.name", "openai"),
            KeyValue::new("gen_ai.request.model", "gpt-4o-mini-2024-07-18"),
        ];
        let with_type = |kind: &'static str| {
            let [a, b, c] = labels.clone();
            [a, b, c, KeyValue::new("gen_ai.token.type", kind)]
        };
        OtelModelCall {
            tracer,
            tokens: meter.u64_histogram("gen_ai.client.token.usage").build(),
            durations: meter
                .f64_histogram("gen_ai.client.operation.duration")
                .build(),
            cost: meter.f64_counter("gen_ai.client.cost").build(),
            input: with_type("input"),
            output: with_type("output"),
            labels,
        }
    }

    #[inline(never)]
    fn call(&self, x: u64) -> Result<TokenUsage, anyhow::Error> {
        use opentelemetry::KeyValue;
        use opentelemetry::trace::{Span as _, Tracer as _};
        let start = std::time::Instant::now();
        let mut span = self.tracer.start("chat gpt-4o-mini-2024-07-18");
        let usage = respond(x);
        let cost = (usage.input - usage.cache_read_input) as f64 * 0.15e-6
            + usage.cache_read_input as f64 * 0.075e-6
            + usage.output as f64 * 0.6e-6;
        span.set_attributes([
            KeyValue::new("gen_ai.operation.name", "chat"),
            KeyValue::new("gen_ai.provider.name", "openai"),
            KeyValue::new("gen_ai.request.model", "gpt-4o-mini-2024-07-18"),
            KeyValue::new("gen_ai.usage.input_tokens", usage.input as i64),
            KeyValue::new("gen_ai.usage.output_tokens", usage.output as i64),
            KeyValue::new(
                "gen_ai.usage.cache_read.input_tokens",
                usage.cache_read_input as i64,
            ),
            KeyValue::new("gen_ai.usage.cost.amount", cost),
        ]);
        span.end();
        self.tokens.record(usage.input, &self.input);
        self.tokens.record(usage.output, &self.output);
        self.cost.add(cost, &self.labels);
        self.durations
            .record(start.elapsed().as_secs_f64(), &self.labels);
        Ok(usage)
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
    counting_drops("flujo_track_cost", || {
        group.bench_function("flujo_track_cost", |b| {
            b.iter(|| {
                x += 1;
                flujo_call(x)
            })
        });
    });
    // 2 µs apart (500,000 model calls a second, thousands of times a real rate): the
    // worker applies every record, as it does in production.
    let rounds = pace_rounds(2_000);
    group.bench_function("paced_plain_fn", |b| {
        b.iter_custom(|iterations| {
            time_paced_calls(iterations, rounds, || {
                x += 1;
                plain_call(x)
            })
        })
    });
    counting_drops("paced_flujo_track_cost", || {
        group.bench_function("paced_flujo_track_cost", |b| {
            b.iter_custom(|iterations| {
                time_paced_calls(iterations, rounds, || {
                    x += 1;
                    flujo_call(x)
                })
            })
        });
    });
    group.bench_function("bursts_plain_fn", |b| {
        b.iter_custom(|iterations| {
            time_bursts(iterations, || {
                x += 1;
                plain_call(x)
            })
        })
    });
    counting_drops("bursts_flujo_track_cost", || {
        group.bench_function("bursts_flujo_track_cost", |b| {
            b.iter_custom(|iterations| {
                time_bursts(iterations, || {
                    x += 1;
                    flujo_call(x)
                })
            })
        });
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
    drop(provider);
    let meters = peer_meters();
    let provider = peer_provider();
    let direct = {
        use opentelemetry::metrics::MeterProvider as _;
        OtelModelCall::new(provider.tracer("bench"), &meters.meter("bench"))
    };
    group.bench_function("opentelemetry_sdk_peer", |b| {
        b.iter(|| {
            x += 1;
            direct.call(x)
        })
    });
    group.finish();
    drop((direct, provider, meters));

    let mut group = c.benchmark_group("streamed_call");
    for n in [1, 101] {
        group.bench_with_input(BenchmarkId::new("plain_stream", n), &n, |b, &n| {
            b.iter(|| read(chunks(n)))
        });
        counting_drops("flujo_track_cost_stream", || {
            group.bench_with_input(
                BenchmarkId::new("flujo_track_cost_stream", n),
                &n,
                |b, &n| b.iter(|| read(flujo_stream(n))),
            );
        });
    }
    group.finish();

    let mut group = c.benchmark_group("json_body");
    group.bench_function("parse_only", |b| {
        b.iter(|| serde_json::from_str::<serde_json::Value>(black_box(CHAT_BODY)))
    });
    group.bench_function("plain_json_fn", |b| b.iter(|| plain_json_call(CHAT_BODY)));
    counting_drops("flujo_json_body", || {
        group.bench_function("flujo_json_body", |b| b.iter(|| flujo_json_call(CHAT_BODY)));
    });
    counting_drops("flujo_json_body_api", || {
        group.bench_function("flujo_json_body_api", |b| {
            b.iter(|| flujo_json_call_api(CHAT_BODY))
        });
    });
    group.finish();

    let mut group = c.benchmark_group("json_stream");
    let events = json_chunks();
    group.bench_function("plain_json_stream_101", |b| {
        b.iter(|| read_json(json_stream(events.clone())))
    });
    counting_drops("flujo_json_stream_101", || {
        group.bench_function("flujo_json_stream_101", |b| {
            b.iter(|| read_json(flujo_json_stream(events.clone())))
        });
    });
    group.finish();

    let mut group = c.benchmark_group("pipeline_run");
    group.bench_function("plain_three_calls", |b| {
        b.iter(|| {
            x += 1;
            plain_three(x)
        })
    });
    let flujo = Flujo::new(three_steps::new());
    counting_drops("flujo_run_three_steps", || {
        group.bench_function("flujo_run_three_steps", |b| {
            b.iter(|| {
                x += 1;
                flujo.run(x).output.ok()
            })
        });
    });
    group.finish();
    drop(telemetry);
}

criterion_group!(benches, model_and_pipeline);
criterion_main!(benches);
