//! Hooks around a pipeline run, and the OpenTelemetry hooks of the guide.

use std::collections::{HashMap, HashSet};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use crate::config::TelemetryError;
use crate::export::{self, SinkId, SpanExporter};
use crate::pipeline::{PipelineError, StepResult};
use crate::span::{FinishedSpan, TraceId};

/// The run a hook is called for.
#[derive(Clone, Debug, PartialEq, Eq)]
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

/// Called around a pipeline run by [`crate::Flujo`]. Every method has a default that does
/// nothing; they run on the run's task, so keep them cheap. A hook that panics does not
/// break the run: the panic is logged and counted in `flujo_hook_panics_total{hook,phase}`.
///
/// ```
/// use flujo::{Hook, RunInfo, StepResult};
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

/// Calls `call` on every hook, containing panics.
pub(crate) fn each(hooks: &[Arc<dyn Hook>], phase: &'static str, call: impl Fn(&dyn Hook)) {
    for hook in hooks {
        if catch_unwind(AssertUnwindSafe(|| call(&**hook))).is_err() {
            let name = hook.name().to_owned();
            tracing::error!(target: "flujo", hook = %name, phase, "a hook panicked; the run continues");
            metrics::counter!("flujo_hook_panics_total", "hook" => name, "phase" => phase)
                .increment(1);
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

/// The spans of the runs a hook follows, collected on the export worker.
#[derive(Default)]
struct RunSpans {
    followed: HashSet<TraceId>,
    spans: HashMap<TraceId, Vec<FinishedSpan>>,
}

struct RunSpansSink {
    runs: Arc<Mutex<RunSpans>>,
    forward: Option<Box<dyn SpanExporter>>,
}

impl SpanExporter for RunSpansSink {
    fn export(&mut self, spans: &[FinishedSpan]) {
        let mut runs = lock(&self.runs);
        let mine: Vec<FinishedSpan> = spans
            .iter()
            .filter(|span| runs.followed.contains(&span.trace_id))
            .cloned()
            .collect();
        if mine.is_empty() {
            return;
        }
        match &mut self.forward {
            Some(exporter) => {
                drop(runs);
                exporter.export(&mine);
            }
            None => {
                for span in mine {
                    runs.spans.entry(span.trace_id).or_default().push(span);
                }
            }
        }
    }

    fn shutdown(&mut self, timeout: Duration) {
        if let Some(exporter) = &mut self.forward {
            exporter.shutdown(timeout);
        }
    }
}

/// How long `post_run` waits for the export worker to hand over a run's spans.
const RUN_FLUSH_TIMEOUT: Duration = Duration::from_secs(5);

/// The guide's `OpenTelemetryHook`: sends each run's spans to an OTLP endpoint
/// ([`OpenTelemetryHook::otlp`]) or prints each run's span tree to stderr
/// ([`OpenTelemetryHook::console`]). Spans are recorded while telemetry is initialised (or a
/// test capture is live).
pub struct OpenTelemetryHook {
    runs: Arc<Mutex<RunSpans>>,
    sink: SinkId,
    console: bool,
}

impl std::fmt::Debug for OpenTelemetryHook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpenTelemetryHook")
            .field("console", &self.console)
            .finish()
    }
}

impl OpenTelemetryHook {
    /// Prints each run's span tree (names, status, attempts, durations) to stderr after it.
    pub fn console() -> OpenTelemetryHook {
        OpenTelemetryHook::with_forward(None, true)
    }

    /// Sends each run's spans to the OTLP collector at `endpoint` (gRPC, or HTTP/protobuf
    /// per `OTEL_EXPORTER_OTLP_PROTOCOL`), independently of `init_telemetry`'s own export.
    /// Needs feature `otlp`; the endpoint must be an `http(s)://` URL.
    pub fn otlp(endpoint: &str) -> Result<OpenTelemetryHook, TelemetryError> {
        let settings = crate::TelemetryConfig::builder()
            .otlp_endpoint(endpoint)
            .resolve()
            .map_err(|error| match error {
                TelemetryError::InvalidSetting {
                    value, expected, ..
                } => TelemetryError::InvalidSetting {
                    field: "OpenTelemetryHook::otlp endpoint",
                    value,
                    expected,
                },
                other => other,
            })?;
        #[cfg(feature = "otlp")]
        {
            let exporter = crate::otlp::OtlpExporter::start(&settings)?;
            Ok(OpenTelemetryHook::with_forward(
                Some(Box::new(exporter)),
                false,
            ))
        }
        #[cfg(not(feature = "otlp"))]
        {
            let _ = settings;
            Err(TelemetryError::FeatureNotEnabled {
                setting: format!("OpenTelemetryHook::otlp({endpoint:?})"),
                feature: "otlp",
            })
        }
    }

    fn with_forward(forward: Option<Box<dyn SpanExporter>>, console: bool) -> OpenTelemetryHook {
        let runs = Arc::new(Mutex::new(RunSpans::default()));
        let sink = export::add_sink(Box::new(RunSpansSink {
            runs: Arc::clone(&runs),
            forward,
        }));
        crate::telemetry::refresh_state();
        OpenTelemetryHook {
            runs,
            sink,
            console,
        }
    }
}

impl Hook for OpenTelemetryHook {
    fn name(&self) -> &str {
        if self.console {
            "OpenTelemetryHook::console"
        } else {
            "OpenTelemetryHook::otlp"
        }
    }

    fn pre_run(&self, run: &RunInfo) {
        if let Some(trace_id) = run.trace_id {
            lock(&self.runs).followed.insert(trace_id);
        }
    }

    fn post_run(&self, run: &RunInfo, _: &[StepResult], _: Option<&PipelineError>) {
        let Some(trace_id) = run.trace_id else {
            return;
        };
        export::flush(RUN_FLUSH_TIMEOUT);
        let spans = {
            let mut runs = lock(&self.runs);
            runs.followed.remove(&trace_id);
            runs.spans.remove(&trace_id).unwrap_or_default()
        };
        if self.console {
            eprint!(
                "flujo run {} of {} (trace {trace_id}):\n{}",
                run.request_id,
                run.pipeline,
                crate::span::render_tree(spans)
            );
        }
    }
}

impl Drop for OpenTelemetryHook {
    fn drop(&mut self) {
        export::flush(RUN_FLUSH_TIMEOUT);
        if let Some(mut sink) = export::remove_sink(self.sink) {
            sink.shutdown(RUN_FLUSH_TIMEOUT);
        }
        crate::telemetry::refresh_state();
    }
}
