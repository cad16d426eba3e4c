//! Which exporters run: the standard's `OTEL_*_EXPORTER` lists, the guide's switches and
//! `OTEL_SDK_DISABLED`, with one precedence: code, then the standard's variable, then the
//! guide's (two that disagree are one WARN naming both).

use std::time::Duration;

use super::declare::{Declared, Env, Meta, Setting};
use super::values;
use super::{TelemetryConfig, TelemetryError};

/// What is exported, and where to.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct ExporterSettings {
    /// `OTEL_SDK_DISABLED=true`: nothing is exported, whatever else says.
    pub(crate) sdk_disabled: bool,
    /// Spans over OTLP.
    pub(crate) otlp_traces: bool,
    /// Metrics pushed over OTLP.
    pub(crate) otlp_metrics: bool,
    /// Logs over OTLP.
    pub(crate) otlp_logs: bool,
    /// Spans printed on stdout (`OTEL_TRACES_EXPORTER=console`).
    pub(crate) console_traces: bool,
    /// Metrics printed on stdout (`OTEL_METRICS_EXPORTER=console`).
    pub(crate) console_metrics: bool,
    /// Prometheus metrics.
    pub(crate) prometheus: bool,
    /// Spans and logs to Logfire.
    pub(crate) logfire: bool,
    /// How often pushed metrics (OTLP, console) are sent.
    pub(crate) metrics_export_interval: Duration,
}

/// The setting that turned each exporter on, as the error of one not compiled in names it.
#[derive(Default)]
struct Switches {
    otlp_traces: &'static str,
    otlp_metrics: &'static str,
    console: &'static str,
    prometheus: &'static str,
    logfire: &'static str,
}

const TRACES: &[&str] = &["otlp", "console", "none"];
const METRICS: &[&str] = &["otlp", "prometheus", "console", "none"];
const LOGS: &[&str] = &["otlp", "console", "none"];

pub(super) const SDK_DISABLED: Setting<bool> = Setting {
    meta: Meta {
        field: None,
        env: &["OTEL_SDK_DISABLED"],
        accepts: values::BOOL,
        doc: "`true` exports nothing (OTLP, console, Prometheus, Logfire), whatever else says, code included; cost records, budgets and stderr logs go on",
        secret: false,
    },
    parse: values::boolean,
    valid: values::any,
    default: || false,
    default_text: "`false`",
};

pub(super) const TRACES_EXPORTER: Setting<Option<Vec<String>>> = Setting {
    meta: Meta {
        field: None,
        env: &["OTEL_TRACES_EXPORTER"],
        accepts: "a comma-separated list of otlp and console, or none",
        doc: "where spans go; wins over `OTLP_EXPORT_ENABLED`",
        secret: false,
    },
    parse: |v| values::names(v, TRACES).map(Some),
    valid: |_| true,
    default: || None,
    default_text: "from `OTLP_EXPORT_ENABLED`",
};

pub(super) const METRICS_EXPORTER: Setting<Option<Vec<String>>> = Setting {
    meta: Meta {
        field: None,
        env: &["OTEL_METRICS_EXPORTER"],
        accepts: "a comma-separated list of otlp, prometheus and console, or none",
        doc: "where metrics go; `prometheus` serves them for scraping (as `PROMETHEUS_EXPORT_ENABLED`)",
        secret: false,
    },
    parse: |v| values::names(v, METRICS).map(Some),
    valid: |_| true,
    default: || None,
    default_text: "none",
};

pub(super) const LOGS_EXPORTER: Setting<Option<Vec<String>>> = Setting {
    meta: Meta {
        field: None,
        env: &["OTEL_LOGS_EXPORTER"],
        accepts: "a comma-separated list of otlp and console, or none",
        doc: "where flujo's log records go besides stderr (`console` and `none`: stderr only)",
        secret: false,
    },
    parse: |v| values::names(v, LOGS).map(Some),
    valid: |_| true,
    default: || None,
    default_text: "stderr only",
};

pub(super) const EXPORT_OTLP: Setting<bool> = Setting {
    meta: Meta {
        field: Some("export_otlp"),
        env: &["OTLP_EXPORT_ENABLED"],
        accepts: values::BOOL,
        doc: "spans over OTLP (the guide's switch; `OTEL_TRACES_EXPORTER` wins)",
        secret: false,
    },
    parse: values::boolean,
    valid: values::any,
    default: || false,
    default_text: "`false`",
};

pub(super) const EXPORT_OTLP_METRICS: Setting<bool> = Setting {
    meta: Meta {
        field: Some("export_otlp_metrics"),
        env: &[],
        accepts: values::BOOL,
        doc: "metrics pushed over OTLP too",
        secret: false,
    },
    parse: values::boolean,
    valid: values::any,
    default: || false,
    default_text: "`otlp` in `OTEL_METRICS_EXPORTER`",
};

pub(super) const EXPORT_PROMETHEUS: Setting<bool> = Setting {
    meta: Meta {
        field: Some("export_prometheus"),
        env: &["PROMETHEUS_EXPORT_ENABLED"],
        accepts: values::BOOL,
        doc: "Prometheus metrics (`prometheus` in `OTEL_METRICS_EXPORTER` turns it on too)",
        secret: false,
    },
    parse: values::boolean,
    valid: values::any,
    default: || false,
    default_text: "`false`",
};

pub(super) const EXPORT_LOGFIRE: Setting<bool> = Setting {
    meta: Meta {
        field: Some("export_telemetry"),
        env: &["TELEMETRY_EXPORT_ENABLED"],
        accepts: values::BOOL,
        doc: "spans and logs to Logfire (needs a write token)",
        secret: false,
    },
    parse: values::boolean,
    valid: values::any,
    default: || false,
    default_text: "`false`",
};

pub(super) const METRIC_EXPORT_INTERVAL: Setting<Duration> = Setting {
    meta: Meta {
        field: Some("metrics_export_interval"),
        env: &["OTEL_METRIC_EXPORT_INTERVAL"],
        accepts: "a whole number of milliseconds from 100 to 3600000 (an hour)",
        doc: "how often pushed metrics (OTLP, console) are sent",
        secret: false,
    },
    parse: |v| values::millis(v, 100..=3_600_000),
    valid: |d| values::within_millis(d, 100..=3_600_000),
    default: || Duration::from_secs(60),
    default_text: "60 s",
};

pub(super) const DECLARED: &[&dyn Declared] = &[
    &SDK_DISABLED,
    &TRACES_EXPORTER,
    &METRICS_EXPORTER,
    &LOGS_EXPORTER,
    &EXPORT_OTLP,
    &EXPORT_OTLP_METRICS,
    &EXPORT_PROMETHEUS,
    &EXPORT_LOGFIRE,
    &METRIC_EXPORT_INTERVAL,
];

/// Whether a list names `name` (`None`: no list).
fn names(list: &Option<Vec<String>>, name: &str) -> Option<bool> {
    list.as_ref().map(|names| names.iter().any(|n| n == name))
}

pub(super) fn resolve(
    config: &TelemetryConfig,
    env: &Env<'_>,
) -> Result<ExporterSettings, TelemetryError> {
    let traces = TRACES_EXPORTER.get(None, env)?;
    let metrics = METRICS_EXPORTER.get(None, env)?;
    let logs = LOGS_EXPORTER.get(None, env)?;
    let mut switches = Switches::default();

    let otlp_traces = match config.export_otlp {
        Some(on) => {
            switches.otlp_traces = "`export_otlp = true`";
            EXPORT_OTLP.get(Some(on), env)?
        }
        None => {
            let guide = EXPORT_OTLP.lookup(None, EXPORT_OTLP.meta.env, env)?;
            let standard = names(&traces, "otlp");
            if let (Some(standard), Some(guide)) = (standard, guide)
                && standard != guide
            {
                env.warn(format!(
                    "OTEL_TRACES_EXPORTER={} and OTLP_EXPORT_ENABLED={guide} disagree: \
                     OTEL_TRACES_EXPORTER wins (the OpenTelemetry standard's variable), so \
                     spans are {}exported over OTLP; unset one of them",
                    traces.as_deref().unwrap_or_default().join(","),
                    if standard { "" } else { "not " }
                ));
            }
            switches.otlp_traces = if standard.is_some() {
                "OTEL_TRACES_EXPORTER=otlp"
            } else {
                "OTLP_EXPORT_ENABLED=true"
            };
            standard.or(guide).unwrap_or(false)
        }
    };
    let otlp_metrics = match config.export_otlp_metrics {
        Some(on) => {
            switches.otlp_metrics = "`export_otlp_metrics = true`";
            on
        }
        None => {
            switches.otlp_metrics = "OTEL_METRICS_EXPORTER=otlp";
            names(&metrics, "otlp").unwrap_or(false)
        }
    };
    let prometheus = match config.export_prometheus {
        Some(on) => {
            switches.prometheus = "`export_prometheus = true`";
            on
        }
        None if names(&metrics, "prometheus") == Some(true) => {
            switches.prometheus = "OTEL_METRICS_EXPORTER=prometheus";
            true
        }
        None => {
            switches.prometheus = "PROMETHEUS_EXPORT_ENABLED=true";
            EXPORT_PROMETHEUS.get(None, env)?
        }
    };
    switches.logfire = if config.export_telemetry.is_some() {
        "`export_telemetry = true`"
    } else {
        "TELEMETRY_EXPORT_ENABLED=true"
    };
    let console_traces = names(&traces, "console") == Some(true);
    let console_metrics = names(&metrics, "console") == Some(true);
    switches.console = if console_traces {
        "OTEL_TRACES_EXPORTER=console"
    } else {
        "OTEL_METRICS_EXPORTER=console"
    };
    let mut exporters = ExporterSettings {
        sdk_disabled: SDK_DISABLED.get(None, env)?,
        otlp_traces,
        otlp_metrics,
        otlp_logs: names(&logs, "otlp") == Some(true),
        console_traces,
        console_metrics,
        prometheus,
        logfire: EXPORT_LOGFIRE.get(config.export_telemetry, env)?,
        metrics_export_interval: METRIC_EXPORT_INTERVAL.get(config.metrics_export_interval, env)?,
    };
    if exporters.sdk_disabled {
        // The operator's switch: it wins over the code too (an incident must be able to stop
        // the traffic without a release).
        exporters.otlp_traces = false;
        exporters.otlp_metrics = false;
        exporters.otlp_logs = false;
        exporters.console_traces = false;
        exporters.console_metrics = false;
        exporters.prometheus = false;
        exporters.logfire = false;
        env.info(
            "OTEL_SDK_DISABLED=true: no span, metric or log is exported (OTLP, console, \
             Prometheus, Logfire); cost records, budgets and the log lines on stderr go on"
                .to_owned(),
        );
    }
    exporters.check_features(&switches)?;
    Ok(exporters)
}

impl ExporterSettings {
    /// An exporter asked for must be compiled in.
    fn check_features(&self, switches: &Switches) -> Result<(), TelemetryError> {
        let otlp = cfg!(feature = "otlp");
        let wanted = [
            (self.otlp_traces, switches.otlp_traces, "otlp", otlp),
            (self.otlp_metrics, switches.otlp_metrics, "otlp", otlp),
            (self.otlp_logs, "OTEL_LOGS_EXPORTER=otlp", "otlp", otlp),
            (
                self.console_traces || self.console_metrics,
                switches.console,
                "otlp",
                otlp,
            ),
            (
                self.prometheus,
                switches.prometheus,
                "prometheus",
                cfg!(feature = "prometheus"),
            ),
            (
                self.logfire,
                switches.logfire,
                "logfire",
                cfg!(feature = "logfire"),
            ),
        ];
        match wanted.into_iter().find(|(on, _, _, built)| *on && !built) {
            None => Ok(()),
            Some((_, setting, feature, _)) => Err(TelemetryError::FeatureNotEnabled {
                setting: setting.to_owned(),
                feature,
            }),
        }
    }
}
