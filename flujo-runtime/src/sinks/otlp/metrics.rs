//! Metrics push (feature `otlp`, `OTEL_METRICS_EXPORTER=otlp` and `console`): every flujo
//! metric, under the same name as on Prometheus, pushed periodically to the OTLP endpoint
//! and/or printed on stdout.
//!
//! A recorder attached as a downstream of flujo's own maps counters, gauges and histograms
//! (with the same explicit buckets) onto OpenTelemetry SDK instruments; the SDK's periodic
//! reader collects them and the OTLP metric exporter sends them, on a runtime of flujo's own.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use metrics::{
    Counter, CounterFn, Gauge, GaugeFn, Histogram, HistogramFn, Key, KeyName, Metadata, Recorder,
    SharedString, Unit,
};
use opentelemetry::KeyValue;
use opentelemetry::metrics::{Meter, MeterProvider as _};
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::metrics::data::ResourceMetrics;
use opentelemetry_sdk::metrics::exporter::PushMetricExporter;
use opentelemetry_sdk::metrics::{PeriodicReader, SdkMeterProvider, Temporality};

use super::transport::{ExportRuntime, Transport};
use crate::config::error::TelemetryError;
use crate::config::settings::{OtlpProtocol, OtlpSignal, ResourceSettings};
use crate::core::names::Metric;
use crate::metrics::describe::USD_PER_NANO;
use crate::metrics::histogram::buckets_for;
use crate::metrics::recorder::{self as flujo_metrics, Downstream};

/// Maps `metrics` handles onto OpenTelemetry instruments, one instrument per metric name.
struct OtelRecorder {
    meter: Meter,
    descriptions: Mutex<HashMap<String, (Option<Unit>, String)>>,
}

fn otel_unit(unit: Unit) -> Option<&'static str> {
    match unit {
        Unit::Seconds => Some("s"),
        Unit::Milliseconds => Some("ms"),
        Unit::Bytes => Some("By"),
        Unit::Count => Some("1"),
        _ => None,
    }
}

fn attributes(key: &Key) -> Vec<KeyValue> {
    key.labels()
        .map(|label| KeyValue::new(label.key().to_owned(), label.value().to_owned()))
        .collect()
}

impl OtelRecorder {
    fn describe(&self, key: KeyName, unit: Option<Unit>, description: SharedString) {
        self.descriptions
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(key.as_str().to_owned(), (unit, description.into_owned()));
    }

    fn description(&self, name: &str) -> (Option<&'static str>, String) {
        let descriptions = self
            .descriptions
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        match descriptions.get(name) {
            Some((unit, text)) => (unit.and_then(otel_unit), text.clone()),
            None => (None, String::new()),
        }
    }
}

/// The cost counter, kept in nano-dollars by flujo, pushed in USD.
struct OtelUsdCounter {
    counter: opentelemetry::metrics::Counter<f64>,
    attributes: Vec<KeyValue>,
}

impl CounterFn for OtelUsdCounter {
    fn increment(&self, nanos: u64) {
        self.counter
            .add(nanos as f64 * USD_PER_NANO, &self.attributes);
    }

    fn absolute(&self, _: u64) {
        // flujo only ever increments the cost counter.
    }
}

struct OtelCounter {
    counter: opentelemetry::metrics::Counter<u64>,
    attributes: Vec<KeyValue>,
    /// The highest value given to `absolute`, which OpenTelemetry counters only take as deltas.
    absolute: AtomicU64,
}

impl CounterFn for OtelCounter {
    fn increment(&self, value: u64) {
        self.counter.add(value, &self.attributes);
    }

    fn absolute(&self, value: u64) {
        let previous = self.absolute.fetch_max(value, Ordering::Relaxed);
        if value > previous {
            self.counter.add(value - previous, &self.attributes);
        }
    }
}

struct OtelGauge {
    gauge: opentelemetry::metrics::Gauge<f64>,
    attributes: Vec<KeyValue>,
    value: AtomicU64,
}

impl OtelGauge {
    fn update(&self, change: impl Fn(f64) -> f64) {
        let mut new = 0.0;
        let _ = self
            .value
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |bits| {
                new = change(f64::from_bits(bits));
                Some(new.to_bits())
            });
        self.gauge.record(new, &self.attributes);
    }
}

impl GaugeFn for OtelGauge {
    fn increment(&self, value: f64) {
        self.update(|current| current + value);
    }

    fn decrement(&self, value: f64) {
        self.update(|current| current - value);
    }

    fn set(&self, value: f64) {
        self.update(|_| value);
    }
}

struct OtelHistogram {
    histogram: opentelemetry::metrics::Histogram<f64>,
    attributes: Vec<KeyValue>,
}

impl HistogramFn for OtelHistogram {
    fn record(&self, value: f64) {
        self.histogram.record(value, &self.attributes);
    }
}

impl Recorder for OtelRecorder {
    fn describe_counter(&self, key: KeyName, unit: Option<Unit>, description: SharedString) {
        self.describe(key, unit, description);
    }

    fn describe_gauge(&self, key: KeyName, unit: Option<Unit>, description: SharedString) {
        self.describe(key, unit, description);
    }

    fn describe_histogram(&self, key: KeyName, unit: Option<Unit>, description: SharedString) {
        self.describe(key, unit, description);
    }

    // The SDK returns the same instrument for the same name, so asking per label set is cheap
    // and happens once per handle.
    fn register_counter(&self, key: &Key, _: &Metadata<'_>) -> Counter {
        let (unit, description) = self.description(key.name());
        if key.name() == Metric::CostUsd.name() {
            let counter = self
                .meter
                .f64_counter(key.name().to_owned())
                .with_description(description)
                .with_unit("USD")
                .build();
            return Counter::from_arc(Arc::new(OtelUsdCounter {
                counter,
                attributes: attributes(key),
            }));
        }
        let mut builder = self
            .meter
            .u64_counter(key.name().to_owned())
            .with_description(description);
        if let Some(unit) = unit {
            builder = builder.with_unit(unit);
        }
        Counter::from_arc(Arc::new(OtelCounter {
            counter: builder.build(),
            attributes: attributes(key),
            absolute: AtomicU64::new(0),
        }))
    }

    fn register_gauge(&self, key: &Key, _: &Metadata<'_>) -> Gauge {
        let (unit, description) = self.description(key.name());
        let mut builder = self
            .meter
            .f64_gauge(key.name().to_owned())
            .with_description(description);
        if let Some(unit) = unit {
            builder = builder.with_unit(unit);
        }
        Gauge::from_arc(Arc::new(OtelGauge {
            gauge: builder.build(),
            attributes: attributes(key),
            value: AtomicU64::new(0f64.to_bits()),
        }))
    }

    fn register_histogram(&self, key: &Key, _: &Metadata<'_>) -> Histogram {
        let (unit, description) = self.description(key.name());
        let mut builder = self
            .meter
            .f64_histogram(key.name().to_owned())
            .with_description(description)
            .with_boundaries(buckets_for(key.name()).to_vec());
        if let Some(unit) = unit {
            builder = builder.with_unit(unit);
        }
        Histogram::from_arc(Arc::new(OtelHistogram {
            histogram: builder.build(),
            attributes: attributes(key),
        }))
    }
}

/// Runs the OTLP metric exporter on flujo's runtime: the SDK's periodic reader calls it from
/// a plain thread, while the transports need a tokio reactor.
struct OnRuntime {
    handle: tokio::runtime::Handle,
    inner: opentelemetry_otlp::MetricExporter,
}

impl PushMetricExporter for OnRuntime {
    fn export(&self, metrics: &ResourceMetrics) -> impl Future<Output = OTelSdkResult> + Send {
        std::future::ready(self.handle.block_on(self.inner.export(metrics)))
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.inner.force_flush()
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.inner.shutdown_with_timeout(timeout)
    }

    fn temporality(&self) -> Temporality {
        self.inner.temporality()
    }
}

/// The metrics push pipeline; shut it down to send the last values.
#[derive(Debug)]
pub(crate) struct OtlpMetrics {
    provider: SdkMeterProvider,
    /// Declared after the provider: it must outlive the provider's last export.
    _runtime: Option<ExportRuntime>,
}

impl OtlpMetrics {
    /// Starts pushing every `interval` to the OTLP endpoint of `otlp` and, if `console`, to
    /// stdout (`OTEL_METRICS_EXPORTER=console`); the recorder can be attached once per
    /// process.
    pub(crate) fn start(
        otlp: Option<&OtlpSignal>,
        console: bool,
        interval: Duration,
        service: &ResourceSettings,
    ) -> Result<OtlpMetrics, TelemetryError> {
        let start_error = |reason: String| TelemetryError::ExporterStart {
            exporter: if otlp.is_some() {
                "OTLP metrics"
            } else {
                "console metrics"
            },
            reason,
        };
        let mut provider = SdkMeterProvider::builder()
            .with_resource(crate::sinks::otel::convert::resource(service));
        let mut runtime = None;
        if let Some(signal) = otlp {
            let export_runtime = ExportRuntime::new("flujo-otlp-metrics").map_err(start_error)?;
            let exporter = export_runtime
                .build(|| {
                    let transport = Transport::new(signal)?;
                    let builder = opentelemetry_otlp::MetricExporter::builder();
                    match signal.protocol {
                        OtlpProtocol::Grpc => transport.grpc(builder.with_tonic()).build(),
                        OtlpProtocol::HttpProtobuf => transport.http(builder.with_http())?.build(),
                    }
                    .map_err(|error| error.to_string())
                })
                .map_err(start_error)?;
            let handle = export_runtime
                .handle()
                .ok_or_else(|| start_error("the export runtime stopped".to_owned()))?;
            provider = provider.with_reader(
                PeriodicReader::builder(OnRuntime {
                    handle,
                    inner: exporter,
                })
                .with_interval(interval)
                .build(),
            );
            runtime = Some(export_runtime);
        }
        if console {
            provider = provider.with_reader(
                PeriodicReader::builder(opentelemetry_stdout::MetricExporter::default())
                    .with_interval(interval)
                    .build(),
            );
        }
        let provider = provider.build();
        let recorder = OtelRecorder {
            meter: provider.meter("flujo"),
            descriptions: Mutex::new(HashMap::new()),
        };
        if !flujo_metrics::attach_downstream(Downstream::Otlp, Box::new(recorder)) {
            let _ = provider.shutdown();
            return Err(start_error(
                "metrics push can start once per process, and it already ran".to_owned(),
            ));
        }
        Ok(OtlpMetrics {
            provider,
            _runtime: runtime,
        })
    }

    /// Pushes the last values, waiting at most `timeout`.
    pub(crate) fn shutdown(&mut self, timeout: Duration) {
        if let Err(error) = self.provider.shutdown_with_timeout(timeout) {
            tracing::warn!(target: "flujo", %error, "OTLP metrics push did not finish on shutdown");
        }
    }
}
