//! Cost tracking: token usage, prices, usage limits, the ledger and reports.
//!
//! (Layer `cost`: `ModelCall`, what `#[track_cost]` expands to; the prices in force;
//! admission against the run's limits, the daily limit and strict pricing; the observer that
//! applies finished model calls to metrics and the ledger; the ledger (memory, SQLite) and
//! reports. Imports `core`, `collect`, `metrics`, `run` and `step`.)

pub(crate) mod apply;
pub(crate) mod budget;
pub(crate) mod content;
pub(crate) mod error;
pub(crate) mod ledger;
pub(crate) mod model_call;
#[cfg(feature = "async-openai")]
mod openai;
pub(crate) mod pricing;
pub(crate) mod query;
pub(crate) mod report;
pub(crate) mod stream;
pub(crate) mod usage;

pub use self::budget::WhenUnreachable;
pub use self::content::{DEFAULT_MAX_CONTENT_BYTES, GenAiMessages, REDACTED, redact};
pub use self::error::CostError;
#[cfg(feature = "postgres")]
pub use self::ledger::postgres::SCHEMA_VERSION as POSTGRES_SCHEMA_VERSION;
pub use self::ledger::{
    COST_RECORD_BUFFER_BYTES, CostRecord, DEFAULT_POSTGRES_BUFFER, KILL_LOSS_WINDOW,
    LedgerLocation, MAX_COST_LEDGER_BUFFER, MAX_QUEUED_COST_RECORD_BYTES, MAX_QUEUED_COST_RECORDS,
    PostgresUrl, UnsupportedLocation, recent_cost_records,
};
pub use self::pricing::{prices_version, set_model_price};
#[cfg(durable_ledger)]
pub use self::query::CostLedger;
pub use self::query::{get_cost_report, utc_today};
pub use self::report::{CostGroup, CostReport, GroupBy, ReportDate};
pub use self::stream::{ChunkUsage, StreamChunk, TrackedStream};
pub use self::usage::ReportsUsage;
pub use crate::core::record::{Operation, StreamTiming};
pub use crate::run::limits::{Limit, UsageLimitExceeded, UsageLimits};
/// The `genai-prices` data flujo prices calls with: its format, matching and pricing.
pub use flujo_pricing::genai;
pub use flujo_pricing::genai::ROUNDED_PRICES;
pub use flujo_pricing::{
    Date, MAX_PRICE_FILE_BYTES, MAX_TOKENS_PER_CALL, MAX_USD_PER_MILLION_TOKENS, MAX_VERSION_CHARS,
    ModelPrice, PerMillionTokens, PriceTable, PricingError, Rates, TokenUsage, Usd,
};
