//! `#[pipeline_step(timeout_ms = N)]` and `#[pipeline_step(fallback = path)]` through the
//! public API: what the caller gets, the spans, events, counters and log lines, and what a
//! pipeline's `StepResult` says.

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use flujo::export::{AttributeValue, FinishedSpan, SpanStatus};
use flujo::testing::{Capture, StubCompletion, StubError, StubModel};
use flujo::{Flujo, StepTimeout, UsageLimitExceeded, pipeline, pipeline_step, track_cost};

#[path = "support/logs.rs"]
mod logs;
use logs::capture_logs;

#[derive(Debug, thiserror::Error)]
enum AskError {
    #[error(transparent)]
    Model(#[from] StubError),
    #[error(transparent)]
    Timeout(#[from] StepTimeout),
    #[error(transparent)]
    Refused(#[from] UsageLimitExceeded),
}

/// A model call that takes `latency` (cancelled with its step when that times out).
#[track_cost(model = "gpt-4o")]
async fn chat(model: &StubModel, prompt: &str) -> Result<StubCompletion, AskError> {
    Ok(model.chat_async(prompt).await?)
}

#[track_cost(model = "gpt-4o-mini")]
async fn chat_mini(model: &StubModel, prompt: &str) -> Result<StubCompletion, AskError> {
    Ok(model.chat_async(prompt).await?)
}

#[pipeline_step(timeout_ms = 50)]
async fn answer(model: &StubModel, prompt: &str) -> Result<String, AskError> {
    Ok(chat(model, prompt).await?.text)
}

fn one<'a>(spans: &'a [FinishedSpan], name: &str) -> &'a FinishedSpan {
    let found: Vec<_> = spans.iter().filter(|s| s.name == name).collect();
    assert_eq!(found.len(), 1, "one `{name}` span in {spans:#?}");
    found[0]
}

fn string(span: &FinishedSpan, key: &str) -> String {
    match span.attribute(key) {
        Some(AttributeValue::String(value)) => value.into_owned(),
        other => panic!("{key} on {}: {other:?}", span.name),
    }
}

#[tokio::test]
async fn an_attempt_past_its_timeout_is_cancelled_and_the_caller_can_match_the_timeout() {
    let capture = Capture::start();
    let (logs, _logs) = capture_logs();
    let slow = StubModel::new("slow").with_latency(Duration::from_secs(30));
    let started = Instant::now();

    let error = answer(&slow, "hello").await.unwrap_err();

    assert!(
        started.elapsed() < Duration::from_secs(10),
        "cancelled, not waited"
    );
    let AskError::Timeout(timeout) = &error else {
        panic!("a timeout, got {error:?}");
    };
    assert_eq!(
        (timeout.step(), timeout.timeout(), timeout.attempt()),
        ("answer", Duration::from_millis(50), 1)
    );
    assert_eq!(
        error.to_string(),
        "step `answer` timed out after 50 ms (attempt 1)"
    );

    let spans = capture.finished_spans();
    let step = one(&spans, "answer");
    assert!(matches!(&step.status, SpanStatus::Error { message } if message.contains("timed out")));
    assert_eq!(string(step, "error.type"), "timeout");
    let call = one(&spans, "chat gpt-4o");
    assert_eq!(call.parent_span_id, Some(step.span_id));
    assert_eq!(
        call.status,
        SpanStatus::Unset,
        "the model call was cancelled"
    );
    assert_eq!(
        capture.counter(
            "flujo_model_requests_total",
            &[
                ("model", "gpt-4o"),
                ("provider", "openai"),
                ("status", "cancelled")
            ]
        ),
        1
    );
    assert_eq!(
        capture.counter("flujo_step_timeouts_total", &[("step", "answer")]),
        1
    );
    assert_eq!(
        capture.counter(
            "flujo_step_calls_total",
            &[("step", "answer"), ("status", "error")]
        ),
        1
    );
    assert_eq!(
        logs.count(
            tracing::Level::ERROR,
            "step attempt timed out and was cancelled"
        ),
        1,
        "one ERROR line for the timeout: {:?}",
        logs.lines()
    );
    assert_eq!(logs.count(tracing::Level::ERROR, "step failed"), 0);
}

#[tokio::test]
async fn an_attempt_within_its_timeout_is_not_touched() {
    let capture = Capture::start();
    let quick = StubModel::new("quick").with_latency(Duration::from_millis(1));
    assert!(answer(&quick, "hello").await.unwrap().contains("hello"));
    let spans = capture.finished_spans();
    assert_eq!(one(&spans, "answer").status, SpanStatus::Ok);
    assert_eq!(
        capture.counter("flujo_step_timeouts_total", &[("step", "answer")]),
        0
    );
}

static SLOW_FIRST: AtomicU32 = AtomicU32::new(0);

/// The first attempt hangs, the next ones answer at once.
#[pipeline_step(retries = 2, backoff_ms = 1, timeout_ms = 50)]
async fn hangs_once(prompt: String) -> Result<String, AskError> {
    if SLOW_FIRST.fetch_add(1, Ordering::SeqCst) == 0 {
        tokio::time::sleep(Duration::from_secs(30)).await;
    }
    Ok(prompt)
}

/// Every attempt hangs.
#[pipeline_step(retries = 1, backoff_ms = 1, timeout_ms = 30)]
async fn always_hangs(prompt: String) -> Result<String, AskError> {
    tokio::time::sleep(Duration::from_secs(30)).await;
    Ok(prompt)
}

#[tokio::test]
async fn each_attempt_has_its_own_timeout_and_a_timed_out_attempt_is_retried() {
    let capture = Capture::start();
    let (logs, _logs) = capture_logs();
    SLOW_FIRST.store(0, Ordering::SeqCst);

    assert_eq!(hangs_once("again".into()).await.unwrap(), "again");

    let spans = capture.finished_spans();
    let step = one(&spans, "hangs_once");
    assert_eq!(step.status, SpanStatus::Ok);
    assert_eq!(
        step.attribute("flujo.step.attempts"),
        Some(AttributeValue::Int(2))
    );
    let retry = step
        .events()
        .iter()
        .find(|e| e.name == "flujo.retry")
        .expect("a retry event");
    assert!(
        retry
            .attributes
            .iter()
            .any(|(k, v)| k == "error.type" && *v == AttributeValue::String("timeout".into())),
        "{retry:?}"
    );
    assert_eq!(
        capture.counter("flujo_step_timeouts_total", &[("step", "hangs_once")]),
        1
    );
    assert_eq!(
        capture.counter(
            "flujo_step_retries_total",
            &[("step", "hangs_once"), ("reason", "timeout")]
        ),
        1
    );
    assert_eq!(
        logs.count(
            tracing::Level::ERROR,
            "step attempt timed out and was cancelled"
        ),
        1
    );
    assert_eq!(
        logs.count(tracing::Level::WARN, "step attempt failed; retrying"),
        1
    );
}

#[tokio::test]
async fn a_step_whose_every_attempt_times_out_fails_with_the_last_timeout() {
    let capture = Capture::start();
    let error = always_hangs("x".into()).await.unwrap_err();
    let AskError::Timeout(timeout) = error else {
        panic!("a timeout, got {error:?}");
    };
    assert_eq!(timeout.attempt(), 2, "retried once, then given up");
    let spans = capture.finished_spans();
    let step = one(&spans, "always_hangs");
    assert_eq!(string(step, "error.type"), "timeout");
    assert_eq!(
        step.attribute("flujo.step.attempts"),
        Some(AttributeValue::Int(2))
    );
    assert_eq!(
        capture.counter("flujo_step_timeouts_total", &[("step", "always_hangs")]),
        2
    );
}

// Fallbacks: a step that fails over to a cheaper model in one line.

/// The fallback: another step, with its own model call.
#[pipeline_step]
async fn draft_with_mini(model: &StubModel, prompt: String) -> Result<String, AskError> {
    Ok(chat_mini(model, &prompt).await?.text)
}

#[pipeline_step(retries = 1, backoff_ms = 1, fallback = draft_with_mini)]
async fn draft(model: &StubModel, prompt: String) -> Result<String, AskError> {
    Ok(chat(model, &prompt).await?.text)
}

#[pipeline_step(timeout_ms = 30, fallback = draft_with_mini)]
async fn draft_in_time(model: &StubModel, prompt: String) -> Result<String, AskError> {
    Ok(chat(model, &prompt).await?.text)
}

fn event_attribute(span: &FinishedSpan, event: &str, key: &str) -> Option<AttributeValue> {
    span.events()
        .iter()
        .find(|e| e.name == event)?
        .attributes
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.clone())
}

#[tokio::test]
async fn the_fallback_runs_after_the_retries_with_the_same_arguments_as_a_child() {
    let capture = Capture::start();
    let (logs, _logs) = capture_logs();
    // Fails both attempts of `draft`, then answers the fallback.
    let model = StubModel::new("flaky").failing_first(2);

    let text = draft(&model, "write a haiku".into()).await.unwrap();

    assert!(text.contains("write a haiku"), "{text}");
    assert_eq!(model.calls(), 3);
    let spans = capture.finished_spans();
    let step = one(&spans, "draft");
    assert_eq!(
        step.status,
        SpanStatus::Ok,
        "the fallback's value is the step's"
    );
    assert_eq!(
        step.attribute("flujo.step.attempts"),
        Some(AttributeValue::Int(2))
    );
    assert!(
        matches!(
            event_attribute(step, "flujo.fallback", "flujo.fallback.error"),
            Some(AttributeValue::String(message)) if message.contains("flaky")
        ),
        "{:?}",
        step.events()
    );
    let fallback = one(&spans, "draft_with_mini");
    assert_eq!(fallback.parent_span_id, Some(step.span_id));
    let mini = one(&spans, "chat gpt-4o-mini");
    assert_eq!(mini.parent_span_id, Some(fallback.span_id));
    assert_eq!(
        capture.counter("flujo_step_fallbacks_total", &[("step", "draft")]),
        1
    );
    assert_eq!(
        capture.counter(
            "flujo_step_calls_total",
            &[("step", "draft"), ("status", "ok")]
        ),
        1
    );
    assert_eq!(
        logs.count(tracing::Level::WARN, "step failed; running its fallback"),
        1
    );
    assert_eq!(logs.count(tracing::Level::ERROR, "step failed"), 0);
}

#[tokio::test]
async fn a_timed_out_step_falls_back() {
    let capture = Capture::start();
    let slow = StubModel::new("slow").with_latency(Duration::from_millis(400));
    let started = Instant::now();
    let text = draft_in_time(&slow, "summarise".into()).await.unwrap();
    assert!(text.contains("summarise"));
    // The timed-out attempt is not waited for; the fallback takes the same 400 ms.
    assert!(started.elapsed() < Duration::from_millis(800 - 30));
    let spans = capture.finished_spans();
    let step = one(&spans, "draft_in_time");
    assert_eq!(step.status, SpanStatus::Ok);
    assert_eq!(
        event_attribute(step, "flujo.fallback", "error.type"),
        Some(AttributeValue::String("timeout".into()))
    );
    assert_eq!(one(&spans, "chat gpt-4o").status, SpanStatus::Unset);
    assert_eq!(
        one(&spans, "draft_with_mini").parent_span_id,
        Some(step.span_id)
    );
    assert_eq!(
        capture.counter("flujo_step_timeouts_total", &[("step", "draft_in_time")]),
        1
    );
    assert_eq!(
        capture.counter("flujo_step_fallbacks_total", &[("step", "draft_in_time")]),
        1
    );
}

#[tokio::test]
async fn a_fallback_that_fails_too_fails_the_step_with_its_error() {
    let capture = Capture::start();
    let (logs, _logs) = capture_logs();
    let down = StubModel::new("down").failing_first(10);
    let error = draft(&down, "anything".into()).await.unwrap_err();
    assert!(
        matches!(&error, AskError::Model(e) if e.to_string().contains("call 3")),
        "the fallback's error: {error}"
    );
    let spans = capture.finished_spans();
    let step = one(&spans, "draft");
    assert!(
        matches!(&step.status, SpanStatus::Error { message } if message.contains("call 3")),
        "{:?}",
        step.status
    );
    assert!(one(&spans, "draft_with_mini").status.is_error());
    assert_eq!(
        capture.counter(
            "flujo_step_calls_total",
            &[("step", "draft"), ("status", "error")]
        ),
        1
    );
    assert_eq!(
        logs.count(tracing::Level::WARN, "step failed; running its fallback"),
        1
    );
    // The fallback step's own failure and then the step's.
    assert_eq!(logs.count(tracing::Level::ERROR, "step failed"), 2);
}

// Sync steps and methods: the fallback gets the arguments (cloned for the attempt).

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct Unavailable(String);

#[pipeline_step(fallback = cached_answer)]
fn live_answer(question: String, attempts: &mut u32) -> Result<String, Unavailable> {
    *attempts += 1;
    Err(Unavailable(format!("no live answer to {question}")))
}

fn cached_answer(question: String, attempts: &mut u32) -> Result<String, Unavailable> {
    *attempts += 1;
    Ok(format!("cached: {question}"))
}

struct Writer {
    model: StubModel,
    cheap: StubModel,
}

impl Writer {
    #[pipeline_step(fallback = Self::write_cheaply)]
    async fn write(&self, topic: &str) -> Result<String, AskError> {
        Ok(chat(&self.model, topic).await?.text)
    }

    #[pipeline_step]
    async fn write_cheaply(&self, topic: &str) -> Result<String, AskError> {
        Ok(chat_mini(&self.cheap, topic).await?.text)
    }
}

#[tokio::test]
async fn sync_steps_and_methods_fall_back_with_their_arguments() {
    let capture = Capture::start();
    let mut attempts = 0;
    assert_eq!(
        live_answer("why?".into(), &mut attempts).unwrap(),
        "cached: why?"
    );
    assert_eq!(attempts, 2, "the step and its fallback got the same `&mut`");

    let writer = Writer {
        model: StubModel::new("big").failing_first(1),
        cheap: StubModel::new("small"),
    };
    assert!(writer.write("rust").await.unwrap().starts_with("[small]"));

    let spans = capture.finished_spans();
    assert_eq!(one(&spans, "live_answer").status, SpanStatus::Ok);
    let write = one(&spans, "write");
    assert_eq!(
        one(&spans, "write_cheaply").parent_span_id,
        Some(write.span_id)
    );
}

// In a pipeline: what `StepResult` says.

#[pipeline_step(retries = 1, backoff_ms = 1, timeout_ms = 40, fallback = outline_from_template)]
async fn outline(topic: String) -> Result<String, AskError> {
    tokio::time::sleep(Duration::from_secs(30)).await;
    Ok(topic)
}

async fn outline_from_template(topic: String) -> Result<String, AskError> {
    Ok(format!("1. {topic}"))
}

#[pipeline_step]
fn polish(outline: String) -> String {
    outline.to_uppercase()
}

pipeline! {
    pipeline essay(topic: String) -> String {
        outline.await? >> polish
    }
}

#[tokio::test]
async fn a_pipeline_step_result_counts_its_timeouts_and_fallbacks() {
    let _capture = Capture::start();
    let result = Flujo::new(essay::new()).run_async("rust".to_owned()).await;
    assert_eq!(result.output.unwrap(), "1. RUST");
    let outline = &result.step_history[0];
    assert_eq!(outline.name, "outline");
    assert!(outline.success);
    assert_eq!(outline.attempts, 2);
    assert_eq!(outline.timeouts, 2);
    assert_eq!(outline.fallbacks, 1);
    let polish = &result.step_history[1];
    assert_eq!((polish.timeouts, polish.fallbacks), (0, 0));
}

// A fallback that never finishes: dropping the step then still records it.

#[pipeline_step(fallback = wait_forever)]
async fn gives_up(model: &StubModel) -> Result<String, AskError> {
    Ok(model.complete_async("x").await?)
}

async fn wait_forever(_: &StubModel) -> Result<String, AskError> {
    std::future::pending().await
}

#[tokio::test]
async fn a_step_dropped_while_its_fallback_runs_is_recorded_as_cancelled() {
    let capture = Capture::start();
    let down = StubModel::new("down").failing_first(1);
    let outcome = tokio::time::timeout(Duration::from_millis(50), gives_up(&down)).await;
    assert!(outcome.is_err(), "the fallback never answers");
    let spans = capture.finished_spans();
    let step = one(&spans, "gives_up");
    assert_eq!(
        step.attribute("flujo.step.cancelled"),
        Some(AttributeValue::Bool(true))
    );
    assert_eq!(
        capture.counter(
            "flujo_step_calls_total",
            &[("step", "gives_up"), ("status", "cancelled")]
        ),
        1
    );
}
