//! What every OTLP signal shares: the transport (endpoint per signal, protocol, headers,
//! TLS, gzip, timeout), the resource, and the small tokio runtime the SDK exporters run on.

use std::time::Duration;

use opentelemetry_otlp::tonic_types::metadata::MetadataMap;
use opentelemetry_otlp::tonic_types::transport::{Certificate, ClientTlsConfig, Identity};
use opentelemetry_otlp::{
    Compression, Protocol, RetryPolicy, WithExportConfig, WithHttpConfig, WithTonicConfig,
};

use super::wire::{Route, Wire};
use crate::config::settings::{OtlpProtocol, OtlpSignal};
use crate::sinks::otel::sender::Diagnose;

/// A one-worker tokio runtime for exporters that the OpenTelemetry SDK drives from plain
/// threads (its log and metric processors). It is never dropped in place: dropping a runtime
/// inside an application's async context would panic, so it shuts down in the background.
pub(crate) struct ExportRuntime(Option<tokio::runtime::Runtime>);

impl ExportRuntime {
    pub(crate) fn new(thread_name: &str) -> Result<ExportRuntime, String> {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name(thread_name)
            .enable_all()
            .build()
            .map(|runtime| ExportRuntime(Some(runtime)))
            .map_err(|error| error.to_string())
    }

    /// Runs `build` inside the runtime (exporter builders need its reactor).
    pub(crate) fn build<T>(&self, build: impl FnOnce() -> Result<T, String>) -> Result<T, String> {
        let _entered = self.0.as_ref().map(tokio::runtime::Runtime::enter);
        build()
    }

    pub(crate) fn handle(&self) -> Option<tokio::runtime::Handle> {
        self.0.as_ref().map(|runtime| runtime.handle().clone())
    }
}

impl Drop for ExportRuntime {
    fn drop(&mut self) {
        if let Some(runtime) = self.0.take() {
            runtime.shutdown_background();
        }
    }
}

impl std::fmt::Debug for ExportRuntime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ExportRuntime")
    }
}

/// The other transport: what a mismatch hint says to set.
fn other(protocol: OtlpProtocol) -> OtlpProtocol {
    match protocol {
        OtlpProtocol::Grpc => OtlpProtocol::HttpProtobuf,
        OtlpProtocol::HttpProtobuf => OtlpProtocol::Grpc,
    }
}

/// Where `signal` goes and over what: "http://collector:4318/v1/traces over http/protobuf".
pub(crate) fn target(signal: &OtlpSignal) -> String {
    format!("{} over {}", signal.endpoint, signal.protocol.name())
}

/// Tells, from a failed export, whether the endpoint is a server of the other protocol, on
/// any port: an OTLP/HTTP server asked over gRPC answers 404, which tonic reports as
/// `Unimplemented`; a gRPC server asked over HTTP/1.1 fails the request with only a "network
/// error", so the endpoint is asked once more, directly: an HTTP/2-only server answers an
/// HTTP/1.1 request with an HTTP/2 frame.
pub(crate) fn mismatch_diagnosis(signal: &OtlpSignal) -> Diagnose {
    let asked = signal.protocol;
    let endpoint = signal.endpoint.clone();
    let hint = format!(
        "{endpoint} answers like an OTLP server over {other}, not {asked}: set \
         OTEL_EXPORTER_OTLP_PROTOCOL={other} (or point OTEL_EXPORTER_OTLP_ENDPOINT at the \
         collector's {asked} port)",
        other = other(asked).name(),
        asked = asked.name(),
    );
    Box::new(move |error: &str| {
        let mismatch = match asked {
            OtlpProtocol::Grpc => error.contains("gRPC code: Unimplemented"),
            OtlpProtocol::HttpProtobuf => {
                error.contains("network error") && answers_with_http2(&endpoint)
            }
        };
        mismatch.then(|| hint.clone())
    })
}

/// Whether the server at `endpoint` (an `http://` URL) answers an HTTP/1.1 request with an
/// HTTP/2 frame (a SETTINGS or GOAWAY frame header), as a gRPC server does. A second at most.
fn answers_with_http2(endpoint: &str) -> bool {
    use std::io::{Read as _, Write as _};
    use std::net::{TcpStream, ToSocketAddrs as _};

    const WAIT: Duration = Duration::from_millis(500);
    let Ok(uri) = endpoint.parse::<http::Uri>() else {
        return false;
    };
    let (Some(host), Some(port)) = (uri.host(), uri.port_u16()) else {
        return false;
    };
    if uri.scheme_str() != Some("http") {
        return false;
    }
    let Some(address) = (host, port)
        .to_socket_addrs()
        .ok()
        .and_then(|mut all| all.next())
    else {
        return false;
    };
    let Ok(mut stream) = TcpStream::connect_timeout(&address, WAIT) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(WAIT));
    let _ = stream.set_write_timeout(Some(WAIT));
    let request = format!(
        "POST {} HTTP/1.1\r\nHost: {host}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
        uri.path()
    );
    if stream.write_all(request.as_bytes()).is_err() {
        return false;
    }
    let mut head = [0u8; 9];
    stream.read_exact(&mut head).is_ok() && is_http2_frame_header(&head)
}

/// An HTTP/2 frame header of a SETTINGS (4) or GOAWAY (7) frame on stream 0: what an
/// HTTP/2-only server sends first. An HTTP/1.1 answer starts with `HTTP/1.`.
fn is_http2_frame_header(head: &[u8; 9]) -> bool {
    matches!(head[3], 4 | 7) && head[5..9] == [0, 0, 0, 0]
}

/// A hint when the endpoint's port is the other protocol's well-known one (gRPC to 4318,
/// HTTP to 4317): the export then fails with a transport error that does not say why.
pub(crate) fn protocol_hint(signal: &OtlpSignal) -> Option<String> {
    if !signal.endpoint_configured {
        return None;
    }
    let endpoint = signal.endpoint.as_str();
    let port = endpoint.parse::<http::Uri>().ok()?.port_u16()?;
    let (protocol, other_protocol) = (signal.protocol, other(signal.protocol));
    let (other, usual) = (other_protocol.name(), protocol.port());
    let protocol = protocol.name();
    (port == other_protocol.port()).then(|| {
        format!(
            "the OTLP endpoint {endpoint} uses port {port}, the usual port of OTLP over \
             {other}, but the protocol is {protocol}: set OTEL_EXPORTER_OTLP_PROTOCOL={other}, \
             or use port {usual}"
        )
    })
}

/// The configured headers, checked: a header the transport cannot carry is an error, not a
/// silently missing authorization.
fn header_map(signal: &OtlpSignal) -> Result<http::HeaderMap, String> {
    let mut headers = http::HeaderMap::new();
    for (key, value) in &signal.headers {
        let name = http::HeaderName::from_bytes(key.as_bytes())
            .map_err(|_| format!("OTLP header name `{key}` is not a valid HTTP header name"))?;
        let value = http::HeaderValue::from_str(value.expose()).map_err(|_| {
            format!("the value of OTLP header `{key}` is not a valid HTTP header value")
        })?;
        headers.insert(name, value);
    }
    Ok(headers)
}

/// A PEM file of the transport, read once: a missing or unreadable file, or one that holds
/// no PEM block of its kind (a key for a certificate, a DER file, an empty file), is an
/// error naming it, at init rather than at the first export.
fn read_pem(
    path: Option<&std::path::PathBuf>,
    what: &str,
    block: &str,
    setting: &str,
) -> Result<Option<Vec<u8>>, String> {
    let Some(path) = path else {
        return Ok(None);
    };
    let pem = std::fs::read(path).map_err(|error| {
        format!(
            "cannot read the OTLP {what} file {}: {error}",
            path.display()
        )
    })?;
    let found = if block == "CERTIFICATE" {
        reqwest::Certificate::from_pem_bundle(&pem)
            .is_ok_and(|certificates| !certificates.is_empty())
    } else {
        // PKCS#8 (`PRIVATE KEY`), PKCS#1 (`RSA PRIVATE KEY`) or SEC1 (`EC PRIVATE KEY`).
        String::from_utf8_lossy(&pem).lines().any(|line| {
            let line = line.trim();
            line.starts_with("-----BEGIN ") && line.ends_with("PRIVATE KEY-----")
        })
    };
    if found {
        Ok(Some(pem))
    } else {
        Err(format!(
            "the OTLP {what} file {} holds no PEM {}: it must hold a `-----BEGIN {block}-----` \
             block ({setting})",
            path.display(),
            block.to_ascii_lowercase(),
        ))
    }
}

/// The transport settings every OTLP exporter shares (endpoint, headers, TLS, timeout,
/// compression, retries), checked once and applied to any signal's exporter builder.
pub(crate) struct Transport {
    endpoint: String,
    headers: http::HeaderMap,
    ca_pem: Option<Vec<u8>>,
    /// The client's certificate chain and private key, for mutual TLS.
    identity: Option<(Vec<u8>, Vec<u8>)>,
    timeout: Duration,
    gzip: bool,
}

impl Transport {
    pub(crate) fn new(signal: &OtlpSignal) -> Result<Transport, String> {
        let certificate = read_pem(
            signal.client_certificate.as_ref(),
            "client certificate",
            "CERTIFICATE",
            "OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE, otlp_client_certificate",
        )?;
        let key = read_pem(
            signal.client_key.as_ref(),
            "client key",
            "PRIVATE KEY",
            "OTEL_EXPORTER_OTLP_CLIENT_KEY, otlp_client_key",
        )?;
        Ok(Transport {
            endpoint: signal.endpoint.clone(),
            headers: header_map(signal)?,
            ca_pem: read_pem(
                signal.certificate.as_ref(),
                "CA certificate",
                "CERTIFICATE",
                "OTEL_EXPORTER_OTLP_CERTIFICATE, otlp_certificate",
            )?,
            identity: certificate.zip(key),
            timeout: signal.timeout,
            gzip: signal.gzip,
        })
    }

    /// The TLS of a gRPC channel to an `https://` endpoint, `None` for `http://`.
    fn grpc_tls(&self) -> Option<ClientTlsConfig> {
        if !self.endpoint.starts_with("https://") {
            return None;
        }
        // OTLP/gRPC is HTTP/2 by definition: also talk to TLS terminators (load balancers,
        // proxies) that do not negotiate it through ALPN.
        let mut tls = ClientTlsConfig::new()
            .with_enabled_roots()
            .assume_http2(true);
        if let Some(pem) = &self.ca_pem {
            tls = tls.ca_certificate(Certificate::from_pem(pem));
        }
        if let Some((certificate, key)) = &self.identity {
            tls = tls.identity(Identity::from_pem(certificate, key));
        }
        Some(tls)
    }

    /// Configures a gRPC exporter builder.
    pub(crate) fn grpc<B: WithExportConfig + WithTonicConfig>(&self, builder: B) -> B {
        let mut builder = builder
            .with_endpoint(self.endpoint.clone())
            .with_timeout(self.timeout)
            .with_protocol(Protocol::Grpc)
            .with_metadata(MetadataMap::from_headers(self.headers.clone()))
            .with_retry_policy(RetryPolicy::recommended());
        if let Some(tls) = self.grpc_tls() {
            builder = builder.with_tls_config(tls);
        }
        if self.gzip {
            builder = builder.with_compression(Compression::Gzip);
        }
        builder
    }

    /// flujo's own gRPC sender of span requests; inside a tokio runtime (the channel
    /// connects lazily, on the runtime's reactor).
    pub(crate) fn grpc_wire(&self) -> Result<Wire, String> {
        let mut endpoint = tonic::transport::Endpoint::from_shared(self.endpoint.clone())
            .map_err(|error| format!("invalid OTLP endpoint `{}`: {error}", self.endpoint))?;
        if let Some(tls) = self.grpc_tls() {
            endpoint = endpoint
                .tls_config(tls)
                .map_err(|error| format!("cannot set up TLS for the OTLP endpoint: {error}"))?;
        }
        let mut client = tonic::client::Grpc::new(endpoint.timeout(self.timeout).connect_lazy());
        if self.gzip {
            client = client
                .send_compressed(tonic::codec::CompressionEncoding::Gzip)
                .accept_compressed(tonic::codec::CompressionEncoding::Gzip);
        }
        Ok(Wire::new(Route::Grpc {
            client,
            metadata: MetadataMap::from_headers(self.headers.clone()),
        }))
    }

    /// flujo's own HTTP/protobuf sender of span requests.
    pub(crate) fn http_wire(&self) -> Result<Wire, String> {
        Ok(Wire::new(Route::Http {
            client: self.http_client()?,
            endpoint: self.endpoint.clone(),
            headers: self.headers.clone(),
            gzip: self.gzip,
        }))
    }

    /// The HTTP client: the timeout, the CA and the client's certificate of the settings.
    fn http_client(&self) -> Result<reqwest::Client, String> {
        let mut client = reqwest::Client::builder().timeout(self.timeout);
        if let Some(pem) = &self.ca_pem {
            let certificates = reqwest::Certificate::from_pem_bundle(pem)
                .map_err(|error| format!("the OTLP CA certificate file is not PEM: {error}"))?;
            client = client.tls_certs_merge(certificates);
        }
        if let Some((certificate, key)) = &self.identity {
            let pem = [certificate.as_slice(), b"\n", key.as_slice()].concat();
            let identity = reqwest::Identity::from_pem(&pem).map_err(|error| {
                format!("the OTLP client certificate and key cannot be used for TLS: {error}")
            })?;
            client = client.identity(identity);
        }
        client
            .build()
            .map_err(|error| format!("cannot build the OTLP HTTP client: {error}"))
    }

    /// Configures an HTTP/protobuf exporter builder.
    pub(crate) fn http<B: WithExportConfig + WithHttpConfig>(
        &self,
        builder: B,
    ) -> Result<B, String> {
        let client = self.http_client()?;
        let headers = self
            .headers
            .iter()
            .filter_map(|(key, value)| Some((key.to_string(), value.to_str().ok()?.to_owned())))
            .collect();
        let mut builder = builder
            .with_http_client(client)
            .with_endpoint(self.endpoint.clone())
            .with_timeout(self.timeout)
            .with_protocol(Protocol::HttpBinary)
            .with_headers(headers)
            .with_retry_policy(RetryPolicy::recommended());
        if self.gzip {
            builder = builder.with_compression(Compression::Gzip);
        }
        Ok(builder)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_http2_servers_first_frame_is_told_from_an_http1_answer() {
        // SETTINGS, empty, stream 0; GOAWAY, 8 bytes, stream 0.
        assert!(is_http2_frame_header(&[0, 0, 0, 4, 0, 0, 0, 0, 0]));
        assert!(is_http2_frame_header(&[0, 0, 8, 7, 0, 0, 0, 0, 0]));
        assert!(!is_http2_frame_header(b"HTTP/1.1 "));
        assert!(!is_http2_frame_header(&[0, 0, 0, 4, 0, 0, 0, 0, 1]));
    }

    #[test]
    fn nothing_listening_is_no_protocol_mismatch() {
        let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = closed.local_addr().unwrap().port();
        drop(closed);
        assert!(!answers_with_http2(&format!(
            "http://127.0.0.1:{port}/v1/traces"
        )));
    }
    use crate::config::settings::TelemetryConfig;

    fn settings(endpoint: &str, protocol: OtlpProtocol) -> OtlpSignal {
        TelemetryConfig::builder()
            .otlp_endpoint(endpoint)
            .otlp_protocol(protocol)
            .resolve_from(|_| None)
            .unwrap()
            .otlp
            .traces
    }

    #[test]
    fn a_protocol_and_port_mismatch_gets_a_hint() {
        let http_to_grpc = protocol_hint(&settings(
            "http://127.0.0.1:4317",
            OtlpProtocol::HttpProtobuf,
        ));
        let hint = http_to_grpc.expect("HTTP to 4317");
        assert!(hint.contains("OTEL_EXPORTER_OTLP_PROTOCOL=grpc"), "{hint}");
        assert!(hint.contains("port 4318"), "{hint}");
        let grpc_to_http = protocol_hint(&settings("http://collector:4318", OtlpProtocol::Grpc));
        assert!(
            grpc_to_http
                .unwrap()
                .contains("OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf")
        );
        assert_eq!(
            protocol_hint(&settings("http://127.0.0.1:4317", OtlpProtocol::Grpc)),
            None
        );
        assert_eq!(
            protocol_hint(&settings(
                "http://127.0.0.1:9999",
                OtlpProtocol::HttpProtobuf
            )),
            None
        );
    }
}
