//! How a run's steps went: each step's result, and the error that ended a run.

use std::error::Error as StdError;
use std::fmt;
use std::time::Duration;

use flujo_pricing::{TokenUsage, Usd};

use crate::run::limits::UsageLimitExceeded;

/// Why a pipeline run failed: the step that failed and its error. Its `Debug` is its
/// message, so that `result.output.unwrap()` and a `main` returning it say what happened.
pub struct PipelineError {
    pub(crate) step: &'static str,
    pub(crate) error_type: &'static str,
    pub(crate) source: Box<dyn StdError + Send + Sync>,
    /// The refusal of a usage limit during the failing step, if there was one.
    pub(crate) limit: Option<UsageLimitExceeded>,
}

impl PipelineError {
    /// The step that failed.
    pub fn step(&self) -> &'static str {
        self.step
    }

    /// The type of the step's error (`error.type` on the run's root span).
    pub fn error_type(&self) -> &'static str {
        self.error_type
    }

    /// The step's error, if it is an `E`.
    pub fn downcast_ref<E: StdError + 'static>(&self) -> Option<&E> {
        self.source.downcast_ref()
    }

    /// The usage limit that stopped the run, if a model call of the failing step was refused
    /// (however the step's error type wraps the refusal).
    pub fn usage_limit_exceeded(&self) -> Option<&UsageLimitExceeded> {
        if let Some(limit) = &self.limit {
            return Some(limit);
        }
        let mut error: Option<&(dyn StdError + 'static)> = Some(&*self.source);
        while let Some(current) = error {
            if let Some(limit) = current.downcast_ref::<UsageLimitExceeded>() {
                return Some(limit);
            }
            error = current.source();
        }
        None
    }
}

impl fmt::Debug for PipelineError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl fmt::Display for PipelineError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "step `{}` failed: {}", self.step, self.source)
    }
}

impl StdError for PipelineError {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        Some(&*self.source)
    }
}

/// The error type of a step in a pipeline, kept as the [`PipelineError`]'s source.
#[diagnostic::on_unimplemented(
    message = "the error type `{Self}` of a pipeline step cannot be kept by `flujo::pipeline::PipelineError`",
    note = "a step's error must convert into `Box<dyn std::error::Error + Send + Sync>`: implement \
            `std::error::Error` for `{Self}`, or return `anyhow::Error`"
)]
pub trait IntoStepSource {
    /// The boxed error.
    fn into_step_source(self) -> Box<dyn StdError + Send + Sync>;
}

impl<E: Into<Box<dyn StdError + Send + Sync>>> IntoStepSource for E {
    fn into_step_source(self) -> Box<dyn StdError + Send + Sync> {
        self.into()
    }
}

/// How one step of a run went.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct StepResult {
    /// The step.
    pub name: &'static str,
    /// Whether it produced a value.
    pub success: bool,
    /// Attempts made: 1 + the retries of the steps that ran in this stage.
    pub attempts: u32,
    /// Attempts that ran past their step's `timeout_ms` and were cancelled.
    pub timeouts: u32,
    /// Fallbacks that ran in this stage (`fallback = ...`): a successful step with one ran
    /// its fallback's value, not its own.
    pub fallbacks: u32,
    /// Wall-clock time, retries included.
    pub latency: Duration,
    /// Tokens used by the model calls made in this stage (nested steps included).
    pub tokens: TokenUsage,
    /// Exact cost of its priced model calls.
    pub cost: Usd,
    /// Model calls without a price (their cost is not in `cost`).
    pub unpriced_calls: u32,
    /// The error message when it failed, or the last validator feedback.
    pub feedback: Option<String>,
}
