//! `flujo::RetryAdvice`: the retry loop waits what the provider asked and does not retry what
//! cannot succeed (the fallback still runs).

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use flujo::export::AttributeValue;
use flujo::testing::Capture;
use flujo::{RetryAdvice, pipeline_step};

/// A provider's error as an HTTP client gives it: its status and `Retry-After`.
#[derive(Debug, thiserror::Error)]
#[error("HTTP {status}")]
struct ApiError {
    status: u16,
    retry_after: Option<Duration>,
}

impl RetryAdvice for ApiError {
    fn retry_after(&self) -> Option<Duration> {
        self.retry_after
    }
    fn is_retryable(&self) -> bool {
        self.status == 429 || self.status >= 500
    }
}

static RATE_LIMITED: AtomicU32 = AtomicU32::new(0);

/// Answers 429 with `retry-after: 0.3 s` once, then 200.
#[pipeline_step(retries = 2, backoff = "fixed", backoff_ms = 5)]
fn rate_limited() -> Result<&'static str, ApiError> {
    if RATE_LIMITED.fetch_add(1, Ordering::SeqCst) == 0 {
        Err(ApiError {
            status: 429,
            retry_after: Some(Duration::from_millis(300)),
        })
    } else {
        Ok("answer")
    }
}

#[test]
fn a_retry_after_replaces_the_backoff() {
    let capture = Capture::start();
    let started = Instant::now();
    assert_eq!(rate_limited().unwrap(), "answer");
    assert!(
        started.elapsed() >= Duration::from_millis(300),
        "waited the provider's 300 ms, not the 5 ms backoff: {:?}",
        started.elapsed()
    );
    let span = &capture.spans_named("rate_limited")[0];
    let retry = span
        .events()
        .iter()
        .find(|event| event.name == "flujo.retry")
        .expect("a retry event");
    let delay = retry
        .attributes
        .iter()
        .find(|(key, _)| key == "flujo.retry.delay_ms")
        .map(|(_, value)| value.clone());
    assert_eq!(delay, Some(AttributeValue::Int(300)));
}

static BAD_REQUESTS: AtomicU32 = AtomicU32::new(0);

fn cheaper() -> Result<&'static str, ApiError> {
    Ok("from the fallback")
}

/// Answers 400 (a request that will fail again).
#[pipeline_step(retries = 3, backoff_ms = 1, fallback = cheaper)]
fn bad_request() -> Result<&'static str, ApiError> {
    BAD_REQUESTS.fetch_add(1, Ordering::SeqCst);
    Err(ApiError {
        status: 400,
        retry_after: None,
    })
}

#[test]
fn an_error_that_cannot_succeed_is_not_retried_and_the_fallback_runs() {
    let capture = Capture::start();
    assert_eq!(bad_request().unwrap(), "from the fallback");
    assert_eq!(BAD_REQUESTS.load(Ordering::SeqCst), 1, "attempted once");
    assert_eq!(
        capture.counter("flujo_step_retries_total", &[("step", "bad_request")]),
        0
    );
    assert_eq!(
        capture.counter("flujo_step_fallbacks_total", &[("step", "bad_request")]),
        1
    );
}
