//! flujo's `metrics` recorder: atomic counters and fixed-bucket histograms.
//!
//! Steps reach metrics through the `metrics` facade with handles registered once per call
//! site, so a hot-path update is an atomic add. The recorder installed here keeps every value
//! in bounded memory (histograms have fixed buckets, so nobody scraping never grows them) and
//! is what [`crate::testing::Capture`] and the exporters read. When the application installed
//! its own `metrics` recorder first, flujo's metrics go to that one instead.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, OnceLock, RwLock};

use metrics::{
    Counter, CounterFn, Gauge, GaugeFn, Histogram, HistogramFn, Key, KeyName, Metadata, Recorder,
    SharedString, Unit,
};

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

/// `gen_ai.client.token.usage` buckets given by the OpenTelemetry GenAI conventions.
pub(crate) const GEN_AI_TOKEN_BUCKETS: &[f64] = &[
    1.0, 4.0, 16.0, 64.0, 256.0, 1024.0, 4096.0, 16384.0, 65536.0, 262144.0, 1048576.0, 4194304.0,
    16777216.0, 67108864.0,
];

/// The cost counter. Its value is kept exactly, in nano-dollars; exporters show it in USD
/// (Prometheus through [`render_usd_counters`], OTLP as a float counter).
pub(crate) const COST_USD_TOTAL: &str = "flujo_cost_usd_total";

/// USD per unit of a counter kept in nano-dollars.
#[cfg(feature = "otlp")]
pub(crate) const USD_PER_NANO: f64 = 1e-9;

/// `flujo_score` buckets: scores from 0.0 to 1.0 in tenths.
pub(crate) const SCORE_BUCKETS: &[f64] = &[0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0];

/// Prometheus' default buckets, for histograms flujo does not define itself.
pub(crate) const DEFAULT_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

pub(crate) fn buckets_for(name: &str) -> &'static [f64] {
    if name == "gen_ai.client.token.usage" || name == "gen_ai_client_token_usage" {
        GEN_AI_TOKEN_BUCKETS
    } else if name.starts_with("gen_ai") && name.contains("duration") {
        GEN_AI_DURATION_BUCKETS
    } else if name.ends_with("_seconds") {
        DURATION_SECONDS_BUCKETS
    } else if name == "flujo_score" {
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
    fn new(bounds: &'static [f64]) -> Self {
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

/// Other recorders that see every flujo metric too, each attached at most once per process.
/// Handles registered before one was attached reach it on their next update.
#[derive(Clone, Copy, Debug)]
#[cfg_attr(not(any(feature = "prometheus", feature = "otlp")), allow(dead_code))]
pub(crate) enum Downstream {
    Prometheus = 0,
    Otlp = 1,
}

static DOWNSTREAM: [OnceLock<Box<dyn Recorder + Send + Sync>>; 2] =
    [OnceLock::new(), OnceLock::new()];

const DOWNSTREAM_METADATA: Metadata<'static> = Metadata::new("flujo", metrics::Level::INFO, None);

/// A metric kept in flujo's store and in every downstream recorder attached.
pub(crate) struct Fanout<T, H> {
    pub(crate) local: T,
    key: Key,
    downstream: [OnceLock<H>; 2],
    /// The cost counter is rendered for Prometheus by flujo (in USD, from the exact value),
    /// not by the Prometheus recorder, which only knows integer counters.
    skip_prometheus: bool,
}

impl<T, H> Fanout<T, H> {
    fn new(key: &Key, local: T) -> Self {
        Fanout {
            local,
            key: key.clone(),
            downstream: [OnceLock::new(), OnceLock::new()],
            skip_prometheus: key.name() == COST_USD_TOTAL,
        }
    }

    /// Applies `update` to this metric's handle in every attached downstream recorder.
    #[inline]
    fn each_downstream(&self, register: impl Fn(&dyn Recorder, &Key) -> H, update: impl Fn(&H)) {
        for (slot, (handle, recorder)) in self.downstream.iter().zip(&DOWNSTREAM).enumerate() {
            if self.skip_prometheus && slot == Downstream::Prometheus as usize {
                continue;
            }
            if let Some(recorder) = recorder.get() {
                update(handle.get_or_init(|| register(&**recorder, &self.key)));
            }
        }
    }
}

type FanCounter = Fanout<AtomicU64, Counter>;
type FanGauge = Fanout<AtomicU64, Gauge>;
type FanHistogram = Fanout<BucketHistogram, Histogram>;

fn counter_of(recorder: &dyn Recorder, key: &Key) -> Counter {
    recorder.register_counter(key, &DOWNSTREAM_METADATA)
}

fn gauge_of(recorder: &dyn Recorder, key: &Key) -> Gauge {
    recorder.register_gauge(key, &DOWNSTREAM_METADATA)
}

fn histogram_of(recorder: &dyn Recorder, key: &Key) -> Histogram {
    recorder.register_histogram(key, &DOWNSTREAM_METADATA)
}

impl CounterFn for FanCounter {
    fn increment(&self, value: u64) {
        self.local.fetch_add(value, Ordering::Relaxed);
        self.each_downstream(counter_of, |counter| counter.increment(value));
    }

    fn absolute(&self, value: u64) {
        self.local.fetch_max(value, Ordering::Relaxed);
        self.each_downstream(counter_of, |counter| counter.absolute(value));
    }
}

impl GaugeFn for FanGauge {
    fn increment(&self, value: f64) {
        GaugeFn::increment(&self.local, value);
        self.each_downstream(gauge_of, |gauge| gauge.increment(value));
    }

    fn decrement(&self, value: f64) {
        GaugeFn::decrement(&self.local, value);
        self.each_downstream(gauge_of, |gauge| gauge.decrement(value));
    }

    fn set(&self, value: f64) {
        GaugeFn::set(&self.local, value);
        self.each_downstream(gauge_of, |gauge| gauge.set(value));
    }
}

impl HistogramFn for FanHistogram {
    fn record(&self, value: f64) {
        self.local.record(value);
        self.each_downstream(histogram_of, |histogram| histogram.record(value));
    }
}

/// Every metric the recorder has registered. Registration takes a write lock, once per
/// handle; updates go through the handles and never touch these maps.
#[derive(Default)]
pub(crate) struct Store {
    counters: RwLock<HashMap<Key, Arc<FanCounter>>>,
    gauges: RwLock<HashMap<Key, Arc<FanGauge>>>,
    histograms: RwLock<HashMap<Key, Arc<FanHistogram>>>,
    descriptions: RwLock<HashMap<String, Description>>,
}

#[derive(Clone)]
struct Description {
    kind: MetricKind,
    unit: Option<Unit>,
    text: SharedString,
}

#[derive(Clone, Copy)]
enum MetricKind {
    Counter,
    Gauge,
    Histogram,
}

fn get_or_insert<V>(
    map: &RwLock<HashMap<Key, Arc<V>>>,
    key: &Key,
    make: impl FnOnce() -> V,
) -> Arc<V> {
    if let Some(found) = map.read().unwrap_or_else(|e| e.into_inner()).get(key) {
        return Arc::clone(found);
    }
    let mut map = map.write().unwrap_or_else(|e| e.into_inner());
    Arc::clone(map.entry(key.clone()).or_insert_with(|| Arc::new(make())))
}

fn labels_match(key: &Key, labels: &[(&str, &str)]) -> bool {
    key.labels().len() == labels.len()
        && labels
            .iter()
            .all(|(k, v)| key.labels().any(|l| l.key() == *k && l.value() == *v))
}

impl Store {
    /// Counter values and histogram counts/sums, keyed by metric key: a baseline to diff against.
    pub(crate) fn snapshot(&self) -> Snapshot {
        let counters = self
            .counters
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .map(|(k, v)| (k.clone(), v.local.load(Ordering::Relaxed)))
            .collect();
        let histograms = self
            .histograms
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .map(|(k, h)| (k.clone(), (h.local.count(), h.local.sum())))
            .collect();
        Snapshot {
            counters,
            histograms,
        }
    }
}

/// Appends the nano-dollar counters to a Prometheus text exposition, in USD.
#[cfg_attr(not(feature = "prometheus"), allow(dead_code))]
pub(crate) fn render_usd_counters(out: &mut String) {
    use std::fmt::Write as _;
    let counters = RECORDER
        .store
        .counters
        .read()
        .unwrap_or_else(|e| e.into_inner());
    let mut series: Vec<(String, u64)> = counters
        .iter()
        .filter(|(key, _)| key.name() == COST_USD_TOTAL)
        .map(|(key, counter)| {
            let labels: Vec<String> = key
                .labels()
                .map(|l| format!("{}=\"{}\"", l.key(), escape_label(l.value())))
                .collect();
            (labels.join(","), counter.local.load(Ordering::Relaxed))
        })
        .collect();
    if series.is_empty() {
        return;
    }
    series.sort();
    let help = RECORDER
        .store
        .descriptions
        .read()
        .unwrap_or_else(|e| e.into_inner())
        .get(COST_USD_TOTAL)
        .map(|d| d.text.to_string())
        .unwrap_or_default();
    let _ = writeln!(out, "# HELP {COST_USD_TOTAL} {help}");
    let _ = writeln!(out, "# TYPE {COST_USD_TOTAL} counter");
    for (labels, nanos) in series {
        let _ = writeln!(
            out,
            "{COST_USD_TOTAL}{{{labels}}} {}.{:09}",
            nanos / 1_000_000_000,
            nanos % 1_000_000_000
        );
    }
}

fn escape_label(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// Metric values at one instant.
#[derive(Default)]
pub(crate) struct Snapshot {
    counters: HashMap<Key, u64>,
    histograms: HashMap<Key, (u64, f64)>,
}

impl Snapshot {
    pub(crate) fn counter(&self, name: &str, labels: &[(&str, &str)]) -> u64 {
        self.counters
            .iter()
            .find(|(key, _)| key.name() == name && labels_match(key, labels))
            .map_or(0, |(_, v)| *v)
    }

    pub(crate) fn histogram(&self, name: &str, labels: &[(&str, &str)]) -> (u64, f64) {
        self.histograms
            .iter()
            .find(|(key, _)| key.name() == name && labels_match(key, labels))
            .map_or((0, 0.0), |(_, v)| *v)
    }
}

/// The `metrics::Recorder` flujo installs.
pub(crate) struct FlujoRecorder {
    pub(crate) store: Store,
}

impl Recorder for FlujoRecorder {
    fn describe_counter(&self, key: KeyName, unit: Option<Unit>, description: SharedString) {
        self.describe(MetricKind::Counter, key, unit, description);
    }

    fn describe_gauge(&self, key: KeyName, unit: Option<Unit>, description: SharedString) {
        self.describe(MetricKind::Gauge, key, unit, description);
    }

    fn describe_histogram(&self, key: KeyName, unit: Option<Unit>, description: SharedString) {
        self.describe(MetricKind::Histogram, key, unit, description);
    }

    fn register_counter(&self, key: &Key, _: &Metadata<'_>) -> Counter {
        Counter::from_arc(get_or_insert(&self.store.counters, key, || {
            Fanout::new(key, AtomicU64::new(0))
        }))
    }

    fn register_gauge(&self, key: &Key, _: &Metadata<'_>) -> Gauge {
        Gauge::from_arc(get_or_insert(&self.store.gauges, key, || {
            Fanout::new(key, AtomicU64::new(0f64.to_bits()))
        }))
    }

    fn register_histogram(&self, key: &Key, _: &Metadata<'_>) -> Histogram {
        Histogram::from_arc(get_or_insert(&self.store.histograms, key, || {
            Fanout::new(key, BucketHistogram::new(buckets_for(key.name())))
        }))
    }
}

impl FlujoRecorder {
    fn describe(&self, kind: MetricKind, key: KeyName, unit: Option<Unit>, text: SharedString) {
        let description = Description { kind, unit, text };
        for downstream in DOWNSTREAM.iter().filter_map(OnceLock::get) {
            describe_on(&**downstream, key.clone(), &description);
        }
        self.store
            .descriptions
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(key.as_str().to_owned(), description);
    }
}

fn describe_on(recorder: &dyn Recorder, key: KeyName, description: &Description) {
    let Description { kind, unit, text } = description.clone();
    match kind {
        MetricKind::Counter => recorder.describe_counter(key, unit, text),
        MetricKind::Gauge => recorder.describe_gauge(key, unit, text),
        MetricKind::Histogram => recorder.describe_histogram(key, unit, text),
    }
}

/// Attaches `recorder` in `slot` (once per process) so that it sees every flujo metric,
/// including the descriptions registered before it. Returns false when the slot was taken.
#[cfg_attr(not(any(feature = "prometheus", feature = "otlp")), allow(dead_code))]
pub(crate) fn attach_downstream(
    slot: Downstream,
    recorder: Box<dyn Recorder + Send + Sync>,
) -> bool {
    install();
    let slot = &DOWNSTREAM[slot as usize];
    if slot.set(recorder).is_err() {
        return false;
    }
    if let Some(downstream) = slot.get() {
        let descriptions = RECORDER
            .store
            .descriptions
            .read()
            .unwrap_or_else(|e| e.into_inner());
        for (name, description) in descriptions.iter() {
            describe_on(&**downstream, KeyName::from(name.clone()), description);
        }
    }
    true
}

pub(crate) static RECORDER: LazyLock<FlujoRecorder> = LazyLock::new(|| FlujoRecorder {
    store: Store::default(),
});

static INSTALLED: OnceLock<bool> = OnceLock::new();

/// Installs flujo's recorder as the global `metrics` recorder, once per process. Returns
/// whether flujo's recorder is the installed one (false: the application installed its own).
pub(crate) fn install() -> bool {
    *INSTALLED.get_or_init(|| {
        let ours = metrics::set_global_recorder(&*RECORDER).is_ok();
        if !ours {
            tracing::warn!(
                "another `metrics` recorder is installed: flujo's metrics go to it, and \
                 flujo::testing::Capture cannot read them"
            );
        }
        describe_metrics();
        ours
    })
}

fn describe_metrics() {
    metrics::describe_counter!(
        "flujo_step_calls_total",
        Unit::Count,
        "Calls of #[pipeline_step] functions, by step and final status (ok, error, cancelled)"
    );
    metrics::describe_histogram!(
        "flujo_step_duration_seconds",
        Unit::Seconds,
        "Wall-clock duration of step calls including retries, by step and final status"
    );
    metrics::describe_counter!(
        "flujo_step_retries_total",
        Unit::Count,
        "Retries of failed step attempts, by step"
    );
    metrics::describe_counter!(
        "flujo_model_requests_total",
        Unit::Count,
        "Calls of #[track_cost] functions, by model, provider and status (ok, error, cancelled)"
    );
    metrics::describe_counter!(
        "flujo_tokens_total",
        Unit::Count,
        "Tokens used by model calls, by model, provider and token_type (input, output, \
         cache_read_input, cache_write_input, reasoning_output; cached are part of input, \
         reasoning part of output)"
    );
    metrics::describe_counter!(
        COST_USD_TOTAL,
        "Cost of priced model calls in USD (exact to the nano-dollar), by model, provider, \
         pipeline and step"
    );
    metrics::describe_counter!(
        "flujo_unpriced_calls_total",
        Unit::Count,
        "Model calls whose model has no price (their cost is unknown, not zero), by model"
    );
    metrics::describe_counter!(
        "flujo_budget_exceeded_total",
        Unit::Count,
        "Model calls refused by a usage limit, by limit (total_cost, total_tokens, daily_cost, \
         unpriced_model)"
    );
    metrics::describe_histogram!(
        "gen_ai.client.token.usage",
        Unit::Count,
        "Tokens used per model call, by gen_ai.token.type (input, output)"
    );
    metrics::describe_histogram!(
        "gen_ai.client.operation.duration",
        Unit::Seconds,
        "Duration of model calls"
    );
    metrics::describe_counter!(
        "flujo_pipeline_runs_total",
        Unit::Count,
        "Runs of pipelines, by pipeline and status (ok, error, cancelled)"
    );
    metrics::describe_histogram!(
        "flujo_pipeline_duration_seconds",
        Unit::Seconds,
        "Wall-clock duration of pipeline runs, by pipeline and status"
    );
    metrics::describe_counter!(
        "flujo_hook_panics_total",
        Unit::Count,
        "Hook calls that panicked (the run continued), by hook and phase"
    );
    metrics::describe_counter!(
        "flujo_checklist_items_total",
        Unit::Count,
        "Checklist items evaluated, by checklist and result (pass, fail)"
    );
    metrics::describe_histogram!(
        "flujo_score",
        "Quality scores recorded with flujo::quality::record_score, by name"
    );
    metrics::describe_counter!(
        "flujo_validations_total",
        Unit::Count,
        "Validations of step outputs, by step, validator and result (pass, fail)"
    );
    metrics::describe_counter!(
        "flujo_telemetry_spans_dropped_total",
        Unit::Count,
        "Spans dropped before export, by reason (queue_full, export_queue_full, export_failed)"
    );
    metrics::describe_counter!(
        "flujo_telemetry_spans_exported_total",
        Unit::Count,
        "Spans an exporter delivered"
    );
    metrics::describe_counter!(
        "flujo_telemetry_export_errors_total",
        Unit::Count,
        "Export requests that failed after the exporter's retries"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

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
    }
}
