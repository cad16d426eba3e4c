//! Logfire: its write token and base URL (its switch is with the other exporters').

use super::super::secret::Secret;
use super::declare::{Declared, Env, Meta, Setting};
use super::values;
use super::{TelemetryConfig, TelemetryError};

/// Where spans and logs go when Logfire export is on.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct LogfireSettings {
    /// The write token, if any. Never printed.
    pub(crate) api_key: Option<Secret>,
    /// Logfire's base URL, when set explicitly (else from the token's region).
    pub(crate) base_url: Option<String>,
}

pub(super) const API_KEY: Setting<Option<Secret>> = Setting {
    meta: Meta {
        field: Some("logfire_api_key"),
        env: &["LOGFIRE_API_KEY", "LOGFIRE_TOKEN"],
        accepts: "a Logfire write token",
        doc: "Logfire's write token (never printed, never captured)",
        secret: true,
    },
    parse: |v| Some(Some(Secret::from(v.trim()))),
    valid: values::any,
    default: || None,
    default_text: "none",
};

pub(super) const BASE_URL: Setting<Option<String>> = Setting {
    meta: Meta {
        field: Some("logfire_base_url"),
        env: &["LOGFIRE_BASE_URL"],
        accepts: values::URL,
        doc: "Logfire's OTLP base URL",
        secret: false,
    },
    parse: |v| values::url(v).map(Some),
    valid: |v| v.as_deref().is_none_or(values::valid_url),
    default: || None,
    default_text: "from the token's region (`https://logfire-us.pydantic.dev`, `https://logfire-eu.pydantic.dev`)",
};

pub(super) const DECLARED: &[&dyn Declared] = &[&API_KEY, &BASE_URL];

pub(super) fn resolve(
    config: &TelemetryConfig,
    env: &Env<'_>,
) -> Result<LogfireSettings, TelemetryError> {
    Ok(LogfireSettings {
        api_key: API_KEY.get(config.logfire_api_key.clone().map(Some), env)?,
        base_url: BASE_URL.get(config.logfire_base_url.clone().map(Some), env)?,
    })
}
