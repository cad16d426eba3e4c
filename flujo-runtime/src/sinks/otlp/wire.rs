//! One encoded OTLP trace request on its way to the collector: over gRPC through tonic's
//! client (the one opentelemetry-otlp uses) with a codec that carries the bytes as they are,
//! or over HTTP/protobuf through reqwest; with the retries the OTLP specification asks for,
//! as opentelemetry-otlp's `RetryPolicy::recommended` makes them (3 retries, 100 ms doubling
//! to 1.6 s plus up to 100 ms of jitter, a server's requested delay honoured up to 30 s), all
//! within the export timeout.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use bytes::{Buf as _, BufMut as _, Bytes};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceResponse;
use prost::Message as _;
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::transport::Channel;

use crate::sinks::otel::sender::Failure;

const MAX_RETRIES: u32 = 3;
const INITIAL_DELAY: Duration = Duration::from_millis(100);
const MAX_DELAY: Duration = Duration::from_millis(1600);
const MAX_JITTER_MS: u64 = 100;
/// The longest wait a server's requested delay (`Retry-After`, gRPC `RetryInfo`) gets.
const MAX_THROTTLE: Duration = Duration::from_secs(30);
/// A server's requested delay is read up to ten minutes (and up to a day, beyond which it is
/// taken for a misreading), then capped at [`MAX_THROTTLE`].
const MAX_SERVER_DELAY: Duration = Duration::from_secs(600);

const TRACE_EXPORT_PATH: &str = "/opentelemetry.proto.collector.trace.v1.TraceService/Export";

/// Whether, and when, a failed attempt may be made again.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Retry {
    No,
    Yes,
    /// The server asked for this wait.
    After(Duration),
}

/// An attempt that failed.
#[derive(Debug)]
struct Attempt {
    error: String,
    retry: Retry,
    /// Not answered in time: the request may have arrived.
    timed_out: bool,
}

/// Where requests go: a gRPC channel or an HTTP client, with the headers to send.
pub(crate) enum Route {
    Grpc {
        client: tonic::client::Grpc<Channel>,
        metadata: tonic::metadata::MetadataMap,
    },
    Http {
        client: reqwest::Client,
        endpoint: String,
        headers: http::HeaderMap,
        gzip: bool,
    },
}

/// Sends requests along its route, as many at once as the sending thread asks.
pub(crate) struct Wire {
    route: Route,
    /// A collector's partial success (spans it rejected) was said: once per exporter, not
    /// once per request.
    rejections_said: AtomicBool,
}

impl Wire {
    pub(crate) fn new(route: Route) -> Wire {
        Wire {
            route,
            rejections_said: AtomicBool::new(false),
        }
    }

    /// Sends `request` (an encoded `ExportTraceServiceRequest`), again after a transient
    /// failure, within `timeout`; a failure says whether an attempt went unanswered.
    pub(crate) async fn export(&self, request: Bytes, timeout: Duration) -> Result<(), Failure> {
        let request = match &self.route {
            Route::Http { gzip: true, .. } => gzip(&request).map_err(|error| Failure {
                error: format!("cannot compress the OTLP request: {error}"),
                timed_out: false,
            })?,
            _ => request,
        };
        let start = Instant::now();
        let mut delay = INITIAL_DELAY;
        let mut cap = MAX_DELAY;
        let mut timed_out = false;
        let mut retries = 0;
        loop {
            let failed = match self.attempt(request.clone()).await {
                Ok(()) => return Ok(()),
                Err(failed) => failed,
            };
            timed_out |= failed.timed_out;
            let refused = || Failure {
                error: failed.error.clone(),
                timed_out,
            };
            if retries == MAX_RETRIES || start.elapsed() >= timeout {
                return Err(refused());
            }
            match failed.retry {
                Retry::No => return Err(refused()),
                Retry::Yes => {}
                Retry::After(asked) => {
                    let asked = asked.min(MAX_THROTTLE);
                    if asked > cap {
                        cap = MAX_THROTTLE;
                    }
                    delay = delay.max(asked);
                }
            }
            retries += 1;
            let wait = (delay + Duration::from_millis(fastrand::u64(0..=MAX_JITTER_MS))).min(cap);
            if wait >= timeout.saturating_sub(start.elapsed()) {
                return Err(refused());
            }
            tokio::time::sleep(wait).await;
            delay = (delay * 2).min(cap);
        }
    }

    async fn attempt(&self, request: Bytes) -> Result<(), Attempt> {
        let answer = match &self.route {
            // A clone per request (the channel's handle) lets requests share the connection.
            Route::Grpc { client, metadata } => grpc(client.clone(), metadata, request).await?,
            Route::Http {
                client,
                endpoint,
                headers,
                gzip,
            } => http(client, endpoint, headers, *gzip, request).await?,
        };
        if let Some(partial) = answer.partial_success
            && (partial.rejected_spans > 0 || !partial.error_message.is_empty())
        {
            if self.rejections_said.swap(true, Ordering::Relaxed) {
                tracing::debug!(target: "flujo", rejected_spans = partial.rejected_spans,
                    error_message = partial.error_message, "the OTLP collector rejected spans");
            } else {
                tracing::warn!(target: "flujo", rejected_spans = partial.rejected_spans,
                    error_message = partial.error_message,
                    "the OTLP collector took a request and rejected some of its spans (said \
                     once; later ones at DEBUG)");
            }
        }
        Ok(())
    }
}

async fn grpc(
    mut client: tonic::client::Grpc<Channel>,
    metadata: &tonic::metadata::MetadataMap,
    request: Bytes,
) -> Result<ExportTraceServiceResponse, Attempt> {
    use tonic_types::StatusExt as _;
    let status = |status: tonic::Status| {
        let code = status.code();
        // The message may echo a credential: only the code, and the transport's own errors.
        let mut error = format!("OTLP export failed with gRPC code: {code:?}");
        let mut source = std::error::Error::source(&status);
        while let Some(cause) = source {
            error.push_str(&format!(": {cause}"));
            source = cause.source();
        }
        let asked = status
            .get_details_retry_info()
            .and_then(|info| info.retry_delay)
            .map(|delay| delay.min(MAX_SERVER_DELAY));
        use tonic::Code;
        let retry = match code {
            Code::ResourceExhausted => asked.map_or(Retry::No, Retry::After),
            Code::Unavailable => asked
                .filter(|delay| !delay.is_zero())
                .map_or(Retry::Yes, Retry::After),
            Code::Cancelled
            | Code::DeadlineExceeded
            | Code::Aborted
            | Code::OutOfRange
            | Code::DataLoss => Retry::Yes,
            _ => Retry::No,
        };
        Attempt {
            error,
            retry,
            // tonic reports its own deadline as CANCELLED ("Timeout expired"), a server's
            // as DEADLINE_EXCEEDED.
            timed_out: matches!(code, Code::Cancelled | Code::DeadlineExceeded),
        }
    };
    client
        .ready()
        .await
        .map_err(|error| status(tonic::Status::unavailable(format!("not ready: {error}"))))?;
    let mut request = tonic::Request::new(request);
    *request.metadata_mut() = metadata.clone();
    client
        .unary(
            request,
            http::uri::PathAndQuery::from_static(TRACE_EXPORT_PATH),
            Verbatim,
        )
        .await
        .map(tonic::Response::into_inner)
        .map_err(status)
}

async fn http(
    client: &reqwest::Client,
    endpoint: &str,
    headers: &http::HeaderMap,
    gzip: bool,
    request: Bytes,
) -> Result<ExportTraceServiceResponse, Attempt> {
    let mut builder = client
        .post(endpoint)
        .headers(headers.clone())
        .header(http::header::CONTENT_TYPE, "application/x-protobuf");
    if gzip {
        builder = builder.header(http::header::CONTENT_ENCODING, "gzip");
    }
    let failed = |error: reqwest::Error| Attempt {
        // The error names the URL, and no header: nothing secret.
        error: format!("HTTP export failed: network error ({error})"),
        retry: Retry::Yes,
        timed_out: error.is_timeout(),
    };
    let response = builder.body(request).send().await.map_err(failed)?;
    let status = response.status();
    if !status.is_success() {
        let asked = server_delay(response.headers());
        let retry = match status.as_u16() {
            429 | 503 => asked.map_or(Retry::Yes, Retry::After),
            502 | 504 => Retry::Yes,
            _ => Retry::No,
        };
        return Err(Attempt {
            error: format!("HTTP export failed with status code: {}", status.as_u16()),
            retry,
            timed_out: false,
        });
    }
    let body = response.bytes().await.map_err(failed)?;
    // An answer that is not an `ExportTraceServiceResponse` is a success all the same.
    Ok(ExportTraceServiceResponse::decode(body).unwrap_or_default())
}

/// The wait a collector's answer asks for (`Retry-After`, read as a step's retries read it),
/// at most [`MAX_SERVER_DELAY`].
fn server_delay(headers: &http::HeaderMap) -> Option<Duration> {
    crate::core::retry_after::retry_after(headers).map(|delay| delay.min(MAX_SERVER_DELAY))
}

fn gzip(request: &[u8]) -> std::io::Result<Bytes> {
    use std::io::Write as _;
    let mut encoder = flate2::write::GzEncoder::new(
        Vec::with_capacity(request.len() / 4),
        flate2::Compression::default(),
    );
    encoder.write_all(request)?;
    encoder.finish().map(Bytes::from)
}

/// A gRPC codec that sends a request already encoded, and decodes the collector's answer.
#[derive(Clone, Copy, Debug, Default)]
struct Verbatim;

impl Codec for Verbatim {
    type Encode = Bytes;
    type Decode = ExportTraceServiceResponse;
    type Encoder = Verbatim;
    type Decoder = Verbatim;

    fn encoder(&mut self) -> Verbatim {
        Verbatim
    }

    fn decoder(&mut self) -> Verbatim {
        Verbatim
    }
}

impl Encoder for Verbatim {
    type Item = Bytes;
    type Error = tonic::Status;

    fn encode(&mut self, item: Bytes, dst: &mut EncodeBuf<'_>) -> Result<(), tonic::Status> {
        dst.put_slice(&item);
        Ok(())
    }
}

impl Decoder for Verbatim {
    type Item = ExportTraceServiceResponse;
    type Error = tonic::Status;

    fn decode(
        &mut self,
        src: &mut DecodeBuf<'_>,
    ) -> Result<Option<ExportTraceServiceResponse>, tonic::Status> {
        let answer = ExportTraceServiceResponse::decode(src.copy_to_bytes(src.remaining()))
            .unwrap_or_default();
        Ok(Some(answer))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{BufRead as _, BufReader, Read as _, Write as _};
    use std::sync::{Arc, Mutex};

    /// An OTLP/HTTP collector on loopback that answers every request with a partial success
    /// (one span rejected), `requests` times.
    fn rejecting_collector(requests: usize) -> String {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let endpoint = format!("http://{}/v1/traces", listener.local_addr().unwrap());
        std::thread::spawn(move || {
            // ExportTraceServiceResponse { partial_success { rejected_spans: 1 } }
            let answer = [0x0a, 0x02, 0x08, 0x01];
            for _ in 0..requests {
                let (stream, _) = listener.accept().unwrap();
                let mut reader = BufReader::new(stream);
                let (mut line, mut length) = (String::new(), 0);
                while reader.read_line(&mut line).unwrap() > 2 {
                    if let Some(value) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                        length = value.trim().parse().unwrap();
                    }
                    line.clear();
                }
                reader.read_exact(&mut vec![0; length]).unwrap();
                let head = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/x-protobuf\r\n\
                     content-length: {}\r\nconnection: close\r\n\r\n",
                    answer.len()
                );
                let stream = reader.get_mut();
                stream.write_all(head.as_bytes()).unwrap();
                stream.write_all(&answer).unwrap();
            }
        });
        endpoint
    }

    #[derive(Clone, Default)]
    struct Lines(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Lines {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_collectors_rejected_spans_are_said_once_then_at_debug() {
        let endpoint = rejecting_collector(3);
        let wire = Wire::new(Route::Http {
            client: reqwest::Client::new(),
            endpoint,
            headers: http::HeaderMap::new(),
            gzip: false,
        });
        let lines = Lines::default();
        let writer = lines.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::DEBUG)
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .finish();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        tracing::subscriber::with_default(subscriber, || {
            for _ in 0..3 {
                runtime
                    .block_on(wire.export(Bytes::from_static(b""), Duration::from_secs(5)))
                    .unwrap();
            }
        });
        let text = String::from_utf8(lines.0.lock().unwrap().clone()).unwrap();
        let said = |level: &str| {
            let at = format!("{level} flujo:");
            text.lines()
                .filter(|line| line.contains(&at) && line.contains("rejected_spans=1"))
                .count()
        };
        assert_eq!((said(" WARN"), said("DEBUG")), (1, 2), "{text}");
    }

    #[test]
    fn a_servers_requested_delay_is_read_in_seconds_or_as_a_date_and_capped() {
        let retry_after = |value| {
            server_delay(&crate::core::retry_after::tests::headers(&[(
                "retry-after",
                value,
            )]))
        };
        assert_eq!(retry_after(" 7 "), Some(Duration::from_secs(7)));
        assert_eq!(retry_after("900"), Some(MAX_SERVER_DELAY));
        assert_eq!(
            retry_after("Wed, 21 Oct 2015 07:28:00 GMT"),
            Some(Duration::ZERO)
        );
        assert_eq!(retry_after("soon"), None);
    }
}
