//! Test what your pipelines record: spans and metric values, in memory.
//!
//! ```
//! use flujo::pipeline_step;
//! use flujo::testing::Capture;
//!
//! #[pipeline_step]
//! fn shout(text: &str) -> String {
//!     text.to_uppercase()
//! }
//!
//! let capture = Capture::start();
//! assert_eq!(shout("hi"), "HI");
//!
//! let spans = capture.finished_spans();
//! assert_eq!(spans.len(), 1);
//! assert_eq!(spans[0].name, "shout");
//! assert_eq!(capture.counter("flujo_step_calls_total", &[("step", "shout"), ("status", "ok")]), 1);
//! ```
//!
//! A capture sees every span and metric recorded while it lives, on any thread, including
//! tokio worker threads. Captures are serialised: [`Capture::start`] waits until no other
//! capture is alive, so tests running in parallel in one process never see each other's
//! spans or counts. (Work that runs concurrently *without* a capture of its own can still
//! show up in one: give every test that runs steps its own capture.)

use std::fmt::Write as _;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Duration;

use crate::export::{self, SinkId, SpanSink};
use crate::metrics::{self, Snapshot};
use crate::span::FinishedSpan;
use crate::telemetry;

/// How long reading spans waits for the export worker before giving up.
const FLUSH_TIMEOUT: Duration = Duration::from_secs(10);

struct CaptureLock {
    taken: Mutex<bool>,
    released: Condvar,
}

static CAPTURE_LOCK: CaptureLock = CaptureLock {
    taken: Mutex::new(false),
    released: Condvar::new(),
};

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

struct CaptureSink(Arc<Mutex<Vec<FinishedSpan>>>);

impl SpanSink for CaptureSink {
    fn export(&mut self, spans: &[FinishedSpan]) {
        lock(&self.0).extend_from_slice(spans);
    }
}

/// Records spans and metric values in memory while it lives; see the [module docs](self).
pub struct Capture {
    sink: SinkId,
    spans: Arc<Mutex<Vec<FinishedSpan>>>,
    baseline: Snapshot,
}

impl Capture {
    /// Starts capturing, switching recording on if telemetry was not initialised. Waits for
    /// any other live capture to end first.
    pub fn start() -> Capture {
        {
            let taken = lock(&CAPTURE_LOCK.taken);
            let mut taken = CAPTURE_LOCK
                .released
                .wait_while(taken, |taken| *taken)
                .unwrap_or_else(|e| e.into_inner());
            *taken = true;
        }
        metrics::install();
        // Spans that ended before this capture belong to whoever was listening then.
        export::flush(FLUSH_TIMEOUT);
        let spans = Arc::new(Mutex::new(Vec::new()));
        let sink = export::add_sink(Box::new(CaptureSink(Arc::clone(&spans))));
        telemetry::set_capture_active(true);
        Capture {
            sink,
            spans,
            baseline: metrics::RECORDER.store.snapshot(),
        }
    }

    /// Every span that finished since the capture started, in the order the export worker
    /// received them.
    pub fn finished_spans(&self) -> Vec<FinishedSpan> {
        export::flush(FLUSH_TIMEOUT);
        lock(&self.spans).clone()
    }

    /// The finished spans named `name`.
    pub fn spans_named(&self, name: &str) -> Vec<FinishedSpan> {
        let mut spans = self.finished_spans();
        spans.retain(|span| span.name == name);
        spans
    }

    /// How much counter `name` with exactly these labels grew during the capture.
    pub fn counter(&self, name: &str, labels: &[(&str, &str)]) -> u64 {
        let now = metrics::RECORDER.store.counter(name, labels);
        now.saturating_sub(self.baseline.counter(name, labels))
    }

    /// How many values histogram `name` with exactly these labels received during the capture.
    pub fn histogram_count(&self, name: &str, labels: &[(&str, &str)]) -> u64 {
        let (now, _) = metrics::RECORDER.store.histogram(name, labels);
        now.saturating_sub(self.baseline.histogram(name, labels).0)
    }

    /// The sum of the values histogram `name` with exactly these labels received during the
    /// capture.
    pub fn histogram_sum(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        let (_, now) = metrics::RECORDER.store.histogram(name, labels);
        now - self.baseline.histogram(name, labels).1
    }

    /// The finished spans as an indented tree, children under their parents, with status
    /// and duration: handy for printing.
    pub fn span_tree(&self) -> String {
        let mut spans = self.finished_spans();
        spans.sort_by_key(|span| span.start_time);
        let mut out = String::new();
        let known = |id| spans.iter().any(|span| Some(span.span_id) == id);
        for root in spans.iter().filter(|span| !known(span.parent_span_id)) {
            write_subtree(&mut out, &spans, root, 0);
        }
        out
    }
}

fn write_subtree(out: &mut String, spans: &[FinishedSpan], span: &FinishedSpan, depth: usize) {
    let status = match &span.status {
        crate::SpanStatus::Ok => "ok".to_owned(),
        crate::SpanStatus::Unset => "unset".to_owned(),
        crate::SpanStatus::Error { message } => format!("error: {message}"),
    };
    let attempts = span
        .attribute("flujo.step.attempts")
        .and_then(|a| a.as_i64())
        .filter(|attempts| *attempts > 1)
        .map(|attempts| format!(", {attempts} attempts"))
        .unwrap_or_default();
    let _ = writeln!(
        out,
        "{:indent$}{} [{status}{attempts}] {:.3} ms",
        "",
        span.name,
        span.duration().as_secs_f64() * 1e3,
        indent = depth * 2
    );
    for child in spans
        .iter()
        .filter(|child| child.parent_span_id == Some(span.span_id))
    {
        write_subtree(out, spans, child, depth + 1);
    }
}

impl Drop for Capture {
    fn drop(&mut self) {
        export::flush(FLUSH_TIMEOUT);
        export::remove_sink(self.sink);
        telemetry::set_capture_active(false);
        *lock(&CAPTURE_LOCK.taken) = false;
        CAPTURE_LOCK.released.notify_one();
    }
}
