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

use super::describe::describe_metrics;
use crate::core::names::Metric;

const COST_USD_TOTAL: &str = Metric::CostUsd.name();
use super::histogram::{BucketHistogram, buckets_for};

/// Other recorders that see every flujo metric too, each attached at most once per process.
/// Handles registered before one was attached reach it on their next update.
#[derive(Clone, Copy, Debug)]
#[cfg_attr(not(any(feature = "prometheus", feature = "otlp")), allow(dead_code))]
pub(crate) enum Downstream {
    #[cfg_attr(not(feature = "prometheus"), allow(dead_code))]
    Prometheus = 0,
    #[cfg_attr(not(feature = "otlp"), allow(dead_code))]
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

    /// This metric's handle in the downstream recorder of slot `index`.
    fn downstream_at(
        &self,
        index: usize,
        recorder: &dyn Recorder,
        register: impl Fn(&dyn Recorder, &Key) -> H,
    ) -> &H {
        self.downstream[index].get_or_init(|| register(recorder, &self.key))
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
pub(crate) type FanHistogram = Fanout<BucketHistogram, Histogram>;

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

impl FanHistogram {
    /// Records `values`: in flujo's store in one batch, in each downstream one by one.
    pub(crate) fn record_batch(&self, values: &[f64]) {
        self.local.record_batch(values);
        self.each_downstream(histogram_of, |histogram| {
            values.iter().for_each(|value| histogram.record(*value));
        });
    }
}

/// flujo's own histogram of `key`, to update in batches, when flujo's recorder is the
/// installed one; `None` when the application's recorder is (use the `metrics` handle).
pub(crate) fn own_histogram(key: &Key) -> Option<Arc<FanHistogram>> {
    INSTALLED.get().copied().unwrap_or(false).then(|| {
        get_or_insert(&RECORDER.store.histograms, key, || {
            Fanout::new(key, BucketHistogram::new(buckets_for(key.name())))
        })
    })
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
    let index = slot as usize;
    let prometheus = matches!(slot, Downstream::Prometheus);
    let slot = &DOWNSTREAM[index];
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
        drop(descriptions);
        // What was counted before the recorder was attached (calls before the Prometheus
        // server started, health counters at zero) is in its first scrape, whole: counters
        // and gauges at their values. Histograms start empty there (their buckets cannot be
        // replayed into another recorder's).
        let store = &RECORDER.store;
        for counter in store
            .counters
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .values()
        {
            if counter.skip_prometheus && prometheus {
                continue;
            }
            counter
                .downstream_at(index, &**downstream, counter_of)
                .absolute(counter.local.load(Ordering::Relaxed));
        }
        for gauge in store
            .gauges
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .values()
        {
            gauge
                .downstream_at(index, &**downstream, gauge_of)
                .set(f64::from_bits(gauge.local.load(Ordering::Relaxed)));
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
