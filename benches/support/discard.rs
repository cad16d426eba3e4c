//! The exporters the benchmarks' peers use: each receives every batch and drops it, so
//! the figures measure recording, not exporting.

use std::hint::black_box;

use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::metrics::data::ResourceMetrics;
use opentelemetry_sdk::metrics::exporter::PushMetricExporter;
use opentelemetry_sdk::metrics::{PeriodicReader, SdkMeterProvider, Temporality};
use opentelemetry_sdk::trace::{SdkTracerProvider, SpanData, SpanExporter as OtelSpanExporter};

/// flujo's exporter side of the comparison.
pub struct DiscardSpans;

impl flujo::export::SpanExporter for DiscardSpans {
    fn export(&mut self, spans: &[flujo::export::FinishedSpan]) {
        black_box(spans.len());
    }
}

/// The peer's exporter: the OpenTelemetry SDK's batch processor feeds it, it drops.
#[derive(Debug)]
pub struct DiscardOtel;

impl OtelSpanExporter for DiscardOtel {
    fn export(&self, batch: Vec<SpanData>) -> impl Future<Output = OTelSdkResult> + Send {
        black_box(batch.len());
        std::future::ready(Ok(()))
    }
}

/// The peer's tracer provider: the SDK batch processor in front of [`DiscardOtel`].
pub fn peer_provider() -> SdkTracerProvider {
    SdkTracerProvider::builder()
        .with_batch_exporter(DiscardOtel)
        .build()
}

/// The OpenTelemetry SDK's metric side of the peers: a periodic reader whose exports drop.
struct DiscardMetrics;

impl PushMetricExporter for DiscardMetrics {
    fn export(&self, metrics: &ResourceMetrics) -> impl Future<Output = OTelSdkResult> + Send {
        black_box(metrics);
        std::future::ready(Ok(()))
    }

    fn force_flush(&self) -> OTelSdkResult {
        Ok(())
    }

    fn shutdown_with_timeout(&self, _: std::time::Duration) -> OTelSdkResult {
        Ok(())
    }

    fn temporality(&self) -> Temporality {
        Temporality::Cumulative
    }
}

/// The peers' meter provider: the SDK's periodic reader in front of [`DiscardMetrics`].
pub fn peer_meters() -> SdkMeterProvider {
    SdkMeterProvider::builder()
        .with_reader(PeriodicReader::builder(DiscardMetrics).build())
        .build()
}
