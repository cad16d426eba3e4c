//! The lifecycle, correct by construction: shutdown waits for calls in flight and delivers
//! them, late calls never reach a later session, cost records do not depend on spans, a
//! report never blocks a call, init and drop never interleave badly, and nothing hangs or
//! leaves a thread's context on a dead span.

use std::collections::BTreeSet;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use flujo::cost::{CostLedger, get_cost_report, utc_today};
use flujo::export::{FinishedSpan, SpanExporter};
use flujo::testing::Capture;
use flujo::{SpanContext, TelemetryConfig, TokenUsage, pipeline_step, track_cost};

/// Telemetry is process-wide: the tests take turns.
static TURN: Mutex<()> = Mutex::new(());

fn turn() -> MutexGuard<'static, ()> {
    TURN.lock().unwrap_or_else(|e| e.into_inner())
}

/// A ledger in a directory of its own, removed when the test ends, passed or failed (the large
/// one is ~40 MB, and every run of the suite makes one).
struct TempLedger {
    dir: PathBuf,
    path: PathBuf,
}

fn temp_ledger(name: &str) -> TempLedger {
    let dir = std::env::temp_dir().join(format!("flujo-lifecycle-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("ledger.sqlite");
    TempLedger { dir, path }
}

impl Drop for TempLedger {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A model call that takes `delay` and reports `1000 + id` input tokens, so that the ledger
/// says which call each record is.
#[track_cost(model = "gpt-4o-mini")]
async fn slow_call(id: u64, delay: Duration) -> Result<TokenUsage, anyhow::Error> {
    tokio::time::sleep(delay).await;
    Ok(TokenUsage::new(1000 + id, 10))
}

fn ids_in(path: &Path) -> BTreeSet<u64> {
    let ledger = CostLedger::open(path).expect("the ledger opens");
    ledger
        .records(utc_today(), utc_today())
        .unwrap()
        .iter()
        .map(|record| record.usage.input - 1000)
        .collect()
}

#[test]
fn shutdown_delivers_calls_that_end_within_the_timeout_and_none_leaks_into_the_next_session() {
    let _turn = turn();
    let first = temp_ledger("first");
    let second = temp_ledger("second");
    let timeout = Duration::from_millis(500);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_time()
        .build()
        .unwrap();
    let guard = flujo::init_telemetry_with(
        TelemetryConfig::builder()
            .cost_ledger(&first.path)
            .shutdown_timeout(timeout),
    )
    .unwrap();
    // 50 calls in flight, ending from 100 ms to 1.1 s after the drop starts.
    let finished: Arc<Mutex<Vec<(u64, Instant)>>> = Arc::default();
    let started = Instant::now();
    let tasks: Vec<_> = (0..50u64)
        .map(|id| {
            let finished = Arc::clone(&finished);
            runtime.spawn(async move {
                slow_call(id, Duration::from_millis(150 + id * 20))
                    .await
                    .unwrap();
                finished.lock().unwrap().push((id, Instant::now()));
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(50));
    let drop_started = Instant::now();
    drop(guard);
    let drop_ended = Instant::now();
    println!(
        "drop took {:?} (timeout {timeout:?}), calls started {:?} before it",
        drop_ended - drop_started,
        drop_started - started
    );
    assert!(
        drop_ended - drop_started < timeout + Duration::from_millis(50),
        "the drop waits at most its timeout"
    );
    // The documented split: calls running get the timeout less a quarter of it (at most
    // 500 ms), which is kept for delivering what they recorded.
    let calls_deadline = timeout - (timeout / 4).min(Duration::from_millis(500));
    let delivered = ids_in(&first.path);
    let within: BTreeSet<u64> = finished
        .lock()
        .unwrap()
        .iter()
        .filter(|(_, at)| *at + Duration::from_millis(30) < drop_started + calls_deadline)
        .map(|(id, _)| *id)
        .collect();
    assert!(
        within.len() >= 10,
        "calls ended within the timeout: {within:?}"
    );
    let lost: Vec<_> = within.difference(&delivered).collect();
    assert!(
        lost.is_empty(),
        "completed within shutdown_timeout but not in the ledger: {lost:?}"
    );

    // A new session while the rest of the first session's calls end.
    let late_before = flujo::export::late_records().1;
    let guard =
        flujo::init_telemetry_with(TelemetryConfig::builder().cost_ledger(&second.path)).unwrap();
    runtime.block_on(async {
        for task in tasks {
            task.await.unwrap();
        }
    });
    // One call of the new session, so that its ledger is not empty.
    runtime.block_on(slow_call(999, Duration::ZERO)).unwrap();
    drop(guard);
    let in_second = ids_in(&second.path);
    assert_eq!(
        in_second,
        BTreeSet::from([999]),
        "only the second session's call is charged to it"
    );
    assert_eq!(
        ids_in(&first.path),
        delivered,
        "the closed ledger got nothing after its drop"
    );
    let late = flujo::export::late_records().1 - late_before;
    assert_eq!(
        late as usize,
        50 - delivered.len(),
        "every first-session call that ended after its shutdown is counted as late"
    );
}

#[test]
fn a_priced_call_with_no_exporter_and_sampling_zero_reaches_the_ledger_and_the_report() {
    let _turn = turn();
    let ledger = temp_ledger("unsampled");
    let guard = flujo::init_telemetry_with(
        TelemetryConfig::builder()
            .sampling_rate(0.0)
            .cost_ledger(&ledger.path),
    )
    .unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    runtime.block_on(slow_call(7, Duration::ZERO)).unwrap();
    let report = get_cost_report(utc_today(), utc_today()).unwrap();
    assert!(report.requests >= 1, "{report:?}");
    assert!(report.total_cost > flujo::Usd::ZERO);
    drop(guard);
    assert_eq!(ids_in(&ledger.path), BTreeSet::from([7]));
}

#[pipeline_step]
fn priced_step(i: u64) -> Result<TokenUsage, anyhow::Error> {
    priced_call(i)
}

#[track_cost(model = "gpt-4o-mini")]
fn priced_call(i: u64) -> Result<TokenUsage, anyhow::Error> {
    Ok(TokenUsage::new(100 + i % 7, 10))
}

#[test]
fn a_report_over_a_large_sqlite_ledger_never_blocks_a_step() {
    let _turn = turn();
    let ledger = temp_ledger("large");
    let guard =
        flujo::init_telemetry_with(TelemetryConfig::builder().cost_ledger(&ledger.path)).unwrap();
    for i in 0..200_000 {
        priced_call(i).unwrap();
    }
    // Waits until every record is committed.
    let seeded = get_cost_report(utc_today(), utc_today()).unwrap();
    assert!(seeded.requests >= 200_000);

    let stop = Arc::new(AtomicBool::new(false));
    let reporting = Arc::new(AtomicBool::new(false));
    let workers: Vec<_> = (0..2)
        .map(|_| {
            let (stop, reporting) = (Arc::clone(&stop), Arc::clone(&reporting));
            std::thread::spawn(move || {
                let mut during_report = Vec::new();
                let mut slowest = Duration::ZERO;
                let mut i = 0;
                while !stop.load(Ordering::Acquire) {
                    let start = Instant::now();
                    priced_step(i).unwrap();
                    let end = Instant::now();
                    slowest = slowest.max(end - start);
                    if reporting.load(Ordering::Acquire) {
                        during_report.push(end);
                    }
                    i += 1;
                }
                (during_report, slowest)
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(20));
    let report_start = Instant::now();
    reporting.store(true, Ordering::Release);
    let report = get_cost_report(utc_today(), utc_today()).unwrap();
    reporting.store(false, Ordering::Release);
    let report_end = Instant::now();
    stop.store(true, Ordering::Release);
    let took = report_end - report_start;
    let halfway = report_start + took / 2;
    assert!(report.requests >= 200_000);
    for (n, worker) in workers.into_iter().enumerate() {
        let (during, slowest) = worker.join().unwrap();
        let late_in_report = during.iter().filter(|at| **at > halfway).count();
        println!(
            "report over {} records took {took:?}; step thread {n}: {} calls during it, {} in \
             its second half, slowest call {slowest:?}",
            report.requests,
            during.len(),
            late_in_report
        );
        assert!(
            late_in_report > 0,
            "step thread {n} made no call in the second half of the report: it was blocked"
        );
    }
    drop(guard);
}

#[pipeline_step]
fn busy_step(i: u64) -> bool {
    // Inside a step its span is current whenever telemetry is on.
    let _ = i;
    SpanContext::current().span_id().is_some()
}

#[test]
fn init_and_drop_on_two_threads_never_leave_telemetry_off_under_a_live_guard() {
    let _turn = turn();
    let stop = Arc::new(AtomicBool::new(false));
    let callers: Vec<_> = (0..2)
        .map(|_| {
            let stop = Arc::clone(&stop);
            std::thread::spawn(move || {
                let mut i = 0;
                while !stop.load(Ordering::Relaxed) {
                    busy_step(i);
                    i += 1;
                }
            })
        })
        .collect();
    let off_under_guard = Arc::new(AtomicU64::new(0));
    let cyclers: Vec<_> = (0..2)
        .map(|_| {
            let off_under_guard = Arc::clone(&off_under_guard);
            std::thread::spawn(move || {
                let mut sessions = 0;
                let deadline = Instant::now() + Duration::from_secs(2);
                while sessions < 50 && Instant::now() < deadline {
                    let config =
                        TelemetryConfig::builder().shutdown_timeout(Duration::from_millis(50));
                    let Ok(guard) = flujo::init_telemetry_with(config) else {
                        std::thread::yield_now();
                        continue;
                    };
                    if !busy_step(0) {
                        off_under_guard.fetch_add(1, Ordering::Relaxed);
                    }
                    drop(guard);
                    sessions += 1;
                }
                sessions
            })
        })
        .collect();
    let sessions: u64 = cyclers.into_iter().map(|c| c.join().unwrap()).sum();
    stop.store(true, Ordering::Relaxed);
    for caller in callers {
        caller.join().unwrap();
    }
    println!("{sessions} sessions started and stopped from two threads");
    assert!(sessions >= 20);
    assert_eq!(off_under_guard.load(Ordering::Relaxed), 0);
}

/// An exporter that asks for a cost report from inside `export`, on the worker thread.
struct ReportingExporter(mpsc::Sender<u64>);

impl SpanExporter for ReportingExporter {
    fn export(&mut self, spans: &[FinishedSpan]) {
        let report = get_cost_report(utc_today(), utc_today()).expect("a report");
        let _ = self.0.send(report.requests + spans.len() as u64);
        // A flush from the worker returns instead of waiting on itself.
        let _ = flujo::cost::recent_cost_records();
    }
}

#[test]
fn an_exporter_that_calls_back_into_flujo_does_not_deadlock() {
    let _turn = turn();
    let (sent, received) = mpsc::channel();
    let mut guard = flujo::init_telemetry().unwrap();
    guard.add_span_exporter(ReportingExporter(sent));
    priced_step(1).unwrap();
    let answer = received.recv_timeout(Duration::from_secs(10));
    assert!(
        answer.is_ok(),
        "the exporter's report never came back: the worker deadlocked"
    );
    drop(guard);
}

#[test]
fn a_nested_capture_on_one_thread_is_a_clear_panic_not_a_hang() {
    let _turn = turn();
    let (done, outcome) = mpsc::channel();
    std::thread::spawn(move || {
        let result = catch_unwind(|| {
            let _outer = Capture::start();
            let _inner = Capture::start();
        });
        let message = result
            .err()
            .and_then(|panic| {
                let text = panic.downcast_ref::<&str>().map(|s| (*s).to_owned());
                text.or_else(|| panic.downcast_ref::<String>().cloned())
            })
            .unwrap_or_default();
        let _ = done.send(message);
    });
    let message = outcome
        .recv_timeout(Duration::from_secs(10))
        .expect("the nested capture hung");
    assert!(message.contains("already has a live Capture"), "{message}");
    // Captures still work afterwards.
    let capture = Capture::start();
    busy_step(1);
    assert_eq!(capture.spans_named("busy_step").len(), 1);
}

struct PanickingDisplay;

impl std::fmt::Debug for PanickingDisplay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PanickingDisplay")
    }
}

impl std::fmt::Display for PanickingDisplay {
    fn fmt(&self, _: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        panic!("a Display implementation that panics")
    }
}

#[pipeline_step]
fn fails_with_panicking_display() -> Result<(), PanickingDisplay> {
    Err(PanickingDisplay)
}

#[pipeline_step]
fn fails_plainly() -> Result<(), String> {
    Err("plain failure".to_owned())
}

/// A subscriber whose every event panics.
struct PanickingSubscriber;

impl tracing::Subscriber for PanickingSubscriber {
    fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        tracing::span::Id::from_u64(1)
    }
    fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}
    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
    fn event(&self, _: &tracing::Event<'_>) {
        panic!("a log subscriber that panics")
    }
    fn enter(&self, _: &tracing::span::Id) {}
    fn exit(&self, _: &tracing::span::Id) {}
}

#[test]
fn a_panicking_display_or_log_subscriber_does_not_leave_the_context_on_a_dead_span() {
    let _turn = turn();
    let capture = Capture::start();
    let outside = SpanContext::current();
    let _ = catch_unwind(AssertUnwindSafe(fails_with_panicking_display));
    assert_eq!(SpanContext::current(), outside, "after a panicking Display");
    tracing::subscriber::with_default(PanickingSubscriber, || {
        let _ = catch_unwind(AssertUnwindSafe(fails_plainly));
    });
    assert_eq!(
        SpanContext::current(),
        outside,
        "after a panicking log subscriber"
    );
    // Both calls are still recorded, as errors.
    assert_eq!(capture.spans_named("fails_with_panicking_display").len(), 1);
    assert_eq!(capture.spans_named("fails_plainly").len(), 1);
}

/// Notes the context current when it is dropped.
struct NotesContextOnDrop(Arc<Mutex<Option<SpanContext>>>);

impl Drop for NotesContextOnDrop {
    fn drop(&mut self) {
        *self.0.lock().unwrap() = Some(SpanContext::current());
    }
}

#[pipeline_step]
async fn never_finishes(
    note: Arc<Mutex<Option<SpanContext>>>,
    seen: Arc<Mutex<Option<SpanContext>>>,
) {
    let _guard = NotesContextOnDrop(note);
    *seen.lock().unwrap() = Some(SpanContext::current());
    std::future::pending::<()>().await;
}

#[test]
fn a_cancelled_future_runs_its_destructors_inside_its_step() {
    let _turn = turn();
    let capture = Capture::start();
    let at_drop: Arc<Mutex<Option<SpanContext>>> = Arc::default();
    let inside: Arc<Mutex<Option<SpanContext>>> = Arc::default();
    let mut future = Box::pin(never_finishes(Arc::clone(&at_drop), Arc::clone(&inside)));
    let waker = std::task::Waker::noop();
    let mut cx = std::task::Context::from_waker(waker);
    assert!(future.as_mut().poll(&mut cx).is_pending());
    drop(future);
    let inside = inside.lock().unwrap().expect("the body ran");
    let at_drop = at_drop.lock().unwrap().expect("the destructor ran");
    assert!(inside.span_id().is_some());
    assert_eq!(
        at_drop.span_id(),
        inside.span_id(),
        "the destructor ran inside the step"
    );
    assert_eq!(SpanContext::current(), SpanContext::NONE);
    let spans = capture.spans_named("never_finishes");
    assert_eq!(spans.len(), 1, "the cancelled call is recorded");
}
