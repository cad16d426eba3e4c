//! The guard's shutdown and the step's OpenTelemetry context.

use std::time::Duration;

use super::declare::{Declared, Env, Meta, Setting};
use super::values;
use super::{TelemetryConfig, TelemetryError};

pub(super) const SHUTDOWN_TIMEOUT: Setting<Duration> = Setting {
    meta: Meta {
        field: Some("shutdown_timeout"),
        env: &["FLUJO_SHUTDOWN_TIMEOUT_MS"],
        accepts: "a whole number of milliseconds from 0 to 600000 (ten minutes)",
        doc: "the most dropping the guard waits, in all: for running calls, then the ledger and the exporters",
        secret: false,
    },
    parse: |v| values::millis(v, 0..=600_000),
    valid: |d| values::within_millis(d, 0..=600_000),
    default: || Duration::from_secs(5),
    default_text: "5 s",
};

pub(super) const CONTEXT_ACTIVATION: Setting<Option<bool>> = Setting {
    meta: Meta {
        field: Some("otel_context_activation"),
        env: &["FLUJO_OTEL_CONTEXT_ACTIVATION"],
        accepts: values::BOOL,
        doc: "while a step runs, its span is `opentelemetry::Context::current()` for OpenTelemetry instrumentation called from it (about 100 ns and an allocation per step; feature `opentelemetry`)",
        secret: false,
    },
    parse: |v| values::boolean(v).map(Some),
    valid: values::any,
    default: || None,
    default_text: "on once flujo is handed an OpenTelemetry exporter or processor",
};

pub(super) const DECLARED: &[&dyn Declared] = &[&SHUTDOWN_TIMEOUT, &CONTEXT_ACTIVATION];

pub(super) fn shutdown_timeout(
    config: &TelemetryConfig,
    env: &Env<'_>,
) -> Result<Duration, TelemetryError> {
    SHUTDOWN_TIMEOUT.get(config.shutdown_timeout, env)
}

pub(super) fn context_activation(
    config: &TelemetryConfig,
    env: &Env<'_>,
) -> Result<Option<bool>, TelemetryError> {
    CONTEXT_ACTIVATION.get(config.otel_context_activation.map(Some), env)
}
