//! The run a call belongs to: what a pipeline run (or a [`UsageLimits`](crate::UsageLimits) scope) shares
//! with every step and model call inside it, on any thread it reaches. Kept apart from the
//! span context so that a step call, which never needs it, does not pay for carrying it.

use std::cell::{Cell, RefCell};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use flujo_pricing::{TokenUsage, Usd};

use super::limits::{Budget, UsageLimitExceeded};

/// What the calls of one run share.
#[derive(Debug, Default)]
pub(crate) struct RunScope {
    /// The run's usage limits and what it has used so far.
    pub(crate) budget: Option<Budget>,
    /// The pipeline being run, when the run is a pipeline run.
    pub(crate) pipeline: Option<&'static str>,
    /// The run's request id.
    pub(crate) request_id: Option<Arc<str>>,
    /// The conversation the run belongs to (`gen_ai.conversation.id`).
    pub(crate) conversation_id: Option<Arc<str>>,
    /// The pipeline stage running now and what it has used: retries, model usage and
    /// validator feedback of every step inside it (updated off the hot path, on retries and
    /// at the end of model calls).
    pub(crate) stage: Mutex<Option<StepUsage>>,
    /// The last call a usage limit refused, so that the run's error can say so whatever
    /// the step made of the refusal.
    pub(crate) refused: Mutex<Option<UsageLimitExceeded>>,
    /// Calls of this run refused so far: a retrying step that sees it grow during an
    /// attempt does not retry.
    pub(crate) refusals: AtomicU64,
}

/// What one step of a run used.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct StepUsage {
    /// The declared name of the step the stage called (`name = ".."`, else its function's).
    pub(crate) step: Option<&'static str>,
    pub(crate) retries: u32,
    /// Attempts that ran past their step's `timeout_ms`.
    pub(crate) timeouts: u32,
    /// Fallbacks that ran.
    pub(crate) fallbacks: u32,
    pub(crate) tokens: TokenUsage,
    pub(crate) cost: Usd,
    pub(crate) unpriced_calls: u32,
    /// The last validator feedback.
    pub(crate) feedback: Option<String>,
}

impl RunScope {
    fn update_stage(&self, update: impl FnOnce(&mut StepUsage)) {
        if let Some(stage) = &mut *self.stage.lock().unwrap_or_else(|e| e.into_inner()) {
            update(stage);
        }
    }

    /// A pipeline stage begins: what its steps use is counted from now.
    pub(crate) fn begin_stage(&self) {
        *self.stage.lock().unwrap_or_else(|e| e.into_inner()) = Some(StepUsage::default());
    }

    /// The declared name of the step the running stage called, once it began.
    pub(crate) fn stage_step(&self) -> Option<&'static str> {
        self.stage
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
            .and_then(|usage| usage.step)
    }

    /// The stage ended: what its steps used.
    pub(crate) fn end_stage(&self) -> StepUsage {
        self.stage
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
            .unwrap_or_default()
    }
}

thread_local! {
    /// Set by a pipeline stage just before it calls its step, on the thread that calls it:
    /// the function `pipeline!` named. The step call of that function names the stage.
    static STAGE_AWAITS: Cell<Option<&'static str>> = const { Cell::new(None) };
}

/// A pipeline stage is about to call the step function `function` on this thread.
pub(crate) fn expect_stage_step(function: &'static str) {
    let _ = STAGE_AWAITS.try_with(|awaits| awaits.set(Some(function)));
}

/// The stage has ended: a later step call does not name it.
pub(crate) fn stage_step_done() {
    let _ = STAGE_AWAITS.try_with(|awaits| awaits.set(None));
}

/// A step declared with a `name` of its own begins: if the stage waiting on this thread
/// called its function, the stage takes that name.
#[inline]
pub(crate) fn renamed_step_begins(function: &'static str, name: &'static str) {
    let awaited = STAGE_AWAITS.with(Cell::get);
    if awaited == Some(function) {
        name_stage(name);
    }
}

#[cold]
#[inline(never)]
fn name_stage(name: &'static str) {
    stage_step_done();
    with_current(|run| {
        if let Some(run) = run {
            run.update_stage(|usage| {
                usage.step.get_or_insert(name);
            });
        }
    });
}

/// Counts a retry in the current run's stage.
pub(crate) fn note_retry() {
    update_current_stage(|usage| usage.retries += 1);
}

/// Counts a timed-out attempt in the current run's stage.
pub(crate) fn note_timeout() {
    update_current_stage(|usage| usage.timeouts += 1);
}

/// Counts a fallback in the current run's stage.
pub(crate) fn note_fallback() {
    update_current_stage(|usage| usage.fallbacks += 1);
}

fn update_current_stage(update: impl FnOnce(&mut StepUsage)) {
    with_current(|run| {
        if let Some(run) = run {
            run.update_stage(update);
        }
    });
}

/// Keeps a validator's feedback in the current run's stage.
pub(crate) fn note_feedback(feedback: &str) {
    update_current_stage(|usage| usage.feedback = Some(feedback.to_owned()));
}

/// Adds a model call's usage to `run`'s current stage.
pub(crate) fn note_usage(run: &RunScope, tokens: TokenUsage, cost: Option<Usd>) {
    run.update_stage(|usage| {
        usage.tokens += tokens;
        match cost {
            Some(cost) => usage.cost += cost,
            None => usage.unpriced_calls += 1,
        }
    });
}

thread_local! {
    static CURRENT: RefCell<Option<Arc<RunScope>>> = const { RefCell::new(None) };
}

/// The run current on this thread.
pub(crate) fn current() -> Option<Arc<RunScope>> {
    CURRENT
        .try_with(|current| current.borrow().clone())
        .ok()
        .flatten()
}

/// The request id and pipeline of the pipeline run current on this thread (log lines carry
/// them).
pub(crate) fn current_labels() -> Option<(Arc<str>, &'static str)> {
    with_current(|run| run.and_then(|run| run.request_id.clone().zip(run.pipeline)))
}

/// Runs `f` with the current run (without cloning it).
pub(crate) fn with_current<R>(f: impl FnOnce(Option<&RunScope>) -> R) -> R {
    let mut f = Some(f);
    let result = CURRENT.try_with(|current| {
        let current = current.borrow();
        (f.take().expect("called once"))(current.as_deref())
    });
    match result {
        Ok(result) => result,
        // The thread is exiting: no run.
        Err(_) => (f.take().expect("not called"))(None),
    }
}

/// Makes a run current for as long as it lives, by swapping it with the thread's current
/// run (no reference counting per poll); swaps back when dropped, also when unwinding.
pub(crate) struct RunSwap<'a> {
    slot: &'a mut Option<Arc<RunScope>>,
}

impl<'a> RunSwap<'a> {
    pub(crate) fn enter(slot: &'a mut Option<Arc<RunScope>>) -> RunSwap<'a> {
        swap_current(slot);
        RunSwap { slot }
    }
}

impl Drop for RunSwap<'_> {
    fn drop(&mut self) {
        swap_current(self.slot);
    }
}

fn swap_current(slot: &mut Option<Arc<RunScope>>) {
    let _ = CURRENT.try_with(|current| std::mem::swap(&mut *current.borrow_mut(), slot));
}

/// Calls refused outside any run (by the daily limit or strict pricing, which hold for the
/// whole process).
static REFUSALS_OUTSIDE_RUNS: AtomicU64 = AtomicU64::new(0);

/// Counts a refused call: on `run`, or on the process when it ran outside any run; keeps the
/// refusal on the run for its error.
pub(crate) fn note_refusal(run: Option<&RunScope>, refusal: &UsageLimitExceeded) {
    match run {
        Some(run) => {
            run.refusals.fetch_add(1, Ordering::AcqRel);
            *run.refused.lock().unwrap_or_else(|e| e.into_inner()) = Some(refusal.clone());
        }
        None => {
            REFUSALS_OUTSIDE_RUNS.fetch_add(1, Ordering::AcqRel);
        }
    }
}

/// How many calls of the current run (or, outside runs, of the process) were refused so
/// far. A step compares it before and after an attempt: a refusal during the attempt means
/// the next one would be refused too.
pub(crate) fn refusals() -> u64 {
    with_current(|run| match run {
        Some(run) => run.refusals.load(Ordering::Acquire),
        None => REFUSALS_OUTSIDE_RUNS.load(Ordering::Acquire),
    })
}

/// Whether the current run has reached one of its limits (a step does not retry then: the
/// next attempt would be refused too).
pub(crate) fn exhausted() -> bool {
    with_current(|run| {
        run.and_then(|run| run.budget.as_ref())
            .is_some_and(|budget| budget.check().is_err())
    })
}
