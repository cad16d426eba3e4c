//! A three-step question-answering pipeline against flujo's offline stub model.
//!
//! Run it with `cargo run --example quickstart`: no network, no API key. The drafting model
//! fails its first call, so the `draft` step retries once (you will see the WARN log line).
//! Every step calls a (stub) model through `#[track_cost]`: the stub reports realistic usage,
//! including a cached system prompt, and the calls are priced with the price data flujo
//! ships. At the end the example prints the span tree, the step metrics and the cost report.
//!
//! The next step: send the spans to your OpenTelemetry collector (at `localhost:4317`):
//! `OTLP_EXPORT_ENABLED=true cargo run --example quickstart --features otlp`.
//!
//! `main` is what your program looks like; `show_what_was_recorded` (at the end) is this
//! example's own: it reads what flujo recorded through `flujo::testing`, the test helpers.

use std::time::Duration;

use flujo::testing::{Capture, StubCompletion, StubError, StubModel};
use flujo::{UsageLimitExceeded, UsageLimits, Usd, pipeline_step, track_cost};

struct Models {
    planner: StubModel,
    writer: StubModel,
    reviewer: StubModel,
}

/// What can go wrong in the pipeline: the model fails, or the run's budget is spent.
#[derive(Debug, thiserror::Error)]
enum PipelineError {
    #[error(transparent)]
    Model(#[from] StubError),
    #[error(transparent)]
    Budget(#[from] UsageLimitExceeded),
}

#[pipeline_step(fields(question_len = question.len()))]
#[track_cost(model = models.planner.name())]
fn plan(models: &Models, question: &str) -> Result<StubCompletion, PipelineError> {
    Ok(models
        .planner
        .chat(&format!("Plan an answer to: {question}"))?)
}

#[pipeline_step(retries = 2, backoff = "exponential", backoff_ms = 20)]
#[track_cost(model = models.writer.name())]
fn draft(models: &Models, plan: &str) -> Result<StubCompletion, PipelineError> {
    Ok(models
        .writer
        .chat(&format!("Write a draft following: {plan}"))?)
}

#[pipeline_step]
#[track_cost(model = models.reviewer.name())]
fn review(models: &Models, draft: &str) -> Result<StubCompletion, PipelineError> {
    Ok(models
        .reviewer
        .chat(&format!("Review and tighten: {draft}"))?)
}

#[pipeline_step(name = "answer_question")]
fn answer(models: &Models, question: &str) -> Result<String, PipelineError> {
    let plan = plan(models, question)?;
    let draft = draft(models, &plan.text)?;
    Ok(review(models, &draft.text)?.text)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // Reads OTLP_EXPORT_ENABLED, OTEL_SERVICE_NAME, RUST_LOG, FLUJO_COST_LEDGER, ... from the
    // environment.
    let _telemetry = flujo::init_telemetry()?;
    let capture = Capture::start(); // the example's own: see `show_what_was_recorded`

    let models = Models {
        planner: StubModel::new("gpt-4o-mini").with_latency(Duration::from_millis(15)),
        writer: StubModel::new("claude-sonnet-4-5")
            .with_latency(Duration::from_millis(40))
            .failing_first(1),
        reviewer: StubModel::new("gpt-4.1").with_latency(Duration::from_millis(25)),
    };

    // Each run may spend at most 5 cents; a call that would start after that is refused.
    // Money is `Usd` (exact nano-dollars) in every API, never a float.
    let limits = UsageLimits::new().total_cost_usd_limit(Usd::parse("0.05")?);
    for question in [
        "Why is the sky blue at noon but red at sunset?",
        "Why is the sea blue?",
    ] {
        let result = limits.run(|| answer(&models, question))?;
        println!("answer: {result}");
    }

    // As the guide's `get_cost_report(start_date=..., end_date=...)`; here, today's costs.
    let today = flujo::cost::utc_today();
    let report = flujo::cost::get_cost_report(today, today)?;
    show_what_was_recorded(&capture);
    println!("\n{report}");
    println!("exact total: {:.6}", report.total_cost);
    Ok(())
}

/// The span tree and the step metrics, as a collector and Prometheus would show them.
fn show_what_was_recorded(capture: &Capture) {
    println!("\nspan tree:");
    print!("{}", capture.span_tree());

    println!("\nmetrics:");
    for step in ["answer_question", "plan", "draft", "review"] {
        let ok = [("step", step), ("status", "ok")];
        let error = [("step", step), ("status", "error")];
        println!(
            "  flujo_step_calls_total{{step=\"{step}\"}}: ok={} error={}  \
             flujo_step_duration_seconds sum={:.3}s  flujo_step_retries_total{{reason=\"error\"}}={}",
            capture.counter("flujo_step_calls_total", &ok),
            capture.counter("flujo_step_calls_total", &error),
            capture.histogram_sum("flujo_step_duration_seconds", &ok),
            capture.counter(
                "flujo_step_retries_total",
                &[("step", step), ("reason", "error")]
            ),
        );
    }
}
