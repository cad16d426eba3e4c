//! Behaviour of `#[pipeline_step]` observed through `flujo::testing::Capture`.

use std::fmt;
use std::sync::atomic::{AtomicU32, Ordering};

use flujo::export::{AttributeValue, SpanStatus};
use flujo::pipeline_step;
use flujo::testing::Capture;

#[derive(Debug, Clone, PartialEq)]
struct ModelError(String);

impl fmt::Display for ModelError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "model error: {}", self.0)
    }
}

impl std::error::Error for ModelError {}

#[pipeline_step]
fn tokenize(text: &str) -> Vec<String> {
    text.split_whitespace().map(str::to_owned).collect()
}

#[pipeline_step(name = "count_words")]
fn count(text: &str) -> usize {
    tokenize(text).len()
}

#[test]
fn a_call_records_one_span_with_step_attributes_and_metrics() {
    let capture = Capture::start();
    assert_eq!(tokenize("a b c"), vec!["a", "b", "c"]);

    let spans = capture.finished_spans();
    assert_eq!(spans.len(), 1);
    let span = &spans[0];
    assert_eq!(span.name, "tokenize");
    assert_eq!(span.status, SpanStatus::Ok);
    assert_eq!(span.parent_span_id, None);
    assert_eq!(span.attribute("flujo.step.name").unwrap(), "tokenize");
    assert_eq!(
        span.attribute("flujo.step.attempts"),
        Some(AttributeValue::Int(1))
    );
    // The current conventions' name: the fully qualified function (`code.function` and
    // `code.namespace` are deprecated).
    assert_eq!(
        span.attribute("code.function.name").unwrap(),
        "steps::tokenize"
    );
    assert!(span.attribute("code.function").is_none());
    assert!(span.attribute("code.namespace").is_none());
    // What Arize Phoenix files a step under (OpenInference).
    assert_eq!(span.attribute("openinference.span.kind").unwrap(), "CHAIN");
    assert!(span.end_time() >= span.start_time());
    // Arguments are never recorded unless named in `fields(...)`.
    assert!(!span.attributes().any(|(_, v)| v == "a b c"));

    let labels = [("step", "tokenize"), ("status", "ok")];
    assert_eq!(capture.counter("flujo_step_calls_total", &labels), 1);
    assert_eq!(
        capture.histogram_count("flujo_step_duration_seconds", &labels),
        1
    );
    assert!(capture.histogram_sum("flujo_step_duration_seconds", &labels) >= 0.0);
    assert_eq!(
        capture.counter(
            "flujo_step_retries_total",
            &[("step", "tokenize"), ("reason", "error")]
        ),
        0
    );
}

#[test]
fn nested_steps_are_children_in_one_trace() {
    let capture = Capture::start();
    assert_eq!(count("one two"), 2);
    let spans = capture.finished_spans();
    let outer = spans.iter().find(|s| s.name == "count_words").unwrap();
    let inner = spans.iter().find(|s| s.name == "tokenize").unwrap();
    assert_eq!(
        outer.attribute("code.function.name").unwrap(),
        "steps::count"
    );
    assert_eq!(inner.parent_span_id, Some(outer.span_id));
    assert_eq!(inner.trace_id, outer.trace_id);
    assert_ne!(inner.span_id, outer.span_id);

    // A new top-level call starts a new trace.
    count("x");
    let roots: Vec<_> = capture
        .spans_named("count_words")
        .into_iter()
        .map(|s| s.trace_id)
        .collect();
    assert_eq!(roots.len(), 2);
    assert_ne!(roots[0], roots[1]);
}

#[pipeline_step]
fn parse_score(raw: &str) -> Result<u32, std::num::ParseIntError> {
    let value: u32 = raw.trim().parse()?;
    if value > 100 {
        return Ok(100);
    }
    Ok(value)
}

#[test]
fn errors_mark_the_span_and_count_as_error() {
    let capture = Capture::start();
    assert_eq!(parse_score("250"), Ok(100));
    assert!(parse_score("abc").is_err());

    let spans = capture.spans_named("parse_score");
    assert_eq!(spans.len(), 2);
    assert_eq!(spans[0].status, SpanStatus::Ok);
    assert_eq!(
        spans[1].status,
        SpanStatus::Error {
            message: "invalid digit found in string".into()
        }
    );
    assert_eq!(
        spans[1].attribute("error.type").unwrap(),
        "core::num::error::ParseIntError"
    );
    assert_eq!(
        capture.counter(
            "flujo_step_calls_total",
            &[("step", "parse_score"), ("status", "error")]
        ),
        1
    );
    assert_eq!(
        capture.counter(
            "flujo_step_calls_total",
            &[("step", "parse_score"), ("status", "ok")]
        ),
        1
    );
}

static FLAKY_CALLS: AtomicU32 = AtomicU32::new(0);

#[derive(Clone, Debug)]
struct Prompt(String);

#[pipeline_step(retries = 3, backoff = "fixed", backoff_ms = 1)]
fn flaky_model(prompt: Prompt, fail_times: u32) -> Result<String, ModelError> {
    if FLAKY_CALLS.fetch_add(1, Ordering::SeqCst) < fail_times {
        return Err(ModelError("rate limited".into()));
    }
    Ok(prompt.0)
}

#[test]
fn retries_rerun_the_body_with_a_fresh_clone_and_count() {
    let capture = Capture::start();
    FLAKY_CALLS.store(0, Ordering::SeqCst);
    assert_eq!(flaky_model(Prompt("hi".into()), 2).unwrap(), "hi");
    assert_eq!(FLAKY_CALLS.load(Ordering::SeqCst), 3);

    let span = &capture.spans_named("flaky_model")[0];
    assert_eq!(span.status, SpanStatus::Ok);
    assert_eq!(
        span.attribute("flujo.step.attempts"),
        Some(AttributeValue::Int(3))
    );
    assert_eq!(
        capture.counter(
            "flujo_step_retries_total",
            &[("step", "flaky_model"), ("reason", "error")]
        ),
        2
    );
    assert_eq!(
        capture.counter(
            "flujo_step_calls_total",
            &[("step", "flaky_model"), ("status", "ok")]
        ),
        1
    );
}

#[test]
fn exhausted_retries_return_the_last_error() {
    let capture = Capture::start();
    FLAKY_CALLS.store(0, Ordering::SeqCst);
    let err = flaky_model(Prompt("hi".into()), 10).unwrap_err();
    assert_eq!(err, ModelError("rate limited".into()));
    assert_eq!(FLAKY_CALLS.load(Ordering::SeqCst), 4);

    let span = &capture.spans_named("flaky_model")[0];
    assert!(span.status.is_error());
    assert_eq!(
        span.attribute("flujo.step.attempts"),
        Some(AttributeValue::Int(4))
    );
    assert_eq!(span.attribute("error.type").unwrap(), "steps::ModelError");
    assert_eq!(
        capture.counter(
            "flujo_step_retries_total",
            &[("step", "flaky_model"), ("reason", "error")]
        ),
        3
    );
}

#[derive(Debug)]
struct Query {
    text: String,
    user: u64,
}

#[pipeline_step(fields(user_id = query.user, text_len = query.text.len(), kind = %Kind::Search, debug = ?Kind::Search, model, "gen_ai.request.model" = model, missing = None::<i64>))]
fn search(query: &Query, model: &str) -> usize {
    query.text.len() + model.len()
}

#[derive(Debug)]
enum Kind {
    Search,
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("search")
    }
}

#[test]
fn fields_are_recorded_with_their_types() {
    let capture = Capture::start();
    let query = Query {
        text: "secret prompt".into(),
        user: 42,
    };
    search(&query, "gpt-4o");
    let span = &capture.spans_named("search")[0];
    assert_eq!(span.attribute("user_id"), Some(AttributeValue::Int(42)));
    assert_eq!(span.attribute("text_len"), Some(AttributeValue::Int(13)));
    assert_eq!(span.attribute("kind").unwrap(), "search");
    assert_eq!(span.attribute("debug").unwrap(), "Search");
    assert_eq!(span.attribute("model").unwrap(), "gpt-4o");
    assert_eq!(span.attribute("gen_ai.request.model").unwrap(), "gpt-4o");
    assert_eq!(span.attribute("missing"), None);
    assert!(!span.attributes().any(|(_, v)| v == "secret prompt"));
}

struct Agent {
    model: String,
    calls: u32,
}

impl Agent {
    #[pipeline_step(fields(model = self.model.as_str()))]
    fn describe(&self) -> String {
        format!("agent({})", self.model)
    }

    #[pipeline_step(retries = 1, backoff_ms = 1)]
    fn bump(&mut self, by: u32) -> Result<u32, ModelError> {
        self.calls += by;
        if self.calls < 2 * by {
            return Err(ModelError("first attempt fails".into()));
        }
        Ok(self.calls)
    }

    #[pipeline_step]
    fn into_model(self) -> String {
        self.model
    }
}

trait Scorer {
    fn score(&self, text: &str) -> f64;
}

struct LengthScorer;

impl Scorer for LengthScorer {
    #[pipeline_step(name = "length_score")]
    fn score(&self, text: &str) -> f64 {
        text.len() as f64
    }
}

#[pipeline_step]
fn longest<'a, T>(items: &'a [T], key: impl Fn(&T) -> usize) -> Option<&'a T>
where
    T: fmt::Debug,
{
    items.iter().max_by_key(|item| key(item))
}

#[pipeline_step]
fn shout(text: String) -> impl fmt::Display {
    text.to_uppercase()
}

#[test]
fn methods_generics_and_impl_trait_returns_are_instrumented() {
    let capture = Capture::start();
    let mut agent = Agent {
        model: "stub".into(),
        calls: 0,
    };
    assert_eq!(agent.describe(), "agent(stub)");
    assert_eq!(agent.bump(3), Ok(6));
    assert_eq!(LengthScorer.score("four"), 4.0);
    assert_eq!(longest(&["a", "abc", "ab"], |s| s.len()), Some(&"abc"));
    assert_eq!(shout("hey".into()).to_string(), "HEY");
    assert_eq!(agent.into_model(), "stub");

    let names: Vec<_> = capture
        .finished_spans()
        .into_iter()
        .map(|s| s.name.to_string())
        .collect();
    assert_eq!(
        names,
        [
            "describe",
            "bump",
            "length_score",
            "longest",
            "shout",
            "into_model"
        ]
    );
    let describe = &capture.spans_named("describe")[0];
    assert_eq!(describe.attribute("model").unwrap(), "stub");
    let bump = &capture.spans_named("bump")[0];
    assert_eq!(
        bump.attribute("flujo.step.attempts"),
        Some(AttributeValue::Int(2))
    );
}

#[pipeline_step]
fn explode(should: bool) -> u8 {
    if should {
        panic!("boom");
    }
    1
}

#[test]
fn a_panic_marks_the_span_as_error_and_keeps_unwinding() {
    let capture = Capture::start();
    let result = std::panic::catch_unwind(|| explode(true));
    assert!(result.is_err(), "the panic must propagate");
    let span = &capture.spans_named("explode")[0];
    assert!(span.status.is_error());
    assert_eq!(span.attribute("error.type").unwrap(), "panic");
    assert_eq!(
        capture.counter(
            "flujo_step_calls_total",
            &[("step", "explode"), ("status", "error")]
        ),
        1
    );
    // The context was restored during unwinding: the next call is a root again.
    explode(false);
    let again = &capture.spans_named("explode")[1];
    assert_eq!(again.parent_span_id, None);
}

#[test]
fn plain_threads_keep_parents_through_an_explicit_context() {
    let capture = Capture::start();
    #[pipeline_step]
    fn fan_out() -> usize {
        let context = flujo::SpanContext::current();
        let handles: Vec<_> = (0..4)
            .map(|i| {
                std::thread::spawn(move || context.in_scope(|| tokenize(&"w ".repeat(i)).len()))
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).sum()
    }
    assert_eq!(fan_out(), 6);
    let parent = &capture.spans_named("fan_out")[0];
    let children = capture.spans_named("tokenize");
    assert_eq!(children.len(), 4);
    for child in &children {
        assert_eq!(child.parent_span_id, Some(parent.span_id));
        assert_eq!(child.trace_id, parent.trace_id);
    }
}

#[pipeline_step(kind = "tool", name = "weather")]
fn get_weather(city: &str) -> Result<String, std::fmt::Error> {
    Ok(format!("rain in {city}"))
}

#[pipeline_step(kind = "agent")]
fn travel_agent(city: &str) -> String {
    get_weather(city).unwrap_or_default()
}

/// `kind = "tool"` and `kind = "agent"` make the spans the GenAI conventions name
/// `execute_tool {name}` and `invoke_agent {name}`, with their attributes; metrics keep the
/// step's name.
#[test]
fn tool_and_agent_steps_are_genai_tool_and_agent_spans() {
    let capture = Capture::start();
    travel_agent("Lisbon");
    let agent = &capture.spans_named("invoke_agent travel_agent")[0];
    let tool = &capture.spans_named("execute_tool weather")[0];
    assert_eq!(tool.parent_span_id, Some(agent.span_id));
    let text = |span: &flujo::export::FinishedSpan, key| {
        span.attribute(key)
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_else(|| panic!("{key} missing on {}", span.name))
    };
    assert_eq!(text(agent, "gen_ai.operation.name"), "invoke_agent");
    assert_eq!(text(agent, "gen_ai.agent.name"), "travel_agent");
    assert_eq!(text(agent, "openinference.span.kind"), "AGENT");
    assert_eq!(text(tool, "gen_ai.operation.name"), "execute_tool");
    assert_eq!(text(tool, "gen_ai.tool.name"), "weather");
    assert_eq!(text(tool, "gen_ai.tool.type"), "function");
    assert_eq!(text(tool, "openinference.span.kind"), "TOOL");
    assert_eq!(text(tool, "tool.name"), "weather");
    assert_eq!(text(tool, "flujo.step.name"), "weather");
    assert_eq!(
        capture.counter(
            "flujo_step_calls_total",
            &[("step", "weather"), ("status", "ok")]
        ),
        1
    );
    // The conventions' durations, by name, and by `error.type` for a call that failed.
    assert_eq!(
        capture.histogram_count(
            "gen_ai.execute_tool.duration",
            &[("gen_ai.tool.name", "weather")]
        ),
        1
    );
    assert_eq!(
        capture.histogram_count(
            "gen_ai.invoke_agent.duration",
            &[("gen_ai.agent.name", "travel_agent")]
        ),
        1
    );
    broken_tool().unwrap_err();
    assert_eq!(
        capture.histogram_count(
            "gen_ai.execute_tool.duration",
            &[
                ("gen_ai.tool.name", "broken_tool"),
                ("error.type", "core::fmt::Error")
            ]
        ),
        1
    );
}

#[pipeline_step(kind = "tool")]
fn broken_tool() -> Result<(), std::fmt::Error> {
    Err(std::fmt::Error)
}
