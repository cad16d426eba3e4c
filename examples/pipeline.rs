//! A review pipeline declared with `pipeline!`, run by `Flujo` with a hook, a validator, a
//! retry and a checklist, against flujo's offline stub models.
//!
//! Run it with `cargo run --example pipeline`: no network, no API key. The drafting model
//! rate-limits its first call and its second draft fails the validator, so `draft` takes
//! three attempts; the console hook prints each run's span tree. The planner looks sources up
//! with a tool (`kind = "tool"`: an `execute_tool search_sources` span, as the GenAI
//! conventions name it), and the run belongs to a conversation (`gen_ai.conversation.id` on
//! its spans). With `OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT=true` the planner's
//! prompt and answer are captured on its model-call span too (redacted, cut).

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use flujo::export::OpenTelemetryHook;
use flujo::pipeline::{Hook, RunInfo, RunOptions, StepResult};
use flujo::quality::{self, ValidationError};
use flujo::testing::{StubCompletion, StubError, StubModel};
use flujo::{Flujo, UsageLimitExceeded, UsageLimits, Usd, pipeline, pipeline_step, track_cost};

/// The models the steps call.
struct Models {
    planner: StubModel,
    writer: StubModel,
}

#[derive(Debug, thiserror::Error)]
enum StepError {
    #[error(transparent)]
    Model(#[from] StubError),
    #[error(transparent)]
    Budget(#[from] UsageLimitExceeded),
    #[error(transparent)]
    Invalid(#[from] ValidationError),
}

#[derive(Clone)]
struct Outline(String);
struct Draft(String);
struct Review {
    text: String,
    checklist: quality::ChecklistResult,
}

#[pipeline_step]
#[track_cost(model = models.planner.name(), input_messages = prompt)]
fn plan_call(models: &Models, prompt: &str) -> Result<StubCompletion, StepError> {
    Ok(models.planner.chat(prompt)?)
}

/// A tool the planner uses: its span is `execute_tool search_sources`.
#[pipeline_step(kind = "tool")]
fn search_sources(question: &str) -> Vec<String> {
    question
        .split_whitespace()
        .map(|word| format!("https://example.org/wiki/{}", word.trim_matches('?')))
        .collect()
}

#[pipeline_step]
fn plan(models: &Models, question: String) -> Result<Outline, StepError> {
    let sources = search_sources(&question);
    let prompt = format!(
        "Outline an answer to: {question} (sources: {})",
        sources.join(", ")
    );
    Ok(Outline(plan_call(models, &prompt)?.text))
}

static DRAFTS: AtomicU32 = AtomicU32::new(0);

/// The validator: a draft must mention its outline (the second draft "forgets" it).
fn follows_the_outline(draft: &Draft) -> Result<(), String> {
    if draft.0.contains("Draft from") {
        Ok(())
    } else {
        Err("the draft does not follow the outline".to_owned())
    }
}

#[pipeline_step(retries = 3, backoff = "fixed", backoff_ms = 10, validate = follows_the_outline)]
async fn draft(models: &Models, outline: Outline) -> Result<Draft, StepError> {
    let completion = models
        .writer
        .chat_async(&format!("Draft from {}", outline.0))
        .await?;
    let text = if DRAFTS.fetch_add(1, Ordering::SeqCst) == 0 {
        "an off-topic draft".to_owned()
    } else {
        completion.text
    };
    Ok(Draft(text))
}

#[pipeline_step]
fn review(models: &Models, draft: Draft) -> Review {
    let _ = models;
    let checklist = quality::record_checklist(
        "draft_review",
        &[
            ("mentions the outline", draft.0.contains("Draft from")),
            ("under 100 words", draft.0.split_whitespace().count() < 100),
            ("cites a source", draft.0.contains("http")),
        ],
    );
    quality::record_score("review_pass_rate", checklist.pass_rate());
    Review {
        text: draft.0,
        checklist,
    }
}

pipeline! {
    /// Answers a question: outline, draft (validated, retried), review.
    #[pipeline(version = "1.0.0")]
    pipeline answer(models: &Models, question: String) -> Review {
        plan? >> draft.await? >> review
    }
}

/// A hook of your own: one line per step.
struct StepLog;

impl Hook for StepLog {
    fn post_step(&self, run: &RunInfo, step: &StepResult) {
        println!(
            "  [{}] {} ok in {:?}, {} attempt(s), {} tokens, {:.6}",
            &run.request_id[..8],
            step.name,
            step.latency,
            step.attempts,
            step.tokens.total(),
            step.cost
        );
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let _telemetry = flujo::init_telemetry()?;
    let models = Models {
        planner: StubModel::new("gpt-4o-mini").with_latency(Duration::from_millis(10)),
        writer: StubModel::new("claude-sonnet-4-5")
            .with_latency(Duration::from_millis(20))
            .failing_first(1),
    };
    let flujo = Flujo::new(answer::new(models))
        .with_hook(StepLog)
        .with_hook(OpenTelemetryHook::console())
        .with_usage_limits(UsageLimits::new().total_cost_usd_limit(Usd::from_nanos(100_000_000)));

    let result = flujo.run_with(
        "Why is the sky blue?".to_owned(),
        RunOptions::new().conversation_id("conversation-1"),
    );
    let review = result.output?;
    println!(
        "\nrequest {} (trace {:?}): {} steps, {} tokens, {:.6}",
        result.request_id,
        result.trace_id,
        result.step_history.len(),
        result.total_tokens.total(),
        result.total_cost
    );
    println!(
        "review: {:.0}% of the checklist passed; answer: {}",
        review.checklist.pass_rate() * 100.0,
        review.text
    );
    Ok(())
}
