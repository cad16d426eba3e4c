//! Where prices come from.

use std::path::PathBuf;

use super::declare::{Declared, Env, Meta, Setting};
use super::values;
use super::{TelemetryConfig, TelemetryError};

/// The price data and the rows over it.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct PricingSettings {
    /// TOML price file over the `genai-prices` data.
    pub(crate) pricing_file: Option<PathBuf>,
    /// `genai-prices` data file instead of the shipped data.
    pub(crate) prices_file: Option<PathBuf>,
    /// Unpriced models are refused.
    pub(crate) strict: bool,
}

pub(super) const PRICING_FILE: Setting<Option<PathBuf>> = Setting {
    meta: Meta {
        field: Some("pricing_file"),
        env: &["FLUJO_PRICING_FILE"],
        accepts: "a path to a TOML price file (a regular file of at most 16 MiB)",
        doc: "your own price rows (TOML), winning over the data; also read at build time by the macros",
        secret: false,
    },
    parse: |v| values::path(v).map(Some),
    valid: values::any,
    default: || None,
    default_text: "none",
};

pub(super) const PRICES_DATA: Setting<Option<PathBuf>> = Setting {
    meta: Meta {
        field: Some("prices_file"),
        // The old name, easy to take for FLUJO_PRICING_FILE, still works.
        env: &["FLUJO_GENAI_PRICES_DATA", "FLUJO_PRICES_FILE"],
        accepts: "a path to a `genai-prices` `data.json` (at most 16 MiB)",
        doc: "a newer `genai-prices` release's `data.json`, used instead of the data flujo ships (`FLUJO_PRICES_FILE` is its old name)",
        secret: false,
    },
    parse: |v| values::path(v).map(Some),
    valid: values::any,
    default: || None,
    default_text: "the shipped `genai-prices` data",
};

pub(super) const STRICT: Setting<bool> = Setting {
    meta: Meta {
        field: Some("strict_pricing"),
        env: &["FLUJO_PRICING_STRICT"],
        accepts: values::BOOL,
        doc: "refuse calls of models without a price (`Limit::UnpricedModel`) instead of recording them as unpriced",
        secret: false,
    },
    parse: values::boolean,
    valid: values::any,
    default: || false,
    default_text: "`false`",
};

pub(super) const DECLARED: &[&dyn Declared] = &[&PRICING_FILE, &PRICES_DATA, &STRICT];

pub(super) fn resolve(
    config: &TelemetryConfig,
    env: &Env<'_>,
) -> Result<PricingSettings, TelemetryError> {
    Ok(PricingSettings {
        pricing_file: PRICING_FILE.get(config.pricing_file.clone().map(Some), env)?,
        prices_file: PRICES_DATA.get(config.prices_file.clone().map(Some), env)?,
        strict: STRICT.get(config.strict_pricing, env)?,
    })
}
