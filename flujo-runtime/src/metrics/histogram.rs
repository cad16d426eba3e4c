//! Fixed-bucket histograms (bounded memory whoever scrapes) and the buckets of every flujo
//! histogram.

use crate::core::names::Metric;
use std::sync::atomic::{AtomicU64, Ordering};

use metrics::HistogramFn;

/// Buckets for step and pipeline durations, in seconds: from sub-millisecond tool calls to
/// multi-minute model calls.
pub(crate) const DURATION_SECONDS_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
    60.0, 120.0,
];

/// `gen_ai.client.operation.duration` buckets given by the OpenTelemetry GenAI conventions.
pub(crate) const GEN_AI_DURATION_BUCKETS: &[f64] = &[
    0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92,
];

/// `gen_ai.client.token.usage` (and `gen_ai.client.inference.usage.*_tokens`) buckets given
/// by the OpenTelemetry GenAI conventions.
pub(crate) const GEN_AI_TOKEN_BUCKETS: &[f64] = &[
    1.0, 4.0, 16.0, 64.0, 256.0, 1024.0, 4096.0, 16384.0, 65536.0, 262144.0, 1048576.0, 4194304.0,
    16777216.0, 67108864.0,
];

/// `gen_ai.invoke_agent.duration` buckets given by the OpenTelemetry GenAI conventions.
pub(crate) const GEN_AI_AGENT_DURATION_BUCKETS: &[f64] = &[
    0.1, 0.2, 0.4, 0.8, 1.6, 3.2, 6.4, 12.8, 25.6, 51.2, 102.4, 204.8, 409.6,
];

/// `gen_ai.workflow.duration` buckets given by the OpenTelemetry GenAI conventions.
pub(crate) const GEN_AI_WORKFLOW_DURATION_BUCKETS: &[f64] = &[
    1.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0, 7200.0,
];

/// `flujo_score` buckets: scores from 0.0 to 1.0 in tenths.
pub(crate) const SCORE_BUCKETS: &[f64] = &[0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0];

/// Prometheus' default buckets, for histograms flujo does not define itself.
pub(crate) const DEFAULT_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

pub(crate) fn buckets_for(name: &str) -> &'static [f64] {
    if name.starts_with("gen_ai") && name.contains("token") {
        GEN_AI_TOKEN_BUCKETS
    } else if name.starts_with("gen_ai.invoke_agent") || name.starts_with("gen_ai_invoke_agent") {
        GEN_AI_AGENT_DURATION_BUCKETS
    } else if name.starts_with("gen_ai.workflow") || name.starts_with("gen_ai_workflow") {
        GEN_AI_WORKFLOW_DURATION_BUCKETS
    } else if name.starts_with("gen_ai") && (name.contains("duration") || name.contains("chunk")) {
        GEN_AI_DURATION_BUCKETS
    } else if name.ends_with("_seconds") {
        DURATION_SECONDS_BUCKETS
    } else if name == Metric::Score.name() {
        SCORE_BUCKETS
    } else {
        DEFAULT_BUCKETS
    }
}

/// How a histogram keeps the sum of its values.
enum Sum {
    /// Durations and token counts are never negative: their sum is kept as an integer number
    /// of `1/scale` units (nanoseconds, tokens), one `fetch_add` per value.
    Scaled { scale: f64, units: AtomicU64 },
    /// Anything else: an `f64`, updated with a compare-and-swap loop.
    Float(AtomicU64),
}

/// A histogram with fixed upper bounds (`le` semantics) and a `+Inf` bucket.
pub(crate) struct BucketHistogram {
    bounds: &'static [f64],
    counts: Box<[AtomicU64]>,
    sum: Sum,
}

impl BucketHistogram {
    pub(crate) fn new(bounds: &'static [f64]) -> Self {
        let sum = if bounds == DURATION_SECONDS_BUCKETS || bounds == GEN_AI_DURATION_BUCKETS {
            Sum::Scaled {
                scale: 1e9,
                units: AtomicU64::new(0),
            }
        } else if bounds == GEN_AI_TOKEN_BUCKETS {
            Sum::Scaled {
                scale: 1.0,
                units: AtomicU64::new(0),
            }
        } else {
            Sum::Float(AtomicU64::new(0f64.to_bits()))
        };
        BucketHistogram {
            bounds,
            counts: (0..=bounds.len()).map(|_| AtomicU64::new(0)).collect(),
            sum,
        }
    }

    /// The number of values recorded: the sum of the buckets, so that recording a value
    /// touches one counter less.
    pub(crate) fn count(&self) -> u64 {
        self.counts.iter().map(|c| c.load(Ordering::Relaxed)).sum()
    }

    pub(crate) fn sum(&self) -> f64 {
        match &self.sum {
            Sum::Scaled { scale, units } => units.load(Ordering::Relaxed) as f64 / scale,
            Sum::Float(bits) => f64::from_bits(bits.load(Ordering::Relaxed)),
        }
    }
}

impl BucketHistogram {
    /// Records `values` with one atomic add per bucket they fall in and one for their sum,
    /// rather than two per value: how the export worker applies a drained batch.
    pub(crate) fn record_batch(&self, values: &[f64]) {
        const MOST_BUCKETS: usize = 32;
        if self.counts.len() > MOST_BUCKETS {
            return values.iter().for_each(|value| self.record(*value));
        }
        let mut counts = [0u64; MOST_BUCKETS];
        let (mut units, mut float) = (0u64, 0.0f64);
        let mut last = None;
        for &value in values.iter().filter(|value| !value.is_nan()) {
            // Values drained together are mostly alike: the previous value's bucket is tried
            // before a search of the bounds.
            let bucket = match last {
                Some(i)
                    if (i == 0 || self.bounds[i - 1] < value)
                        && self.bounds.get(i).is_none_or(|bound| value <= *bound) =>
                {
                    i
                }
                _ => self.bounds.partition_point(|bound| *bound < value),
            };
            last = Some(bucket);
            counts[bucket] += 1;
            match &self.sum {
                Sum::Scaled { scale, .. } => units += (value * scale + 0.5) as u64,
                Sum::Float(_) => float += value,
            }
        }
        for (bucket, count) in self.counts.iter().zip(counts).filter(|(_, n)| *n > 0) {
            bucket.fetch_add(count, Ordering::Relaxed);
        }
        match &self.sum {
            Sum::Scaled { units: total, .. } => {
                total.fetch_add(units, Ordering::Relaxed);
            }
            Sum::Float(bits) => {
                let _ = bits.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |bits| {
                    Some((f64::from_bits(bits) + float).to_bits())
                });
            }
        }
    }
}

impl HistogramFn for BucketHistogram {
    fn record(&self, value: f64) {
        if value.is_nan() {
            return;
        }
        let bucket = self.bounds.partition_point(|bound| *bound < value);
        self.counts[bucket].fetch_add(1, Ordering::Relaxed);
        match &self.sum {
            // Rounded to the nearest unit without a libm call; a negative value (which
            // durations and token counts never are) saturates to 0.
            Sum::Scaled { scale, units } => {
                units.fetch_add((value * scale + 0.5) as u64, Ordering::Relaxed);
            }
            Sum::Float(bits) => {
                let _ = bits.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |bits| {
                    Some((f64::from_bits(bits) + value).to_bits())
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_records_what_one_value_at_a_time_records() {
        let values = [
            0.0003,
            0.001,
            0.001,
            0.7,
            f64::NAN,
            500.0,
            0.02,
            2.5,
            2.5,
            0.0025,
            0.0025,
            0.0026,
            0.0024,
            1e9,
            1e9,
            0.0,
            0.0,
        ];
        for bounds in [DURATION_SECONDS_BUCKETS, DEFAULT_BUCKETS, SCORE_BUCKETS] {
            let (one, batch) = (BucketHistogram::new(bounds), BucketHistogram::new(bounds));
            values.iter().for_each(|value| one.record(*value));
            batch.record_batch(&values);
            let counts = |h: &BucketHistogram| {
                h.counts
                    .iter()
                    .map(|c| c.load(Ordering::Relaxed))
                    .collect::<Vec<_>>()
            };
            assert_eq!(counts(&one), counts(&batch));
            assert!(
                (one.sum() - batch.sum()).abs() < 1e-9,
                "{} {}",
                one.sum(),
                batch.sum()
            );
            assert_eq!(one.count(), 16);
        }
    }

    #[test]
    fn histogram_buckets_use_le_semantics_and_ignore_nan() {
        let h = BucketHistogram::new(&[1.0, 2.0]);
        for v in [0.5, 1.0, 1.5, 3.0, f64::NAN] {
            h.record(v);
        }
        let counts: Vec<u64> = h.counts.iter().map(|c| c.load(Ordering::Relaxed)).collect();
        assert_eq!(counts, vec![2, 1, 1]);
        assert_eq!(h.count(), 4);
        assert_eq!(h.sum(), 6.0);

        let durations = BucketHistogram::new(DURATION_SECONDS_BUCKETS);
        durations.record(0.25);
        durations.record(1.5e-6);
        assert_eq!(durations.sum(), 0.2500015);
    }

    #[test]
    fn bucket_choice_follows_names() {
        assert_eq!(
            buckets_for("flujo_step_duration_seconds"),
            DURATION_SECONDS_BUCKETS
        );
        assert_eq!(
            buckets_for("gen_ai.client.token.usage"),
            GEN_AI_TOKEN_BUCKETS
        );
        assert_eq!(
            buckets_for("gen_ai.client.operation.duration"),
            GEN_AI_DURATION_BUCKETS
        );
        for streamed in [
            "gen_ai.client.operation.time_to_first_chunk",
            "gen_ai.client.operation.time_per_output_chunk",
        ] {
            assert_eq!(buckets_for(streamed), GEN_AI_DURATION_BUCKETS, "{streamed}");
        }
    }
}
