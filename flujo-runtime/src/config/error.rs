//! The configuration's error type.

use std::fmt;

use crate::core::context::TraceparentError;
use crate::ledger::error::CostError;

/// Errors from [`init_telemetry`](crate::init_telemetry) and configuration; each names what
/// is wrong and what is accepted. Its `Debug` is its message, so that a `main` returning it
/// prints `Error: environment variable ... is invalid: expected ...`, not a struct dump.
#[derive(Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum TelemetryError {
    /// An environment variable has a value flujo cannot use.
    #[error("environment variable {variable}={} is invalid: expected {expected}", shown(.value))]
    InvalidEnvVar {
        /// The variable's name.
        variable: &'static str,
        /// Its value (secrets are shown as `<redacted>`).
        value: String,
        /// What it accepts.
        expected: &'static str,
    },
    /// An environment variable flujo reads holds bytes that are not UTF-8.
    #[error(
        "environment variable {variable} is not valid UTF-8: flujo reads text values only; \
         set it to UTF-8 text or unset it"
    )]
    NotUnicode {
        /// The variable's name.
        variable: String,
    },
    /// A field of [`TelemetryConfig`](crate::TelemetryConfig) has a value flujo cannot use.
    #[error("telemetry setting `{field}` = {value} is invalid: expected {expected}")]
    InvalidSetting {
        /// The field's name.
        field: &'static str,
        /// Its value.
        value: String,
        /// What it accepts.
        expected: &'static str,
    },
    /// A setting asks for an exporter this build of flujo does not include.
    #[error(
        "{setting} needs flujo's `{feature}` feature, which this build does not have: \
         add `features = [\"{feature}\"]` to the flujo dependency in Cargo.toml"
    )]
    FeatureNotEnabled {
        /// The setting that asked for it, as the user wrote it.
        setting: String,
        /// The Cargo feature to enable.
        feature: &'static str,
    },
    /// An exporter could not be started (for example, the OS refused a thread).
    #[error("could not start the {exporter} exporter: {reason}")]
    ExporterStart {
        /// The exporter.
        exporter: &'static str,
        /// What went wrong.
        reason: String,
    },
    /// The Prometheus endpoint could not listen.
    #[error("could not serve Prometheus metrics on {address}: {reason}")]
    PrometheusServer {
        /// The address asked for.
        address: std::net::SocketAddr,
        /// What went wrong (e.g. address in use).
        reason: String,
    },
    /// A W3C `traceparent` header could not be parsed.
    #[error(transparent)]
    Traceparent(#[from] TraceparentError),
    /// A setting needs another one that is missing.
    #[error("{setting} needs {needs}")]
    MissingSetting {
        /// The setting, as the user wrote it.
        setting: &'static str,
        /// What it needs.
        needs: &'static str,
    },
    /// `init_telemetry` was called while an earlier [`TelemetryGuard`](crate::TelemetryGuard) is alive.
    #[error(
        "telemetry is already initialised: call init_telemetry once and keep its TelemetryGuard \
         alive (dropping the guard shuts telemetry down; a new init_telemetry may follow)"
    )]
    AlreadyInitialized,
    /// The price file (or a price) cannot be used.
    #[error(transparent)]
    Pricing(#[from] flujo_pricing::PricingError),
    /// The cost ledger cannot be opened.
    #[error(transparent)]
    CostLedger(#[from] CostError),
}

/// A value as the error shows it: quoted, except the `<redacted: ..>` of a secret.
fn shown(value: &str) -> String {
    if value.starts_with("<redacted") {
        value.to_owned()
    } else {
        format!("{value:?}")
    }
}

impl fmt::Debug for TelemetryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}
