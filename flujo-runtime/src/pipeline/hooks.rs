//! Hooks around a pipeline run.

use crate::core::names::Metric;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;

use super::result::{PipelineError, StepResult};
use crate::core::ids::TraceId;

/// The run a hook is called for.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct RunInfo {
    /// The pipeline.
    pub pipeline: &'static str,
    /// Its version, if declared.
    pub version: Option<&'static str>,
    /// The run's request id.
    pub request_id: String,
    /// The run's trace (`None` while telemetry is off).
    pub trace_id: Option<TraceId>,
}

/// Called around a pipeline run by [`Flujo`](crate::Flujo). Every method has a default that does
/// nothing; they run on the run's task, so keep them cheap. A hook that panics does not
/// break the run: the panic is logged and counted in `flujo_hook_panics_total{hook,phase}`.
///
/// ```
/// use flujo::pipeline::{Hook, RunInfo, StepResult};
///
/// struct SlowSteps;
///
/// impl Hook for SlowSteps {
///     fn post_step(&self, run: &RunInfo, step: &StepResult) {
///         if step.latency.as_secs() > 10 {
///             eprintln!("{} in {}: slow step {}", run.request_id, run.pipeline, step.name);
///         }
///     }
/// }
/// ```
pub trait Hook: Send + Sync {
    /// Names the hook in logs and metrics.
    fn name(&self) -> &str {
        std::any::type_name::<Self>()
    }

    /// Before the first step.
    fn pre_run(&self, run: &RunInfo) {
        let _ = run;
    }

    /// Before each step.
    fn pre_step(&self, run: &RunInfo, step: &str) {
        let _ = (run, step);
    }

    /// After each step that succeeded.
    fn post_step(&self, run: &RunInfo, step: &StepResult) {
        let _ = (run, step);
    }

    /// After the step that failed (the run ends with it).
    fn on_step_failure(&self, run: &RunInfo, step: &StepResult, error: &PipelineError) {
        let _ = (run, step, error);
    }

    /// After the run, with the steps that ran and the error that ended it, if any. The run's
    /// root span has ended by then.
    fn post_run(&self, run: &RunInfo, steps: &[StepResult], error: Option<&PipelineError>) {
        let _ = (run, steps, error);
    }
}

/// A shared hook is a hook: `Arc<MyHook>` can be given to several runners and kept by the
/// application to read what it collected.
impl<H: Hook + ?Sized> Hook for Arc<H> {
    fn name(&self) -> &str {
        (**self).name()
    }

    fn pre_run(&self, run: &RunInfo) {
        (**self).pre_run(run);
    }

    fn pre_step(&self, run: &RunInfo, step: &str) {
        (**self).pre_step(run, step);
    }

    fn post_step(&self, run: &RunInfo, step: &StepResult) {
        (**self).post_step(run, step);
    }

    fn on_step_failure(&self, run: &RunInfo, step: &StepResult, error: &PipelineError) {
        (**self).on_step_failure(run, step, error);
    }

    fn post_run(&self, run: &RunInfo, steps: &[StepResult], error: Option<&PipelineError>) {
        (**self).post_run(run, steps, error);
    }
}

/// Calls `call` on every hook, containing panics.
pub(crate) fn each(hooks: &[Arc<dyn Hook>], phase: &'static str, call: impl Fn(&dyn Hook)) {
    for hook in hooks {
        if catch_unwind(AssertUnwindSafe(|| call(&**hook))).is_err() {
            let name = hook.name().to_owned();
            tracing::error!(target: "flujo", hook = %name, phase, "a hook panicked; the run continues");
            metrics::counter!(Metric::HookPanics.name(), "hook" => name, "phase" => phase)
                .increment(1);
        }
    }
}
