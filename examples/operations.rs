//! An application that produces every metric family flujo exports, for the operations files
//! in `deploy/` (Prometheus rules, the Grafana dashboard): steps that succeed, fail, retry,
//! time out and fall back; priced, unpriced and streamed model calls; a budget that refuses
//! calls; checklists, scores and validations; all against flujo's offline stub models.
//!
//! Run it with `cargo run --example operations --features prometheus,sqlite` and point a
//! Prometheus (loaded with `deploy/prometheus/*.yml`) at the address it prints
//! (`FLUJO_EXAMPLE_METRICS_ADDR`, default 127.0.0.1:9464); it runs for
//! `FLUJO_EXAMPLE_SECONDS` (default 120). `tests/operations.rs` evaluates every expression
//! of the rules and the dashboard against a real Prometheus that scraped it.

use std::time::{Duration, Instant};

use flujo::quality::{self, ValidationError};
use flujo::testing::{StubChunk, StubCompletion, StubError, StubModel, StubStreamUsage};
use flujo::{
    Flujo, StepTimeout, UsageLimitExceeded, UsageLimits, Usd, pipeline, pipeline_step, track_cost,
};
use futures::{Stream, StreamExt};

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error(transparent)]
    Model(#[from] StubError),
    #[error(transparent)]
    Budget(#[from] UsageLimitExceeded),
    #[error(transparent)]
    Timeout(#[from] StepTimeout),
    #[error(transparent)]
    Invalid(#[from] ValidationError),
}

/// The provider's advice on retrying reaches the retry loop: its `Retry-After` is waited (the
/// retries' reason `retry_after`), and a refused call is not retried.
impl flujo::RetryAdvice for AppError {
    fn retry_after(&self) -> Option<Duration> {
        match self {
            AppError::Model(error) => error.retry_after(),
            _ => None,
        }
    }
    fn is_retryable(&self) -> bool {
        match self {
            AppError::Model(error) => error.is_retryable(),
            AppError::Budget(_) => false,
            AppError::Timeout(_) | AppError::Invalid(_) => true,
        }
    }
}

/// The models of one round: the retriever's is rate-limited on its first call, with a
/// `Retry-After` of 1 ms (a retry each round, reason `retry_after`).
pub struct Models {
    retriever: StubModel,
    writer: StubModel,
    slow: StubModel,
    small: StubModel,
}

impl Models {
    fn new() -> Models {
        Models {
            retriever: StubModel::new("gpt-4o-mini")
                .failing_first(1)
                .with_retry_after(Duration::from_millis(1)),
            writer: StubModel::new("claude-sonnet-4-5").with_latency(Duration::from_millis(2)),
            slow: StubModel::new("claude-sonnet-4-5").with_latency(Duration::from_millis(300)),
            small: StubModel::new("claude-haiku-4-5").with_latency(Duration::from_millis(1)),
        }
    }
}

#[track_cost(model = "gpt-4o-mini")]
fn ask_retriever(models: &Models, prompt: &str) -> Result<StubCompletion, AppError> {
    Ok(models.retriever.chat(prompt)?)
}

#[track_cost(model = "claude-sonnet-4-5")]
fn ask_writer(models: &Models, prompt: &str) -> Result<StubCompletion, AppError> {
    Ok(models.writer.chat(prompt)?)
}

/// A model flujo has no price for: its calls are counted as unpriced, never as $0.
#[track_cost(model = "acme-large-2", unpriced)]
fn ask_in_house(models: &Models, prompt: &str) -> Result<StubCompletion, AppError> {
    Ok(models.small.chat(prompt)?)
}

#[pipeline_step(retries = 2, backoff = "fixed", backoff_ms = 1)]
fn retrieve(models: &Models, question: String) -> Result<String, AppError> {
    Ok(ask_retriever(models, &format!("Find sources for {question}"))?.text)
}

/// A written answer, before its review.
pub struct Draft(String);

fn cites_its_sources(draft: &Draft) -> Result<(), String> {
    if draft.0.contains("sources") {
        Ok(())
    } else {
        Err("the draft cites no source".to_owned())
    }
}

#[pipeline_step(validate = cites_its_sources)]
fn write(models: &Models, sources: String) -> Result<Draft, AppError> {
    Ok(Draft(
        ask_writer(models, &format!("Write from the sources: {sources}"))?.text,
    ))
}

#[pipeline_step]
fn review(models: &Models, draft: Draft) -> String {
    let _ = models;
    let Draft(draft) = draft;
    let checklist = quality::record_checklist(
        "answer_review",
        &[
            ("cites a source", draft.contains("sources")),
            ("under 20 words", draft.split_whitespace().count() < 20),
        ],
    );
    quality::record_score("answer_quality", checklist.pass_rate());
    draft
}

pipeline! {
    /// Answers a question: retrieve (retried), write (validated), review (a checklist).
    pipeline answer(models: &Models, question: String) -> String {
        retrieve? >> write? >> review
    }
}

/// A step that always fails: its error ratio is what the alert watches.
#[pipeline_step]
fn classify(models: &Models, text: &str) -> Result<String, AppError> {
    let _ = ask_in_house(models, text)?;
    Err(AppError::Invalid(ValidationError {
        step: "classify",
        validator: "has_label",
        feedback: "no label fits".to_owned(),
    }))
}

#[track_cost(model = "claude-sonnet-4-5")]
async fn ask_slow(models: &Models, prompt: &str) -> Result<StubCompletion, AppError> {
    Ok(models.slow.chat_async(prompt).await?)
}

#[track_cost(model = "claude-haiku-4-5")]
async fn ask_small(models: &Models, prompt: &str) -> Result<StubCompletion, AppError> {
    Ok(models.small.chat_async(prompt).await?)
}

/// Too slow for its timeout every time: the fallback answers.
#[pipeline_step(timeout_ms = 20, fallback = summarise_small)]
async fn summarise(models: &Models, text: &str) -> Result<String, AppError> {
    Ok(ask_slow(models, text).await?.text)
}

#[pipeline_step]
async fn summarise_small(models: &Models, text: &str) -> Result<String, AppError> {
    Ok(ask_small(models, text).await?.text)
}

#[pipeline_step]
#[track_cost(model = "gpt-4o-mini")]
async fn stream_answer(
    models: &Models,
    question: &str,
) -> Result<impl Stream<Item = Result<StubChunk, StubError>> + use<>, AppError> {
    Ok(models
        .small
        .chat_stream(question, StubStreamUsage::LastChunk)?)
}

/// One round of the application's traffic.
pub fn round(round: u64) {
    let question = format!("Why is the sky blue, question {round}?");
    let answered = Flujo::new(answer::new(Models::new())).run(question.clone());
    let _ = answered.output;
    // A run whose budget is spent before its last call: refused, and counted.
    let tight = Flujo::new(answer::new(Models::new()))
        .with_usage_limits(UsageLimits::new().total_cost_usd_limit(Usd::from_nanos(1)));
    let models = Models::new();
    let _ = tight.run(question.clone()).output;
    let _ = classify(&models, &question);
    quality::record_validation("classify", "has_label", false);
    futures::executor::block_on(async {
        let _ = summarise(&models, &question).await;
        if let Ok(mut stream) = stream_answer(&models, &question).await {
            while stream.next().await.is_some() {}
        }
    });
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let _telemetry = flujo::init_telemetry()?;
    let address = std::env::var("FLUJO_EXAMPLE_METRICS_ADDR")
        .unwrap_or_else(|_| "127.0.0.1:9464".to_owned())
        .parse()?;
    let seconds: u64 = std::env::var("FLUJO_EXAMPLE_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(120);
    let server = flujo::export::start_prometheus_server_on(address)?;
    println!(
        "serving metrics on http://{}/metrics for {seconds} s",
        server.local_addr()
    );
    let started = Instant::now();
    let mut rounds = 0;
    while started.elapsed() < Duration::from_secs(seconds) {
        round(rounds);
        rounds += 1;
        std::thread::sleep(Duration::from_millis(100));
    }
    println!("{rounds} rounds");
    Ok(())
}
