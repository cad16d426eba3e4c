//! The one lock that init, shutdown and test captures take, and switching recording on.

use std::sync::{Condvar, Mutex};
use std::thread::{self, ThreadId};
use std::time::Duration;

use crate::calls::apply::CostObserver;
use crate::collect::{sink, worker};
use crate::core::sync::lock;
use crate::core::{clock, state};
use crate::ledger;
use crate::metrics::{recorder, step::StepMetrics};

/// Who keeps telemetry on.
#[derive(Debug, Default)]
pub(crate) struct Lifecycle {
    /// A `TelemetryGuard` is alive.
    pub(crate) guard: bool,
    /// A `testing::Capture` is alive.
    pub(crate) capture: bool,
}

pub(crate) static LIFECYCLE: Mutex<Lifecycle> = Mutex::new(Lifecycle {
    guard: false,
    capture: false,
});

/// Switches recording on for the current session (a guard or a capture just started).
pub(crate) fn switch_on(lifecycle: &Lifecycle) {
    sink::install_observers(|| vec![Box::new(StepMetrics), Box::new(CostObserver)]);
    recorder::install();
    clock::init();
    sink::accept_session(Some(state::current_session()));
    refresh_locked(lifecycle);
    worker::ensure_running();
}

/// Sets what calls record from who keeps telemetry on and whether any exporter wants spans.
pub(crate) fn refresh_locked(lifecycle: &Lifecycle) {
    let flags = match (lifecycle.guard || lifecycle.capture, sink::has_sinks()) {
        (false, _) => 0,
        (true, false) => state::METRICS,
        (true, true) => state::METRICS | state::SPANS,
    };
    state::set_flags(flags);
}

/// [`refresh_locked`], after an exporter was added or removed.
pub(crate) fn refresh_flags() {
    refresh_locked(&lock(&LIFECYCLE));
}

/// How long a capture waits for the worker to deliver what ended before it started or ends.
const CAPTURE_FLUSH_TIMEOUT: Duration = Duration::from_secs(10);

/// The thread whose capture is alive; captures run one at a time.
static CAPTURE_OWNER: Mutex<Option<ThreadId>> = Mutex::new(None);
static CAPTURE_RELEASED: Condvar = Condvar::new();

/// Starts a test capture: waits for another thread's capture to end first, and switches
/// recording on if no guard has. `add_sink` registers the capture's sink once earlier spans
/// have been delivered to whoever was listening then.
///
/// # Panics
/// When this thread already has a live capture (waiting for it would never end).
pub(crate) fn begin_capture(
    keep_cost_records: bool,
    add_sink: impl FnOnce() -> sink::SinkId,
) -> sink::SinkId {
    let me = thread::current().id();
    {
        let owner = lock(&CAPTURE_OWNER);
        assert!(
            *owner != Some(me),
            "flujo::testing::Capture::start: this thread already has a live Capture; drop it \
             before starting another (captures run one at a time, so waiting here would never end)"
        );
        let mut owner = CAPTURE_RELEASED
            .wait_while(owner, |owner| owner.is_some())
            .unwrap_or_else(|e| e.into_inner());
        *owner = Some(me);
    }
    let mut lifecycle = lock(&LIFECYCLE);
    recorder::install();
    // Spans that ended before this capture belong to whoever was listening then.
    worker::flush(CAPTURE_FLUSH_TIMEOUT);
    if !lifecycle.guard {
        // The in-memory ledger, also after a durable one was closed.
        let _ = ledger::open_session(None);
    }
    let sink = add_sink();
    ledger::capture(keep_cost_records);
    lifecycle.capture = true;
    switch_on(&lifecycle);
    sink
}

/// Ends a test capture started by [`begin_capture`].
pub(crate) fn end_capture(sink: sink::SinkId) {
    worker::flush(CAPTURE_FLUSH_TIMEOUT);
    {
        let mut lifecycle = lock(&LIFECYCLE);
        sink::remove_sink(sink);
        ledger::capture(false);
        lifecycle.capture = false;
        if lifecycle.guard {
            refresh_locked(&lifecycle);
        } else {
            state::set_flags(0);
            sink::accept_session(None);
            state::next_session(false);
        }
    }
    *lock(&CAPTURE_OWNER) = None;
    CAPTURE_RELEASED.notify_one();
}
