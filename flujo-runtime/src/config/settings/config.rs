//! [`TelemetryConfig`]: the settings as code gives them.

use std::path::PathBuf;
use std::time::Duration;

use flujo_pricing::Usd;

use super::super::secret::Secret;
use super::logs::LogFormat;
use super::otlp::OtlpProtocol;
use crate::accounting::budget::WhenUnreachable;
use crate::core::genai::{GenAiCompat, GenAiConventions};
use crate::core::propagation::Propagators;
use crate::ledger::LedgerLocation;

/// Settings for [`init_telemetry_with`](crate::init_telemetry_with). Every field left `None`
/// falls back to the environment, then to the default; a field set here wins over the
/// environment. Each field's variables, accepted values and default are in the settings
/// table of the guide (`flujo::guide::settings`), which is generated from the same
/// declarations the values are read by.
///
/// Build it with the setters (the struct grows with every release, so it has no public
/// literal):
///
/// ```
/// use flujo::TelemetryConfig;
///
/// let config = TelemetryConfig::builder().service_name("my-app").sampling_rate(0.1);
/// assert_eq!(config.service_name.as_deref(), Some("my-app"));
/// ```
#[derive(Clone, Debug, Default, PartialEq)]
#[non_exhaustive]
pub struct TelemetryConfig {
    /// `service.name` of exported telemetry.
    pub service_name: Option<String>,
    /// Deployment environment (`production`, ...).
    pub environment: Option<String>,
    /// `service.version`.
    pub version: Option<String>,
    /// `openinference.project.name`: the project Arize Phoenix files spans under.
    pub project_name: Option<String>,
    /// Fraction of traces recorded, in `0.0..=1.0` (head sampling at the root).
    pub sampling_rate: Option<f64>,
    /// Export spans and logs to Logfire (feature `logfire`; needs a write token).
    pub export_telemetry: Option<bool>,
    /// Export spans to an OTLP endpoint (feature `otlp`).
    pub export_otlp: Option<bool>,
    /// OTLP endpoint URL, for every signal.
    pub otlp_endpoint: Option<String>,
    /// OTLP transport.
    pub otlp_protocol: Option<OtlpProtocol>,
    /// Extra OTLP request headers (e.g. authorization); values are secrets.
    pub otlp_headers: Option<Vec<(String, Secret)>>,
    /// Compress OTLP requests with gzip.
    pub otlp_gzip: Option<bool>,
    /// A PEM file of CA certificates trusted (besides the built-in roots) for `https://`
    /// endpoints.
    pub otlp_certificate: Option<PathBuf>,
    /// The client's private key (PEM file) for mutual TLS with the collector.
    pub otlp_client_key: Option<PathBuf>,
    /// The client's certificate chain (PEM file) for mutual TLS with the collector.
    pub otlp_client_certificate: Option<PathBuf>,
    /// Time limit of one OTLP export request.
    pub otlp_timeout: Option<Duration>,
    /// Spans that may wait for export before new ones are dropped (and counted).
    pub max_queue_size: Option<usize>,
    /// Spans per export request.
    pub max_export_batch_size: Option<usize>,
    /// How long an exporter of the application's may take with one batch.
    pub export_timeout: Option<Duration>,
    /// Push metrics over OTLP too (feature `otlp`).
    pub export_otlp_metrics: Option<bool>,
    /// How often pushed metrics are sent.
    pub metrics_export_interval: Option<Duration>,
    /// Expose Prometheus metrics (feature `prometheus`).
    pub export_prometheus: Option<bool>,
    /// Log format when logs go to stderr.
    pub log_format: Option<LogFormat>,
    /// Logfire write token. Never printed.
    pub logfire_api_key: Option<Secret>,
    /// Logfire's OTLP base URL.
    pub logfire_base_url: Option<String>,
    /// How often the export worker drains recorded spans.
    pub flush_interval: Option<Duration>,
    /// How long dropping the guard may wait, in all.
    pub shutdown_timeout: Option<Duration>,
    /// A TOML price file whose rows win over the `genai-prices` data.
    pub pricing_file: Option<PathBuf>,
    /// A `genai-prices` data file (`data.json` of a newer release) used instead of the data
    /// flujo ships, without rebuilding.
    pub prices_file: Option<PathBuf>,
    /// Refuse calls of models without a price
    /// ([`Limit::UnpricedModel`](crate::cost::Limit::UnpricedModel)).
    pub strict_pricing: Option<bool>,
    /// The back-ends whose cost and usage names model-call spans carry besides the
    /// OpenTelemetry GenAI ones (see [`GenAiCompat`]).
    pub genai_compat: Option<GenAiCompat>,
    /// Which version of the GenAI conventions' names to emit (see [`GenAiConventions`]).
    pub genai_conventions: Option<GenAiConventions>,
    /// Capture model calls' content, redacted and cut at `max_content_bytes`.
    pub capture_message_content: Option<bool>,
    /// While a step runs, make its span the current OpenTelemetry context (feature
    /// `opentelemetry`).
    pub otel_context_activation: Option<bool>,
    /// The most bytes of text each captured content attribute of a model call keeps.
    pub max_content_bytes: Option<usize>,
    /// The headers that carry a trace in and out ([`SpanContext::extract`](crate::SpanContext::extract)).
    pub propagators: Option<Propagators>,
    /// The durable cost ledger: a SQLite file (feature `sqlite`) or a PostgreSQL database
    /// (feature `postgres`).
    pub cost_ledger: Option<LedgerLocation>,
    /// Most USD the ledger may record per UTC day
    /// ([`Limit::DailyCost`](crate::cost::Limit::DailyCost)).
    pub daily_cost_limit_usd: Option<Usd>,
    /// Most USD the ledger may record per UTC calendar month
    /// ([`Limit::MonthlyCost`](crate::cost::Limit::MonthlyCost)).
    pub monthly_cost_limit_usd: Option<Usd>,
    /// The most cost records a durable ledger buffers for its writer.
    pub cost_ledger_buffer: Option<usize>,
    /// How often a PostgreSQL ledger reads the fleet's spending.
    pub cost_ledger_refresh: Option<Duration>,
    /// What calls do while a PostgreSQL ledger's fleet spending cannot be read.
    pub cost_ledger_unreachable: Option<WhenUnreachable>,
}

macro_rules! setters {
    (into { $($into:ident: $into_ty:ty,)* } plain { $($field:ident: $ty:ty,)* }) => {
        impl TelemetryConfig {
            $(
                #[doc = concat!("Sets [`TelemetryConfig::", stringify!($into), "`].")]
                #[must_use]
                pub fn $into(mut self, value: impl Into<$into_ty>) -> Self {
                    self.$into = Some(value.into());
                    self
                }
            )*
            $(
                #[doc = concat!("Sets [`TelemetryConfig::", stringify!($field), "`].")]
                #[must_use]
                pub fn $field(mut self, value: $ty) -> Self {
                    self.$field = Some(value);
                    self
                }
            )*
        }
    };
}

setters! {
    into {
        service_name: String,
        environment: String,
        version: String,
        project_name: String,
        otlp_endpoint: String,
        otlp_certificate: PathBuf,
        otlp_client_key: PathBuf,
        otlp_client_certificate: PathBuf,
        logfire_api_key: Secret,
        logfire_base_url: String,
        pricing_file: PathBuf,
        prices_file: PathBuf,
        cost_ledger: LedgerLocation,
    }
    plain {
        sampling_rate: f64,
        export_telemetry: bool,
        export_otlp: bool,
        otlp_protocol: OtlpProtocol,
        otlp_gzip: bool,
        otlp_timeout: Duration,
        max_queue_size: usize,
        max_export_batch_size: usize,
        export_timeout: Duration,
        export_otlp_metrics: bool,
        metrics_export_interval: Duration,
        export_prometheus: bool,
        log_format: LogFormat,
        flush_interval: Duration,
        shutdown_timeout: Duration,
        strict_pricing: bool,
        genai_compat: GenAiCompat,
        genai_conventions: GenAiConventions,
        capture_message_content: bool,
        otel_context_activation: bool,
        max_content_bytes: usize,
        propagators: Propagators,
        daily_cost_limit_usd: Usd,
        monthly_cost_limit_usd: Usd,
        cost_ledger_buffer: usize,
        cost_ledger_refresh: Duration,
        cost_ledger_unreachable: WhenUnreachable,
    }
}

impl TelemetryConfig {
    /// An empty configuration to fill in with the builder methods.
    pub fn builder() -> TelemetryConfig {
        TelemetryConfig::default()
    }

    /// Adds an OTLP request header (e.g. `authorization`); the value is kept as a [`Secret`].
    #[must_use]
    pub fn otlp_header(mut self, key: impl Into<String>, value: impl Into<Secret>) -> Self {
        self.otlp_headers
            .get_or_insert_with(Vec::new)
            .push((key.into(), value.into()));
        self
    }
}
