//! Model prices, token usage and exact money for [flujo](https://docs.rs/flujo)'s cost
//! tracking. Use it through the `flujo` crate, which re-exports these types.

#![warn(missing_docs)]
#![forbid(unsafe_code)]

pub mod extract;
mod file;
pub mod genai;
mod leaves;
mod money;
mod names;
mod rules;
mod table;
mod unit_price;
pub mod units;
mod usage;

pub use file::MAX_PRICE_FILE_BYTES;
pub use money::{MAX_USD_PER_MILLION_TOKENS, PerMillionTokens, PricingError, Usd};
pub use names::{edit_distance, infer_provider, name_candidates};
pub use table::{MAX_VERSION_CHARS, ModelPrice, PriceTable, Priced};
pub use time::Date;
pub use usage::{MAX_TOKENS_PER_CALL, TokenUsage};
