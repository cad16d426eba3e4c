//! `#[pipeline_step(timeout_ms = N)]`: each attempt of an async step races a timer; an
//! attempt that loses is dropped (cancelled, with everything it awaited) and the step sees a
//! [`StepTimeout`] as its error.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use pin_project_lite::pin_project;

/// An attempt of a step ran past its `timeout_ms` and was cancelled. A step declared with
/// `timeout_ms` returns its error type built from this (`From<flujo::StepTimeout>`), so the
/// caller can tell a timeout from the step's own failures.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StepTimeout {
    step: &'static str,
    timeout: Duration,
    attempt: u32,
}

impl StepTimeout {
    pub(crate) fn new(step: &'static str, timeout: Duration, attempt: u32) -> StepTimeout {
        StepTimeout {
            step,
            timeout,
            attempt,
        }
    }

    /// The step that timed out.
    pub fn step(&self) -> &'static str {
        self.step
    }

    /// Its `timeout_ms`.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Which attempt timed out (1 for the first).
    pub fn attempt(&self) -> u32 {
        self.attempt
    }
}

impl fmt::Display for StepTimeout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "step `{}` timed out after {} ms (attempt {})",
            self.step,
            self.timeout.as_millis(),
            self.attempt
        )
    }
}

impl std::error::Error for StepTimeout {}

/// Converts a timeout into the step's error type.
#[diagnostic::on_unimplemented(
    message = "the error type `{Self}` of a step with `timeout_ms` cannot hold a `flujo::StepTimeout`",
    label = "an attempt that runs past `timeout_ms` returns this error",
    note = "implement `From<flujo::StepTimeout>` for `{Self}` (e.g. a `#[from]` variant), or return \
            an error type that has it (`anyhow::Error`, `Box<dyn std::error::Error + Send + Sync>`)"
)]
pub trait FromStepTimeout {
    /// The error to return.
    fn from_step_timeout(timeout: StepTimeout) -> Self;
}

impl<E: From<StepTimeout>> FromStepTimeout for E {
    fn from_step_timeout(timeout: StepTimeout) -> Self {
        E::from(timeout)
    }
}

pin_project! {
    /// An attempt racing its timer: `Ok` with the attempt's value, or `Err(())` when the
    /// timer fired first (the attempt is dropped with the race).
    pub struct Deadline<F> {
        #[pin]
        attempt: F,
        timer: futures_timer::Delay,
    }
}

/// Races `attempt` against `timeout` (runtime-independent: `futures-timer`'s own thread).
pub fn deadline<F: Future>(attempt: F, timeout: Duration) -> Deadline<F> {
    Deadline {
        attempt,
        timer: futures_timer::Delay::new(timeout),
    }
}

impl<F: Future> Future for Deadline<F> {
    type Output = Result<F::Output, ()>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        if let Poll::Ready(value) = this.attempt.poll(cx) {
            return Poll::Ready(Ok(value));
        }
        Pin::new(this.timer).poll(cx).map(Err)
    }
}
