//! Retries made for a rate-limited provider, offline.
//!
//! Run it with `cargo run --example rate_limits`: no network, no API key. A fleet of ten
//! requests hits a stub provider that answers 429 with `Retry-After: 0.3` to all of them: each
//! waits the 300 ms the provider asked, not its own backoff. A request the provider rejects
//! with a 400 (it would fail again, and every attempt costs tokens) is attempted once and its
//! fallback answers. A provider that stays down is retried until the step's `retry_for_ms`
//! runs out. Then the example prints each retry's reason and wait, why each step stopped, and
//! `flujo_step_retries_total` by reason.

use std::time::{Duration, Instant};

use flujo::export::AttributeValue;
use flujo::testing::{Capture, StubCompletion, StubError, StubModel};
use flujo::{RetryAdvice, UsageLimitExceeded, pipeline_step, track_cost};

/// The application's error: the provider's, or a budget's refusal.
#[derive(Debug, thiserror::Error)]
enum AskError {
    #[error(transparent)]
    Model(#[from] StubError),
    #[error(transparent)]
    Budget(#[from] UsageLimitExceeded),
}

/// What the retry loop asks of an error: the provider's wait, and whether another attempt can
/// succeed (a budget refusal cannot; flujo stops on one anyway).
impl RetryAdvice for AskError {
    fn retry_after(&self) -> Option<Duration> {
        match self {
            AskError::Model(error) => error.retry_after(),
            AskError::Budget(_) => None,
        }
    }
    fn is_retryable(&self) -> bool {
        match self {
            AskError::Model(error) => error.is_retryable(),
            AskError::Budget(_) => false,
        }
    }
}

#[track_cost(model = "gpt-4o-mini")]
async fn chat(model: &StubModel, question: &str) -> Result<StubCompletion, AskError> {
    Ok(model.chat_async(question).await?)
}

/// Up to 8 retries, each wait at most 1 s, and 1.5 s in all: a request handler's budget is
/// time, not attempts.
#[pipeline_step(
    retries = 8,
    backoff_ms = 200,
    max_backoff_ms = 1000,
    retry_for_ms = 1500
)]
async fn answer(model: &StubModel, question: &str) -> Result<String, AskError> {
    Ok(chat(model, question).await?.text)
}

#[pipeline_step(retries = 4, backoff_ms = 200, fallback = answer_from_cache)]
async fn answer_or_cached(model: &StubModel, question: &str) -> Result<String, AskError> {
    Ok(chat(model, question).await?.text)
}

async fn answer_from_cache(model: &StubModel, question: &str) -> Result<String, AskError> {
    let _ = model;
    Ok(format!("(cached) {question}"))
}

fn main() {
    let capture = Capture::start();
    futures::executor::block_on(async {
        // Ten requests at once, all rate-limited on their first attempt.
        let provider = StubModel::new("busy-provider")
            .failing_first(10)
            .with_retry_after(Duration::from_millis(300));
        let started = Instant::now();
        let answers = futures::future::join_all(
            (0..10).map(|i| answer(&provider, if i % 2 == 0 { "plan a trip" } else { "pack" })),
        )
        .await;
        let answered = answers.iter().filter(|answer| answer.is_ok()).count();
        println!(
            "rate-limited fleet: {answered}/10 answered in {:?} ({} provider calls)",
            started.elapsed(),
            provider.calls()
        );

        // A request the provider rejects: attempted once, then the fallback.
        let strict = StubModel::new("strict-provider")
            .failing_with_status(400)
            .failing_first(1);
        println!(
            "400: {:?} after {} provider call(s)",
            answer_or_cached(&strict, "a question too long").await,
            strict.calls()
        );

        // A provider that stays down: the deadline ends the attempts.
        let down = StubModel::new("down-provider")
            .failing_with_status(503)
            .failing_first(u32::MAX);
        let started = Instant::now();
        let error = answer(&down, "anyone there?").await.unwrap_err();
        println!(
            "503 until the deadline: {error} after {:?} and {} calls",
            started.elapsed(),
            down.calls()
        );
    });

    println!("\nretries as recorded:");
    for span in capture
        .spans_named("answer")
        .iter()
        .chain(&capture.spans_named("answer_or_cached"))
    {
        let stopped_by = match span.attribute("flujo.retry.stopped_by") {
            Some(AttributeValue::String(why)) => format!(", stopped by {why}"),
            _ => String::new(),
        };
        let retries: Vec<String> = span
            .events()
            .iter()
            .filter(|event| event.name == "flujo.retry")
            .map(|event| {
                let value = |key: &str| {
                    event
                        .attributes
                        .iter()
                        .find(|(k, _)| k == key)
                        .map_or_else(String::new, |(_, v)| v.to_string())
                };
                format!(
                    "{} after {} ms",
                    value("flujo.retry.reason"),
                    value("flujo.retry.delay_ms")
                )
            })
            .collect();
        println!("  {} [{}]{stopped_by}", span.name, retries.join("; "));
    }
    for reason in ["retry_after", "error"] {
        println!(
            "flujo_step_retries_total{{step=\"answer\",reason=\"{reason}\"}} = {}",
            capture.counter(
                "flujo_step_retries_total",
                &[("step", "answer"), ("reason", reason)]
            )
        );
    }
}
