//! A three-step question-answering pipeline against flujo's offline stub model.
//!
//! Run it with `cargo run --example quickstart`: no network, no API key. The drafting model
//! fails its first call, so the `draft` step retries once (you will see the WARN log line).
//! At the end the example prints the span tree and the step metrics it recorded.

use std::time::Duration;

use flujo::pipeline_step;
use flujo::testing::{Capture, StubError, StubModel};

struct Models {
    planner: StubModel,
    writer: StubModel,
    reviewer: StubModel,
}

#[pipeline_step(fields(question_len = question.len(), model = models.planner.name()))]
fn plan(models: &Models, question: &str) -> Result<String, StubError> {
    models
        .planner
        .complete(&format!("Plan an answer to: {question}"))
}

#[pipeline_step(retries = 2, backoff = "exponential", backoff_ms = 20, fields(model = models.writer.name()))]
fn draft(models: &Models, plan: &str) -> Result<String, StubError> {
    models
        .writer
        .complete(&format!("Write a draft following: {plan}"))
}

#[pipeline_step(fields(model = models.reviewer.name()))]
fn review(models: &Models, draft: &str) -> Result<String, StubError> {
    models
        .reviewer
        .complete(&format!("Review and tighten: {draft}"))
}

#[pipeline_step(name = "answer_question")]
fn answer(models: &Models, question: &str) -> Result<String, StubError> {
    let plan = plan(models, question)?;
    let draft = draft(models, &plan)?;
    review(models, &draft)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // Reads TELEMETRY_EXPORT_ENABLED, OTEL_SERVICE_NAME, RUST_LOG, ... from the environment.
    let _telemetry = flujo::init_telemetry()?;
    // Keep finished spans and metric values in memory so that we can print them below.
    let capture = Capture::start();

    let models = Models {
        planner: StubModel::new("stub-planner").with_latency(Duration::from_millis(15)),
        writer: StubModel::new("stub-writer")
            .with_latency(Duration::from_millis(40))
            .failing_first(1),
        reviewer: StubModel::new("stub-reviewer").with_latency(Duration::from_millis(25)),
    };

    let result = answer(&models, "Why is the sky blue at noon but red at sunset?")?;
    println!("answer: {result}\n");

    println!("span tree:");
    print!("{}", capture.span_tree());

    println!("\nmetrics:");
    for step in ["answer_question", "plan", "draft", "review"] {
        let ok = [("step", step), ("status", "ok")];
        let error = [("step", step), ("status", "error")];
        println!(
            "  flujo_step_calls_total{{step=\"{step}\"}}: ok={} error={}  \
             flujo_step_duration_seconds sum={:.3}s  flujo_step_retries_total={}",
            capture.counter("flujo_step_calls_total", &ok),
            capture.counter("flujo_step_calls_total", &error),
            capture.histogram_sum("flujo_step_duration_seconds", &ok),
            capture.counter("flujo_step_retries_total", &[("step", step)]),
        );
    }
    Ok(())
}
