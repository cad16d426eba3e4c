//! Step and pipeline metrics, derived from drained records: `flujo_step_calls_total`,
//! `flujo_step_duration_seconds` and the pipeline-run pair for a run's root span; and the GenAI conventions' durations of
//! tools, agents and workflows. The handles of a call site are
//! registered on its first record and cached in the site.

use crate::core::names::Metric;
use crate::core::names::{ERROR_TYPE, GEN_AI_AGENT_NAME, GEN_AI_TOOL_NAME, GEN_AI_WORKFLOW_NAME};
use std::sync::Arc;

use metrics::{Counter, Histogram, Key, Label};

use super::recorder::{FanHistogram, own_histogram};
use crate::collect::sink::Observer;
use crate::core::clock;
use crate::core::record::{Outcome, STATUSES, SpanRecord};
use crate::core::site::{CallSite, SiteKind, StepRole};

/// The metric handles of one step or pipeline.
struct SiteMetrics {
    calls: [Counter; 3],
    durations: [Durations; 3],
    /// The GenAI conventions' duration of a tool, an agent or a workflow (a pipeline run).
    genai: Option<GenAiDuration>,
}

/// `gen_ai.execute_tool.duration`, `gen_ai.invoke_agent.duration` or
/// `gen_ai.workflow.duration`: by the tool's, agent's or workflow's name, and `error.type`
/// when the call did not succeed.
struct GenAiDuration {
    metric: &'static str,
    label: &'static str,
    value: &'static str,
    /// Successful calls, updated a batch at a time (registered once; the failed ones are rare
    /// and labelled each time).
    ok: Durations,
}

impl GenAiDuration {
    fn of(site: &CallSite) -> Option<GenAiDuration> {
        let (metric, label, value) = match (site.kind, site.role) {
            (SiteKind::Pipeline, _) => (
                Metric::GenAiWorkflowDuration.name(),
                GEN_AI_WORKFLOW_NAME,
                site.function,
            ),
            (SiteKind::Step, StepRole::Tool) => (
                Metric::GenAiExecuteToolDuration.name(),
                GEN_AI_TOOL_NAME,
                site.name,
            ),
            (SiteKind::Step, StepRole::Agent) => (
                Metric::GenAiInvokeAgentDuration.name(),
                GEN_AI_AGENT_NAME,
                site.name,
            ),
            _ => return None,
        };
        Some(GenAiDuration {
            metric,
            label,
            value,
            ok: Durations::register(metric, vec![Label::new(label, value)]),
        })
    }

    /// A call that did not succeed, labelled with its `error.type`.
    fn record_failed(&self, error_type: &'static str, seconds: f64) {
        Durations::register(
            self.metric,
            vec![
                Label::new(self.label, self.value),
                Label::new(ERROR_TYPE, error_type),
            ],
        )
        .record(&[seconds]);
    }
}

/// A duration histogram: flujo's own, updated a batch at a time, or the application's
/// recorder's, through the `metrics` handle.
enum Durations {
    Own(Arc<FanHistogram>),
    Facade(Histogram),
}

impl Durations {
    fn register(name: &'static str, labels: Vec<Label>) -> Durations {
        let key = Key::from_parts(name, labels);
        match own_histogram(&key) {
            Some(histogram) => Durations::Own(histogram),
            None => {
                let labels: Vec<Label> = key.labels().cloned().collect();
                Durations::Facade(metrics::histogram!(name, labels))
            }
        }
    }

    fn record(&self, seconds: &[f64]) {
        match self {
            Durations::Own(histogram) => histogram.record_batch(seconds),
            Durations::Facade(histogram) => seconds.iter().for_each(|s| histogram.record(*s)),
        }
    }
}

impl SiteMetrics {
    fn register(site: &CallSite) -> SiteMetrics {
        // A pipeline run's root span counts as a run of the pipeline (its function is the
        // pipeline's name).
        let (calls, durations, label, value) = match site.kind {
            SiteKind::Pipeline => (
                Metric::PipelineRuns.name(),
                Metric::PipelineDuration.name(),
                "pipeline",
                site.function,
            ),
            _ => (
                Metric::StepCalls.name(),
                Metric::StepDuration.name(),
                "step",
                site.name,
            ),
        };
        SiteMetrics {
            calls: STATUSES
                .map(|status| metrics::counter!(calls, label => value, "status" => status)),
            durations: STATUSES.map(|status| {
                Durations::register(
                    durations,
                    vec![Label::new(label, value), Label::new("status", status)],
                )
            }),
            genai: GenAiDuration::of(site),
        }
    }
}

/// The observer that applies step and pipeline metrics.
pub(crate) struct StepMetrics;

impl Observer for StepMetrics {
    fn observe(&self, records: &[SpanRecord]) {
        // Consecutive calls of one site and status (the common case in a drained batch)
        // update the call counter and the duration histogram once.
        let mut pending: Option<(&SiteMetrics, usize)> = None;
        let mut seconds = Vec::new();
        let flush = |pending: Option<(&SiteMetrics, usize)>, seconds: &mut Vec<f64>| {
            if let Some((site, status)) = pending {
                site.calls[status].increment(seconds.len() as u64);
                site.durations[status].record(seconds);
                if let Some(genai) = site
                    .genai
                    .as_ref()
                    .filter(|_| status == Outcome::Ok.status_index())
                {
                    genai.ok.record(seconds);
                }
            }
            seconds.clear();
        };
        // The site of the record before, and its metrics: a batch is mostly runs of one site.
        let mut last_site: Option<(&CallSite, &SiteMetrics)> = None;
        for record in records.iter().filter(|record| !record.observed) {
            if !matches!(record.site.kind, SiteKind::Step | SiteKind::Pipeline) {
                continue;
            }
            let metrics = match last_site {
                Some((site, metrics)) if std::ptr::eq(site, record.site) => metrics,
                _ => {
                    let Some(metrics) = record.site.cached(|| SiteMetrics::register(record.site))
                    else {
                        continue;
                    };
                    last_site = Some((record.site, metrics));
                    metrics
                }
            };
            let status = record.outcome.status_index();
            let same = pending
                .is_some_and(|(site, pending)| std::ptr::eq(site, metrics) && pending == status);
            if !same {
                flush(pending.replace((metrics, status)), &mut seconds);
            }
            let elapsed = clock::elapsed(record.start, record.end).as_secs_f64();
            if let (Some(genai), Some(error_type)) = (&metrics.genai, record.outcome.error_type()) {
                genai.record_failed(error_type, elapsed);
            }
            seconds.push(elapsed);
        }
        flush(pending, &mut seconds);
    }
}
