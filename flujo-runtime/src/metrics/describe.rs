//! The recorder's description of every metric: names, units and HELP texts come from the
//! one table of `core::names`.

use metrics::Unit;

use crate::core::names::{Metric, MetricKind};

/// USD per unit of a counter kept in nano-dollars.
#[cfg(feature = "otlp")]
pub(crate) const USD_PER_NANO: f64 = 1e-9;

/// The `metrics` crate's unit of a metric (Prometheus' names and HELP read it).
pub(crate) fn unit_of(metric: Metric) -> Option<Unit> {
    match metric.unit() {
        Some("s") => Some(Unit::Seconds),
        Some("1" | "{token}") => Some(Unit::Count),
        _ => None,
    }
}

pub(crate) fn describe_metrics() {
    for &metric in Metric::ALL {
        let (name, help) = (metric.name(), metric.description());
        match (metric.kind(), unit_of(metric)) {
            (MetricKind::Counter, Some(unit)) => metrics::describe_counter!(name, unit, help),
            (MetricKind::Counter, None) => metrics::describe_counter!(name, help),
            (MetricKind::Histogram, Some(unit)) => metrics::describe_histogram!(name, unit, help),
            (MetricKind::Histogram, None) => metrics::describe_histogram!(name, help),
        }
    }
}
