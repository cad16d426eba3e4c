//! OTLP span export (feature `otlp`), fed by the bounded queue of `sinks::otel::sender` on the
//! `flujo-otlp` thread, over gRPC or HTTP/protobuf: each batch is encoded by the export
//! worker as it hands the spans over (`proto`), and sent by `wire`. Transient failures (gRPC
//! UNAVAILABLE, HTTP 429/502/503/504) are retried within `otlp_timeout` (100 ms .. 1.6 s with
//! jitter, honouring a server's retry-after), as the SDK's exporters retry them. An attempt
//! that the collector did not answer within `otlp_timeout` is transient too: it is sent
//! again, twice at most. A slow or absent collector fills the queue, and further batches are
//! dropped and counted: neither the application nor the export worker ever waits on the
//! network.
//!
//! Requests are bounded in spans and bytes, and every span lands in exactly one counter, as
//! `sinks::otel::sender` says.

use std::time::Duration;

use bytes::Bytes;

use super::proto::{RequestHead, Requests};
use super::transport::{Transport, mismatch_diagnosis, protocol_hint, target};
use super::wire::Wire;
use crate::config::error::TelemetryError;
use crate::config::settings::{OtlpProtocol, OtlpSignal, ResourceSettings, SpanQueueSettings};
use crate::sinks::otel::convert::{SpanLimits, resource, scope};
use crate::sinks::otel::sender::{Destination, Failure, QueueSettings, QueuedExporter};

/// The OTLP endpoint as a destination of requests the export worker encoded.
struct OtlpDestination {
    wire: Wire,
}

impl Destination for OtlpDestination {
    type Batch = Bytes;

    /// A collector's answer takes longer than encoding the next batch (a round trip to a
    /// remote collector; on loopback, rotel's gRPC answers wait ~40 ms for a delayed
    /// acknowledgement every few requests): sixteen requests in flight keep the connection
    /// busy. They count in the export queue's bound in bytes until they are answered.
    const IN_FLIGHT: usize = 16;

    async fn send(&self, request: &Bytes, timeout: Duration) -> Result<(), Failure> {
        self.wire.export(request.clone(), timeout).await
    }

    fn shutdown(&self, _: Duration) {}
}

/// Starts sending finished spans, queued as `queue` says, to the OTLP endpoint of `signal`
/// (`name`: what flujo's log lines call it).
pub(crate) fn start(
    name: &'static str,
    signal: &OtlpSignal,
    queue_settings: &SpanQueueSettings,
    service: &ResourceSettings,
) -> Result<QueuedExporter<Requests>, TelemetryError> {
    let hint = protocol_hint(signal);
    if let Some(hint) = &hint {
        tracing::warn!(target: "flujo", "{hint}");
    }
    let queue = QueueSettings {
        hint,
        target: Some(target(signal)),
        diagnose: Some(mismatch_diagnosis(signal)),
        ..QueueSettings::new(name, "flujo-otlp", queue_settings, signal.timeout)
    };
    let scope = scope();
    let head = RequestHead::new(
        &resource(service),
        scope.name(),
        scope.version().unwrap_or_default(),
    );
    let requests = Requests::new(head, SpanLimits::of(queue_settings));
    let signal = signal.clone();
    QueuedExporter::start(queue, requests, move |runtime| {
        let transport = Transport::new(&signal)?;
        let wire = match signal.protocol {
            // tonic's lazy channel needs the runtime's reactor while it is built.
            OtlpProtocol::Grpc => {
                let _runtime = runtime.enter();
                transport.grpc_wire()?
            }
            OtlpProtocol::HttpProtobuf => transport.http_wire()?,
        };
        Ok(OtlpDestination { wire })
    })
}
