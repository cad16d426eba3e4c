//! The durable cost ledger and the budgets it enforces.

use std::time::Duration;

use flujo_pricing::Usd;

use super::declare::{Declared, Env, Meta, Setting};
use super::values;
use super::{TelemetryConfig, TelemetryError};
use crate::accounting::budget::WhenUnreachable;
use crate::ledger::{LedgerLocation, MAX_COST_LEDGER_BUFFER};

/// Where cost records are kept and what they may add up to.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct LedgerSettings {
    /// Durable cost ledger (`None`: in memory).
    pub(crate) location: Option<LedgerLocation>,
    /// Daily cost limit.
    pub(crate) daily_limit: Option<Usd>,
    /// Monthly cost limit.
    pub(crate) monthly_limit: Option<Usd>,
    /// Records a durable ledger buffers at most (`None`: its default).
    pub(crate) buffer: Option<usize>,
    /// How often a PostgreSQL ledger reads the fleet's spending.
    pub(crate) refresh: Duration,
    /// What calls do while the fleet's spending is unknown.
    pub(crate) unreachable: WhenUnreachable,
}

const USD: &str = "a non-negative amount of USD, e.g. 25.00";

pub(super) const LOCATION: Setting<Option<LedgerLocation>> = Setting {
    meta: Meta {
        field: Some("cost_ledger"),
        env: &["FLUJO_COST_LEDGER"],
        accepts: "a SQLite file path (feature `sqlite`), or a `postgres://user:password@host:port/db` URL or libpq `host=... user=... password=... dbname=...` string (feature `postgres`; the password is never printed). Other connection strings (`jdbc:postgresql://`, `postgresql+psycopg2://`, `mysql://`, `user:pass@host`, ADO.NET) are refused with what to write instead, never taken as a file name",
        doc: "the durable cost ledger, kept across restarts (PostgreSQL: shared by every replica)",
        secret: false,
    },
    parse: |v| Some(Some(LedgerLocation::parse(v.trim()))),
    valid: values::any,
    default: || None,
    default_text: "in memory",
};

pub(super) const DAILY_LIMIT: Setting<Option<Usd>> = Setting {
    meta: Meta {
        field: Some("daily_cost_limit_usd"),
        env: &["FLUJO_DAILY_COST_LIMIT_USD"],
        accepts: USD,
        doc: "most USD recorded per UTC day (the fleet's, with PostgreSQL); calls after it are refused",
        secret: false,
    },
    parse: |v| values::usd_limit(v).map(Some),
    valid: values::any,
    default: || None,
    default_text: "none",
};

pub(super) const MONTHLY_LIMIT: Setting<Option<Usd>> = Setting {
    meta: Meta {
        field: Some("monthly_cost_limit_usd"),
        env: &["FLUJO_MONTHLY_COST_LIMIT_USD"],
        accepts: USD,
        doc: "most USD recorded per UTC calendar month; calls after it are refused",
        secret: false,
    },
    parse: |v| values::usd_limit(v).map(Some),
    valid: values::any,
    default: || None,
    default_text: "none",
};

pub(super) const BUFFER: Setting<Option<usize>> = Setting {
    meta: Meta {
        field: Some("cost_ledger_buffer"),
        env: &["FLUJO_COST_LEDGER_BUFFER"],
        accepts: "a whole number of cost records from 1 to 1048576",
        doc: "cost records a durable ledger buffers for its writer (at most 4 KiB of memory each): a full SQLite buffer makes calls wait up to 10 s; PostgreSQL's never waits, it drops and counts",
        secret: false,
    },
    parse: |v| values::count(v, 1..=MAX_COST_LEDGER_BUFFER).map(Some),
    valid: |n| n.is_none_or(|n| (1..=MAX_COST_LEDGER_BUFFER).contains(&n)),
    default: || None,
    default_text: "4096 (SQLite), 65536 (PostgreSQL)",
};

pub(super) const REFRESH: Setting<Duration> = Setting {
    meta: Meta {
        field: Some("cost_ledger_refresh"),
        env: &["FLUJO_COST_LEDGER_REFRESH_MS"],
        accepts: "a whole number of milliseconds from 100 to 60000",
        doc: "how often a PostgreSQL ledger reads the fleet's spending: the fleet overshoots a limit by at most what it spends in one interval",
        secret: false,
    },
    parse: |v| values::millis(v, 100..=60_000),
    valid: |d| values::within_millis(d, 100..=60_000),
    default: || Duration::from_secs(1),
    default_text: "1 s",
};

pub(super) const UNREACHABLE: Setting<WhenUnreachable> = Setting {
    meta: Meta {
        field: Some("cost_ledger_unreachable"),
        env: &["FLUJO_COST_LEDGER_UNREACHABLE"],
        accepts: WhenUnreachable::VALUES,
        doc: "what calls do while a PostgreSQL ledger's fleet spending cannot be read (three refresh intervals, at least 1 s) and a limit is set",
        secret: false,
    },
    parse: WhenUnreachable::parse,
    valid: values::any,
    default: WhenUnreachable::default,
    default_text: "`open`",
};

pub(super) const DECLARED: &[&dyn Declared] = &[
    &LOCATION,
    &DAILY_LIMIT,
    &MONTHLY_LIMIT,
    &BUFFER,
    &REFRESH,
    &UNREACHABLE,
];

pub(super) fn resolve(
    config: &TelemetryConfig,
    env: &Env<'_>,
) -> Result<LedgerSettings, TelemetryError> {
    let location = LOCATION.get(config.cost_ledger.clone().map(Some), env)?;
    if let Some(refused) = location.as_ref().and_then(LedgerLocation::refusal) {
        return Err(TelemetryError::CostLedger(refused));
    }
    if let Some(ledger) = &location
        && !ledger.is_built()
    {
        return Err(TelemetryError::FeatureNotEnabled {
            setting: if config.cost_ledger.is_some() {
                format!("`cost_ledger = {ledger:?}`")
            } else {
                format!("FLUJO_COST_LEDGER={ledger}")
            },
            feature: ledger.feature().unwrap_or_default(),
        });
    }
    Ok(LedgerSettings {
        location,
        daily_limit: DAILY_LIMIT.get(config.daily_cost_limit_usd.map(Some), env)?,
        monthly_limit: MONTHLY_LIMIT.get(config.monthly_cost_limit_usd.map(Some), env)?,
        buffer: BUFFER.get(config.cost_ledger_buffer.map(Some), env)?,
        refresh: REFRESH.get(config.cost_ledger_refresh, env)?,
        unreachable: UNREACHABLE.get(config.cost_ledger_unreachable, env)?,
    })
}
