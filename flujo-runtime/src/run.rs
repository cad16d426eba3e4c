//! The run a call belongs to: what a pipeline run (or a [`crate::UsageLimits`] scope) shares
//! with every step and model call inside it, on any thread it reaches. Kept apart from the
//! span context so that a step call, which never needs it, does not pay for carrying it.

use std::cell::RefCell;
use std::sync::Arc;

use crate::budget::Budget;

/// What the calls of one run share.
#[derive(Debug, Default)]
pub(crate) struct RunScope {
    /// The run's usage limits and what it has used so far.
    pub(crate) budget: Option<Budget>,
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
