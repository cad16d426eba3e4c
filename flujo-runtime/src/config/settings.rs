//! Telemetry settings: defaults, overridden by the environment, overridden by code.

use std::str::FromStr;
use std::time::Duration;

use flujo_pricing::Usd;

use super::error::TelemetryError;
use super::secret::Secret;
use crate::core::attribute::MAX_ATTRIBUTE_VALUE_BYTES;
use crate::core::genai::{GenAiCompat, GenAiConventions};
use crate::core::percent::percent_decode;
use crate::cost::content::DEFAULT_MAX_CONTENT_BYTES;
use crate::cost::{
    LedgerLocation, MAX_COST_LEDGER_BUFFER, MAX_QUEUED_COST_RECORDS, WhenUnreachable,
};

/// Log output when no exporter takes logs: human-readable text or one JSON object per line.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum LogFormat {
    /// Readable text on stderr.
    #[default]
    Text,
    /// JSON lines on stderr (`timestamp`, `level`, `event`, fields, `trace_id`, ...).
    Json,
}

impl FromStr for LogFormat {
    type Err = ();

    fn from_str(s: &str) -> Result<Self, ()> {
        match s.trim().to_ascii_lowercase().as_str() {
            "text" => Ok(LogFormat::Text),
            "json" => Ok(LogFormat::Json),
            _ => Err(()),
        }
    }
}

/// The OTLP transport.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
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

/// Settings for [`init_telemetry_with`](crate::init_telemetry_with). Every field left `None` falls back to the
/// environment, then to the default; a field set here wins over the environment.
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
    /// `service.name` of exported telemetry. Env: `OTEL_SERVICE_NAME`. Default `flujo`.
    pub service_name: Option<String>,
    /// Deployment environment (`production`, ...). Env: `FLUJO_ENVIRONMENT`. Default `development`.
    pub environment: Option<String>,
    /// `service.version`. Env: `FLUJO_SERVICE_VERSION`.
    pub version: Option<String>,
    /// Fraction of traces recorded, in `0.0..=1.0` (head sampling at the root; metrics are
    /// never sampled). Env: `OTEL_TRACES_SAMPLER_ARG`. Default 1.0.
    pub sampling_rate: Option<f64>,
    /// Export spans and logs to Logfire (feature `logfire`; needs a write token).
    /// Env: `TELEMETRY_EXPORT_ENABLED`.
    pub export_telemetry: Option<bool>,
    /// Export to an OTLP endpoint (feature `otlp`). Env: `OTLP_EXPORT_ENABLED`.
    pub export_otlp: Option<bool>,
    /// OTLP endpoint URL. Env: `OTLP_ENDPOINT`, then `OTEL_EXPORTER_OTLP_ENDPOINT`.
    pub otlp_endpoint: Option<String>,
    /// OTLP transport. Env: `OTEL_EXPORTER_OTLP_PROTOCOL` (`grpc` | `http/protobuf`).
    pub otlp_protocol: Option<OtlpProtocol>,
    /// Extra OTLP request headers (e.g. authorization); values are secrets.
    /// Env: `OTEL_EXPORTER_OTLP_HEADERS` (`key=value,key2=value2`, values URL-encoded).
    pub otlp_headers: Option<Vec<(String, Secret)>>,
    /// Compress OTLP requests with gzip. Env: `OTEL_EXPORTER_OTLP_COMPRESSION` (`gzip` | `none`).
    pub otlp_gzip: Option<bool>,
    /// A PEM file of CA certificates trusted (besides the built-in roots) for `https://`
    /// endpoints. Env: `OTEL_EXPORTER_OTLP_CERTIFICATE`.
    pub otlp_certificate: Option<std::path::PathBuf>,
    /// Time limit of one OTLP export request. Env: `OTEL_EXPORTER_OTLP_TIMEOUT` (ms). Default 10 s.
    pub otlp_timeout: Option<Duration>,
    /// Spans that may wait for export before new ones are dropped (and counted).
    /// Env: `OTEL_BSP_MAX_QUEUE_SIZE`. Default [`DEFAULT_QUEUE_SIZE`] (131,072: a 5 s
    /// collector outage at 20,000 spans/s; OpenTelemetry's 2,048 is 100 ms of that). The
    /// queue allocates as spans wait, and holds at most [`MAX_EXPORT_QUEUE_BYTES`].
    pub max_queue_size: Option<usize>,
    /// Spans per export request. Env: `OTEL_BSP_MAX_EXPORT_BATCH_SIZE`. Default 512.
    pub max_export_batch_size: Option<usize>,
    /// Push metrics over OTLP too (feature `otlp`), to the OTLP endpoint.
    /// Env: `OTEL_METRICS_EXPORTER` (`otlp` | `none`).
    pub export_otlp_metrics: Option<bool>,
    /// How often metrics are pushed. Env: `OTEL_METRIC_EXPORT_INTERVAL` (ms). Default 60 s.
    pub metrics_export_interval: Option<Duration>,
    /// Expose Prometheus metrics (feature `prometheus`). Env: `PROMETHEUS_EXPORT_ENABLED`.
    pub export_prometheus: Option<bool>,
    /// Log format when logs go to stderr. Env: `FLUJO_LOG_FORMAT` (`text` | `json`).
    pub log_format: Option<LogFormat>,
    /// Logfire write token. Env: `LOGFIRE_API_KEY`. Never printed.
    pub logfire_api_key: Option<Secret>,
    /// Logfire's OTLP base URL. Env: `LOGFIRE_BASE_URL`. Default: from the token's region
    /// (`https://logfire-us.pydantic.dev` or `https://logfire-eu.pydantic.dev`).
    pub logfire_base_url: Option<String>,
    /// How often the export worker drains recorded spans. Env: `OTEL_BSP_SCHEDULE_DELAY`
    /// (milliseconds). Default 100 ms.
    pub flush_interval: Option<Duration>,
    /// How long dropping the guard may wait for the last export. Env:
    /// `FLUJO_SHUTDOWN_TIMEOUT_MS`. Default 5 s.
    pub shutdown_timeout: Option<Duration>,
    /// A TOML price file whose rows win over the `genai-prices` data (see the README). Env:
    /// `FLUJO_PRICING_FILE`.
    pub pricing_file: Option<std::path::PathBuf>,
    /// A `genai-prices` data file (`data.json` of a newer release) used instead of the data
    /// flujo ships, without rebuilding. Env: `FLUJO_PRICES_FILE`.
    pub prices_file: Option<std::path::PathBuf>,
    /// Refuse calls of models without a price ([`Limit::UnpricedModel`](crate::cost::Limit::UnpricedModel)) instead of
    /// recording them as unpriced. Env: `FLUJO_PRICING_STRICT`. Default false.
    pub strict_pricing: Option<bool>,
    /// The back-ends whose cost and usage names model-call spans carry besides the
    /// OpenTelemetry GenAI ones (see [`GenAiCompat`]). Env: `FLUJO_GENAI_COMPAT`
    /// (`otel,logfire,langfuse,openinference`, or `all`). Default: all.
    pub genai_compat: Option<GenAiCompat>,
    /// Which version of the GenAI conventions' names to emit (see [`GenAiConventions`]).
    /// Env: `OTEL_SEMCONV_STABILITY_OPT_IN` (`gen_ai_latest_experimental` among its values
    /// asks for the current draft). Default: v1.41.
    pub genai_conventions: Option<GenAiConventions>,
    /// Capture model calls' content (`gen_ai.input.messages`, `gen_ai.output.messages`,
    /// `gen_ai.system_instructions`), redacted and cut at `max_content_bytes`. Env:
    /// `OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT`. Default false, as the GenAI
    /// conventions require.
    pub capture_message_content: Option<bool>,
    /// While a step runs, make its span the current OpenTelemetry context
    /// (`opentelemetry::Context::current()`), so that OpenTelemetry instrumentation called
    /// from the step (an HTTP client injecting the current context, the logs appender,
    /// `tracing-opentelemetry` spans) names the step. Costs about 100 ns and an allocation
    /// per step (and per poll of an async step); only with feature `opentelemetry`. Env:
    /// `FLUJO_OTEL_CONTEXT_ACTIVATION`. Default: on once the application hands flujo an
    /// OpenTelemetry exporter or processor (`TelemetryGuard::add_otel_exporter`,
    /// `add_otel_processor`, `share_otel_processor`), off otherwise.
    pub otel_context_activation: Option<bool>,
    /// The most bytes of text each captured content attribute of a model call keeps (its
    /// input messages, its output messages, its system instructions: each over all its
    /// messages).
    /// Env: `FLUJO_GENAI_CONTENT_MAX_BYTES`, 1 to `MAX_ATTRIBUTE_VALUE_BYTES` (1 MiB).
    /// Default 64 KiB.
    pub max_content_bytes: Option<usize>,
    /// The durable cost ledger: a SQLite file that keeps cost records across restarts
    /// (feature `sqlite`), or a `postgres://user:password@host:port/database` URL of a
    /// PostgreSQL database shared by every replica (feature `postgres`; its password is never
    /// printed). Env: `FLUJO_COST_LEDGER`. Default: records kept in memory.
    pub cost_ledger: Option<LedgerLocation>,
    /// Most USD the ledger may record per UTC day; calls after that are refused with
    /// [`Limit::DailyCost`](crate::cost::Limit::DailyCost). With a PostgreSQL ledger, the
    /// whole fleet's spending counts. Env: `FLUJO_DAILY_COST_LIMIT_USD` (e.g. `25.00`).
    pub daily_cost_limit_usd: Option<Usd>,
    /// Most USD the ledger may record per UTC calendar month; calls after that are refused
    /// with [`Limit::MonthlyCost`](crate::cost::Limit::MonthlyCost). Env:
    /// `FLUJO_MONTHLY_COST_LIMIT_USD`.
    pub monthly_cost_limit_usd: Option<Usd>,
    /// The most cost records a durable ledger buffers for its writer, 1 to
    /// [`MAX_COST_LEDGER_BUFFER`](crate::cost::MAX_COST_LEDGER_BUFFER) (1,048,576), and at most
    /// 4 KiB of memory per record. Env: `FLUJO_COST_LEDGER_BUFFER`. Default: 4,096 for SQLite
    /// (a full buffer makes calls wait up to 10 s for the disk), 65,536 for PostgreSQL (calls
    /// never wait: records beyond it are dropped and counted).
    pub cost_ledger_buffer: Option<usize>,
    /// How often a PostgreSQL ledger reads the fleet's spending for the daily and monthly
    /// limits, 100 ms to 60 s: the fleet overshoots a limit by at most what it spends in one
    /// interval (plus the write of a batch). Env: `FLUJO_COST_LEDGER_REFRESH_MS`. Default 1 s.
    pub cost_ledger_refresh: Option<Duration>,
    /// What calls do while a PostgreSQL ledger's fleet spending cannot be read (for three
    /// refresh intervals, at least 1 s) and a daily or monthly limit is set. Env:
    /// `FLUJO_COST_LEDGER_UNREACHABLE` (`open` or `closed`). Default: open.
    pub cost_ledger_unreachable: Option<WhenUnreachable>,
}

macro_rules! setter {
    ($(#[$doc:meta])* $field:ident: into $ty:ty) => {
        impl TelemetryConfig {
            $(#[$doc])*
            #[must_use]
            pub fn $field(mut self, value: impl Into<$ty>) -> Self {
                self.$field = Some(value.into());
                self
            }
        }
    };
    ($(#[$doc:meta])* $field:ident: $ty:ty) => {
        impl TelemetryConfig {
            $(#[$doc])*
            #[must_use]
            pub fn $field(mut self, value: $ty) -> Self {
                self.$field = Some(value);
                self
            }
        }
    };
}

setter!(/// Sets [`TelemetryConfig::service_name`].
    service_name: into String);
setter!(/// Sets [`TelemetryConfig::environment`].
    environment: into String);
setter!(/// Sets [`TelemetryConfig::version`].
    version: into String);
setter!(/// Sets [`TelemetryConfig::sampling_rate`].
    sampling_rate: f64);
setter!(/// Sets [`TelemetryConfig::export_telemetry`].
    export_telemetry: bool);
setter!(/// Sets [`TelemetryConfig::export_otlp`].
    export_otlp: bool);
setter!(/// Sets [`TelemetryConfig::otlp_endpoint`].
    otlp_endpoint: into String);
setter!(/// Sets [`TelemetryConfig::otlp_protocol`].
    otlp_protocol: OtlpProtocol);
setter!(/// Sets [`TelemetryConfig::otlp_gzip`].
    otlp_gzip: bool);
setter!(/// Sets [`TelemetryConfig::otlp_certificate`].
    otlp_certificate: into std::path::PathBuf);
setter!(/// Sets [`TelemetryConfig::otlp_timeout`].
    otlp_timeout: Duration);
setter!(/// Sets [`TelemetryConfig::max_queue_size`].
    max_queue_size: usize);
setter!(/// Sets [`TelemetryConfig::max_export_batch_size`].
    max_export_batch_size: usize);
setter!(/// Sets [`TelemetryConfig::export_otlp_metrics`].
    export_otlp_metrics: bool);
setter!(/// Sets [`TelemetryConfig::metrics_export_interval`].
    metrics_export_interval: Duration);
setter!(/// Sets [`TelemetryConfig::export_prometheus`].
    export_prometheus: bool);
setter!(/// Sets [`TelemetryConfig::log_format`].
    log_format: LogFormat);
setter!(/// Sets [`TelemetryConfig::logfire_api_key`].
    logfire_api_key: into Secret);
setter!(/// Sets [`TelemetryConfig::logfire_base_url`].
    logfire_base_url: into String);
setter!(/// Sets [`TelemetryConfig::flush_interval`].
    flush_interval: Duration);
setter!(/// Sets [`TelemetryConfig::shutdown_timeout`].
    shutdown_timeout: Duration);
setter!(/// Sets [`TelemetryConfig::pricing_file`].
    pricing_file: into std::path::PathBuf);
setter!(/// Sets [`TelemetryConfig::prices_file`].
    prices_file: into std::path::PathBuf);
setter!(/// Sets [`TelemetryConfig::strict_pricing`].
    strict_pricing: bool);
setter!(/// Sets [`TelemetryConfig::genai_compat`].
    genai_compat: GenAiCompat);
setter!(/// Sets [`TelemetryConfig::genai_conventions`].
    genai_conventions: GenAiConventions);
setter!(/// Sets [`TelemetryConfig::capture_message_content`].
    capture_message_content: bool);
setter!(/// Sets [`TelemetryConfig::otel_context_activation`].
    otel_context_activation: bool);
setter!(/// Sets [`TelemetryConfig::max_content_bytes`].
    max_content_bytes: usize);
setter!(/// Sets [`TelemetryConfig::cost_ledger`]: a path, or a `postgres://` URL.
    cost_ledger: into LedgerLocation);
setter!(/// Sets [`TelemetryConfig::daily_cost_limit_usd`].
    daily_cost_limit_usd: Usd);
setter!(/// Sets [`TelemetryConfig::monthly_cost_limit_usd`].
    monthly_cost_limit_usd: Usd);
setter!(/// Sets [`TelemetryConfig::cost_ledger_buffer`].
    cost_ledger_buffer: usize);
setter!(/// Sets [`TelemetryConfig::cost_ledger_refresh`].
    cost_ledger_refresh: Duration);
setter!(/// Sets [`TelemetryConfig::cost_ledger_unreachable`].
    cost_ledger_unreachable: WhenUnreachable);

/// The settings in force after defaults, environment and code were combined and validated.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct TelemetrySettings {
    /// `service.name`.
    pub service_name: String,
    /// Deployment environment.
    pub environment: String,
    /// `service.version`, if known.
    pub version: Option<String>,
    /// Head-sampling ratio in `0.0..=1.0`.
    pub sampling_rate: f64,
    /// Logfire export on.
    pub export_telemetry: bool,
    /// OTLP export on.
    pub export_otlp: bool,
    /// The setting that turned OTLP (and Prometheus) export on, as its errors name it.
    pub(crate) otlp_switch: &'static str,
    pub(crate) prometheus_switch: &'static str,
    /// `OTEL_SDK_DISABLED=true`: nothing is exported, whatever else says.
    pub sdk_disabled: bool,
    /// What resolving had to say, logged at init.
    pub(crate) notices: Vec<Notice>,
    /// OTLP endpoint, validated as an `http(s)://` URL.
    pub otlp_endpoint: Option<String>,
    /// The most characters an exported attribute value keeps (`OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT`,
    /// then `OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT`; none by default).
    pub attribute_value_length_limit: Option<usize>,
    /// The most attributes an exported span keeps (`OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT`, then
    /// `OTEL_ATTRIBUTE_COUNT_LIMIT`; 128 by default); the rest are counted as dropped.
    pub span_attribute_count_limit: usize,
    /// The traces' OTLP endpoint, used as given (`OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`).
    pub otlp_traces_endpoint: Option<String>,
    /// The metrics' OTLP endpoint, used as given (`OTEL_EXPORTER_OTLP_METRICS_ENDPOINT`).
    pub otlp_metrics_endpoint: Option<String>,
    /// OTLP transport.
    pub otlp_protocol: OtlpProtocol,
    /// Extra OTLP request headers.
    pub otlp_headers: Vec<(String, Secret)>,
    /// gzip compression of OTLP requests.
    pub otlp_gzip: bool,
    /// Extra CA certificates (PEM file) for `https://` endpoints.
    pub otlp_certificate: Option<std::path::PathBuf>,
    /// Time limit of one OTLP export request.
    pub otlp_timeout: Duration,
    /// Spans that may wait for export.
    pub max_queue_size: usize,
    /// Spans per export request.
    pub max_export_batch_size: usize,
    /// OTLP metrics push on.
    pub export_otlp_metrics: bool,
    /// Interval of the OTLP metrics push.
    pub metrics_export_interval: Duration,
    /// Prometheus export on.
    pub export_prometheus: bool,
    /// Log format on stderr.
    pub log_format: LogFormat,
    /// The `RUST_LOG` filter in force (default `info`).
    pub log_filter: String,
    /// Logfire token, if any. Never printed.
    pub logfire_api_key: Option<Secret>,
    /// Logfire's base URL, when set explicitly.
    pub logfire_base_url: Option<String>,
    /// Export worker interval.
    pub flush_interval: Duration,
    /// Longest wait for the final export on shutdown.
    pub shutdown_timeout: Duration,
    /// TOML price file over the `genai-prices` data.
    pub pricing_file: Option<std::path::PathBuf>,
    /// `genai-prices` data file instead of the shipped data.
    pub prices_file: Option<std::path::PathBuf>,
    /// Unpriced models are refused.
    pub strict_pricing: bool,
    /// Back-ends whose names model-call spans carry.
    pub genai_compat: GenAiCompat,
    /// The version of the GenAI conventions' names.
    pub genai_conventions: GenAiConventions,
    /// Model calls' content is captured.
    pub capture_message_content: bool,
    /// A running step is the current OpenTelemetry context (`None`: once the application
    /// hands flujo an OpenTelemetry exporter or processor).
    pub otel_context_activation: Option<bool>,
    /// Text a call's captured content keeps, at most.
    pub max_content_bytes: usize,
    /// Durable cost ledger.
    pub cost_ledger: Option<LedgerLocation>,
    /// Daily cost limit of the ledger.
    pub daily_cost_limit: Option<Usd>,
    /// Monthly cost limit of the ledger.
    pub monthly_cost_limit: Option<Usd>,
    /// Records a durable ledger buffers at most (`None`: its default).
    pub cost_ledger_buffer: Option<usize>,
    /// How often a PostgreSQL ledger reads the fleet's spending.
    pub cost_ledger_refresh: Duration,
    /// What calls do while the fleet's spending is unknown.
    pub cost_ledger_unreachable: WhenUnreachable,
}

const BOOL_VALUES: &str = "one of true, false, 1, 0, yes, no, on, off";
const SAMPLER_VALUES: &str = "one of always_on, always_off, traceidratio, parentbased_always_on, \
     parentbased_always_off, parentbased_traceidratio (flujo's sampling is parent-based: a child \
     follows its parent)";
const TRACES_EXPORTER_VALUES: &str =
    "otlp or none (flujo exports spans over OTLP; OTLP_EXPORT_ENABLED is the guide's switch)";
const METRICS_EXPORTER_VALUES: &str = "a comma-separated list of otlp and prometheus, or none";
const LENGTH_LIMIT_VALUES: &str =
    "a whole number of characters from 1 to 1048576 (MAX_ATTRIBUTE_VALUE_BYTES)";
const COUNT_LIMIT_VALUES: &str = "a whole number of attributes from 1 to 65536";
/// The specification's default attribute count limit of a span.
const DEFAULT_ATTRIBUTE_COUNT: usize = 128;
const MAX_ATTRIBUTE_COUNT: usize = 1 << 16;

/// `OTEL_TRACES_SAMPLER`: what decides a root span (children follow their parent whichever).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Sampler {
    AlwaysOn,
    AlwaysOff,
    TraceIdRatio,
}

impl Sampler {
    fn parse(value: &str) -> Option<Sampler> {
        let value = value.trim().to_ascii_lowercase();
        match value.strip_prefix("parentbased_").unwrap_or(&value) {
            "always_on" => Some(Sampler::AlwaysOn),
            "always_off" => Some(Sampler::AlwaysOff),
            "traceidratio" => Some(Sampler::TraceIdRatio),
            _ => None,
        }
    }
}

/// A line that resolving the settings has for the log, written once the log is set up.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Notice {
    pub(crate) warn: bool,
    pub(crate) text: String,
}

impl Notice {
    fn warn(text: String) -> Notice {
        Notice { warn: true, text }
    }

    fn info(text: String) -> Notice {
        Notice { warn: false, text }
    }
}
const RATE_VALUES: &str = "a number from 0.0 to 1.0";
const URL_VALUES: &str = "an http:// or https:// URL with a host and a port from 1 to 65535, such as http://localhost:4317";
const FORMAT_VALUES: &str = "text or json";
const FILTER_VALUES: &str = "a tracing filter such as `info` or `warn,my_app=debug`";
const PROTOCOL_VALUES: &str = "grpc or http/protobuf";
const COMPRESSION_VALUES: &str = "gzip or none";
const HEADERS_VALUES: &str = "comma-separated key=value pairs, e.g. authorization=Bearer%20token";
const QUEUE_VALUES: &str = "a whole number of spans from 1 to 1048576 (at most 1048576)";
const BATCH_VALUES: &str = "a whole number of spans from 1 to 65536 (at most 65536)";
const CONTENT_BYTES_VALUES: &str =
    "a whole number of bytes from 1 to 1048576 (MAX_ATTRIBUTE_VALUE_BYTES)";

/// A duration setting in whole milliseconds, bounded: a value past its bounds (a schedule
/// delay of 2^64 ms exports nothing until a batch fills) is an error naming the setting.
struct Millis {
    field: &'static str,
    variable: &'static str,
    range: std::ops::RangeInclusive<u64>,
    expected: &'static str,
    default: u64,
}

const FLUSH_INTERVAL: Millis = Millis {
    field: "flush_interval",
    variable: "OTEL_BSP_SCHEDULE_DELAY",
    range: 1..=3_600_000,
    expected: "a whole number of milliseconds from 1 to 3600000 (an hour)",
    default: 100,
};
const SHUTDOWN_TIMEOUT: Millis = Millis {
    field: "shutdown_timeout",
    variable: "FLUJO_SHUTDOWN_TIMEOUT_MS",
    range: 0..=600_000,
    expected: "a whole number of milliseconds from 0 to 600000 (ten minutes)",
    default: 5_000,
};
// Zero would fail every export.
const OTLP_TIMEOUT: Millis = Millis {
    field: "otlp_timeout",
    variable: "OTEL_EXPORTER_OTLP_TIMEOUT",
    range: 1..=600_000,
    expected: "a whole number of milliseconds from 1 to 600000 (ten minutes)",
    default: 10_000,
};
const METRIC_EXPORT_INTERVAL: Millis = Millis {
    field: "metrics_export_interval",
    variable: "OTEL_METRIC_EXPORT_INTERVAL",
    range: 100..=3_600_000,
    expected: "a whole number of milliseconds from 100 to 3600000 (an hour)",
    default: 60_000,
};

/// The export queue's size in spans unless `OTEL_BSP_MAX_QUEUE_SIZE` / `max_queue_size` say.
pub const DEFAULT_QUEUE_SIZE: usize = 1 << 17;
/// The most spans `OTEL_BSP_MAX_QUEUE_SIZE` / `max_queue_size` may ask to queue for export.
pub const MAX_QUEUE_SIZE: usize = 1 << 20;
/// The most spans `OTEL_BSP_MAX_EXPORT_BATCH_SIZE` / `max_export_batch_size` may put in one
/// export request.
pub const MAX_EXPORT_BATCH_SIZE: usize = 1 << 16;
/// The most bytes of spans (names, fields, events, about) the OTLP export queue holds,
/// besides its bound in spans: spans with large fields are dropped and counted
/// (`reason="export_queue_full"`) beyond it, rather than held in memory.
pub const MAX_EXPORT_QUEUE_BYTES: usize = 64 << 20;
/// The most bytes (about) one exported span may hold: a larger one has its longest text
/// values cut, evenly, until it fits, and is counted in
/// `flujo_telemetry_spans_truncated_total` (its `flujo.span.truncated_bytes` says how much
/// went); one that still does not fit (thousands of fields) is dropped and counted alone
/// (`reason="too_large"`).
pub const MAX_EXPORTED_SPAN_BYTES: usize = 2 << 20;
/// The most bytes (about) of spans one OTLP request carries, whatever
/// `max_export_batch_size` allows: under the 4 MiB a gRPC collector takes by default.
pub const MAX_EXPORT_REQUEST_BYTES: usize = 3 << 20;
const USD_VALUES: &str = "a non-negative amount of USD, e.g. 25.00";
const LEDGER_BUFFER_VALUES: &str =
    "a whole number of cost records from 1 to 1048576 (MAX_COST_LEDGER_BUFFER)";
const REFRESH_VALUES: &str = "a whole number of milliseconds from 100 to 60000";
/// The bounds of `FLUJO_COST_LEDGER_REFRESH_MS` / `cost_ledger_refresh`.
const REFRESH_RANGE: std::ops::RangeInclusive<Duration> =
    Duration::from_millis(100)..=Duration::from_secs(60);
/// How often a PostgreSQL ledger reads the fleet's spending unless told.
pub const DEFAULT_LEDGER_REFRESH: Duration = Duration::from_secs(1);

/// A money limit: an exact amount, or (for an amount above what `Usd` holds, about $18.4
/// billion) the largest one, which no spending reaches: a huge limit means "no limit", never
/// "refuse everything".
fn parse_limit(value: &str) -> Option<Usd> {
    let value = value.trim();
    Usd::parse(value).ok().or_else(|| {
        let mut parts = value.splitn(2, '.');
        let whole = parts.next().unwrap_or_default();
        let fraction = parts.next().unwrap_or_default();
        let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
        (!whole.is_empty() && digits(whole) && digits(fraction) && fraction.len() <= 9)
            .then_some(Usd::from_nanos(u64::MAX))
    })
}

/// `key=value,key2=value2` with URL-encoded values, as the OpenTelemetry spec defines it.
fn parse_headers(value: &str) -> Option<Vec<(String, Secret)>> {
    value
        .split(',')
        .filter(|pair| !pair.trim().is_empty())
        .map(|pair| {
            let (key, value) = pair.split_once('=')?;
            let key = key.trim();
            if key.is_empty() {
                return None;
            }
            Some((key.to_owned(), Secret::from(percent_decode(value.trim())?)))
        })
        .collect()
}

fn positive_count(value: &str) -> Option<usize> {
    value.trim().parse::<usize>().ok().filter(|n| *n > 0)
}

fn parse_bool(value: &str) -> Option<bool> {
    match value.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Some(true),
        "false" | "0" | "no" | "off" => Some(false),
        _ => None,
    }
}

fn valid_rate(rate: f64) -> bool {
    (0.0..=1.0).contains(&rate)
}

/// An endpoint variable's value, trimmed, when it is a valid endpoint.
fn endpoint_value(value: &str) -> Option<String> {
    valid_endpoint(value.trim()).then(|| value.trim().to_owned())
}

fn valid_endpoint(endpoint: &str) -> bool {
    endpoint.parse::<http::Uri>().ok().is_some_and(|uri| {
        matches!(uri.scheme_str(), Some("http" | "https"))
            && uri.host().is_some_and(|host| !host.is_empty())
            && has_valid_port(&uri)
    })
}

/// No port, or one from 1 to 65535 (`http::Uri` forgets a port it cannot read, so that
/// `:99999` would otherwise connect to the scheme's default port).
fn has_valid_port(uri: &http::Uri) -> bool {
    let Some(authority) = uri.authority().map(http::uri::Authority::as_str) else {
        return true;
    };
    // After the host (an IPv6 host is in brackets) and any user info.
    let host_end = authority.rfind(']').unwrap_or(0);
    match authority[host_end..].rfind(':') {
        None => true,
        Some(colon) => authority[host_end + colon + 1..]
            .parse::<u16>()
            .is_ok_and(|port| port > 0),
    }
}

/// Reads one environment variable: unset and empty both mean "not set".
struct Env<F>(F);

impl<F: Fn(&str) -> Option<String>> Env<F> {
    fn get(&self, variable: &str) -> Option<String> {
        (self.0)(variable).filter(|value| !value.trim().is_empty())
    }

    /// [`Env::parse`] for a variable that carries secrets: its error shows the value's length,
    /// never the value.
    fn parse_secret<T>(
        &self,
        variable: &'static str,
        expected: &'static str,
        parse: impl Fn(&str) -> Option<T>,
    ) -> Result<Option<T>, TelemetryError> {
        self.parse(variable, expected, parse)
            .map_err(|error| match error {
                TelemetryError::InvalidEnvVar {
                    variable,
                    value,
                    expected,
                } => TelemetryError::InvalidEnvVar {
                    variable,
                    value: format!("<redacted: {} bytes>", value.len()),
                    expected,
                },
                other => other,
            })
    }

    fn parse<T>(
        &self,
        variable: &'static str,
        expected: &'static str,
        parse: impl Fn(&str) -> Option<T>,
    ) -> Result<Option<T>, TelemetryError> {
        self.get(variable)
            .map(|value| {
                parse(&value).ok_or(TelemetryError::InvalidEnvVar {
                    variable,
                    value,
                    expected,
                })
            })
            .transpose()
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

    /// Combines this configuration with the process environment and validates the result.
    pub fn resolve(&self) -> Result<TelemetrySettings, TelemetryError> {
        // A value that is not UTF-8 is an error naming its variable, never taken as unset.
        let not_unicode = std::cell::RefCell::new(None);
        let settings = self.resolve_from(|variable| match std::env::var(variable) {
            Ok(value) => Some(value),
            Err(std::env::VarError::NotPresent) => None,
            Err(std::env::VarError::NotUnicode(_)) => {
                not_unicode
                    .borrow_mut()
                    .get_or_insert_with(|| variable.to_owned());
                None
            }
        });
        match not_unicode.into_inner() {
            Some(variable) => Err(TelemetryError::NotUnicode { variable }),
            None => settings,
        }
    }

    /// Like [`TelemetryConfig::resolve`], with `env` standing in for the environment.
    ///
    /// ```
    /// use flujo::{TelemetryConfig, TelemetryError};
    ///
    /// let err = TelemetryConfig::default()
    ///     .resolve_from(|var| (var == "TELEMETRY_EXPORT_ENABLED").then(|| "maybe".to_string()))
    ///     .unwrap_err();
    /// assert!(matches!(err, TelemetryError::InvalidEnvVar { variable: "TELEMETRY_EXPORT_ENABLED", .. }));
    /// ```
    pub fn resolve_from(
        &self,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<TelemetrySettings, TelemetryError> {
        let env = Env(env);
        // What the resolution has to say at init (a variable ignored, two that disagree).
        let mut notices = Vec::new();

        let sampling_rate = match self.sampling_rate {
            Some(rate) if valid_rate(rate) => rate,
            Some(rate) => {
                return Err(TelemetryError::InvalidSetting {
                    field: "sampling_rate",
                    value: rate.to_string(),
                    expected: RATE_VALUES,
                });
            }
            None => {
                let sampler = env.parse("OTEL_TRACES_SAMPLER", SAMPLER_VALUES, Sampler::parse)?;
                let argument = env.parse("OTEL_TRACES_SAMPLER_ARG", RATE_VALUES, |v| {
                    v.trim().parse::<f64>().ok().filter(|r| valid_rate(*r))
                })?;
                match (sampler, argument) {
                    (Some(Sampler::AlwaysOn), _) => 1.0,
                    (Some(Sampler::AlwaysOff), _) => 0.0,
                    // The specification's default argument of a ratio sampler: 1.0.
                    (Some(Sampler::TraceIdRatio), argument) => argument.unwrap_or(1.0),
                    (None, Some(argument)) => {
                        notices.push(Notice::warn(format!(
                            "OTEL_TRACES_SAMPLER_ARG={argument} is not used: it is the \
                             argument of a ratio sampler, and OTEL_TRACES_SAMPLER names none \
                             (its default, parentbased_always_on, samples every trace); set \
                             OTEL_TRACES_SAMPLER=parentbased_traceidratio to sample by it"
                        )));
                        1.0
                    }
                    (None, None) => 1.0,
                }
            }
        };

        let otlp_endpoint = match &self.otlp_endpoint {
            Some(endpoint) if valid_endpoint(endpoint) => Some(endpoint.clone()),
            Some(endpoint) => {
                return Err(TelemetryError::InvalidSetting {
                    field: "otlp_endpoint",
                    value: format!("{endpoint:?}"),
                    expected: URL_VALUES,
                });
            }
            None => match env.parse("OTLP_ENDPOINT", URL_VALUES, endpoint_value)? {
                Some(endpoint) => Some(endpoint),
                None => env.parse("OTEL_EXPORTER_OTLP_ENDPOINT", URL_VALUES, endpoint_value)?,
            },
        };

        let flag = |explicit: Option<bool>, variable: &'static str| match explicit {
            Some(value) => Ok::<bool, TelemetryError>(value),
            None => Ok(env
                .parse(variable, BOOL_VALUES, parse_bool)?
                .unwrap_or(false)),
        };
        let export_telemetry = flag(self.export_telemetry, "TELEMETRY_EXPORT_ENABLED")?;
        // OTLP export: code, else the standard's OTEL_TRACES_EXPORTER, else the guide's
        // OTLP_EXPORT_ENABLED (two that disagree are said).
        let traces_exporter =
            env.parse("OTEL_TRACES_EXPORTER", TRACES_EXPORTER_VALUES, |v| match v
                .trim()
                .to_ascii_lowercase()
                .as_str()
            {
                "otlp" => Some(true),
                "none" => Some(false),
                _ => None,
            })?;
        let (export_otlp, otlp_switch) = match self.export_otlp {
            Some(on) => (on, "`export_otlp = true`"),
            None => {
                let guide = env.parse("OTLP_EXPORT_ENABLED", BOOL_VALUES, parse_bool)?;
                match (traces_exporter, guide) {
                    (Some(standard), Some(guide)) if standard != guide => {
                        notices.push(Notice::warn(format!(
                            "OTEL_TRACES_EXPORTER={} and OTLP_EXPORT_ENABLED={guide} disagree: \
                             OTEL_TRACES_EXPORTER wins (the OpenTelemetry standard's variable), \
                             so spans are {}exported over OTLP; unset one of them",
                            if standard { "otlp" } else { "none" },
                            if standard { "" } else { "not " }
                        )));
                        (standard, "OTEL_TRACES_EXPORTER=otlp")
                    }
                    (Some(standard), _) => (standard, "OTEL_TRACES_EXPORTER=otlp"),
                    (None, guide) => (guide.unwrap_or(false), "OTLP_EXPORT_ENABLED=true"),
                }
            }
        };
        // OTEL_METRICS_EXPORTER: a comma-separated list of `otlp`, `prometheus`, or `none`.
        let metrics_exporters =
            env.parse("OTEL_METRICS_EXPORTER", METRICS_EXPORTER_VALUES, |v| {
                let names: Vec<String> = v
                    .split(',')
                    .map(|n| n.trim().to_ascii_lowercase())
                    .collect();
                let known = names
                    .iter()
                    .all(|n| matches!(n.as_str(), "otlp" | "prometheus" | "none"));
                let none_alone = !names.iter().any(|n| n == "none") || names.len() == 1;
                (known && none_alone).then_some(names)
            })?;
        let metrics_exporter = |name: &str| {
            metrics_exporters
                .as_ref()
                .map(|names| names.iter().any(|n| n == name))
        };
        let (export_prometheus, prometheus_switch) = match self.export_prometheus {
            Some(on) => (on, "`export_prometheus = true`"),
            None if metrics_exporter("prometheus") == Some(true) => {
                (true, "OTEL_METRICS_EXPORTER=prometheus")
            }
            None => (
                flag(None, "PROMETHEUS_EXPORT_ENABLED")?,
                "PROMETHEUS_EXPORT_ENABLED=true",
            ),
        };
        let signal_endpoint = |variable: &'static str| {
            if self.otlp_endpoint.is_some() {
                // Code names the endpoint of every signal.
                return Ok(None);
            }
            env.parse(variable, URL_VALUES, endpoint_value)
        };
        let otlp_traces_endpoint = signal_endpoint("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")?;
        let otlp_metrics_endpoint = signal_endpoint("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT")?;
        let sdk_disabled = env
            .parse("OTEL_SDK_DISABLED", BOOL_VALUES, parse_bool)?
            .unwrap_or(false);

        let millis = |explicit: Option<Duration>, setting: &Millis| {
            let range = Duration::from_millis(*setting.range.start())
                ..=Duration::from_millis(*setting.range.end());
            Ok::<_, TelemetryError>(match explicit {
                Some(duration) if range.contains(&duration) => duration,
                Some(duration) => {
                    return Err(TelemetryError::InvalidSetting {
                        field: setting.field,
                        value: format!("{duration:?}"),
                        expected: setting.expected,
                    });
                }
                None => Duration::from_millis(
                    env.parse(setting.variable, setting.expected, |v| {
                        v.trim()
                            .parse::<u64>()
                            .ok()
                            .filter(|ms| setting.range.contains(ms))
                    })?
                    .unwrap_or(setting.default),
                ),
            })
        };

        let log_filter = match env.get("RUST_LOG") {
            Some(filter) => {
                if tracing_subscriber::EnvFilter::try_new(&filter).is_err() {
                    return Err(TelemetryError::InvalidEnvVar {
                        variable: "RUST_LOG",
                        value: filter,
                        expected: FILTER_VALUES,
                    });
                }
                filter
            }
            None => "info".to_owned(),
        };

        // Counts that size queues are bounded: an absurd value is an error naming it, never an
        // allocation that aborts the process.
        let count = |explicit: Option<usize>,
                     field: &'static str,
                     variable: &'static str,
                     default,
                     max: usize,
                     expected: &'static str| {
            let within = |n: usize| (1..=max).contains(&n);
            match explicit {
                Some(n) if within(n) => Ok(n),
                Some(n) => Err(TelemetryError::InvalidSetting {
                    field,
                    value: n.to_string(),
                    expected,
                }),
                None => Ok(env
                    .parse(variable, expected, |v| {
                        positive_count(v).filter(|n| within(*n))
                    })?
                    .unwrap_or(default)),
            }
        };
        let max_queue_size = count(
            self.max_queue_size,
            "max_queue_size",
            "OTEL_BSP_MAX_QUEUE_SIZE",
            DEFAULT_QUEUE_SIZE,
            MAX_QUEUE_SIZE,
            QUEUE_VALUES,
        )?;
        let max_content_bytes = count(
            self.max_content_bytes,
            "max_content_bytes",
            "FLUJO_GENAI_CONTENT_MAX_BYTES",
            DEFAULT_MAX_CONTENT_BYTES,
            MAX_ATTRIBUTE_VALUE_BYTES,
            CONTENT_BYTES_VALUES,
        )?;
        let cost_ledger_buffer = match self.cost_ledger_buffer {
            None if env.get("FLUJO_COST_LEDGER_BUFFER").is_none() => None,
            explicit => Some(count(
                explicit,
                "cost_ledger_buffer",
                "FLUJO_COST_LEDGER_BUFFER",
                MAX_QUEUED_COST_RECORDS,
                MAX_COST_LEDGER_BUFFER,
                LEDGER_BUFFER_VALUES,
            )?),
        };
        let max_export_batch_size = count(
            self.max_export_batch_size,
            "max_export_batch_size",
            "OTEL_BSP_MAX_EXPORT_BATCH_SIZE",
            512,
            MAX_EXPORT_BATCH_SIZE,
            BATCH_VALUES,
        )?;

        // The span limits: the span's own variable, else the generic one (the specification's
        // precedence).
        let limit = |span: &'static str, generic: &'static str, max: usize, expected| {
            let read = |variable| {
                env.parse(variable, expected, |v| {
                    positive_count(v).filter(|n| *n <= max)
                })
            };
            Ok::<_, TelemetryError>(match read(span)? {
                Some(n) => Some(n),
                None => read(generic)?,
            })
        };
        let attribute_value_length_limit = limit(
            "OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT",
            "OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT",
            MAX_ATTRIBUTE_VALUE_BYTES,
            LENGTH_LIMIT_VALUES,
        )?;
        let span_attribute_count_limit = limit(
            "OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT",
            "OTEL_ATTRIBUTE_COUNT_LIMIT",
            MAX_ATTRIBUTE_COUNT,
            COUNT_LIMIT_VALUES,
        )?
        .unwrap_or(DEFAULT_ATTRIBUTE_COUNT);

        let mut settings = TelemetrySettings {
            attribute_value_length_limit,
            span_attribute_count_limit,
            service_name: self
                .service_name
                .clone()
                .or_else(|| env.get("OTEL_SERVICE_NAME"))
                .unwrap_or_else(|| "flujo".to_owned()),
            environment: self
                .environment
                .clone()
                .or_else(|| env.get("FLUJO_ENVIRONMENT"))
                .unwrap_or_else(|| "development".to_owned()),
            version: self
                .version
                .clone()
                .or_else(|| env.get("FLUJO_SERVICE_VERSION")),
            sampling_rate,
            export_telemetry,
            export_otlp,
            otlp_switch,
            prometheus_switch,
            sdk_disabled,
            notices: Vec::new(),
            otlp_endpoint,
            otlp_protocol: match self.otlp_protocol {
                Some(protocol) => protocol,
                None => env
                    .parse("OTEL_EXPORTER_OTLP_PROTOCOL", PROTOCOL_VALUES, |v| {
                        v.parse().ok()
                    })?
                    .unwrap_or_default(),
            },
            otlp_headers: match &self.otlp_headers {
                Some(headers) => headers.clone(),
                None => env
                    .parse_secret("OTEL_EXPORTER_OTLP_HEADERS", HEADERS_VALUES, parse_headers)?
                    .unwrap_or_default(),
            },
            otlp_gzip: match self.otlp_gzip {
                Some(gzip) => gzip,
                None => env
                    .parse(
                        "OTEL_EXPORTER_OTLP_COMPRESSION",
                        COMPRESSION_VALUES,
                        |v| match v.trim().to_ascii_lowercase().as_str() {
                            "gzip" => Some(true),
                            "none" => Some(false),
                            _ => None,
                        },
                    )?
                    .unwrap_or(false),
            },
            otlp_certificate: self
                .otlp_certificate
                .clone()
                .or_else(|| env.get("OTEL_EXPORTER_OTLP_CERTIFICATE").map(Into::into)),
            otlp_timeout: millis(self.otlp_timeout, &OTLP_TIMEOUT)?,
            max_queue_size,
            max_export_batch_size,
            export_otlp_metrics: self
                .export_otlp_metrics
                .unwrap_or_else(|| metrics_exporter("otlp") == Some(true)),
            otlp_traces_endpoint,
            otlp_metrics_endpoint,
            metrics_export_interval: millis(self.metrics_export_interval, &METRIC_EXPORT_INTERVAL)?,
            export_prometheus,
            log_format: match self.log_format {
                Some(format) => format,
                None => env
                    .parse("FLUJO_LOG_FORMAT", FORMAT_VALUES, |v| v.parse().ok())?
                    .unwrap_or_default(),
            },
            log_filter,
            logfire_api_key: self
                .logfire_api_key
                .clone()
                .or_else(|| env.get("LOGFIRE_API_KEY").map(Secret::from))
                .or_else(|| env.get("LOGFIRE_TOKEN").map(Secret::from)),
            logfire_base_url: match &self.logfire_base_url {
                Some(url) if valid_endpoint(url) => Some(url.clone()),
                Some(url) => {
                    return Err(TelemetryError::InvalidSetting {
                        field: "logfire_base_url",
                        value: format!("{url:?}"),
                        expected: URL_VALUES,
                    });
                }
                None => env.parse("LOGFIRE_BASE_URL", URL_VALUES, endpoint_value)?,
            },
            flush_interval: millis(self.flush_interval, &FLUSH_INTERVAL)?,
            shutdown_timeout: millis(self.shutdown_timeout, &SHUTDOWN_TIMEOUT)?,
            pricing_file: self
                .pricing_file
                .clone()
                .or_else(|| env.get("FLUJO_PRICING_FILE").map(Into::into)),
            prices_file: self
                .prices_file
                .clone()
                .or_else(|| env.get("FLUJO_PRICES_FILE").map(Into::into)),
            strict_pricing: flag(self.strict_pricing, "FLUJO_PRICING_STRICT")?,
            genai_compat: match self.genai_compat {
                Some(compat) => compat,
                None => env
                    .parse(
                        "FLUJO_GENAI_COMPAT",
                        GenAiCompat::VALUES,
                        GenAiCompat::parse,
                    )?
                    .unwrap_or_default(),
            },
            capture_message_content: flag(
                self.capture_message_content,
                "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT",
            )?,
            max_content_bytes,
            otel_context_activation: match self.otel_context_activation {
                Some(on) => Some(on),
                None => env.parse("FLUJO_OTEL_CONTEXT_ACTIVATION", BOOL_VALUES, parse_bool)?,
            },
            genai_conventions: self.genai_conventions.unwrap_or_else(|| {
                env.get("OTEL_SEMCONV_STABILITY_OPT_IN")
                    .map_or_else(GenAiConventions::default, |list| {
                        GenAiConventions::from_opt_in(&list)
                    })
            }),
            cost_ledger: self.cost_ledger.clone().or_else(|| {
                env.get("FLUJO_COST_LEDGER")
                    .map(|v| LedgerLocation::parse(&v))
            }),
            daily_cost_limit: match self.daily_cost_limit_usd {
                Some(limit) => Some(limit),
                None => env.parse("FLUJO_DAILY_COST_LIMIT_USD", USD_VALUES, parse_limit)?,
            },
            monthly_cost_limit: match self.monthly_cost_limit_usd {
                Some(limit) => Some(limit),
                None => env.parse("FLUJO_MONTHLY_COST_LIMIT_USD", USD_VALUES, parse_limit)?,
            },
            cost_ledger_buffer,
            cost_ledger_refresh: match self.cost_ledger_refresh {
                Some(refresh) if REFRESH_RANGE.contains(&refresh) => refresh,
                Some(refresh) => {
                    return Err(TelemetryError::InvalidSetting {
                        field: "cost_ledger_refresh",
                        value: format!("{refresh:?}"),
                        expected: REFRESH_VALUES,
                    });
                }
                None => env
                    .parse("FLUJO_COST_LEDGER_REFRESH_MS", REFRESH_VALUES, |v| {
                        let refresh = Duration::from_millis(v.trim().parse().ok()?);
                        REFRESH_RANGE.contains(&refresh).then_some(refresh)
                    })?
                    .unwrap_or(DEFAULT_LEDGER_REFRESH),
            },
            cost_ledger_unreachable: match self.cost_ledger_unreachable {
                Some(when) => when,
                None => env
                    .parse(
                        "FLUJO_COST_LEDGER_UNREACHABLE",
                        WhenUnreachable::VALUES,
                        WhenUnreachable::parse,
                    )?
                    .unwrap_or_default(),
            },
        };
        if settings.sdk_disabled {
            // The operator's switch: it wins over the code too (an incident must be able to
            // stop the traffic without a release).
            settings.export_telemetry = false;
            settings.export_otlp = false;
            settings.export_otlp_metrics = false;
            settings.export_prometheus = false;
            notices.push(Notice::info(
                "OTEL_SDK_DISABLED=true: no span, metric or log is exported (OTLP, Prometheus, \
                 Logfire); cost records, budgets and the log lines on stderr go on"
                    .to_owned(),
            ));
        }
        settings.notices = notices;
        self.check_features(&settings)?;
        if settings.export_telemetry && settings.logfire_api_key.is_none() {
            return Err(TelemetryError::MissingSetting {
                setting: if self.export_telemetry.is_some() {
                    "`export_telemetry = true`"
                } else {
                    "TELEMETRY_EXPORT_ENABLED=true"
                },
                needs: "a Logfire write token: set LOGFIRE_API_KEY (or LOGFIRE_TOKEN), or `logfire_api_key`",
            });
        }
        Ok(settings)
    }

    /// An exporter asked for by a setting must be compiled in.
    fn check_features(&self, settings: &TelemetrySettings) -> Result<(), TelemetryError> {
        struct Wanted {
            on: bool,
            explicit: bool,
            field: &'static str,
            env_setting: &'static str,
            feature: &'static str,
            built: bool,
        }
        let wanted = [
            Wanted {
                on: settings.export_otlp,
                explicit: self.export_otlp.is_some(),
                field: "export_otlp",
                env_setting: settings.otlp_switch,
                feature: "otlp",
                built: cfg!(feature = "otlp"),
            },
            Wanted {
                on: settings.export_otlp_metrics,
                explicit: self.export_otlp_metrics.is_some(),
                field: "export_otlp_metrics",
                env_setting: "OTEL_METRICS_EXPORTER=otlp",
                feature: "otlp",
                built: cfg!(feature = "otlp"),
            },
            Wanted {
                on: settings.export_prometheus,
                explicit: self.export_prometheus.is_some(),
                field: "export_prometheus",
                env_setting: settings.prometheus_switch,
                feature: "prometheus",
                built: cfg!(feature = "prometheus"),
            },
            Wanted {
                on: settings.export_telemetry,
                explicit: self.export_telemetry.is_some(),
                field: "export_telemetry",
                env_setting: "TELEMETRY_EXPORT_ENABLED=true",
                feature: "logfire",
                built: cfg!(feature = "logfire"),
            },
        ];
        if let Some(refused) = settings
            .cost_ledger
            .as_ref()
            .and_then(LedgerLocation::refusal)
        {
            return Err(TelemetryError::CostLedger(refused));
        }
        if let Some(ledger) = &settings.cost_ledger
            && !ledger.is_built()
        {
            return Err(TelemetryError::FeatureNotEnabled {
                setting: if self.cost_ledger.is_some() {
                    format!("`cost_ledger = {ledger:?}`")
                } else {
                    format!("FLUJO_COST_LEDGER={ledger}")
                },
                feature: ledger.feature().unwrap_or_default(),
            });
        }
        match wanted.into_iter().find(|wanted| wanted.on && !wanted.built) {
            None => Ok(()),
            Some(wanted) => {
                let setting = if wanted.explicit {
                    format!("`{} = true`", wanted.field)
                } else {
                    wanted.env_setting.to_owned()
                };
                Err(TelemetryError::FeatureNotEnabled {
                    setting,
                    feature: wanted.feature,
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |name| {
            pairs
                .iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| (*v).to_owned())
        }
    }

    fn error_for(variable: &'static str, value: &'static str) -> TelemetryError {
        TelemetryConfig::default()
            .resolve_from(move |name: &str| (name == variable).then(|| value.to_owned()))
            .unwrap_err()
    }

    #[test]
    fn an_error_about_a_secret_bearing_variable_never_echoes_its_value() {
        for bad in [
            "authorization=Bearer sk-live-SECRET,broken",
            "authorization=Bearer%2sk-live-SECRET",
            "x-api-key=sk-live-SECRET%",
        ] {
            let error = error_for("OTEL_EXPORTER_OTLP_HEADERS", bad);
            let shown = format!("{error} {error:?}");
            assert!(!shown.contains("SECRET"), "{shown}");
            assert!(shown.contains("OTEL_EXPORTER_OTLP_HEADERS"), "{shown}");
        }
    }

    #[test]
    fn otel_traces_sampler_names_the_sampler_and_its_argument_applies_only_to_ratios() {
        let rate = |pairs: &'static [(&'static str, &'static str)]| {
            TelemetryConfig::default()
                .resolve_from(env(pairs))
                .unwrap()
                .sampling_rate
        };
        assert_eq!(rate(&[("OTEL_TRACES_SAMPLER", "always_off")]), 0.0);
        assert_eq!(
            rate(&[("OTEL_TRACES_SAMPLER", "parentbased_always_off")]),
            0.0
        );
        assert_eq!(rate(&[("OTEL_TRACES_SAMPLER", "ALWAYS_ON")]), 1.0);
        assert_eq!(
            rate(&[("OTEL_TRACES_SAMPLER", "parentbased_always_on")]),
            1.0
        );
        assert_eq!(
            rate(&[
                ("OTEL_TRACES_SAMPLER", "traceidratio"),
                ("OTEL_TRACES_SAMPLER_ARG", "0.5")
            ]),
            0.5
        );
        // A ratio sampler without its argument samples everything (the specification's
        // default argument), and an argument without a ratio sampler is not used, and said.
        assert_eq!(rate(&[("OTEL_TRACES_SAMPLER", "traceidratio")]), 1.0);
        let settings = TelemetryConfig::default()
            .resolve_from(env(&[("OTEL_TRACES_SAMPLER_ARG", "0.1")]))
            .unwrap();
        assert_eq!(settings.sampling_rate, 1.0);
        assert!(
            settings
                .notices
                .iter()
                .any(|n| n.text.contains("OTEL_TRACES_SAMPLER_ARG")),
            "{:?}",
            settings.notices
        );
        // Code wins.
        let settings = TelemetryConfig::builder()
            .sampling_rate(0.3)
            .resolve_from(env(&[("OTEL_TRACES_SAMPLER", "always_off")]))
            .unwrap();
        assert_eq!(settings.sampling_rate, 0.3);
        for bad in ["sometimes", "jaeger_remote"] {
            let error = error_for("OTEL_TRACES_SAMPLER", bad).to_string();
            assert!(
                error.contains("OTEL_TRACES_SAMPLER") && error.contains("parentbased_traceidratio"),
                "{error}"
            );
        }
    }

    #[test]
    fn otel_sdk_disabled_switches_every_export_off_whatever_else_says() {
        let settings = TelemetryConfig::builder()
            .export_otlp(true)
            .export_prometheus(true)
            .resolve_from(env(&[
                ("OTEL_SDK_DISABLED", "true"),
                ("OTLP_EXPORT_ENABLED", "true"),
                ("TELEMETRY_EXPORT_ENABLED", "true"),
                ("OTEL_METRICS_EXPORTER", "otlp"),
            ]))
            .unwrap();
        assert!(settings.sdk_disabled);
        assert!(!settings.export_otlp && !settings.export_prometheus);
        assert!(!settings.export_telemetry && !settings.export_otlp_metrics);
        assert!(
            settings
                .notices
                .iter()
                .any(|n| n.text.contains("OTEL_SDK_DISABLED"))
        );
        let resolved = TelemetryConfig::default().resolve_from(env(&[
            ("OTEL_SDK_DISABLED", "false"),
            ("OTLP_EXPORT_ENABLED", "1"),
        ]));
        if cfg!(feature = "otlp") {
            let settings = resolved.unwrap();
            assert!(!settings.sdk_disabled && settings.export_otlp);
        } else {
            let error = resolved.unwrap_err().to_string();
            assert!(error.contains("OTLP_EXPORT_ENABLED"), "{error}");
        }
        let error = error_for("OTEL_SDK_DISABLED", "maybe").to_string();
        assert!(error.contains("OTEL_SDK_DISABLED"), "{error}");
    }

    #[test]
    fn otel_traces_exporter_switches_otlp_export_and_wins_over_the_guides_variable() {
        let settings = |pairs: &'static [(&'static str, &'static str)]| {
            TelemetryConfig::default().resolve_from(env(pairs)).unwrap()
        };
        let otlp =
            TelemetryConfig::default().resolve_from(env(&[("OTEL_TRACES_EXPORTER", "otlp")]));
        if cfg!(feature = "otlp") {
            assert!(otlp.unwrap().export_otlp);
        } else {
            // Without the feature, the error names the variable that asked for it.
            let error = otlp.unwrap_err().to_string();
            assert!(error.contains("OTEL_TRACES_EXPORTER=otlp"), "{error}");
        }
        assert!(!settings(&[("OTEL_TRACES_EXPORTER", "none")]).export_otlp);
        let both = settings(&[
            ("OTEL_TRACES_EXPORTER", "none"),
            ("OTLP_EXPORT_ENABLED", "true"),
        ]);
        assert!(!both.export_otlp, "the standard's variable wins");
        let said: Vec<_> = both
            .notices
            .iter()
            .filter(|n| {
                n.text.contains("OTEL_TRACES_EXPORTER") && n.text.contains("OTLP_EXPORT_ENABLED")
            })
            .collect();
        assert_eq!(said.len(), 1, "one WARN naming both: {:?}", both.notices);
        // Code wins over both.
        let code = TelemetryConfig::builder()
            .export_otlp(true)
            .resolve_from(env(&[("OTEL_TRACES_EXPORTER", "none")]));
        assert_eq!(
            code.map(|s| s.export_otlp).ok(),
            cfg!(feature = "otlp").then_some(true)
        );
        let prometheus = TelemetryConfig::default()
            .resolve_from(env(&[("OTEL_METRICS_EXPORTER", "prometheus")]));
        if cfg!(feature = "prometheus") {
            assert!(prometheus.unwrap().export_prometheus);
        } else {
            let error = prometheus.unwrap_err().to_string();
            assert!(
                error.contains("OTEL_METRICS_EXPORTER=prometheus"),
                "{error}"
            );
        }
        for bad in ["zipkin,otlp", "jaeger"] {
            let error = error_for("OTEL_TRACES_EXPORTER", bad).to_string();
            assert!(
                error.contains("OTEL_TRACES_EXPORTER") && error.contains("otlp"),
                "{error}"
            );
        }
    }

    #[test]
    fn a_signal_endpoint_is_used_as_given_and_wins_over_the_generic_one() {
        let settings = TelemetryConfig::default()
            .resolve_from(env(&[
                ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318"),
                (
                    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
                    "http://127.0.0.1:9999/custom/traces",
                ),
                (
                    "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT",
                    "http://127.0.0.1:9998",
                ),
            ]))
            .unwrap();
        assert_eq!(
            settings.otlp_traces_endpoint.as_deref(),
            Some("http://127.0.0.1:9999/custom/traces")
        );
        assert_eq!(
            settings.otlp_metrics_endpoint.as_deref(),
            Some("http://127.0.0.1:9998")
        );
        let error = error_for("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "collector:4317").to_string();
        assert!(
            error.contains("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"),
            "{error}"
        );
    }

    #[test]
    fn attribute_limits_come_from_the_span_variable_then_the_generic_one() {
        let defaults = TelemetryConfig::default().resolve_from(env(&[])).unwrap();
        assert_eq!(
            defaults.attribute_value_length_limit, None,
            "no limit by default"
        );
        assert_eq!(
            defaults.span_attribute_count_limit, 128,
            "the specification's default"
        );
        let generic = TelemetryConfig::default()
            .resolve_from(env(&[
                ("OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT", "40"),
                ("OTEL_ATTRIBUTE_COUNT_LIMIT", "12"),
            ]))
            .unwrap();
        assert_eq!(generic.attribute_value_length_limit, Some(40));
        assert_eq!(generic.span_attribute_count_limit, 12);
        let span = TelemetryConfig::default()
            .resolve_from(env(&[
                ("OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT", "40"),
                ("OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT", "8"),
                ("OTEL_ATTRIBUTE_COUNT_LIMIT", "12"),
                ("OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT", "3"),
            ]))
            .unwrap();
        assert_eq!(span.attribute_value_length_limit, Some(8));
        assert_eq!(span.span_attribute_count_limit, 3);
        for variable in [
            "OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT",
            "OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT",
        ] {
            for bad in ["-1", "many", "99999999999"] {
                let error = error_for(variable, bad).to_string();
                assert!(error.contains(variable), "{error}");
            }
        }
    }

    #[test]
    fn durations_have_documented_bounds() {
        for (variable, bad, good) in [
            ("OTEL_BSP_SCHEDULE_DELAY", "18446744073709551615", "250"),
            ("OTEL_BSP_SCHEDULE_DELAY", "0", "1"),
            ("FLUJO_SHUTDOWN_TIMEOUT_MS", "86400000", "0"),
            ("OTEL_EXPORTER_OTLP_TIMEOUT", "0", "600000"),
            ("OTEL_METRIC_EXPORT_INTERVAL", "3600001", "100"),
        ] {
            let error = error_for(variable, bad).to_string();
            assert!(
                error.contains(variable) && error.contains("milliseconds from"),
                "{error}"
            );
            assert!(
                TelemetryConfig::default()
                    .resolve_from(move |name: &str| (name == variable).then(|| good.to_owned()))
                    .is_ok(),
                "{variable}={good}"
            );
        }
        let error = TelemetryConfig::builder()
            .flush_interval(Duration::from_secs(u64::MAX))
            .resolve_from(env(&[]))
            .unwrap_err()
            .to_string();
        assert!(error.contains("flush_interval"), "{error}");
        let error = TelemetryConfig::builder()
            .shutdown_timeout(Duration::from_secs(3600))
            .resolve_from(env(&[]))
            .unwrap_err()
            .to_string();
        assert!(error.contains("shutdown_timeout"), "{error}");
    }

    #[test]
    fn counts_have_a_documented_maximum() {
        for variable in ["OTEL_BSP_MAX_QUEUE_SIZE", "OTEL_BSP_MAX_EXPORT_BATCH_SIZE"] {
            for huge in ["18446744073709551615", "99999999999"] {
                let error = error_for(variable, huge).to_string();
                assert!(
                    error.contains(variable) && error.contains("at most"),
                    "{error}"
                );
            }
        }
        let error = TelemetryConfig::builder()
            .max_queue_size(usize::MAX)
            .resolve_from(env(&[]))
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("max_queue_size") && error.contains("at most"),
            "{error}"
        );
        assert!(
            TelemetryConfig::builder()
                .max_queue_size(MAX_QUEUE_SIZE)
                .resolve_from(env(&[]))
                .is_ok()
        );
    }

    #[test]
    fn an_impossible_port_and_a_zero_timeout_are_refused() {
        let error = error_for("OTLP_ENDPOINT", "http://127.0.0.1:99999").to_string();
        assert!(error.contains("OTLP_ENDPOINT"), "{error}");
        let error = error_for("OTEL_EXPORTER_OTLP_TIMEOUT", "0").to_string();
        assert!(
            error.contains("OTEL_EXPORTER_OTLP_TIMEOUT") && error.contains("from 1 to"),
            "{error}"
        );
        let error = TelemetryConfig::builder()
            .otlp_timeout(Duration::ZERO)
            .resolve_from(env(&[]))
            .unwrap_err()
            .to_string();
        assert!(error.contains("otlp_timeout"), "{error}");
    }

    #[test]
    fn a_huge_daily_limit_saturates_instead_of_refusing_everything() {
        let settings = TelemetryConfig::default()
            .resolve_from(env(&[(
                "FLUJO_DAILY_COST_LIMIT_USD",
                "100000000000000000000",
            )]))
            .unwrap();
        assert_eq!(settings.daily_cost_limit, Some(Usd::from_nanos(u64::MAX)));
        let exact = TelemetryConfig::default()
            .resolve_from(env(&[("FLUJO_DAILY_COST_LIMIT_USD", "25.5")]))
            .unwrap();
        assert_eq!(exact.daily_cost_limit, Some(Usd::parse("25.5").unwrap()));
        const BAD: [&str; 5] = ["inf", "-1", "1e30", "2.0000000001", "twelve"];
        for bad in BAD {
            let vars =
                move |name: &str| (name == "FLUJO_DAILY_COST_LIMIT_USD").then(|| bad.to_owned());
            let result = TelemetryConfig::default().resolve_from(vars);
            assert!(result.is_err(), "{bad:?} is refused, naming the variable");
        }
    }

    #[test]
    fn defaults_apply_without_environment() {
        let settings = TelemetryConfig::default().resolve_from(env(&[])).unwrap();
        assert_eq!(settings.service_name, "flujo");
        assert_eq!(settings.sampling_rate, 1.0);
        assert!(!settings.export_otlp);
        assert_eq!(settings.log_format, LogFormat::Text);
        assert_eq!(settings.genai_compat, GenAiCompat::ALL);
        assert_eq!(settings.genai_conventions, GenAiConventions::V1_41);
        assert!(!settings.capture_message_content, "off unless asked for");
        assert_eq!(settings.max_content_bytes, 64 << 10);
        assert_eq!(settings.flush_interval, Duration::from_millis(100));
        assert_eq!(settings.shutdown_timeout, Duration::from_secs(5));
    }

    #[test]
    fn environment_fills_in_and_code_wins() {
        let vars = env(&[
            ("OTEL_SERVICE_NAME", "from-env"),
            ("OTEL_TRACES_SAMPLER", "parentbased_traceidratio"),
            ("OTEL_TRACES_SAMPLER_ARG", "0.25"),
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4317"),
            ("FLUJO_LOG_FORMAT", "JSON"),
            ("FLUJO_GENAI_COMPAT", "otel,logfire"),
            (
                "OTEL_SEMCONV_STABILITY_OPT_IN",
                "http,gen_ai_latest_experimental",
            ),
            ("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", "true"),
            ("FLUJO_GENAI_CONTENT_MAX_BYTES", "4096"),
        ]);
        let settings = TelemetryConfig::default().resolve_from(&vars).unwrap();
        assert_eq!(settings.service_name, "from-env");
        assert_eq!(settings.sampling_rate, 0.25);
        assert_eq!(
            settings.otlp_endpoint.as_deref(),
            Some("http://127.0.0.1:4317")
        );
        assert_eq!(settings.log_format, LogFormat::Json);
        assert_eq!(settings.genai_compat, GenAiCompat::LOGFIRE);
        assert_eq!(
            settings.genai_conventions,
            GenAiConventions::LatestExperimental
        );
        assert!(settings.capture_message_content);
        assert_eq!(settings.max_content_bytes, 4096);

        let explicit = TelemetryConfig::builder()
            .service_name("from-code")
            .sampling_rate(0.5)
            .log_format(LogFormat::Text)
            .resolve_from(&vars)
            .unwrap();
        assert_eq!(explicit.service_name, "from-code");
        assert_eq!(explicit.sampling_rate, 0.5);
        assert_eq!(explicit.log_format, LogFormat::Text);
    }

    #[test]
    fn flujo_endpoint_variable_wins_over_the_standard_one() {
        let settings = TelemetryConfig::default()
            .resolve_from(env(&[
                ("OTLP_ENDPOINT", "https://collector:4318"),
                ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://other:4317"),
            ]))
            .unwrap();
        assert_eq!(
            settings.otlp_endpoint.as_deref(),
            Some("https://collector:4318")
        );
    }

    #[test]
    fn bad_values_name_the_variable_the_value_and_what_is_accepted() {
        let err = TelemetryConfig::default()
            .resolve_from(env(&[("TELEMETRY_EXPORT_ENABLED", "maybe")]))
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "environment variable TELEMETRY_EXPORT_ENABLED=\"maybe\" is invalid: \
             expected one of true, false, 1, 0, yes, no, on, off"
        );
        let err = TelemetryConfig::default()
            .resolve_from(env(&[("OTLP_ENDPOINT", "collector:4317")]))
            .unwrap_err();
        assert!(matches!(
            err,
            TelemetryError::InvalidEnvVar {
                variable: "OTLP_ENDPOINT",
                ..
            }
        ));
        let err = TelemetryConfig::default()
            .resolve_from(env(&[("OTEL_TRACES_SAMPLER_ARG", "2")]))
            .unwrap_err();
        assert!(err.to_string().contains("a number from 0.0 to 1.0"));
        let err = TelemetryConfig::default()
            .resolve_from(env(&[("FLUJO_GENAI_COMPAT", "langfuse,datadog")]))
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "environment variable FLUJO_GENAI_COMPAT=\"langfuse,datadog\" is invalid: expected \
             a comma-separated list of otel, logfire, langfuse, openinference, or all"
        );
        let err = TelemetryConfig::default()
            .resolve_from(env(&[("FLUJO_GENAI_CONTENT_MAX_BYTES", "99999999999")]))
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "environment variable FLUJO_GENAI_CONTENT_MAX_BYTES=\"99999999999\" is invalid: \
             expected a whole number of bytes from 1 to 1048576 (MAX_ATTRIBUTE_VALUE_BYTES)"
        );
        let err = TelemetryConfig::default()
            .resolve_from(env(&[("RUST_LOG", "info,[[")]))
            .unwrap_err();
        assert!(matches!(
            err,
            TelemetryError::InvalidEnvVar {
                variable: "RUST_LOG",
                ..
            }
        ));
    }

    #[test]
    fn bad_explicit_settings_name_the_field() {
        let err = TelemetryConfig::builder()
            .sampling_rate(1.5)
            .resolve_from(env(&[]))
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "telemetry setting `sampling_rate` = 1.5 is invalid: expected a number from 0.0 to 1.0"
        );
        let err = TelemetryConfig::builder()
            .otlp_endpoint("not a url")
            .resolve_from(env(&[]))
            .unwrap_err();
        assert!(matches!(
            err,
            TelemetryError::InvalidSetting {
                field: "otlp_endpoint",
                ..
            }
        ));
        assert!(
            TelemetryConfig::builder()
                .sampling_rate(f64::NAN)
                .resolve_from(env(&[]))
                .is_err()
        );
    }

    #[cfg(feature = "logfire")]
    #[test]
    fn logfire_export_needs_a_token_and_reads_logfires_own_variables() {
        let err = TelemetryConfig::default()
            .resolve_from(env(&[("TELEMETRY_EXPORT_ENABLED", "true")]))
            .unwrap_err();
        assert!(
            err.to_string()
                .contains("LOGFIRE_API_KEY (or LOGFIRE_TOKEN)"),
            "{err}"
        );
        let settings = TelemetryConfig::default()
            .resolve_from(env(&[
                ("TELEMETRY_EXPORT_ENABLED", "true"),
                ("LOGFIRE_TOKEN", "pylf_v1_eu_secret"),
                ("LOGFIRE_BASE_URL", "http://127.0.0.1:9999"),
            ]))
            .unwrap();
        assert_eq!(
            settings.logfire_api_key.unwrap().expose(),
            "pylf_v1_eu_secret"
        );
        assert_eq!(
            settings.logfire_base_url.as_deref(),
            Some("http://127.0.0.1:9999")
        );
    }

    #[test]
    fn otlp_transport_settings_come_from_the_standard_variables() {
        let settings = TelemetryConfig::default()
            .resolve_from(env(&[
                ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"),
                (
                    "OTEL_EXPORTER_OTLP_HEADERS",
                    "authorization=Bearer%20abc,x-team=ml",
                ),
                ("OTEL_EXPORTER_OTLP_COMPRESSION", "gzip"),
                ("OTEL_BSP_MAX_QUEUE_SIZE", "100"),
                ("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "10"),
                ("OTEL_EXPORTER_OTLP_TIMEOUT", "2500"),
            ]))
            .unwrap();
        assert_eq!(settings.otlp_protocol, OtlpProtocol::HttpProtobuf);
        assert_eq!(settings.otlp_headers[0].0, "authorization");
        assert_eq!(settings.otlp_headers[0].1.expose(), "Bearer abc");
        assert_eq!(settings.otlp_headers[1].1.expose(), "ml");
        assert!(settings.otlp_gzip);
        assert_eq!(settings.max_queue_size, 100);
        assert_eq!(settings.max_export_batch_size, 10);
        assert_eq!(settings.otlp_timeout, Duration::from_millis(2500));
        assert!(
            !format!("{settings:?}").contains("Bearer"),
            "header values are secrets"
        );

        for (variable, value) in [
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json"),
            ("OTEL_EXPORTER_OTLP_HEADERS", "novalue"),
            ("OTEL_EXPORTER_OTLP_COMPRESSION", "zip"),
            ("OTEL_BSP_MAX_QUEUE_SIZE", "0"),
        ] {
            let vars = [(variable, value)];
            let err = TelemetryConfig::default()
                .resolve_from(|name| {
                    vars.iter()
                        .find(|(k, _)| *k == name)
                        .map(|(_, v)| (*v).to_owned())
                })
                .unwrap_err();
            assert!(
                matches!(&err, TelemetryError::InvalidEnvVar { variable: v, .. } if *v == variable),
                "{err}"
            );
        }
        let explicit = TelemetryConfig::builder()
            .otlp_header("authorization", "Bearer xyz")
            .resolve_from(env(&[("OTEL_EXPORTER_OTLP_HEADERS", "a=b")]))
            .unwrap();
        assert_eq!(
            explicit.otlp_headers.len(),
            1,
            "code wins over the environment"
        );
        assert_eq!(explicit.otlp_headers[0].1.expose(), "Bearer xyz");
    }

    #[cfg(not(feature = "otlp"))]
    #[test]
    fn an_exporter_that_is_not_compiled_in_names_its_feature() {
        let err = TelemetryConfig::default()
            .resolve_from(env(&[("OTLP_EXPORT_ENABLED", "true")]))
            .unwrap_err();
        assert_eq!(
            err,
            TelemetryError::FeatureNotEnabled {
                setting: "OTLP_EXPORT_ENABLED=true".to_owned(),
                feature: "otlp"
            }
        );
        assert!(err.to_string().contains("features = [\"otlp\"]"));
    }

    #[test]
    fn secrets_never_show_in_debug_output() {
        let config = TelemetryConfig::builder().logfire_api_key("sk-secret-token");
        assert!(!format!("{config:?}").contains("sk-secret"));
        let settings = config.resolve_from(env(&[])).unwrap();
        assert!(!format!("{settings:?}").contains("sk-secret"));
        let key = settings.logfire_api_key.unwrap();
        assert_eq!(key.expose(), "sk-secret-token");
        assert_eq!(key.to_string(), "<redacted>");
    }

    #[test]
    fn ledger_settings_have_documented_bounds_and_name_what_is_wrong() {
        for (variable, value, expected) in [
            ("FLUJO_COST_LEDGER_BUFFER", "0", "from 1 to 1048576"),
            ("FLUJO_COST_LEDGER_BUFFER", "1048577", "from 1 to 1048576"),
            ("FLUJO_COST_LEDGER_REFRESH_MS", "99", "from 100 to 60000"),
            ("FLUJO_COST_LEDGER_REFRESH_MS", "60001", "from 100 to 60000"),
            (
                "FLUJO_COST_LEDGER_UNREACHABLE",
                "maybe",
                "open (calls go on",
            ),
            ("FLUJO_MONTHLY_COST_LIMIT_USD", "-3", "USD"),
        ] {
            let error = error_for(variable, value).to_string();
            assert!(
                error.contains(variable) && error.contains(expected),
                "{error}"
            );
        }
        let settings = TelemetryConfig::default()
            .resolve_from(env(&[
                ("FLUJO_COST_LEDGER_BUFFER", "1048576"),
                ("FLUJO_COST_LEDGER_REFRESH_MS", "100"),
                ("FLUJO_COST_LEDGER_UNREACHABLE", "Closed"),
                ("FLUJO_MONTHLY_COST_LIMIT_USD", "250"),
            ]))
            .unwrap();
        assert_eq!(settings.cost_ledger_buffer, Some(MAX_COST_LEDGER_BUFFER));
        assert_eq!(settings.cost_ledger_refresh, Duration::from_millis(100));
        assert_eq!(settings.cost_ledger_unreachable, WhenUnreachable::Closed);
        assert_eq!(
            settings.monthly_cost_limit,
            Some(Usd::parse("250").unwrap())
        );
        let defaults = TelemetryConfig::default().resolve_from(env(&[])).unwrap();
        assert_eq!(
            defaults.cost_ledger_buffer, None,
            "each store's own default"
        );
        assert_eq!(defaults.cost_ledger_refresh, DEFAULT_LEDGER_REFRESH);
        assert_eq!(defaults.cost_ledger_unreachable, WhenUnreachable::Open);
        let error = TelemetryConfig::builder()
            .cost_ledger_refresh(Duration::from_secs(61))
            .resolve_from(env(&[]))
            .unwrap_err()
            .to_string();
        assert!(error.contains("cost_ledger_refresh"), "{error}");
        let error = TelemetryConfig::builder()
            .cost_ledger_buffer(0)
            .resolve_from(env(&[]))
            .unwrap_err()
            .to_string();
        assert!(error.contains("cost_ledger_buffer"), "{error}");
    }

    #[test]
    fn a_postgres_ledger_url_keeps_its_password_out_of_debug_output_and_errors() {
        const URL: &str = "postgres://flujo:pg-secret@db:5432/costs";
        let url = URL;
        let config = TelemetryConfig::builder().cost_ledger(url);
        assert!(!format!("{config:?}").contains("pg-secret"));
        let settings = TelemetryConfig::default().resolve_from(env(&[("FLUJO_COST_LEDGER", URL)]));
        if cfg!(feature = "postgres") {
            let settings = settings.unwrap();
            assert!(matches!(
                settings.cost_ledger,
                Some(LedgerLocation::Postgres(_))
            ));
            assert!(!format!("{settings:?}").contains("pg-secret"));
        } else {
            let error = settings.unwrap_err();
            assert_eq!(
                error,
                TelemetryError::FeatureNotEnabled {
                    setting: "FLUJO_COST_LEDGER=postgres://flujo:***@db:5432/costs".to_owned(),
                    feature: "postgres"
                }
            );
        }
    }
}
