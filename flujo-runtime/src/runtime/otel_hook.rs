//! The guide's `OpenTelemetryHook`: a pipeline hook that follows its runs' spans through a
//! sink of its own, to print them or send them to an OTLP endpoint of their own.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::bridge::log;
use crate::collect::finished::FinishedSpan;
use crate::collect::sink::{self, SinkId, SpanExporter};
use crate::collect::{tree, worker};
use crate::config::error::TelemetryError;
use crate::config::settings::{LogFormat, TelemetryConfig};
use crate::core::blocking::blocking;
use crate::core::ids::TraceId;
use crate::core::sync::lock;
use crate::pipeline::hooks::{Hook, RunInfo};
use crate::pipeline::runner::{PipelineError, StepResult};

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
        let settings = TelemetryConfig::builder()
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
            let exporter = crate::sinks::otlp::traces::start(
                "OpenTelemetryHook OTLP",
                &settings.otlp.traces,
                &settings.spans,
                &settings.resource,
            )?;
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
        let sink = sink::add_sink(Box::new(RunSpansSink {
            runs: Arc::clone(&runs),
            forward,
        }));
        super::refresh_flags();
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
        // Waiting for the worker to hand over the run's spans blocks: on a tokio worker
        // (feature `tokio`) its other tasks move elsewhere meanwhile.
        blocking(|| worker::flush(RUN_FLUSH_TIMEOUT));
        let spans = {
            let mut runs = lock(&self.runs);
            runs.followed.remove(&trace_id);
            runs.spans.remove(&trace_id).unwrap_or_default()
        };
        if self.console {
            match log::format() {
                LogFormat::Text => eprint!(
                    "flujo run {} of {} (trace {trace_id}):\n{}",
                    run.request_id,
                    run.pipeline,
                    tree::render_tree(spans)
                ),
                // One JSON object per run, like the JSON log lines around it.
                LogFormat::Json => eprintln!(
                    "{}",
                    serde_json::json!({
                        "level": "INFO",
                        "target": "flujo",
                        "event": "flujo run",
                        "request_id": run.request_id,
                        "pipeline": run.pipeline,
                        "trace_id": trace_id.to_string(),
                        "spans": tree::render_json(spans),
                    })
                ),
            }
        }
    }
}

impl Drop for OpenTelemetryHook {
    fn drop(&mut self) {
        worker::flush(RUN_FLUSH_TIMEOUT);
        if let Some(mut sink) = sink::remove_sink(self.sink) {
            sink.shutdown(RUN_FLUSH_TIMEOUT);
        }
        super::refresh_flags();
    }
}
