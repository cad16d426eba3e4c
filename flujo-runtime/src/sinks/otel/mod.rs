//! OpenTelemetry destinations of flujo's spans (feature `opentelemetry`): the conversion to
//! the SDK's `SpanData`, the bounded queue and sending thread every destination is fed by
//! (OTLP's too), and the application's own SDK exporters and span processors as destinations.

pub(crate) mod convert;
pub(crate) mod destination;
pub(crate) mod sender;

use self::sender::{Destination, QueueSettings, QueuedExporter, Spans};
use crate::collect::finished::FinishedSpan;
use crate::config::error::TelemetryError;
use crate::config::settings::SpanQueueSettings;

/// Feeds `destination` (an application's exporter or processor) on a `flujo-otel` thread;
/// `name` is what flujo's log lines call it.
pub(crate) fn start<D: Destination<Batch = Vec<FinishedSpan>>>(
    name: &'static str,
    destination: D,
    settings: &SpanQueueSettings,
) -> Result<QueuedExporter<Spans>, TelemetryError> {
    QueuedExporter::start(
        QueueSettings::new(name, "flujo-otel", settings, settings.export_timeout),
        Spans::default(),
        move |_| Ok(destination),
    )
}
