//! `init_telemetry` lifecycle and head sampling. Telemetry is process-wide, so these tests
//! take turns through one lock.

use std::sync::Mutex;

use flujo::testing::Capture;
use flujo::{TelemetryConfig, TelemetryError, init_telemetry_with, pipeline_step};

static TURN: Mutex<()> = Mutex::new(());

fn turn() -> std::sync::MutexGuard<'static, ()> {
    TURN.lock().unwrap_or_else(|e| e.into_inner())
}

#[pipeline_step]
fn root_step(i: u64) -> u64 {
    child_step(i) + 1
}

#[pipeline_step]
fn child_step(i: u64) -> u64 {
    i * 2
}

#[test]
fn a_second_init_is_an_error_until_the_guard_is_dropped() {
    let _turn = turn();
    let guard = init_telemetry_with(TelemetryConfig::builder().service_name("init-test"))
        .expect("first init succeeds");
    assert_eq!(guard.settings().service_name(), "init-test");
    let second = init_telemetry_with(TelemetryConfig::default()).unwrap_err();
    assert_eq!(second, TelemetryError::AlreadyInitialized);
    assert!(second.to_string().contains("keep its TelemetryGuard alive"));
    drop(guard);
    let again = init_telemetry_with(TelemetryConfig::default()).expect("re-init after drop");
    drop(again);
}

#[test]
fn invalid_settings_are_rejected_before_anything_starts() {
    let _turn = turn();
    let err = init_telemetry_with(TelemetryConfig::builder().sampling_rate(1.5)).unwrap_err();
    assert_eq!(
        err.to_string(),
        "telemetry setting `sampling_rate` = 1.5 is invalid: expected a number from 0.0 to 1.0"
    );
    // Nothing was left half-initialised.
    drop(init_telemetry_with(TelemetryConfig::default()).expect("init still possible"));
}

#[test]
fn dropping_the_guard_flushes_buffered_spans() {
    let _turn = turn();
    let capture = Capture::start();
    let guard = init_telemetry_with(
        TelemetryConfig::builder().flush_interval(std::time::Duration::from_secs(3600)),
    )
    .unwrap();
    root_step(1);
    drop(guard);
    // The worker's timer is an hour away: only the guard's flush can have delivered these.
    assert_eq!(capture.spans_named("root_step").len(), 1);
}

#[test]
fn sampling_at_zero_records_no_spans_but_every_metric() {
    let _turn = turn();
    let capture = Capture::start();
    let guard = init_telemetry_with(TelemetryConfig::builder().sampling_rate(0.0)).unwrap();
    for i in 0..200 {
        root_step(i);
    }
    assert!(capture.finished_spans().is_empty());
    assert_eq!(
        capture.counter(
            "flujo_step_calls_total",
            &[("step", "child_step"), ("status", "ok")]
        ),
        200
    );
    drop(guard);
}

#[test]
fn sampling_at_half_keeps_whole_traces_in_the_expected_proportion() {
    let _turn = turn();
    let capture = Capture::start();
    let guard = init_telemetry_with(TelemetryConfig::builder().sampling_rate(0.5)).unwrap();
    const N: u64 = 4000;
    let dropped_before = flujo::export::dropped_spans();
    for i in 0..N {
        root_step(i);
        if i % 500 == 0 {
            // Drain between bursts: this test is about sampling, not about queue overflow.
            capture.finished_spans();
        }
    }
    assert_eq!(flujo::export::dropped_spans(), dropped_before);
    let roots = capture.spans_named("root_step");
    let children = capture.spans_named("child_step");
    // Binomial(4000, 0.5): sd ~ 31.6; six sd either side fails about once in 10^9 runs.
    assert!(
        (1810..=2190).contains(&roots.len()),
        "sampled {} of {N}",
        roots.len()
    );
    // Parent-based: a child is recorded exactly when its root is.
    assert_eq!(children.len(), roots.len());
    for child in &children {
        assert!(
            roots
                .iter()
                .any(|r| Some(r.span_id) == child.parent_span_id)
        );
    }
    assert_eq!(
        capture.counter(
            "flujo_step_calls_total",
            &[("step", "root_step"), ("status", "ok")]
        ),
        N
    );
    drop(guard);
}

#[test]
fn sampling_at_one_records_everything() {
    let _turn = turn();
    let capture = Capture::start();
    let guard = init_telemetry_with(TelemetryConfig::builder().sampling_rate(1.0)).unwrap();
    for i in 0..300 {
        root_step(i);
    }
    assert_eq!(capture.spans_named("root_step").len(), 300);
    assert_eq!(capture.spans_named("child_step").len(), 300);
    drop(guard);
}

#[derive(Clone, Default)]
struct Collect(std::sync::Arc<Mutex<Vec<String>>>);

impl flujo::export::SpanExporter for Collect {
    fn export(&mut self, spans: &[flujo::export::FinishedSpan]) {
        let mut names = self.0.lock().unwrap();
        names.extend(spans.iter().map(|s| s.name.to_string()));
    }
}

#[test]
fn a_registered_exporter_receives_spans_until_the_guard_drops() {
    let _turn = turn();
    let collected = Collect::default();
    let mut guard = init_telemetry_with(TelemetryConfig::default()).unwrap();
    root_step(1);
    guard.add_span_exporter(collected.clone());
    root_step(2);
    drop(guard);
    // Spans before registration were not recorded for it; the guard's drop flushed the rest.
    assert_eq!(*collected.0.lock().unwrap(), ["child_step", "root_step"]);
    root_step(3);
    let guard = init_telemetry_with(TelemetryConfig::default()).unwrap();
    root_step(4);
    drop(guard);
    assert_eq!(
        collected.0.lock().unwrap().len(),
        2,
        "removed with its guard"
    );
}

#[test]
fn a_remote_traceparent_is_continued_and_its_sampling_decision_wins() {
    let _turn = turn();
    let capture = Capture::start();
    let guard = init_telemetry_with(TelemetryConfig::builder().sampling_rate(0.0)).unwrap();
    let sampled = flujo::SpanContext::from_traceparent(
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
    )
    .unwrap();
    sampled.in_scope(|| root_step(1));
    let unsampled = flujo::SpanContext::from_traceparent(
        "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00",
    )
    .unwrap();
    drop(guard);
    let guard = init_telemetry_with(TelemetryConfig::builder().sampling_rate(1.0)).unwrap();
    unsampled.in_scope(|| root_step(2));

    let roots = capture.spans_named("root_step");
    assert_eq!(
        roots.len(),
        1,
        "sampled remote trace recorded at rate 0; unsampled one not at rate 1"
    );
    assert_eq!(
        roots[0].trace_id.to_string(),
        "4bf92f3577b34da6a3ce929d0e0e4736"
    );
    assert_eq!(
        roots[0].parent_span_id.unwrap().to_string(),
        "00f067aa0ba902b7"
    );
    assert_eq!(
        capture.spans_named("child_step")[0].parent_span_id,
        Some(roots[0].span_id)
    );
    assert_eq!(
        capture.counter(
            "flujo_step_calls_total",
            &[("step", "root_step"), ("status", "ok")]
        ),
        2,
        "metrics count both"
    );
    drop(guard);
}

#[test]
fn a_step_can_hand_its_trace_to_another_service() {
    let _turn = turn();
    let capture = Capture::start();
    #[pipeline_step]
    fn outgoing() -> String {
        flujo::SpanContext::current()
            .traceparent()
            .expect("inside a step")
    }
    let header = outgoing();
    let span = &capture.spans_named("outgoing")[0];
    assert_eq!(header, format!("00-{}-{}-01", span.trace_id, span.span_id));
    assert_eq!(flujo::SpanContext::NONE.traceparent(), None);
    for bad in [
        "",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
        "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
        "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
        "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
    ] {
        let err = flujo::SpanContext::from_traceparent(bad).unwrap_err();
        assert!(
            err.to_string().contains("invalid traceparent"),
            "{bad}: {err}"
        );
        // `?` in a function returning TelemetryError keeps working.
        let wrapped: TelemetryError = err.into();
        assert!(matches!(wrapped, TelemetryError::Traceparent(_)));
    }
    // A huge header is not echoed whole.
    let huge = format!("00-{}", "a".repeat(10 * 1024 * 1024));
    let err = flujo::SpanContext::from_traceparent(&huge).unwrap_err();
    assert!(
        err.to_string().len() < 200,
        "{} bytes of error",
        err.to_string().len()
    );
    assert!(err.value.ends_with(&format!("({} bytes)", huge.len())));
}

#[flujo::track_cost(model = "acme-code-priced", unpriced)]
fn code_priced_call() -> Result<flujo::TokenUsage, anyhow::Error> {
    Ok(flujo::TokenUsage::new(1_000, 10))
}

#[test]
fn prices_set_in_code_survive_init_and_reinit() {
    let _turn = turn();
    // Set before telemetry starts, as a program's setup code does.
    flujo::cost::set_model_price(flujo::cost::ModelPrice::new(
        "acme-code-priced",
        flujo::cost::PerMillionTokens::parse("1").unwrap(),
        flujo::cost::PerMillionTokens::parse("2").unwrap(),
    ));
    for session in 0..2 {
        let guard = init_telemetry_with(TelemetryConfig::default()).unwrap();
        let capture = Capture::start();
        code_priced_call().unwrap();
        let records = capture.cost_records();
        assert_eq!(
            records[0].cost,
            Some(flujo::Usd::from_nanos(1_020_000)),
            "session {session}: the row set in code prices the call"
        );
        drop(capture);
        drop(guard);
    }
}
