//! OTLP span export (feature `otlp`), through the official `opentelemetry-otlp` exporters,
//! fed by the bounded queue of `sinks::otel::sender` on the `flujo-otlp` thread, over gRPC or
//! HTTP/protobuf. Transient failures (gRPC UNAVAILABLE,
//! HTTP 429/502/503/504) are retried by the SDK within `otlp_timeout` (100 ms .. 1.6 s with
//! jitter, honouring a server's retry-after). An attempt that the collector did not answer
//! within `otlp_timeout` is transient too: it is sent again, twice at most. A slow or absent
//! collector fills the queue, and further batches are dropped and counted: neither the
//! application nor the export worker ever waits on the network.
//!
//! Requests are bounded in spans and bytes, and every span lands in exactly one counter, as
//! `sinks::otel::sender` says.

use super::transport::{TimeoutWitness, Transport, mismatch_diagnosis, protocol_hint, target};
use crate::config::error::TelemetryError;
use crate::config::settings::{OtlpProtocol, OtlpSignal, ResourceSettings, SpanQueueSettings};
use crate::sinks::otel::convert::resource;
use crate::sinks::otel::destination::ExporterDestination;
use crate::sinks::otel::sender::{QueueSettings, QueuedExporter};

fn build_exporter(
    signal: &OtlpSignal,
) -> Result<(opentelemetry_otlp::SpanExporter, TimeoutWitness), String> {
    let transport = Transport::new(signal)?;
    let builder = opentelemetry_otlp::SpanExporter::builder();
    let exporter = match signal.protocol {
        OtlpProtocol::Grpc => transport.grpc(builder.with_tonic()).build(),
        OtlpProtocol::HttpProtobuf => transport.http(builder.with_http())?.build(),
    }
    .map_err(|error| error.to_string())?;
    Ok((exporter, transport.witness()))
}

/// Starts sending finished spans, queued as `queue` says, to the OTLP endpoint of `signal`
/// (`name`: what flujo's log lines call it).
pub(crate) fn start(
    name: &'static str,
    signal: &OtlpSignal,
    queue: &SpanQueueSettings,
    service: &ResourceSettings,
) -> Result<QueuedExporter, TelemetryError> {
    let hint = protocol_hint(signal);
    if let Some(hint) = &hint {
        tracing::warn!(target: "flujo", "{hint}");
    }
    let queue = QueueSettings {
        hint,
        target: Some(target(signal)),
        diagnose: Some(mismatch_diagnosis(signal)),
        ..QueueSettings::new(name, "flujo-otlp", queue, signal.timeout)
    };
    let signal = signal.clone();
    let resource = resource(service);
    QueuedExporter::start(queue, move |runtime| {
        // tonic's lazy channel needs the runtime's reactor while it is built.
        let (exporter, witness) = {
            let _runtime = runtime.enter();
            build_exporter(&signal)?
        };
        Ok(ExporterDestination::new(
            exporter,
            &resource,
            move |error| witness.timed_out(error),
        ))
    })
}
