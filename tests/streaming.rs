//! Streamed model calls through the public API: a `#[track_cost]` function returning a
//! stream of chunks is one model call from its start to the stream's end, priced from the
//! usage its chunks report.

use std::pin::Pin;
use std::time::Duration;

use flujo::cost::{ChunkUsage, StreamChunk};
use flujo::export::{AttributeValue, FinishedSpan, SpanStatus};
use flujo::testing::{Capture, StubChunk, StubError, StubModel, StubStreamUsage};
use flujo::{
    Flujo, TokenUsage, UsageLimitExceeded, UsageLimits, pipeline, pipeline_step, track_cost,
};
use futures::{Stream, StreamExt};

#[path = "support/logs.rs"]
mod logs;

#[derive(Debug, thiserror::Error)]
enum AskError {
    #[error(transparent)]
    Model(#[from] StubError),
    #[error(transparent)]
    Refused(#[from] UsageLimitExceeded),
}

/// The usual shape: the request is made, then its stream handed back.
#[track_cost(model = "gpt-4o-mini")]
async fn ask_stream(
    model: &StubModel,
    prompt: &str,
    usage: StubStreamUsage,
) -> Result<impl Stream<Item = Result<StubChunk, StubError>> + use<>, AskError> {
    tokio::time::sleep(Duration::from_millis(1)).await;
    Ok(model.chat_stream(prompt, usage)?)
}

/// The same call, not streamed: the reference for prices.
#[track_cost(model = "gpt-4o-mini")]
fn ask_whole(model: &StubModel, prompt: &str) -> Result<flujo::testing::StubCompletion, AskError> {
    Ok(model.chat(prompt)?)
}

const LABELS: [(&str, &str); 3] = [
    ("gen_ai.operation.name", "chat"),
    ("gen_ai.provider.name", "openai"),
    ("gen_ai.request.model", "gpt-4o-mini"),
];

fn one<'a>(spans: &'a [FinishedSpan], name: &str) -> &'a FinishedSpan {
    let found: Vec<_> = spans.iter().filter(|s| s.name == name).collect();
    assert_eq!(found.len(), 1, "one `{name}` span in {spans:#?}");
    found[0]
}

fn int(span: &FinishedSpan, key: &str) -> i64 {
    span.attribute(key)
        .and_then(|v| v.as_i64())
        .unwrap_or_else(|| panic!("{key} on {}", span.name))
}

/// The usage and cost the same prompt costs as a whole call.
fn reference(prompt: &str) -> (TokenUsage, Option<flujo::Usd>) {
    let capture = Capture::start();
    ask_whole(&StubModel::new("stub"), prompt).unwrap();
    let record = capture.cost_records().remove(0);
    (record.usage, record.cost)
}

#[tokio::test]
async fn an_async_consumed_stream_is_one_call_priced_from_its_last_chunk() {
    let (usage, cost) = reference("tell me about rust streams");
    let capture = Capture::start();
    let model = StubModel::new("stub").with_latency(Duration::from_millis(5));

    let mut stream = ask_stream(
        &model,
        "tell me about rust streams",
        StubStreamUsage::LastChunk,
    )
    .await
    .unwrap();
    let mut text = String::new();
    let mut chunks = 0;
    while let Some(chunk) = stream.next().await {
        text.push_str(&chunk.unwrap().text);
        chunks += 1;
    }
    assert!(
        text.starts_with("[stub] tell me about rust streams"),
        "{text}"
    );

    let records = capture.cost_records();
    assert_eq!(records.len(), 1);
    assert_eq!(
        records[0].usage, usage,
        "the last chunk's usage, counted once"
    );
    assert_eq!(records[0].cost, cost);
    assert!(cost.is_some());

    let spans = capture.finished_spans();
    let span = one(&spans, "chat gpt-4o-mini");
    assert_eq!(span.status, SpanStatus::Ok);
    assert_eq!(
        span.attribute("gen_ai.request.stream"),
        Some(AttributeValue::Bool(true))
    );
    assert_eq!(int(span, "flujo.stream.chunks"), chunks);
    assert_eq!(int(span, "gen_ai.usage.input_tokens"), usage.input as i64);
    let Some(AttributeValue::Float(first)) = span.attribute("gen_ai.response.time_to_first_chunk")
    else {
        panic!("time to first chunk on {span:?}");
    };
    assert!(
        first >= 0.010,
        "two latencies before the first chunk: {first}"
    );
    assert!(
        span.duration() >= Duration::from_millis(5 * chunks as u64),
        "the span lasts until the stream's end: {:?}",
        span.duration()
    );
    assert!(span.attribute("flujo.usage.missing").is_none());

    assert_eq!(
        capture.histogram_count("gen_ai.client.operation.time_to_first_chunk", &LABELS),
        1
    );
    assert_eq!(
        capture.histogram_count("gen_ai.client.operation.time_per_output_chunk", &LABELS),
        chunks as u64 - 1,
        "one value per chunk after the first"
    );
    let first_chunk_sum =
        capture.histogram_sum("gen_ai.client.operation.time_to_first_chunk", &LABELS);
    assert!((first_chunk_sum - first).abs() < 1e-9);
    assert_eq!(
        capture.counter(
            "flujo_model_requests_total",
            &[
                ("model", "gpt-4o-mini"),
                ("provider", "openai"),
                ("status", "ok")
            ]
        ),
        1
    );
}

/// A synchronous function handing back a stream (a client with its own runtime, say).
#[track_cost(model = "gpt-4o-mini")]
fn ask_split(
    model: &StubModel,
    prompt: &str,
) -> Result<impl Stream<Item = Result<StubChunk, StubError>> + use<>, AskError> {
    Ok(model.chat_stream(prompt, StubStreamUsage::Split)?)
}

#[test]
fn a_sync_consumed_stream_with_split_usage_counts_input_once_and_the_last_output() {
    let (usage, cost) = reference("split usage please");
    let capture = Capture::start();
    let model = StubModel::new("stub");
    let stream = ask_split(&model, "split usage please").unwrap();
    let chunks: Vec<StubChunk> = futures::executor::block_on_stream(stream)
        .map(Result::unwrap)
        .collect();
    assert!(chunks.len() > 3);
    let records = capture.cost_records();
    assert_eq!(
        records[0].usage, usage,
        "input from the first chunk, output from the last"
    );
    assert_eq!(records[0].cost, cost);
    let spans = capture.finished_spans();
    assert_eq!(one(&spans, "chat gpt-4o-mini").status, SpanStatus::Ok);
}

#[tokio::test]
async fn a_stream_dropped_early_is_a_cancelled_call_priced_for_what_it_used() {
    let capture = Capture::start();
    let model = StubModel::new("stub");
    let prompt = "one two three four five six seven eight nine ten";
    let mut stream = ask_stream(&model, prompt, StubStreamUsage::Split)
        .await
        .unwrap();
    for _ in 0..2 {
        stream.next().await.unwrap().unwrap();
    }
    drop(stream);

    let spans = capture.finished_spans();
    let span = one(&spans, "chat gpt-4o-mini");
    assert_eq!(span.status, SpanStatus::Unset);
    assert_eq!(
        span.attribute("flujo.step.cancelled"),
        Some(AttributeValue::Bool(true))
    );
    assert_eq!(int(span, "flujo.stream.chunks"), 2);
    let record = &capture.cost_records()[0];
    let whole = StubModel::new("stub").chat(prompt).unwrap().usage;
    assert_eq!(record.usage.input, whole.input, "the whole prompt was sent");
    assert!(
        record.usage.output > 0 && record.usage.output < whole.output,
        "the output so far: {:?} of {whole:?}",
        record.usage
    );
    assert!(record.cost.is_some(), "priced, not lost");
    assert_eq!(
        capture.counter(
            "flujo_model_requests_total",
            &[
                ("model", "gpt-4o-mini"),
                ("provider", "openai"),
                ("status", "cancelled")
            ]
        ),
        1
    );
}

/// A chunk of a hand-written provider client.
#[derive(Debug, Clone)]
struct Delta {
    text: &'static str,
    usage: ChunkUsage,
}

impl StreamChunk for Delta {
    fn chunk_usage(&self) -> ChunkUsage {
        self.usage
    }
}

type Deltas = Pin<Box<dyn Stream<Item = Result<Delta, StubError>> + Send>>;

fn deltas(items: Vec<Result<Delta, StubError>>) -> Deltas {
    Box::pin(futures::stream::iter(items))
}

#[track_cost(model = "claude-sonnet-4-5", stream)]
async fn replay(items: Vec<Result<Delta, StubError>>) -> Result<Deltas, AskError> {
    Ok(deltas(items))
}

fn broken() -> StubError {
    StubModel::new("broken")
        .failing_first(1)
        .complete("x")
        .unwrap_err()
}

#[tokio::test]
async fn an_error_mid_stream_fails_the_call_with_the_usage_so_far() {
    let capture = Capture::start();
    let items = vec![
        Ok(Delta {
            text: "Hello",
            usage: ChunkUsage::anthropic(Some(400), Some(0), Some(0), Some(1)),
        }),
        Ok(Delta {
            text: " world",
            usage: ChunkUsage::none().with_output(12),
        }),
        Err(broken()),
    ];
    let mut stream = replay(items).await.unwrap();
    assert_eq!(stream.next().await.unwrap().unwrap().text, "Hello");
    stream.next().await.unwrap().unwrap();
    assert!(
        stream.next().await.unwrap().is_err(),
        "the error is passed on"
    );
    assert!(stream.next().await.is_none());

    let spans = capture.finished_spans();
    let span = one(&spans, "chat claude-sonnet-4-5");
    assert!(matches!(&span.status, SpanStatus::Error { message } if message.contains("broken")));
    let record = &capture.cost_records()[0];
    assert_eq!(record.usage, TokenUsage::new(400, 12));
    assert!(record.cost.is_some());
}

#[tokio::test]
async fn a_stream_without_usage_is_flagged_counted_and_warned_once_never_zero() {
    let capture = Capture::start();
    let (logs, _logs) = logs::capture_logs();
    let model = StubModel::new("stub");
    for _ in 0..2 {
        let stream = ask_stream(&model, "no usage here", StubStreamUsage::None)
            .await
            .unwrap();
        assert!(stream.count().await > 0);
    }
    let spans = capture.finished_spans();
    let calls: Vec<_> = spans
        .iter()
        .filter(|s| s.name == "chat gpt-4o-mini")
        .collect();
    assert_eq!(calls.len(), 2);
    for call in calls {
        assert_eq!(call.status, SpanStatus::Ok);
        assert_eq!(
            call.attribute("flujo.usage.missing"),
            Some(AttributeValue::Bool(true))
        );
        assert!(call.attribute("gen_ai.usage.input_tokens").is_none());
    }
    assert_eq!(
        capture.counter(
            "flujo_model_usage_missing_total",
            &[("model", "gpt-4o-mini")]
        ),
        2
    );
    let records = capture.cost_records();
    assert!(
        records.iter().all(|r| r.cost.is_none()),
        "unknown, never $0: {records:?}"
    );
    assert_eq!(
        logs.count(
            tracing::Level::WARN,
            "a streamed model call ended without its chunks reporting usage: it is recorded \
             with flujo.usage.missing and no cost (not $0). For OpenAI-style APIs set \
             `stream_options.include_usage`; check the chunk type's StreamChunk::chunk_usage \
             (said once per function; counted in flujo_model_usage_missing_total)"
        ),
        1,
        "said once per call site: {:?}",
        logs.lines()
    );
}

#[tokio::test]
async fn tokens_seen_mid_stream_count_against_the_run_before_the_stream_ends() {
    let _capture = Capture::start();
    let model = StubModel::new("stub");
    let limits = UsageLimits::new().total_tokens_limit(1_000);
    limits
        .run_async(async {
            let mut first = ask_stream(&model, "a long answer", StubStreamUsage::Split)
                .await
                .unwrap();
            // The first chunk reports the 1,200-token prompt: the run is over its limit now,
            // while the stream is still open.
            first.next().await.unwrap().unwrap();
            let second = ask_stream(&model, "in parallel", StubStreamUsage::Split).await;
            assert!(
                matches!(&second, Err(AskError::Refused(refused)) if refused.to_string().contains("token")),
                "a parallel call in the same run sees the streamed tokens: {:?}",
                second.as_ref().err()
            );
            while first.next().await.is_some() {}
        })
        .await;
}

// With `#[pipeline_step]` on the same function (either order), and in a pipeline.

#[pipeline_step]
#[track_cost(model = "gpt-4o-mini")]
async fn draft_stream(
    model: &StubModel,
    prompt: String,
) -> Result<impl Stream<Item = Result<StubChunk, StubError>> + use<>, AskError> {
    Ok(model.chat_stream(&prompt, StubStreamUsage::LastChunk)?)
}

#[track_cost(model = "gpt-4o-mini")]
#[pipeline_step(name = "outline_stream")]
async fn outline_stream(
    model: &StubModel,
    prompt: String,
) -> Result<impl Stream<Item = Result<StubChunk, StubError>> + use<>, AskError> {
    Ok(model.chat_stream(&prompt, StubStreamUsage::LastChunk)?)
}

#[tokio::test]
async fn a_streaming_step_in_either_attribute_order_parents_its_model_call() {
    let capture = Capture::start();
    let model = StubModel::new("stub");
    assert!(
        draft_stream(&model, "a".into())
            .await
            .unwrap()
            .count()
            .await
            > 0
    );
    assert!(
        outline_stream(&model, "b".into())
            .await
            .unwrap()
            .count()
            .await
            > 0
    );
    let spans = capture.finished_spans();
    for step in ["draft_stream", "outline_stream"] {
        let step = one(&spans, step);
        let calls: Vec<_> = spans
            .iter()
            .filter(|s| s.name == "chat gpt-4o-mini" && s.parent_span_id == Some(step.span_id))
            .collect();
        assert_eq!(calls.len(), 1, "{}'s model call", step.name);
        assert!(calls[0].attribute("gen_ai.usage.input_tokens").is_some());
        assert_eq!(step.status, SpanStatus::Ok);
        assert!(
            step.end_time() >= calls[0].end_time(),
            "the step lasts until its stream ends"
        );
    }
}

/// A synchronous step handing back its stream, the stream boxed into a named type.
#[pipeline_step(retries = 1, backoff_ms = 1)]
#[track_cost(model = "claude-sonnet-4-5", stream)]
fn relay(items: Vec<Result<Delta, StubError>>) -> Result<Deltas, AskError> {
    Ok(deltas(items))
}

#[test]
fn a_streaming_step_ends_with_its_stream_failed_or_cancelled() {
    let capture = Capture::start();
    let items = || {
        vec![
            Ok(Delta {
                text: "a",
                usage: ChunkUsage::none().with_input(10).with_output(1),
            }),
            Err(broken()),
        ]
    };
    let failed: Vec<_> = futures::executor::block_on_stream(relay(items()).unwrap()).collect();
    assert_eq!(failed.len(), 2);
    let mut dropped = relay(items()).unwrap();
    futures::executor::block_on(dropped.next())
        .unwrap()
        .unwrap();
    drop(dropped);

    let spans = capture.finished_spans();
    let steps: Vec<_> = spans.iter().filter(|s| s.name == "relay").collect();
    assert_eq!(steps.len(), 2);
    assert!(
        matches!(&steps[0].status, SpanStatus::Error { message } if message.contains("broken")),
        "a chunk error fails the step: {:?}",
        steps[0].status
    );
    assert_eq!(
        steps[1].attribute("flujo.step.cancelled"),
        Some(AttributeValue::Bool(true)),
        "a dropped stream cancels the step"
    );
    for step in steps {
        let call = spans
            .iter()
            .find(|s| s.parent_span_id == Some(step.span_id))
            .expect("the model call inside the step");
        assert_eq!(call.name, "chat claude-sonnet-4-5");
    }
    assert!(
        capture
            .cost_records()
            .iter()
            .all(|r| r.usage == TokenUsage::new(10, 1))
    );
}

static MODEL: std::sync::LazyLock<StubModel> = std::sync::LazyLock::new(|| StubModel::new("stub"));

/// A step that streams its answer (to a user, say) and hands the whole text on.
#[pipeline_step]
async fn plan(topic: String) -> Result<String, AskError> {
    let mut stream = ask_stream(&MODEL, &topic, StubStreamUsage::LastChunk).await?;
    let mut text = String::new();
    while let Some(chunk) = stream.next().await {
        text.push_str(&chunk?.text);
    }
    Ok(text)
}

#[pipeline_step]
fn polish(text: String) -> String {
    text.trim().to_owned()
}

pipeline! {
    pipeline streamed_essay(topic: String) -> String {
        plan.await? >> polish
    }
}

#[tokio::test]
async fn a_streamed_call_in_a_pipeline_is_in_its_step_result() {
    let _capture = Capture::start();
    let result = Flujo::new(streamed_essay::new())
        .run_async("streams".to_owned())
        .await;
    assert!(result.output.unwrap().contains("streams"));
    let plan = &result.step_history[0];
    assert!(
        plan.tokens.input > 0,
        "the streamed call's tokens: {plan:?}"
    );
    assert!(plan.cost > flujo::Usd::ZERO);
    assert_eq!(result.total_tokens, plan.tokens);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tracked_stream_is_send_and_can_be_read_on_another_task() {
    let capture = Capture::start();
    let stream = ask_stream(&MODEL, "across tasks", StubStreamUsage::LastChunk)
        .await
        .unwrap();
    let chunks = tokio::spawn(stream.count()).await.unwrap();
    assert!(chunks > 1);
    let spans = capture.finished_spans();
    assert_eq!(one(&spans, "chat gpt-4o-mini").status, SpanStatus::Ok);
    assert!(capture.cost_records()[0].cost.is_some());
}
