//! `pipeline!` and the `Flujo` runner through the public API: span tree and parents under
//! concurrency, failure status, hooks, validators and retries as span events, usage limits,
//! remote parents, quality metrics and the `tracing` bridge.

use std::sync::{Arc, Mutex};

use flujo::export::{AttributeValue, SpanStatus};
use flujo::pipeline::{Hook, PipelineError, RunInfo, RunOptions, StepResult};
use flujo::quality::{self, ValidationError};
use flujo::testing::Capture;
use flujo::{
    Flujo, SpanContext, TokenUsage, UsageLimitExceeded, UsageLimits, Usd, pipeline, pipeline_step,
    track_cost,
};

#[derive(Debug, thiserror::Error)]
enum Failure {
    #[error("the reviewer rejected {0:?}")]
    Rejected(String),
    #[error(transparent)]
    Budget(#[from] UsageLimitExceeded),
    #[error(transparent)]
    Invalid(#[from] ValidationError),
}

#[pipeline_step]
fn tokenize(text: String) -> Vec<String> {
    text.split_whitespace().map(str::to_owned).collect()
}

#[pipeline_step]
async fn shout(words: Vec<String>) -> Vec<String> {
    futures_timer_delay().await;
    words.iter().map(|w| w.to_uppercase()).collect()
}

/// Suspends once, so that the step really is asynchronous (and works on any executor).
async fn futures_timer_delay() {
    let mut yielded = false;
    std::future::poll_fn(|cx| {
        if yielded {
            std::task::Poll::Ready(())
        } else {
            yielded = true;
            cx.waker().wake_by_ref();
            std::task::Poll::Pending
        }
    })
    .await;
}

#[pipeline_step]
fn join(words: Vec<String>) -> Result<String, Failure> {
    let text = words.join(" ");
    if text.contains("REJECT") {
        return Err(Failure::Rejected(text));
    }
    Ok(text)
}

pipeline! {
    /// Shouts a sentence back.
    #[pipeline(version = "2.1.0")]
    pub pipeline shouting(text: String) -> String {
        tokenize >> shout.await >> join?
    }
}

fn text(span: &flujo::export::FinishedSpan, key: &str) -> String {
    match span.attribute(key) {
        Some(AttributeValue::String(value)) => value.into_owned(),
        other => panic!("{key} on {}: {other:?}", span.name),
    }
}

#[test]
fn concurrent_runs_keep_their_own_trees_and_request_ids() {
    let capture = Capture::start();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_time()
        .build()
        .unwrap();
    let flujo = Arc::new(Flujo::new(shouting::new()));
    let results = runtime.block_on(async {
        let tasks: Vec<_> = (0..40)
            .map(|i| {
                let flujo = Arc::clone(&flujo);
                tokio::spawn(async move { flujo.run_async(format!("hello number {i}")).await })
            })
            .collect();
        let mut results = Vec::new();
        for task in tasks {
            results.push(task.await.unwrap());
        }
        results
    });
    let spans = capture.finished_spans();
    let mut request_ids = std::collections::HashSet::new();
    for (i, result) in results.iter().enumerate() {
        assert_eq!(
            result.output.as_ref().unwrap(),
            &format!("HELLO NUMBER {i}")
        );
        assert!(
            request_ids.insert(result.request_id.clone()),
            "request ids are unique"
        );
        let trace_id = result.trace_id.expect("a recorded run has a trace");
        let trace: Vec<_> = spans.iter().filter(|s| s.trace_id == trace_id).collect();
        assert_eq!(trace.len(), 4, "{}", capture.span_tree());
        let root = trace
            .iter()
            .find(|s| s.name == "invoke_workflow shouting")
            .unwrap();
        assert_eq!(root.parent_span_id, None);
        assert_eq!(text(root, "flujo.request_id"), result.request_id);
        assert_eq!(text(root, "gen_ai.operation.name"), "invoke_workflow");
        assert_eq!(text(root, "gen_ai.workflow.name"), "shouting");
        assert_eq!(text(root, "openinference.span.kind"), "CHAIN");
        assert_eq!(text(root, "flujo.pipeline.version"), "2.1.0");
        assert_eq!(
            text(root, "flujo.pipeline.description"),
            "Shouts a sentence back."
        );
        for step in ["tokenize", "shout", "join"] {
            let span = trace.iter().find(|s| s.name == step).unwrap();
            assert_eq!(
                span.parent_span_id,
                Some(root.span_id),
                "{step} under its own run"
            );
        }
        let history: Vec<_> = result
            .step_history
            .iter()
            .map(|s| (s.name, s.success))
            .collect();
        assert_eq!(
            history,
            [("tokenize", true), ("shout", true), ("join", true)]
        );
    }
    assert_eq!(
        capture.counter(
            "flujo_pipeline_runs_total",
            &[("pipeline", "shouting"), ("status", "ok")]
        ),
        40
    );
    assert_eq!(
        capture.histogram_count(
            "flujo_pipeline_duration_seconds",
            &[("pipeline", "shouting"), ("status", "ok")]
        ),
        40
    );
}

#[test]
fn a_failed_run_has_an_error_root_and_keeps_the_failing_step_and_error() {
    let capture = Capture::start();
    let result = Flujo::new(shouting::new()).run("please reject this".to_owned());
    let error: PipelineError = result.output.unwrap_err();
    assert_eq!(error.step(), "join");
    assert!(matches!(
        error.downcast_ref::<Failure>(),
        Some(Failure::Rejected(_))
    ));
    assert_eq!(
        error.to_string(),
        "step `join` failed: the reviewer rejected \"PLEASE REJECT THIS\""
    );
    let root = &capture.spans_named("invoke_workflow shouting")[0];
    assert!(
        matches!(&root.status, SpanStatus::Error { message } if message.contains("step `join` failed"))
    );
    assert_eq!(text(root, "error.type"), std::any::type_name::<Failure>());
    assert_eq!(result.step_history.last().map(|s| s.success), Some(false));
    assert_eq!(
        result
            .step_history
            .last()
            .and_then(|s| s.feedback.clone())
            .as_deref(),
        Some("the reviewer rejected \"PLEASE REJECT THIS\"")
    );
    assert_eq!(
        capture.counter(
            "flujo_pipeline_runs_total",
            &[("pipeline", "shouting"), ("status", "error")]
        ),
        1
    );
}

#[test]
fn a_run_continues_a_remote_trace() {
    let capture = Capture::start();
    let remote =
        SpanContext::from_traceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
            .unwrap()
            .with_tracestate("congo=t61rcWkgMzE,rojo=00f067aa0ba902b7");
    let result = Flujo::new(shouting::new()).run_with(
        "hi".to_owned(),
        RunOptions::new().request_id("req-42").parent(remote),
    );
    assert_eq!(result.request_id, "req-42");
    assert_eq!(result.trace_id, remote.trace_id());
    let root = &capture.spans_named("invoke_workflow shouting")[0];
    assert_eq!(root.parent_span_id, remote.span_id());
    assert!(
        root.parent_is_remote(),
        "its parent is in the caller's process"
    );
    assert!(
        capture
            .finished_spans()
            .iter()
            .filter(|span| span.span_id != root.span_id)
            .all(|span| !span.parent_is_remote()),
        "the spans under the root have local parents"
    );
    // The caller's tracestate stays with its trace: on every span, for export.
    assert!(
        capture
            .finished_spans()
            .iter()
            .all(|span| { span.trace_state() == Some("congo=t61rcWkgMzE,rojo=00f067aa0ba902b7") }),
        "{:?}",
        capture
            .finished_spans()
            .iter()
            .map(|span| (span.name.clone(), span.trace_state().map(str::to_owned)))
            .collect::<Vec<_>>()
    );
}

#[pipeline_step]
fn outgoing_headers() -> (Option<String>, Option<String>) {
    let context = SpanContext::current();
    (context.traceparent(), context.tracestate())
}

/// A call out of a step continues the trace with both W3C headers: its `traceparent`, and
/// the `tracestate` the trace came with; one that is not W3C-shaped is dropped, as W3C asks.
#[test]
fn the_tracestate_of_a_remote_trace_is_injected_into_outgoing_calls() {
    let _capture = Capture::start();
    let remote =
        SpanContext::from_traceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
            .unwrap();
    let (traceparent, tracestate) = remote
        .with_tracestate(" vendor=opaque ")
        .in_scope(outgoing_headers);
    assert!(
        traceparent
            .unwrap()
            .starts_with("00-4bf92f3577b34da6a3ce929d0e0e4736-")
    );
    assert_eq!(tracestate.as_deref(), Some("vendor=opaque"));
    let (_, invalid) = remote
        .with_tracestate("Not A Tracestate")
        .in_scope(outgoing_headers);
    assert_eq!(invalid, None);
    assert_eq!(outgoing_headers().1, None, "a new trace has none");
}

/// Records what it is called with; panics in `post_step` of `join` when told to.
#[derive(Clone, Default)]
struct Recorder {
    calls: Arc<Mutex<Vec<String>>>,
    panic_on_post_step: bool,
}

impl Hook for Recorder {
    fn pre_run(&self, run: &RunInfo) {
        self.calls
            .lock()
            .unwrap()
            .push(format!("pre_run {}", run.pipeline));
    }
    fn pre_step(&self, _: &RunInfo, step: &str) {
        self.calls.lock().unwrap().push(format!("pre_step {step}"));
    }
    fn post_step(&self, _: &RunInfo, step: &StepResult) {
        self.calls
            .lock()
            .unwrap()
            .push(format!("post_step {}", step.name));
        if self.panic_on_post_step {
            panic!("a broken hook");
        }
    }
    fn on_step_failure(&self, _: &RunInfo, step: &StepResult, error: &PipelineError) {
        self.calls
            .lock()
            .unwrap()
            .push(format!("on_step_failure {} {}", step.name, error.step()));
    }
    fn post_run(&self, _: &RunInfo, steps: &[StepResult], error: Option<&PipelineError>) {
        self.calls
            .lock()
            .unwrap()
            .push(format!("post_run {} {}", steps.len(), error.is_some()));
    }
}

#[test]
fn hooks_are_called_in_order_and_a_panicking_hook_does_not_break_the_run() {
    let capture = Capture::start();
    let recorder = Recorder::default();
    let broken = Recorder {
        panic_on_post_step: true,
        ..Recorder::default()
    };
    let flujo = Flujo::new(shouting::new())
        .with_hook(broken)
        .with_hook(recorder.clone());
    assert!(flujo.run("ok".to_owned()).output.is_ok());
    assert!(flujo.run("reject".to_owned()).output.is_err());
    assert_eq!(
        recorder.calls.lock().unwrap().clone(),
        [
            "pre_run shouting",
            "pre_step tokenize",
            "post_step tokenize",
            "pre_step shout",
            "post_step shout",
            "pre_step join",
            "post_step join",
            "post_run 3 false",
            "pre_run shouting",
            "pre_step tokenize",
            "post_step tokenize",
            "pre_step shout",
            "post_step shout",
            "pre_step join",
            "on_step_failure join join",
            "post_run 3 true",
        ]
    );
    assert_eq!(
        capture.counter(
            "flujo_hook_panics_total",
            &[
                ("hook", std::any::type_name::<Recorder>()),
                ("phase", "post_step")
            ]
        ),
        5,
        "three successful steps in the first run, two in the second"
    );
}

static ATTEMPTS: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);

fn long_enough(text: &str) -> Result<(), String> {
    if text.len() >= 10 {
        Ok(())
    } else {
        Err(format!("{} characters, want 10", text.len()))
    }
}

#[pipeline_step(retries = 3, backoff = "fixed", backoff_ms = 1, validate = long_enough)]
fn grow(seed: String) -> Result<String, Failure> {
    let attempt = ATTEMPTS.fetch_add(1, std::sync::atomic::Ordering::SeqCst) as usize;
    Ok(format!("{seed}{}", "+".repeat(attempt * 4)))
}

pipeline! {
    pipeline growing(seed: String) -> String {
        grow?
    }
}

#[test]
fn a_rejected_output_is_retried_and_each_retry_is_a_span_event() {
    let capture = Capture::start();
    ATTEMPTS.store(0, std::sync::atomic::Ordering::SeqCst);
    let result = Flujo::new(growing::new()).run("seed".to_owned());
    assert_eq!(result.output.unwrap(), "seed++++++++");
    let step = &result.step_history[0];
    assert_eq!(step.attempts, 3);
    assert_eq!(step.feedback.as_deref(), Some("8 characters, want 10"));
    let span = &capture.spans_named("grow")[0];
    let retries: Vec<_> = span
        .events()
        .iter()
        .filter(|e| e.name == "flujo.retry")
        .collect();
    assert_eq!(retries.len(), 2);
    assert_eq!(
        retries[1]
            .attribute("flujo.retry.attempt")
            .and_then(|v| v.as_i64()),
        Some(2)
    );
    assert_eq!(
        retries[1]
            .attribute("flujo.retry.delay_ms")
            .and_then(|v| v.as_i64()),
        Some(1)
    );
    assert_eq!(
        retries[0]
            .attribute("flujo.retry.error")
            .and_then(|v| v.as_str()),
        Some("validator `long_enough` rejected the output of step `grow`: 4 characters, want 10")
    );
    // Each verdict is a GenAI evaluation event: two rejections, then a pass.
    let verdicts: Vec<_> = span
        .events()
        .iter()
        .filter(|e| e.name == "gen_ai.evaluation.result")
        .map(|e| {
            let text = |key| e.attribute(key).and_then(|v| v.as_str().map(str::to_owned));
            (
                text("gen_ai.evaluation.name"),
                e.attribute("gen_ai.evaluation.score.value")
                    .and_then(|v| v.as_f64()),
                text("gen_ai.evaluation.score.label"),
                text("gen_ai.evaluation.explanation"),
            )
        })
        .collect();
    let verdict = |score, label: &str, explanation: Option<&str>| {
        (
            Some("long_enough".to_owned()),
            Some(score),
            Some(label.to_owned()),
            explanation.map(str::to_owned),
        )
    };
    assert_eq!(
        verdicts,
        [
            verdict(0.0, "fail", Some("4 characters, want 10")),
            verdict(0.0, "fail", Some("8 characters, want 10")),
            verdict(1.0, "pass", None),
        ]
    );
    let validations = |result| {
        capture.counter(
            "flujo_validations_total",
            &[
                ("step", "grow"),
                ("validator", "long_enough"),
                ("result", result),
            ],
        )
    };
    assert_eq!((validations("fail"), validations("pass")), (2, 1));
    assert_eq!(
        capture.counter(
            "flujo_step_retries_total",
            &[("step", "grow"), ("reason", "invalid")]
        ),
        2
    );
}

#[track_cost(model = "gpt-4o-mini")]
fn ask(tokens: u64) -> Result<TokenUsage, Failure> {
    Ok(TokenUsage::new(tokens, tokens))
}

#[pipeline_step]
fn first_call(budget_tokens: u64) -> Result<u64, Failure> {
    ask(budget_tokens)?;
    Ok(budget_tokens)
}

#[pipeline_step]
fn second_call(budget_tokens: u64) -> Result<u64, Failure> {
    ask(budget_tokens)?;
    Ok(budget_tokens)
}

pipeline! {
    pipeline two_calls(tokens: u64) -> u64 {
        first_call? >> second_call?
    }
}

/// `RunOptions::conversation_id` names the conversation on the run's root span and on every
/// model call in the run, for the conventions and for the back-ends that group by session.
#[test]
fn a_runs_conversation_id_is_on_its_root_and_its_model_calls() {
    let capture = Capture::start();
    Flujo::new(two_calls::new()).run_with(10, RunOptions::new().conversation_id("conv-7"));
    Flujo::new(two_calls::new()).run(10);
    let conversation = |span: &flujo::export::FinishedSpan| {
        ["gen_ai.conversation.id", "session.id"].map(|key| {
            span.attribute(key)
                .and_then(|value| value.as_str().map(str::to_owned))
        })
    };
    let named = [Some("conv-7".to_owned()), Some("conv-7".to_owned())];
    let roots = capture.spans_named("invoke_workflow two_calls");
    let calls = capture.spans_named("chat gpt-4o-mini");
    assert_eq!((roots.len(), calls.len()), (2, 4));
    assert_eq!(
        capture.histogram_count(
            "gen_ai.workflow.duration",
            &[("gen_ai.workflow.name", "two_calls")]
        ),
        2,
        "a run is a workflow, as the conventions time it"
    );
    let with_conversation: Vec<_> = roots
        .iter()
        .chain(&calls)
        .filter(|span| conversation(span) == named)
        .collect();
    assert_eq!(with_conversation.len(), 3, "{}", capture.span_tree());
    let first_trace = with_conversation[0].trace_id;
    assert!(
        with_conversation
            .iter()
            .all(|span| span.trace_id == first_trace)
    );
    assert!(
        roots
            .iter()
            .chain(&calls)
            .filter(|span| span.trace_id != first_trace)
            .all(|span| conversation(span) == [None, None]),
        "a run without one has none"
    );
}

#[test]
fn step_history_has_tokens_and_cost_and_limits_stop_the_run() {
    let _capture = Capture::start();
    let result = Flujo::new(two_calls::new()).run(1_000_000);
    // 1M input at $0.15/M + 1M output at $0.60/M per call
    assert_eq!(result.step_history[0].tokens.total(), 2_000_000);
    assert_eq!(
        result.step_history[0].cost,
        flujo::Usd::parse("0.75").unwrap()
    );
    assert_eq!(result.total_cost, flujo::Usd::parse("1.50").unwrap());
    assert_eq!(result.total_tokens.input, 2_000_000);

    let limited = Flujo::new(two_calls::new())
        .with_usage_limits(UsageLimits::new().total_cost_usd_limit(Usd::parse("0.5").unwrap()));
    let result = limited.run(1_000_000);
    let error = result.output.unwrap_err();
    assert_eq!(error.step(), "second_call");
    assert!(matches!(
        error.usage_limit_exceeded(),
        Some(UsageLimitExceeded {
            limit: flujo::cost::Limit::TotalCost { .. }
        })
    ));
    assert_eq!(result.step_history.len(), 2);
}

#[pipeline_step]
fn review_answer(answer: &str) -> Result<usize, ValidationError> {
    quality::record_score("faithfulness", 0.82);
    quality::record_checklist(
        "answer_review",
        &[("cites a source", true), ("under 200 words", false)],
    );
    quality::validate("not_empty", answer, |a: &str| {
        if a.is_empty() { Err("empty") } else { Ok(()) }
    })?;
    Ok(answer.len())
}

/// Scores, checklists and validations inside a step are `gen_ai.evaluation.result` events on
/// its span, as the GenAI conventions record evaluations; outside any span they are metrics
/// only.
#[test]
fn quality_results_are_evaluation_events_on_the_current_span() {
    let capture = Capture::start();
    review_answer("an answer").unwrap();
    quality::record_score("outside", 1.0);
    let span = &capture.spans_named("review_answer")[0];
    let events: Vec<_> = span
        .events()
        .iter()
        .filter(|e| e.name == "gen_ai.evaluation.result")
        .map(|e| {
            let text = |key| e.attribute(key).map(|v| v.to_string()).unwrap_or_default();
            [
                text("gen_ai.evaluation.name"),
                text("gen_ai.evaluation.score.value"),
                text("gen_ai.evaluation.score.label"),
                text("gen_ai.evaluation.explanation"),
            ]
        })
        .collect();
    assert_eq!(
        events,
        [
            ["faithfulness", "0.82", "", ""],
            ["answer_review", "0.5", "fail", "failed: under 200 words"],
            ["not_empty", "1", "pass", ""],
        ]
    );
    assert!(capture.finished_spans().iter().all(|span| {
        span.events().iter().all(|e| {
            e.attribute("gen_ai.evaluation.name")
                .is_none_or(|name| name != &"outside")
        })
    }));
}

#[test]
fn quality_metrics_count_checklists_scores_and_pass_rates() {
    let capture = Capture::start();
    let first =
        quality::record_checklist("tests_checklist", &[("a", true), ("b", false), ("c", true)]);
    assert_eq!((first.passed, first.total), (2, 3));
    quality::record_checklist("tests_checklist", &[("a", true)]);
    assert_eq!(
        capture.counter(
            "flujo_checklist_items_total",
            &[("checklist", "tests_checklist"), ("result", "pass")]
        ),
        3
    );
    assert_eq!(quality::checklist_pass_rate("tests_checklist"), Some(0.75));
    quality::record_score("tests_faithfulness", 0.5);
    quality::record_score("tests_faithfulness", 0.75);
    assert_eq!(
        capture.histogram_count("flujo_score", &[("name", "tests_faithfulness")]),
        2
    );
    assert_eq!(
        capture.histogram_sum("flujo_score", &[("name", "tests_faithfulness")]),
        1.25
    );
}

#[tracing::instrument]
fn library_helper(n: u32) -> u32 {
    tracing::info!(n, "helping");
    n * 2
}

#[pipeline_step]
fn calls_a_library(n: u32) -> u32 {
    tracing::warn!(n, "about to call the library");
    library_helper(n)
}

#[test]
fn tracing_spans_and_events_inside_a_step_join_its_trace() {
    use tracing_subscriber::prelude::*;
    let capture = Capture::start();
    let subscriber = tracing_subscriber::registry().with(flujo::export::tracing_layer());
    tracing::subscriber::with_default(subscriber, || {
        assert_eq!(calls_a_library(21), 42);
    });
    let step = &capture.spans_named("calls_a_library")[0];
    let helper = &capture.spans_named("library_helper")[0];
    assert_eq!(helper.parent_span_id, Some(step.span_id));
    assert_eq!(helper.trace_id, step.trace_id);
    assert_eq!(helper.attribute("n").and_then(|v| v.as_i64()), Some(21));
    assert_eq!(helper.events()[0].name, "helping");
    assert!(
        helper.attribute("code.function.name").is_none(),
        "no empty code.* attributes"
    );
    let warning = &step.events()[0];
    assert_eq!(warning.name, "about to call the library");
    assert_eq!(
        warning.attribute("level").and_then(|v| v.as_str()),
        Some("WARN")
    );
}

#[tracing::instrument]
fn chatty_helper() {
    for line in 0..200 {
        tracing::info!(line, "helper line");
    }
}

#[pipeline_step]
fn chatty_step() {
    for line in 0..200 {
        tracing::info!(line, "step line");
    }
    chatty_helper();
}

#[test]
fn tracing_events_past_the_span_event_limit_are_counted_as_dropped() {
    use tracing_subscriber::prelude::*;
    let capture = Capture::start();
    let subscriber = tracing_subscriber::registry().with(flujo::export::tracing_layer());
    tracing::subscriber::with_default(subscriber, chatty_step);
    for name in ["chatty_step", "chatty_helper"] {
        let span = &capture.spans_named(name)[0];
        // OTEL_SPAN_EVENT_COUNT_LIMIT's default: the first 128 are kept.
        assert_eq!(span.events().len(), 128, "{name}");
        assert_eq!(span.dropped_events_count(), 72, "{name}");
        let lines: Vec<_> = span
            .events()
            .iter()
            .map(|event| event.attribute("line").and_then(|v| v.as_i64()))
            .collect();
        assert_eq!(lines[0], Some(0), "{name}");
        assert_eq!(lines[127], Some(127), "{name}");
    }
}

#[test]
fn the_otlp_hook_checks_its_endpoint() {
    let error = flujo::export::OpenTelemetryHook::otlp("collector:4317").unwrap_err();
    assert_eq!(
        error.to_string(),
        "telemetry setting `OpenTelemetryHook::otlp endpoint` = \"collector:4317\" is invalid: \
         expected an http:// or https:// URL with a host and a port from 1 to 65535, such as \
         http://localhost:4317"
    );
    #[cfg(not(feature = "otlp"))]
    assert!(matches!(
        flujo::export::OpenTelemetryHook::otlp("http://127.0.0.1:4317"),
        Err(flujo::TelemetryError::FeatureNotEnabled {
            feature: "otlp",
            ..
        })
    ));
}

#[test]
fn the_console_hook_prints_each_run() {
    // Printing goes to stderr; this checks that following a run does not disturb it.
    let capture = Capture::start();
    let flujo = Flujo::new(shouting::new()).with_hook(flujo::export::OpenTelemetryHook::console());
    assert_eq!(
        flujo.run("quiet please".to_owned()).output.unwrap(),
        "QUIET PLEASE"
    );
    assert_eq!(capture.spans_named("invoke_workflow shouting").len(), 1);
}

#[pipeline_step]
fn leaf(label: &'static str) -> Option<String> {
    flujo::ContextHandle::current()
        .span_context()
        .trace_id()
        .map(|trace| format!("{label}:{trace}"))
}

#[pipeline_step]
async fn async_leaf(label: &'static str) -> Option<String> {
    futures_timer_delay().await;
    leaf(label)
}

/// Fans out to a plain thread, a blocking task and two joined branches.
#[pipeline_step]
async fn fan_out(n: u32) -> Vec<String> {
    let here = flujo::ContextHandle::current();
    let thread = std::thread::spawn({
        let here = here.clone();
        move || here.in_scope(|| leaf("thread"))
    });
    let blocking = tokio::task::spawn_blocking({
        let here = here.clone();
        move || here.in_scope(|| leaf("blocking"))
    });
    let (a, b) = futures::join!(async_leaf("join-a"), async_leaf("join-b"));
    let spawned = tokio::spawn(flujo::StepFutureExt::in_current_step(async_leaf("spawned")));
    let mut labels = vec![
        thread.join().unwrap(),
        blocking.await.unwrap(),
        a,
        b,
        spawned.await.unwrap(),
    ];
    labels.push(Some(n.to_string()));
    labels.into_iter().flatten().collect()
}

pipeline! {
    pipeline fanning(n: u32) -> Vec<String> {
        fan_out.await
    }
}

#[test]
fn parents_and_runs_follow_threads_blocking_tasks_joins_and_spawns() {
    let capture = Capture::start();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let result = runtime.block_on(Flujo::new(fanning::new()).run_async(1));
    let labels = result.output.unwrap();
    let trace = result.trace_id.unwrap();
    assert_eq!(labels.len(), 6, "{labels:?}");
    for label in &labels[..5] {
        assert!(
            label.ends_with(&trace.to_string()),
            "{label} in the run's trace"
        );
    }
    let fan_out = &capture.spans_named("fan_out")[0];
    let leaves = capture.spans_named("leaf");
    assert_eq!(leaves.len(), 5);
    let async_leaves = capture.spans_named("async_leaf");
    assert_eq!(async_leaves.len(), 3);
    for span in leaves.iter().filter(|leaf| {
        !async_leaves
            .iter()
            .any(|a| Some(a.span_id) == leaf.parent_span_id)
    }) {
        assert_eq!(
            span.parent_span_id,
            Some(fan_out.span_id),
            "thread and blocking leaves"
        );
    }
    for span in &async_leaves {
        assert_eq!(
            span.parent_span_id,
            Some(fan_out.span_id),
            "joined and spawned branches"
        );
    }
}

#[test]
fn a_shared_hook_in_an_arc_is_a_hook() {
    #[derive(Default)]
    struct Counting(std::sync::atomic::AtomicU32);
    impl Hook for Counting {
        fn post_step(&self, _: &RunInfo, _: &StepResult) {
            self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
    }
    let _capture = Capture::start();
    let shared = Arc::new(Counting::default());
    let first = Flujo::new(shouting::new()).with_hook(Arc::clone(&shared));
    let second = Flujo::new(shouting::new()).with_hook(Arc::clone(&shared));
    first.run("a".to_owned());
    second.run("b".to_owned());
    assert!(
        shared.0.load(std::sync::atomic::Ordering::SeqCst) >= 2,
        "both runners reached the one hook"
    );
}

#[pipeline_step(name = "draft_reply")]
fn draft(text: String) -> Result<String, anyhow::Error> {
    if text.is_empty() {
        anyhow::bail!("nothing to draft");
    }
    Ok(text)
}

#[pipeline_step(name = "reply_length")]
async fn measure(text: String) -> usize {
    text.len()
}

/// A step that is not renamed but calls a renamed one: the stage keeps its own name.
#[pipeline_step]
fn wraps(text: String) -> String {
    draft(text).unwrap_or_default()
}

pipeline! {
    pipeline renamed(text: String) -> usize {
        draft? >> measure.await
    }
}

pipeline! {
    pipeline wrapping(text: String) -> String {
        wraps
    }
}

#[test]
fn a_renamed_step_has_one_name_everywhere() {
    let capture = Capture::start();
    let ok = Flujo::new(renamed::new()).run("hi".to_owned());
    let names: Vec<_> = ok.step_history.iter().map(|step| step.name).collect();
    assert_eq!(names, ["draft_reply", "reply_length"]);
    let failed = Flujo::new(renamed::new()).run(String::new());
    let error = failed.output.unwrap_err();
    assert_eq!(error.step(), "draft_reply");
    assert!(
        error.to_string().starts_with("step `draft_reply` failed"),
        "{error}"
    );
    assert_eq!(failed.step_history[0].name, "draft_reply");
    let nested = Flujo::new(wrapping::new()).run("x".to_owned());
    assert_eq!(
        nested.step_history[0].name, "wraps",
        "a nested renamed step does not rename the stage"
    );
    let roots = capture.spans_named("invoke_workflow renamed");
    let failed_root = roots.iter().find(|root| root.status.is_error()).unwrap();
    match &failed_root.status {
        SpanStatus::Error { message } => assert!(message.contains("draft_reply"), "{message}"),
        other => panic!("{other:?}"),
    }
}

#[flujo::track_cost(model = "gpt-4o-mini")]
fn ask_and_log(
    model: &flujo::testing::StubModel,
) -> Result<flujo::testing::StubCompletion, anyhow::Error> {
    tracing::info!("asking the model");
    Ok(model.chat("hello")?)
}

#[test]
fn events_logged_inside_a_model_call_join_its_span_beside_its_record() {
    use tracing_subscriber::prelude::*;
    let capture = Capture::start();
    let model = flujo::testing::StubModel::new("stub");
    let subscriber = tracing_subscriber::registry().with(flujo::export::tracing_layer());
    tracing::subscriber::with_default(subscriber, || {
        ask_and_log(&model).unwrap();
        // Twice: the second call's box is one the worker gave back, emptied.
        ask_and_log(&model).unwrap();
    });
    let calls = capture.spans_named("chat gpt-4o-mini");
    assert_eq!(calls.len(), 2);
    for call in &calls {
        let names: Vec<_> = call.events().iter().map(|e| e.name.as_ref()).collect();
        assert_eq!(
            names,
            ["asking the model"],
            "one event each, none carried over"
        );
        assert!(call.attribute("gen_ai.usage.input_tokens").is_some());
    }
    assert_eq!(capture.cost_records().len(), 2);
}
