//! Load: 8 OS threads x 100,000 model calls, and 10,000 concurrent tokio tasks running
//! pipelines. Whatever the interleaving, every exported span's parent is in its trace, no
//! request id crosses runs, and metric and cost totals equal the calls exactly.

use std::collections::{HashMap, HashSet};

use flujo::export::FinishedSpan;
use flujo::testing::Capture;
use flujo::{Flujo, TokenUsage, UsageLimitExceeded, Usd, pipeline, pipeline_step, track_cost};

/// The tests take turns: each one's capture must see only its own work.
static TURN: std::sync::Mutex<()> = std::sync::Mutex::new(());

#[derive(Debug, thiserror::Error)]
#[error(transparent)]
struct CallError(#[from] UsageLimitExceeded);

/// 1,000 input and 100 output tokens of gpt-4o-mini ($0.15/M in, $0.60/M out): $0.00021.
const CALL_COST_NANOS: u64 = 210_000;

#[track_cost(model = "gpt-4o-mini")]
fn complete(_prompt: u64) -> Result<TokenUsage, CallError> {
    Ok(TokenUsage::new(1_000, 100))
}

const CALLS_PER_RUN: u64 = 1_000;

#[pipeline_step]
fn answer_batch(batch: u64) -> Result<u64, CallError> {
    for prompt in 0..CALLS_PER_RUN {
        complete(batch * CALLS_PER_RUN + prompt)?;
    }
    Ok(batch)
}

pipeline! {
    pipeline batched(batch: u64) -> u64 {
        answer_batch?
    }
}

/// Every span's parent is a span of its trace; returns the spans by trace.
fn assert_parents_exist(spans: &[FinishedSpan]) -> HashMap<u128, Vec<&FinishedSpan>> {
    let ids: HashSet<(u128, u64)> = spans
        .iter()
        .map(|span| (span.trace_id.0, span.span_id.0))
        .collect();
    assert_eq!(ids.len(), spans.len(), "span ids are unique");
    let mut traces: HashMap<u128, Vec<&FinishedSpan>> = HashMap::new();
    for span in spans {
        if let Some(parent) = span.parent_span_id {
            assert!(
                ids.contains(&(span.trace_id.0, parent.0)),
                "{} has no parent {parent:?} in trace {:?}",
                span.name,
                span.trace_id
            );
        }
        traces.entry(span.trace_id.0).or_default().push(span);
    }
    traces
}

const THREADS: u64 = 8;
const RUNS_PER_THREAD: u64 = 100;

#[test]
fn eight_threads_of_100k_calls_each_keep_every_parent_request_id_and_total() {
    let _turn = TURN.lock().unwrap_or_else(|e| e.into_inner());
    let capture = Capture::start();
    // Counted since the process started (another test here drops spans on purpose).
    let dropped_before = flujo::export::dropped_spans();
    std::thread::scope(|scope| {
        for thread in 0..THREADS {
            let capture = &capture;
            scope.spawn(move || {
                let runner = Flujo::new(batched::new());
                for run in 0..RUNS_PER_THREAD {
                    let result = runner.run(thread * RUNS_PER_THREAD + run);
                    result.output.expect("the run succeeds");
                    assert_eq!(result.total_tokens.input, CALLS_PER_RUN * 1_000);
                    // Each run's 1,002 spans fit the thread's ring; waiting for the worker
                    // between runs keeps a debug build's worker from falling behind eight
                    // producers (which would drop spans, counted, and with them parents).
                    capture.span_count();
                }
            });
        }
    });
    let calls = THREADS * RUNS_PER_THREAD * CALLS_PER_RUN;
    let runs = THREADS * RUNS_PER_THREAD;
    assert_eq!(
        flujo::export::dropped_spans() - dropped_before,
        0,
        "the load runs at a rate the export worker keeps up with"
    );
    let spans = capture.finished_spans();
    assert_eq!(
        spans.len() as u64,
        calls + 2 * runs,
        "a span per call, step and run"
    );
    let traces = assert_parents_exist(&spans);
    assert_eq!(traces.len() as u64, runs, "one trace per run");

    // Every cost record carries its own run's request id, and each run has its own.
    let records = capture.cost_records();
    assert_eq!(records.len() as u64, calls);
    let mut request_of_trace: HashMap<u128, &str> = HashMap::new();
    for record in &records {
        let trace = record.trace_id.expect("recorded in a trace").0;
        let request = record.request_id.as_deref().expect("inside a run");
        let first = *request_of_trace.entry(trace).or_insert(request);
        assert_eq!(first, request, "one request id per trace");
    }
    let requests: HashSet<&str> = request_of_trace.values().copied().collect();
    assert_eq!(
        requests.len() as u64,
        runs,
        "no request id is shared by two runs"
    );

    // Totals are exact.
    let requests_total = capture.counter(
        "flujo_model_requests_total",
        &[
            ("model", "gpt-4o-mini"),
            ("provider", "openai"),
            ("status", "ok"),
        ],
    );
    assert_eq!(requests_total, calls);
    assert_eq!(
        capture.counter(
            "flujo_step_calls_total",
            &[("step", "answer_batch"), ("status", "ok")]
        ),
        runs
    );
    let report = capture.cost_report();
    assert_eq!(report.requests, calls);
    assert_eq!(report.total_cost, Usd::from_nanos(calls * CALL_COST_NANOS));
    assert_eq!(
        capture.cost_usd(&[
            ("model", "gpt-4o-mini"),
            ("provider", "openai"),
            ("pipeline", "batched"),
            ("step", "answer_batch"),
        ]),
        Usd::from_nanos(calls * CALL_COST_NANOS)
    );
}

#[track_cost(model = "gpt-4o-mini")]
async fn complete_async(prompt: u64) -> Result<TokenUsage, CallError> {
    // A provider's latency: the task yields, and others run on its thread meanwhile.
    tokio::time::sleep(std::time::Duration::from_millis(200 + prompt % 200)).await;
    Ok(TokenUsage::new(1_000, 100))
}

const CALLS_PER_TASK: u64 = 3;

#[pipeline_step]
async fn answer_async(question: u64) -> Result<u64, CallError> {
    for prompt in 0..CALLS_PER_TASK {
        complete_async(question + prompt).await?;
    }
    Ok(question)
}

pipeline! {
    pipeline concurrent(question: u64) -> u64 {
        answer_async.await?
    }
}

const TASKS: u64 = 10_000;

#[test]
fn ten_thousand_concurrent_tokio_pipelines_keep_their_own_request_ids_and_exact_totals() {
    let _turn = TURN.lock().unwrap_or_else(|e| e.into_inner());
    let capture = Capture::start();
    let dropped_before = flujo::export::dropped_spans();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let results = runtime.block_on(async {
        let runner = std::sync::Arc::new(Flujo::new(concurrent::new()));
        let start = tokio::time::Instant::now();
        let tasks: Vec<_> = (0..TASKS)
            .map(|question| {
                let runner = std::sync::Arc::clone(&runner);
                tokio::spawn(async move {
                    // Every task is alive at once and most runs overlap (each takes about a
                    // second); their starts spread over one second, so that the spans' rate
                    // stays one a debug build's export worker keeps up with.
                    let offset = std::time::Duration::from_micros(question * 1_000_000 / TASKS);
                    tokio::time::sleep_until(start + offset).await;
                    runner.run_async(question).await
                })
            })
            .collect();
        let mut results = Vec::with_capacity(tasks.len());
        for task in tasks {
            results.push(task.await.expect("the task ends"));
        }
        results
    });
    assert_eq!(flujo::export::dropped_spans() - dropped_before, 0);
    let mut request_of_trace = HashMap::new();
    for (question, result) in results.iter().enumerate() {
        assert_eq!(
            *result.output.as_ref().expect("the run succeeds"),
            question as u64
        );
        assert_eq!(result.total_tokens.input, CALLS_PER_TASK * 1_000);
        assert_eq!(
            result.total_cost,
            Usd::from_nanos(CALLS_PER_TASK * CALL_COST_NANOS)
        );
        let trace = result.trace_id.expect("a traced run").0;
        assert!(
            request_of_trace
                .insert(trace, result.request_id.as_str())
                .is_none(),
            "one trace per run"
        );
    }
    let requests: HashSet<&str> = request_of_trace.values().copied().collect();
    assert_eq!(
        requests.len() as u64,
        TASKS,
        "every run has its own request id"
    );

    let spans = capture.finished_spans();
    assert_eq!(spans.len() as u64, TASKS * (2 + CALLS_PER_TASK));
    let traces = assert_parents_exist(&spans);
    assert_eq!(traces.len() as u64, TASKS);
    let records = capture.cost_records();
    assert_eq!(records.len() as u64, TASKS * CALLS_PER_TASK);
    for record in &records {
        let trace = record.trace_id.expect("recorded in a trace").0;
        assert_eq!(
            record.request_id.as_deref(),
            Some(request_of_trace[&trace]),
            "a call's cost is recorded under its own run's request id"
        );
    }
    assert_eq!(
        capture.counter(
            "flujo_pipeline_runs_total",
            &[("pipeline", "concurrent"), ("status", "ok")]
        ),
        TASKS
    );
    assert_eq!(
        capture.cost_usd(&[
            ("model", "gpt-4o-mini"),
            ("provider", "openai"),
            ("pipeline", "concurrent"),
            ("step", "answer_async"),
        ]),
        Usd::from_nanos(TASKS * CALLS_PER_TASK * CALL_COST_NANOS)
    );
}

/// Holds the export worker in its first export until released: a worker without a core.
struct HoldsTheWorker(Option<std::sync::mpsc::Receiver<()>>);

impl flujo::export::SpanExporter for HoldsTheWorker {
    fn export(&mut self, _: &[FinishedSpan]) {
        if let Some(release) = self.0.take() {
            let _ = release.recv_timeout(std::time::Duration::from_secs(30));
        }
    }
}

/// What the README promises when the export worker has no core: the calling threads never
/// wait; spans that find their thread's ring full are dropped and counted
/// (`reason="queue_full"`); their metrics and cost records are applied on the calling thread,
/// every one.
#[test]
fn a_worker_that_falls_behind_drops_spans_counted_and_no_metric_or_cost() {
    let _turn = TURN.lock().unwrap_or_else(|e| e.into_inner());
    let capture = Capture::start();
    let mut guard = flujo::init_telemetry_with(flujo::TelemetryConfig::default()).unwrap();
    let (release, held) = std::sync::mpsc::channel();
    guard.add_span_exporter(HoldsTheWorker(Some(held)));
    let dropped_before = flujo::export::dropped_spans();
    // The 256th call wakes the worker, which then stays in the held export.
    const CALLS: u64 = 20_000;
    for prompt in 0..300 {
        complete(prompt).unwrap();
    }
    std::thread::sleep(std::time::Duration::from_millis(300));
    for prompt in 300..CALLS {
        complete(prompt).unwrap();
    }
    release.send(()).unwrap();
    let spans = capture.finished_spans().len() as u64;
    let dropped = flujo::export::dropped_spans() - dropped_before;
    assert!(dropped > 10_000, "the rings filled: {dropped} dropped");
    assert_eq!(spans + dropped, CALLS, "every span delivered or counted");
    assert_eq!(
        capture.counter(
            "flujo_telemetry_spans_dropped_total",
            &[("reason", "queue_full")]
        ),
        dropped
    );
    assert_eq!(
        capture.counter(
            "flujo_model_requests_total",
            &[
                ("model", "gpt-4o-mini"),
                ("provider", "openai"),
                ("status", "ok"),
            ],
        ),
        CALLS
    );
    assert_eq!(capture.cost_records().len() as u64, CALLS);
    assert_eq!(
        capture.cost_report().total_cost,
        Usd::from_nanos(CALLS * CALL_COST_NANOS)
    );
    drop(guard);
}
