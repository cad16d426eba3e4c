//! Retries made for rate-limited model APIs, through the public API: a provider's
//! `Retry-After` replaces the backoff, an error that cannot succeed is attempted once (the
//! fallback runs), `retry_if` judges errors without `RetryAdvice`, `retry_for_ms` cuts the
//! waits, and each case's span, event, metric and log line say why.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use flujo::export::{AttributeValue, FinishedSpan};
use flujo::quality::ValidationError;
use flujo::testing::{Capture, StubError, StubModel};
use flujo::{RetryAdvice, StepTimeout, pipeline_step};
use reqwest::StatusCode;
use reqwest::header::HeaderMap;

#[path = "support/logs.rs"]
mod logs;
#[path = "support/stub_provider.rs"]
mod stub_provider;
use logs::capture_logs;
use stub_provider::StubProvider;

/// A provider's failure as the application keeps it: its status and headers.
#[derive(Debug, thiserror::Error)]
#[error("HTTP {status}")]
struct ApiError {
    status: StatusCode,
    headers: HeaderMap,
}

impl RetryAdvice for ApiError {
    fn retry_after(&self) -> Option<Duration> {
        flujo::retry_after(&self.headers)
    }
    fn is_retryable(&self) -> bool {
        flujo::retryable_response(self.status, &self.headers)
    }
}

/// One chat request: the body of a 2xx, else the failure.
fn post(url: &str) -> Result<String, ApiError> {
    let response = reqwest::blocking::Client::new()
        .post(url)
        .send()
        .expect("the stub provider answers");
    if response.status().is_success() {
        Ok(response.text().unwrap())
    } else {
        Err(ApiError {
            status: response.status(),
            headers: response.headers().clone(),
        })
    }
}

#[pipeline_step(retries = 3, backoff = "fixed", backoff_ms = 5000)]
fn ask(url: &str) -> Result<String, ApiError> {
    post(url)
}

fn one<'a>(spans: &'a [FinishedSpan], name: &str) -> &'a FinishedSpan {
    let found: Vec<_> = spans.iter().filter(|s| s.name == name).collect();
    assert_eq!(found.len(), 1, "one `{name}` span in {spans:#?}");
    found[0]
}

/// The attributes of each `flujo.retry` event of `span`, by key.
fn retries(span: &FinishedSpan) -> Vec<BTreeMap<String, AttributeValue>> {
    span.events()
        .iter()
        .filter(|event| event.name == "flujo.retry")
        .map(|event| {
            event
                .attributes
                .iter()
                .map(|(key, value)| (key.to_string(), value.clone()))
                .collect()
        })
        .collect()
}

fn text(value: &str) -> AttributeValue {
    AttributeValue::String(value.to_owned().into())
}

#[test]
fn a_429_with_retry_after_1_waits_a_second_not_the_backoff() {
    let capture = Capture::start();
    let (logs, _logs) = capture_logs();
    let provider = StubProvider::start(vec![
        (
            "429 Too Many Requests",
            "retry-after: 1\r\n",
            r#"{"error":{"type":"rate_limit_error"}}"#,
        ),
        ("200 OK", "", r#"{"answer":"ok"}"#),
    ]);
    assert_eq!(ask(&provider.base).unwrap(), r#"{"answer":"ok"}"#);

    let arrivals = provider.arrivals();
    let waited = arrivals[1] - arrivals[0];
    assert!(
        waited >= Duration::from_secs(1) && waited < Duration::from_millis(2_500),
        "the provider's 1 s, not the 5 s backoff: {waited:?}"
    );
    let spans = capture.finished_spans();
    let span = one(&spans, "ask");
    assert_eq!(
        span.attribute("flujo.step.attempts"),
        Some(AttributeValue::Int(2))
    );
    let events = retries(span);
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["flujo.retry.reason"], text("retry_after"));
    assert_eq!(
        events[0]["flujo.retry.retry_after"],
        AttributeValue::Bool(true)
    );
    assert_eq!(
        events[0]["flujo.retry.delay_ms"],
        AttributeValue::Int(1_000)
    );
    assert_eq!(
        span.attribute("flujo.retry.stopped_by"),
        None,
        "it succeeded"
    );
    assert_eq!(
        capture.counter(
            "flujo_step_retries_total",
            &[("step", "ask"), ("reason", "retry_after")]
        ),
        1
    );
    let warned = logs.fields("step attempt failed; retrying");
    assert_eq!(warned.len(), 1);
    assert_eq!(warned[0]["reason"], "retry_after");
    assert_eq!(warned[0]["delay_ms"], "1000");
    assert_eq!(warned[0]["retry_after"], "true");
}

fn answer_from_cache(url: &str) -> Result<String, ApiError> {
    let _ = url;
    Ok("from the cache".to_owned())
}

#[pipeline_step(retries = 3, backoff_ms = 1, fallback = answer_from_cache)]
fn ask_too_much(url: &str) -> Result<String, ApiError> {
    post(url)
}

#[test]
fn a_400_is_attempted_once_and_the_fallback_runs() {
    let capture = Capture::start();
    let (logs, _logs) = capture_logs();
    let provider = StubProvider::start(vec![(
        "400 Bad Request",
        "",
        r#"{"error":{"type":"invalid_request_error","code":"context_length_exceeded"}}"#,
    )]);
    assert_eq!(ask_too_much(&provider.base).unwrap(), "from the cache");
    assert_eq!(provider.arrivals().len(), 1, "attempted once");

    let spans = capture.finished_spans();
    let span = one(&spans, "ask_too_much");
    assert!(retries(span).is_empty());
    assert_eq!(
        span.attribute("flujo.retry.stopped_by"),
        Some(text("not_retryable"))
    );
    assert!(
        span.events()
            .iter()
            .any(|event| event.name == "flujo.fallback")
    );
    assert_eq!(
        capture.counter("flujo_step_fallbacks_total", &[("step", "ask_too_much")]),
        1
    );
    for reason in ["retry_after", "error", "timeout", "invalid"] {
        assert_eq!(
            capture.counter(
                "flujo_step_retries_total",
                &[("step", "ask_too_much"), ("reason", reason)]
            ),
            0
        );
    }
    let warned = logs.fields("step failed; running its fallback");
    assert_eq!(warned.len(), 1);
    assert_eq!(warned[0]["stopped_by"], "not_retryable");
    assert_eq!(logs.count(tracing::Level::ERROR, "step failed"), 0);
}

static ALWAYS_DOWN: AtomicU32 = AtomicU32::new(0);

#[pipeline_step(retries = 10, backoff = "fixed", backoff_ms = 400, retry_for_ms = 1000)]
fn always_down() -> Result<(), StubError> {
    ALWAYS_DOWN.fetch_add(1, Ordering::SeqCst);
    StubModel::new("down")
        .failing_with_status(503)
        .failing_first(1)
        .complete("x")
        .map(drop)
}

#[test]
fn a_deadline_cuts_the_waits_and_ends_the_attempts() {
    let capture = Capture::start();
    let (logs, _logs) = capture_logs();
    let started = Instant::now();
    let error = always_down().unwrap_err();
    let elapsed = started.elapsed();
    assert_eq!(error.status, 503, "the last error");
    // Attempts at 0, 400 and 800 ms; the third wait is cut to the 200 ms left, the attempt at
    // 1 s is the last: not the 10 retries' 4 s.
    assert!(
        elapsed >= Duration::from_secs(1) && elapsed < Duration::from_millis(2_000),
        "{elapsed:?}"
    );
    let attempts = ALWAYS_DOWN.load(Ordering::SeqCst);
    assert!((3..=4).contains(&attempts), "{attempts} attempts");

    let spans = capture.finished_spans();
    let span = one(&spans, "always_down");
    assert_eq!(
        span.attribute("flujo.retry.stopped_by"),
        Some(text("deadline"))
    );
    let events = retries(span);
    assert_eq!(events.len() as u32, attempts - 1);
    assert!(
        events
            .iter()
            .all(|event| event["flujo.retry.reason"] == text("error"))
    );
    let AttributeValue::Int(last_wait) = events.last().unwrap()["flujo.retry.delay_ms"] else {
        panic!("a delay");
    };
    assert!(
        last_wait < 400,
        "the last wait was cut to what was left: {last_wait} ms"
    );
    assert_eq!(
        capture.counter(
            "flujo_step_retries_total",
            &[("step", "always_down"), ("reason", "error")]
        ),
        u64::from(attempts - 1)
    );
    let failed = logs.fields("step failed");
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0]["stopped_by"], "deadline");
}

static FLAKY_DISK: AtomicU32 = AtomicU32::new(0);

/// An error type the application cannot implement `RetryAdvice` for.
fn is_transient(error: &std::io::Error) -> bool {
    error.kind() == std::io::ErrorKind::TimedOut
}

#[pipeline_step(retries = 5, backoff_ms = 1, retry_if = is_transient)]
fn read_prompt(kind: std::io::ErrorKind) -> Result<String, std::io::Error> {
    let attempt = FLAKY_DISK.fetch_add(1, Ordering::SeqCst);
    match (kind, attempt) {
        (std::io::ErrorKind::TimedOut, 0) => Err(kind.into()),
        (std::io::ErrorKind::TimedOut, _) => Ok("prompt".to_owned()),
        _ => Err(kind.into()),
    }
}

#[test]
fn retry_if_judges_errors_that_have_no_advice() {
    let capture = Capture::start();
    assert_eq!(read_prompt(std::io::ErrorKind::TimedOut).unwrap(), "prompt");
    assert_eq!(
        FLAKY_DISK.swap(0, Ordering::SeqCst),
        2,
        "a timeout is retried"
    );
    assert!(read_prompt(std::io::ErrorKind::PermissionDenied).is_err());
    assert_eq!(
        FLAKY_DISK.load(Ordering::SeqCst),
        1,
        "a denial is attempted once"
    );
    let spans = capture.spans_named("read_prompt");
    assert_eq!(spans.len(), 2);
    assert_eq!(
        spans[1].attribute("flujo.retry.stopped_by"),
        Some(text("not_retryable"))
    );
}

/// An application's error: the provider's, or a timeout, or a rejected answer.
#[derive(Debug, thiserror::Error)]
enum AskError {
    #[error(transparent)]
    Model(#[from] StubError),
    #[error(transparent)]
    Timeout(#[from] StepTimeout),
    #[error(transparent)]
    Invalid(#[from] ValidationError),
}

impl RetryAdvice for AskError {
    fn retry_after(&self) -> Option<Duration> {
        match self {
            AskError::Model(error) => error.retry_after(),
            _ => None,
        }
    }
    fn is_retryable(&self) -> bool {
        match self {
            AskError::Model(error) => error.is_retryable(),
            _ => true,
        }
    }
}

static SLOW_FIRST: AtomicU32 = AtomicU32::new(0);

#[pipeline_step(retries = 1, backoff_ms = 1, timeout_ms = 50)]
async fn slow_first() -> Result<&'static str, AskError> {
    if SLOW_FIRST.fetch_add(1, Ordering::SeqCst) == 0 {
        tokio::time::sleep(Duration::from_secs(30)).await;
    }
    Ok("in time")
}

fn not_empty(answer: &str) -> Result<(), &'static str> {
    if answer.is_empty() {
        Err("empty")
    } else {
        Ok(())
    }
}

static BLANK_FIRST: AtomicU32 = AtomicU32::new(0);

#[pipeline_step(retries = 1, backoff_ms = 1, validate = not_empty)]
fn blank_first() -> Result<String, AskError> {
    Ok(match BLANK_FIRST.fetch_add(1, Ordering::SeqCst) {
        0 => String::new(),
        _ => "answer".to_owned(),
    })
}

#[pipeline_step(retries = 1, backoff_ms = 1)]
fn rate_limited(model: &StubModel) -> Result<String, AskError> {
    Ok(model.complete("hello")?)
}

#[tokio::test]
async fn each_retry_says_its_reason() {
    let capture = Capture::start();
    assert_eq!(slow_first().await.unwrap(), "in time");
    assert_eq!(blank_first().unwrap(), "answer");
    let model = StubModel::new("stub")
        .failing_first(1)
        .with_retry_after(Duration::from_millis(20));
    assert!(rate_limited(&model).is_ok());
    for (step, reason) in [
        ("slow_first", "timeout"),
        ("blank_first", "invalid"),
        ("rate_limited", "retry_after"),
    ] {
        assert_eq!(
            capture.counter(
                "flujo_step_retries_total",
                &[("step", step), ("reason", reason)]
            ),
            1,
            "{step}"
        );
        let span = &capture.spans_named(step)[0];
        assert_eq!(
            retries(span)[0]["flujo.retry.reason"],
            text(reason),
            "{step}"
        );
    }
}

#[test]
fn a_stub_model_failing_with_a_400_is_not_retried() {
    let model = StubModel::new("strict")
        .failing_with_status(400)
        .failing_first(3);
    let error = rate_limited(&model).unwrap_err();
    assert_eq!(model.calls(), 1);
    assert_eq!(error.to_string(), "strict: HTTP 400 on call 1");
}
