//! flujo's own log lines on stderr.

use std::str::FromStr;

use super::declare::{Declared, Env, Meta, Setting};
use super::values;
use super::{TelemetryConfig, TelemetryError};

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

/// How flujo's log lines are written.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct LogSettings {
    /// Log format on stderr.
    pub(crate) format: LogFormat,
    /// The `RUST_LOG` filter in force.
    pub(crate) filter: String,
}

pub(super) const FORMAT: Setting<LogFormat> = Setting {
    meta: Meta {
        field: Some("log_format"),
        env: &["FLUJO_LOG_FORMAT"],
        accepts: "text or json",
        doc: "log lines on stderr: readable text, or one JSON object per line",
        secret: false,
    },
    parse: |v| v.parse().ok(),
    valid: values::any,
    default: LogFormat::default,
    default_text: "`text`",
};

pub(super) const FILTER: Setting<String> = Setting {
    meta: Meta {
        field: None,
        env: &["RUST_LOG"],
        accepts: "a tracing filter such as `info` or `warn,my_app=debug`",
        doc: "which log lines are written",
        secret: false,
    },
    parse: |v| {
        tracing_subscriber::EnvFilter::try_new(v)
            .is_ok()
            .then(|| v.to_owned())
    },
    valid: values::any,
    default: || "info".to_owned(),
    default_text: "`info`",
};

pub(super) const DECLARED: &[&dyn Declared] = &[&FORMAT, &FILTER];

pub(super) fn resolve(
    config: &TelemetryConfig,
    env: &Env<'_>,
) -> Result<LogSettings, TelemetryError> {
    Ok(LogSettings {
        format: FORMAT.get(config.log_format, env)?,
        filter: FILTER.get(None, env)?,
    })
}
