//! How OTLP reaches the collector, per signal: endpoint, protocol, headers, TLS,
//! compression, timeout. Each signal's own variable wins over the generic one; code wins
//! over both.

use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use super::super::secret::Secret;
use super::declare::{Declared, Env, Meta, Setting, SignalIndex, SignalSetting};
use super::values;
use super::{TelemetryConfig, TelemetryError};

/// The OTLP transport.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum OtlpProtocol {
    /// OTLP over gRPC (default port 4317).
    #[default]
    Grpc,
    /// OTLP over HTTP with protobuf bodies (default port 4318, path `/v1/traces`).
    HttpProtobuf,
}

impl OtlpProtocol {
    /// Its name in `OTEL_EXPORTER_OTLP_PROTOCOL`.
    pub(crate) fn name(self) -> &'static str {
        match self {
            OtlpProtocol::Grpc => "grpc",
            OtlpProtocol::HttpProtobuf => "http/protobuf",
        }
    }

    /// The well-known port of its collectors.
    pub(crate) fn port(self) -> u16 {
        match self {
            OtlpProtocol::Grpc => 4317,
            OtlpProtocol::HttpProtobuf => 4318,
        }
    }
}

impl FromStr for OtlpProtocol {
    type Err = ();

    fn from_str(s: &str) -> Result<Self, ()> {
        let s = s.trim().to_ascii_lowercase();
        [OtlpProtocol::Grpc, OtlpProtocol::HttpProtobuf]
            .into_iter()
            .find(|protocol| protocol.name() == s)
            .or((s == "http").then_some(OtlpProtocol::HttpProtobuf))
            .ok_or(())
    }
}

/// Where and how one signal goes over OTLP.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct OtlpSignal {
    /// The URL requests go to (for HTTP, with the signal's path).
    pub(crate) endpoint: String,
    /// Whether a setting named the endpoint (else it is the protocol's local default).
    pub(crate) endpoint_configured: bool,
    /// The transport.
    pub(crate) protocol: OtlpProtocol,
    /// Extra request headers; values are secrets.
    pub(crate) headers: Vec<(String, Secret)>,
    /// gzip compression of requests.
    pub(crate) gzip: bool,
    /// Extra CA certificates (PEM file) for `https://` endpoints.
    pub(crate) certificate: Option<PathBuf>,
    /// The client's private key (PEM file) for mutual TLS.
    pub(crate) client_key: Option<PathBuf>,
    /// The client's certificate chain (PEM file) for mutual TLS.
    pub(crate) client_certificate: Option<PathBuf>,
    /// Time limit of one request.
    pub(crate) timeout: Duration,
}

impl OtlpSignal {
    /// A signal sent to `endpoint` as given, without TLS settings of its own (Logfire's).
    #[cfg(feature = "logfire")]
    pub(crate) fn new(
        endpoint: String,
        protocol: OtlpProtocol,
        headers: Vec<(String, Secret)>,
        timeout: Duration,
    ) -> OtlpSignal {
        OtlpSignal {
            endpoint,
            endpoint_configured: true,
            protocol,
            headers,
            gzip: false,
            certificate: None,
            client_key: None,
            client_certificate: None,
            timeout,
        }
    }
}

/// OTLP's settings for each signal.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct OtlpSettings {
    /// Spans.
    pub(crate) traces: OtlpSignal,
    /// Metrics.
    pub(crate) metrics: OtlpSignal,
    /// Logs.
    pub(crate) logs: OtlpSignal,
}

const SIGNAL_PATHS: [&str; 3] = ["/v1/traces", "/v1/metrics", "/v1/logs"];

/// A signal's variable and the generic one, for the declarations below.
macro_rules! signal_vars {
    ($suffix:literal) => {
        [
            concat!("OTEL_EXPORTER_OTLP_TRACES_", $suffix),
            concat!("OTEL_EXPORTER_OTLP_METRICS_", $suffix),
            concat!("OTEL_EXPORTER_OTLP_LOGS_", $suffix),
        ]
    };
}

pub(super) const ENDPOINT: Setting<Option<String>> = Setting {
    meta: Meta {
        field: Some("otlp_endpoint"),
        env: &["OTLP_ENDPOINT"],
        accepts: values::URL,
        doc: "the collector's URL (the guide's variable): over HTTP, a URL without a path gets the signal's (`/v1/traces`, `/v1/metrics`, `/v1/logs`), one with a path is used as given",
        secret: false,
    },
    parse: |v| values::url(v).map(Some),
    valid: |v| v.as_deref().is_none_or(values::valid_url),
    default: || None,
    default_text: "`http://localhost:4317` (gRPC), `http://localhost:4318` (HTTP)",
};

pub(super) const BASE_ENDPOINT: Setting<Option<String>> = Setting {
    meta: Meta {
        field: None,
        env: &["OTEL_EXPORTER_OTLP_ENDPOINT"],
        accepts: values::URL,
        doc: "the collector's base URL: over HTTP the signal's path is appended to it (`http://host:4318/otlp` sends spans to `/otlp/v1/traces`)",
        secret: false,
    },
    parse: |v| values::url(v).map(Some),
    valid: |_| true,
    default: || None,
    default_text: "as above",
};

pub(super) const SIGNAL_ENDPOINT: SignalSetting<Option<String>> = SignalSetting {
    setting: Setting {
        meta: Meta {
            field: None,
            env: &[],
            accepts: values::URL,
            doc: "one signal's URL, used as given (no path appended); wins over the base URL of the variables, not over `otlp_endpoint` in code",
            secret: false,
        },
        parse: |v| values::url(v).map(Some),
        valid: |_| true,
        default: || None,
        default_text: "the base URL's",
    },
    signals: signal_vars!("ENDPOINT"),
};

pub(super) const PROTOCOL: SignalSetting<OtlpProtocol> = SignalSetting {
    setting: Setting {
        meta: Meta {
            field: Some("otlp_protocol"),
            env: &["OTEL_EXPORTER_OTLP_PROTOCOL"],
            accepts: "grpc or http/protobuf",
            doc: "the transport",
            secret: false,
        },
        parse: |v| v.parse().ok(),
        valid: values::any,
        default: OtlpProtocol::default,
        default_text: "`grpc`",
    },
    signals: signal_vars!("PROTOCOL"),
};

pub(super) const HEADERS: SignalSetting<Vec<(String, Secret)>> = SignalSetting {
    setting: Setting {
        meta: Meta {
            field: Some("otlp_headers"),
            env: &["OTEL_EXPORTER_OTLP_HEADERS"],
            accepts: "comma-separated key=value pairs, values URL-encoded, e.g. authorization=Bearer%20token",
            doc: "extra request headers (values are secrets: never printed, never captured)",
            secret: true,
        },
        parse: values::headers,
        valid: values::any,
        default: Vec::new,
        default_text: "none",
    },
    signals: signal_vars!("HEADERS"),
};

pub(super) const COMPRESSION: SignalSetting<bool> = SignalSetting {
    setting: Setting {
        meta: Meta {
            field: Some("otlp_gzip"),
            env: &["OTEL_EXPORTER_OTLP_COMPRESSION"],
            accepts: "gzip or none",
            doc: "gzip compression of requests",
            secret: false,
        },
        parse: |v| match v.trim().to_ascii_lowercase().as_str() {
            "gzip" => Some(true),
            "none" => Some(false),
            _ => None,
        },
        valid: values::any,
        default: || false,
        default_text: "`none`",
    },
    signals: signal_vars!("COMPRESSION"),
};

const PEM_FILE: &str = "a path to a PEM file";

pub(super) const CERTIFICATE: SignalSetting<Option<PathBuf>> = SignalSetting {
    setting: Setting {
        meta: Meta {
            field: Some("otlp_certificate"),
            env: &["OTEL_EXPORTER_OTLP_CERTIFICATE"],
            accepts: PEM_FILE,
            doc: "CA certificates trusted, besides the built-in roots, for `https://` endpoints (read at init: a file without a certificate is an error)",
            secret: false,
        },
        parse: |v| values::path(v).map(Some),
        valid: values::any,
        default: || None,
        default_text: "none",
    },
    signals: signal_vars!("CERTIFICATE"),
};

pub(super) const CLIENT_KEY: SignalSetting<Option<PathBuf>> = SignalSetting {
    setting: Setting {
        meta: Meta {
            field: Some("otlp_client_key"),
            env: &["OTEL_EXPORTER_OTLP_CLIENT_KEY"],
            accepts: PEM_FILE,
            doc: "the client's private key for mutual TLS (with the client certificate)",
            secret: false,
        },
        parse: |v| values::path(v).map(Some),
        valid: values::any,
        default: || None,
        default_text: "none",
    },
    signals: signal_vars!("CLIENT_KEY"),
};

pub(super) const CLIENT_CERTIFICATE: SignalSetting<Option<PathBuf>> = SignalSetting {
    setting: Setting {
        meta: Meta {
            field: Some("otlp_client_certificate"),
            env: &["OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE"],
            accepts: PEM_FILE,
            doc: "the client's certificate chain for mutual TLS (with the client key)",
            secret: false,
        },
        parse: |v| values::path(v).map(Some),
        valid: values::any,
        default: || None,
        default_text: "none",
    },
    signals: signal_vars!("CLIENT_CERTIFICATE"),
};

pub(super) const TIMEOUT: SignalSetting<Duration> = SignalSetting {
    setting: Setting {
        meta: Meta {
            field: Some("otlp_timeout"),
            env: &["OTEL_EXPORTER_OTLP_TIMEOUT"],
            accepts: "a whole number of milliseconds from 1 to 600000 (ten minutes)",
            doc: "time limit of one request (zero would fail every export)",
            secret: false,
        },
        parse: |v| values::millis(v, 1..=600_000),
        valid: |d| values::within_millis(d, 1..=600_000),
        default: || Duration::from_secs(10),
        default_text: "10 s",
    },
    signals: signal_vars!("TIMEOUT"),
};

pub(super) const DECLARED: &[&dyn Declared] = &[
    &ENDPOINT,
    &BASE_ENDPOINT,
    &SIGNAL_ENDPOINT,
    &PROTOCOL,
    &HEADERS,
    &COMPRESSION,
    &CERTIFICATE,
    &CLIENT_KEY,
    &CLIENT_CERTIFICATE,
    &TIMEOUT,
];

pub(super) fn resolve(
    config: &TelemetryConfig,
    env: &Env<'_>,
) -> Result<OtlpSettings, TelemetryError> {
    // Code and the guide's variable: a path given is kept; the standard's base URL: the
    // signal's path is appended to it.
    let (base, append) = match ENDPOINT.get(config.otlp_endpoint.clone().map(Some), env)? {
        Some(url) => (Some(url), false),
        None => (BASE_ENDPOINT.get(None, env)?, true),
    };
    let signal = |index: SignalIndex| -> Result<OtlpSignal, TelemetryError> {
        let protocol = PROTOCOL.get(config.otlp_protocol, index, env)?;
        // Code names every signal's endpoint; else a signal's own is used as given.
        let own = match config.otlp_endpoint {
            Some(_) => None,
            None => SIGNAL_ENDPOINT.get(None, index, env)?,
        };
        let endpoint_configured = own.is_some() || base.is_some();
        let endpoint = own.unwrap_or_else(|| {
            let base = base
                .clone()
                .unwrap_or_else(|| format!("http://localhost:{}", protocol.port()));
            with_signal_path(base, protocol, SIGNAL_PATHS[index as usize], append)
        });
        let client_key = CLIENT_KEY.get(config.otlp_client_key.clone().map(Some), index, env)?;
        let client_certificate =
            CLIENT_CERTIFICATE.get(config.otlp_client_certificate.clone().map(Some), index, env)?;
        if client_key.is_some() != client_certificate.is_some() {
            return Err(TelemetryError::MissingSetting {
                setting: if client_key.is_some() {
                    "OTEL_EXPORTER_OTLP_CLIENT_KEY (otlp_client_key)"
                } else {
                    "OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE (otlp_client_certificate)"
                },
                needs: "both: mutual TLS needs the client key and the client certificate \
                        (OTEL_EXPORTER_OTLP_CLIENT_KEY and OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE, \
                        or their per-signal variables)",
            });
        }
        Ok(OtlpSignal {
            endpoint,
            endpoint_configured,
            protocol,
            headers: HEADERS.get(config.otlp_headers.clone(), index, env)?,
            gzip: COMPRESSION.get(config.otlp_gzip, index, env)?,
            certificate: CERTIFICATE.get(config.otlp_certificate.clone().map(Some), index, env)?,
            client_key,
            client_certificate,
            timeout: TIMEOUT.get(config.otlp_timeout, index, env)?,
        })
    };
    Ok(OtlpSettings {
        traces: signal(SignalIndex::Traces)?,
        metrics: signal(SignalIndex::Metrics)?,
        logs: signal(SignalIndex::Logs)?,
    })
}

/// The signal's path over HTTP: appended to the standard's base URL, as the OTLP
/// specification asks of `OTEL_EXPORTER_OTLP_ENDPOINT`; added to another URL only when it
/// has no path.
fn with_signal_path(base: String, protocol: OtlpProtocol, path: &str, append: bool) -> String {
    let has_path = base
        .parse::<http::Uri>()
        .is_ok_and(|uri| !matches!(uri.path(), "" | "/"));
    match protocol {
        OtlpProtocol::HttpProtobuf if append || !has_path => {
            format!("{}{path}", base.trim_end_matches('/'))
        }
        _ => base,
    }
}
