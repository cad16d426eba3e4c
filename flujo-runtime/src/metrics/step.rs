//! Step and pipeline metrics, derived from drained records: `flujo_step_calls_total`,
//! `flujo_step_duration_seconds`, `flujo_step_retries_total` (from each call's attempts),
//! and the pipeline-run pair for a run's root span. The handles of a call site are
//! registered on its first record and cached in the site.

use metrics::{Counter, Histogram};

use crate::collect::sink::Observer;
use crate::core::clock;
use crate::core::record::{STATUSES, SpanRecord};
use crate::core::site::{CallSite, SiteKind};

/// The metric handles of one step or pipeline.
struct SiteMetrics {
    calls: [Counter; 3],
    durations: [Histogram; 3],
    retries: Counter,
}

impl SiteMetrics {
    fn register(site: &CallSite) -> SiteMetrics {
        // A pipeline run's root span counts as a run of the pipeline (its function is the
        // pipeline's name).
        let (calls, durations, label, value) = match site.kind {
            SiteKind::Pipeline => (
                "flujo_pipeline_runs_total",
                "flujo_pipeline_duration_seconds",
                "pipeline",
                site.function,
            ),
            _ => (
                "flujo_step_calls_total",
                "flujo_step_duration_seconds",
                "step",
                site.name,
            ),
        };
        SiteMetrics {
            calls: STATUSES
                .map(|status| metrics::counter!(calls, label => value, "status" => status)),
            durations: STATUSES
                .map(|status| metrics::histogram!(durations, label => value, "status" => status)),
            retries: metrics::counter!("flujo_step_retries_total", "step" => site.name),
        }
    }
}

/// The observer that applies step and pipeline metrics.
pub(crate) struct StepMetrics;

impl Observer for StepMetrics {
    fn observe(&self, records: &[SpanRecord]) {
        // Consecutive calls of one site and status (the common case in a drained batch)
        // update the call counter once.
        let mut pending: Option<(&SiteMetrics, usize, u64)> = None;
        for record in records.iter().filter(|record| !record.observed) {
            if !matches!(record.site.kind, SiteKind::Step | SiteKind::Pipeline) {
                continue;
            }
            let Some(metrics) = record.site.cached(|| SiteMetrics::register(record.site)) else {
                continue;
            };
            let status = record.outcome.status_index();
            metrics.durations[status]
                .record(clock::elapsed(record.start, record.end).as_secs_f64());
            if record.attempts > 1 {
                metrics.retries.increment(u64::from(record.attempts - 1));
            }
            match &mut pending {
                Some((site, pending_status, count))
                    if std::ptr::eq(*site, metrics) && *pending_status == status =>
                {
                    *count += 1;
                }
                _ => {
                    if let Some((site, status, count)) = pending.replace((metrics, status, 1)) {
                        site.calls[status].increment(count);
                    }
                }
            }
        }
        if let Some((site, status, count)) = pending {
            site.calls[status].increment(count);
        }
    }
}
