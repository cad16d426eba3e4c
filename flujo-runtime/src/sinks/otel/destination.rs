//! The application's OpenTelemetry SDK parts as destinations of flujo's spans: a span
//! exporter, a span processor of flujo's own, or a processor shared with the application's
//! tracer provider.

use std::sync::{Arc, RwLock};
use std::time::Duration;

use opentelemetry::{Context, InstrumentationScope};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{Span, SpanData, SpanExporter, SpanProcessor};

use super::convert::{SpanLimits, scope, span_data};
use super::sender::{Destination, Failure};
use crate::collect::finished::FinishedSpan;
use crate::config::settings::SpanQueueSettings;

/// How an SDK destination gets flujo's spans: as `SpanData` of flujo's scope, with the
/// attribute limits of the settings.
struct SdkSpans {
    scope: InstrumentationScope,
    limits: SpanLimits,
}

impl SdkSpans {
    fn new(settings: &SpanQueueSettings) -> SdkSpans {
        SdkSpans {
            scope: scope(),
            limits: SpanLimits::of(settings),
        }
    }

    fn of(&self, spans: &[FinishedSpan]) -> Vec<SpanData> {
        spans
            .iter()
            .map(|span| span_data(span, &self.scope, &self.limits))
            .collect()
    }
}

/// An SDK span exporter, driven on the sending thread's runtime.
pub(crate) struct ExporterDestination<E> {
    exporter: E,
    spans: SdkSpans,
}

impl<E: SpanExporter> ExporterDestination<E> {
    /// `exporter` with `resource` set: the resource of every span it exports, whose
    /// attributes are limited as `settings` say.
    pub(crate) fn new(
        mut exporter: E,
        resource: &Resource,
        settings: &SpanQueueSettings,
    ) -> ExporterDestination<E> {
        exporter.set_resource(resource);
        ExporterDestination {
            exporter,
            spans: SdkSpans::new(settings),
        }
    }
}

impl<E: SpanExporter + 'static> Destination for ExporterDestination<E> {
    type Batch = Vec<FinishedSpan>;

    async fn send(&self, spans: &Vec<FinishedSpan>, _: Duration) -> Result<(), Failure> {
        // The exporter bounds its own attempts (OTLP's at its timeout).
        self.exporter
            .export(self.spans.of(spans))
            .await
            .map_err(|error| Failure {
                error: error.to_string(),
                timed_out: false,
            })
    }

    fn shutdown(&self, timeout: Duration) {
        let _ = self.exporter.shutdown_with_timeout(timeout);
    }
}

/// A span processor: each span is handed to its `on_end`, on the sending thread (so that a
/// processor that exports as it is handed a span never holds flujo's export worker).
pub(crate) struct ProcessorDestination<P> {
    processor: P,
    spans: SdkSpans,
    /// The processor is flujo's alone: shut down with flujo's telemetry. One shared with the
    /// application's tracer provider is only flushed: the provider shuts it down.
    owned: bool,
}

impl<P: SpanProcessor> ProcessorDestination<P> {
    /// A processor of flujo's own, with flujo's `resource`; span attributes limited as
    /// `settings` say.
    pub(crate) fn owned(
        mut processor: P,
        resource: &Resource,
        settings: &SpanQueueSettings,
    ) -> ProcessorDestination<P> {
        processor.set_resource(resource);
        ProcessorDestination {
            processor,
            spans: SdkSpans::new(settings),
            owned: true,
        }
    }

    /// A processor of the application's tracer provider, which keeps the provider's resource.
    pub(crate) fn shared(processor: P, settings: &SpanQueueSettings) -> ProcessorDestination<P> {
        ProcessorDestination {
            processor,
            spans: SdkSpans::new(settings),
            owned: false,
        }
    }
}

impl<P: SpanProcessor + 'static> Destination for ProcessorDestination<P> {
    type Batch = Vec<FinishedSpan>;

    async fn send(&self, spans: &Vec<FinishedSpan>, _: Duration) -> Result<(), Failure> {
        for span in self.spans.of(spans) {
            self.processor.on_end(span);
        }
        Ok(())
    }

    fn shutdown(&self, timeout: Duration) {
        let _ = if self.owned {
            self.processor.shutdown_with_timeout(timeout)
        } else {
            self.processor.force_flush()
        };
    }
}

/// A span processor that an application's `SdkTracerProvider` and flujo both feed, so that
/// flujo's spans go wherever the provider's go, with the provider's resource. Register a
/// clone with the provider and hand one to
/// [`TelemetryGuard::share_otel_processor`](crate::TelemetryGuard::share_otel_processor).
///
/// Ending a span takes a read lock (uncontended unless the provider is being built); flujo
/// flushes the processor when its telemetry shuts down, and leaves shutting it down to the
/// provider. Needs feature `opentelemetry`.
///
/// ```
/// use flujo::export::otel::SharedSpanProcessor;
/// use opentelemetry_sdk::error::OTelSdkResult;
/// use opentelemetry_sdk::trace::{
///     BatchSpanProcessor, SdkTracerProvider, SpanData, SpanExporter,
/// };
///
/// /// Stands in for the application's exporter (OTLP, Zipkin, Datadog...).
/// #[derive(Debug)]
/// struct AppExporter;
///
/// impl SpanExporter for AppExporter {
///     async fn export(&self, _batch: Vec<SpanData>) -> OTelSdkResult {
///         Ok(())
///     }
/// }
///
/// let processor = SharedSpanProcessor::new(BatchSpanProcessor::builder(AppExporter).build());
/// let provider = SdkTracerProvider::builder()
///     .with_span_processor(processor.clone())
///     .build();
/// let mut telemetry = flujo::init_telemetry()?;
/// telemetry.share_otel_processor(&processor)?;
/// # drop(telemetry);
/// # let _ = provider.shutdown();
/// # Ok::<(), flujo::TelemetryError>(())
/// ```
#[derive(Debug)]
pub struct SharedSpanProcessor<P>(Arc<RwLock<P>>);

impl<P> Clone for SharedSpanProcessor<P> {
    fn clone(&self) -> Self {
        SharedSpanProcessor(Arc::clone(&self.0))
    }
}

impl<P: SpanProcessor> SharedSpanProcessor<P> {
    /// Shares `processor` (typically a `BatchSpanProcessor`).
    pub fn new(processor: P) -> SharedSpanProcessor<P> {
        SharedSpanProcessor(Arc::new(RwLock::new(processor)))
    }

    fn with<R>(&self, f: impl FnOnce(&P) -> R) -> R {
        // A panic elsewhere while the lock was held leaves the processor as usable as before.
        let processor = self
            .0
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        f(&processor)
    }
}

impl<P: SpanProcessor> SpanProcessor for SharedSpanProcessor<P> {
    fn on_start(&self, span: &mut Span, cx: &Context) {
        self.with(|processor| processor.on_start(span, cx));
    }

    fn on_end(&self, span: SpanData) {
        self.with(|processor| processor.on_end(span));
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.with(SpanProcessor::force_flush)
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.with(|processor| processor.shutdown_with_timeout(timeout))
    }

    fn set_resource(&mut self, resource: &Resource) {
        let mut processor = self
            .0
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        processor.set_resource(resource);
    }
}
