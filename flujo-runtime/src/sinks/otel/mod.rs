//! OpenTelemetry destinations of flujo's spans (feature `opentelemetry`): the conversion to
//! the SDK's `SpanData`, the bounded queue and sending thread every destination is fed by,
//! and the application's own SDK exporters and span processors as destinations.

pub(crate) mod convert;
pub(crate) mod destination;
pub(crate) mod sender;

use opentelemetry_sdk::trace::{SpanExporter, SpanProcessor};

use self::destination::{ExporterDestination, ProcessorDestination, SharedSpanProcessor};
use self::sender::{QueueSettings, QueuedExporter};
use crate::config::error::TelemetryError;
use crate::config::settings::TelemetrySettings;

/// Feeds an application's SDK span exporter, with flujo's resource.
pub(crate) fn start_exporter<E: SpanExporter + 'static>(
    exporter: E,
    settings: &TelemetrySettings,
) -> Result<QueuedExporter, TelemetryError> {
    let resource = convert::resource(settings);
    QueuedExporter::start(
        QueueSettings::new("OpenTelemetry exporter", "flujo-otel", settings),
        move |_| Ok(ExporterDestination::new(exporter, &resource, |_| false)),
    )
}

/// Feeds a span processor of flujo's own, with flujo's resource.
pub(crate) fn start_processor<P: SpanProcessor + 'static>(
    processor: P,
    settings: &TelemetrySettings,
) -> Result<QueuedExporter, TelemetryError> {
    let resource = convert::resource(settings);
    QueuedExporter::start(
        QueueSettings::new("OpenTelemetry span processor", "flujo-otel", settings),
        move |_| Ok(ProcessorDestination::owned(processor, &resource)),
    )
}

/// Feeds a span processor shared with the application's tracer provider.
pub(crate) fn start_shared_processor<P: SpanProcessor + 'static>(
    processor: SharedSpanProcessor<P>,
    settings: &TelemetrySettings,
) -> Result<QueuedExporter, TelemetryError> {
    QueuedExporter::start(
        QueueSettings::new("OpenTelemetry span processor", "flujo-otel", settings),
        move |_| Ok(ProcessorDestination::shared(processor)),
    )
}
