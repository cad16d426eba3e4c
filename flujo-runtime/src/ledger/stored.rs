//! How a durable ledger stores a record's values as SQL integers and text, and reads them
//! back: shared by the SQLite and PostgreSQL stores, whose columns are the same.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use flujo_pricing::{TokenUsage, Usd};

use super::record::CostRecord;
use crate::core::ids::TraceId;

/// A stored row's values as SQL gave them, in the stores' shared column meanings: each store
/// reads its columns into this, and [`Stored::record`] turns it into a record.
pub(super) struct Stored {
    pub(super) timestamp_ns: i64,
    pub(super) request_id: Option<String>,
    pub(super) trace_id: Option<String>,
    pub(super) pipeline: Option<String>,
    pub(super) step: Option<String>,
    pub(super) model: String,
    pub(super) provider: String,
    pub(super) operation: String,
    /// Input, output, cache read, cache write, one-hour cache write, reasoning.
    pub(super) tokens: [i64; 6],
    pub(super) cost_nano_usd: Option<i64>,
    pub(super) price_version: String,
    pub(super) record_id: Option<Vec<u8>>,
}

impl Stored {
    pub(super) fn record(self) -> CostRecord {
        let [
            input,
            output,
            cache_read,
            cache_write,
            cache_write_1h,
            reasoning,
        ] = self.tokens.map(count);
        CostRecord {
            id: record_id_of(self.record_id),
            timestamp: timestamp_of(self.timestamp_ns),
            request_id: self.request_id,
            trace_id: trace_id_of(self.trace_id),
            pipeline: self.pipeline,
            step: self.step,
            model: self.model,
            provider: self.provider,
            operation: self.operation,
            usage: TokenUsage::new(input, output)
                .with_cache_read(cache_read)
                .with_cache_write(cache_write)
                .with_cache_write_1h(cache_write_1h)
                .with_reasoning(reasoning),
            cost: self.cost_nano_usd.map(|c| Usd::from_nanos(count(c))),
            price_version: self.price_version,
        }
    }
}

/// A count or amount as a signed SQL integer (saturating: larger values never occur).
pub(super) fn to_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// A stored count (never negative when flujo wrote it).
pub(super) fn count(value: i64) -> u64 {
    u64::try_from(value).unwrap_or(0)
}

/// A record's timestamp as stored: nanoseconds since the epoch.
pub(super) fn timestamp_nanos(at: SystemTime) -> i64 {
    at.duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
}

/// A stored timestamp read back.
fn timestamp_of(nanos: i64) -> SystemTime {
    UNIX_EPOCH + Duration::from_nanos(count(nanos))
}

/// A stored trace id (hexadecimal text) read back.
fn trace_id_of(text: Option<String>) -> Option<TraceId> {
    text.and_then(|t| u128::from_str_radix(&t, 16).ok())
        .map(TraceId)
}

/// A stored record identity (16 bytes, big-endian) read back; anything else is no identity.
fn record_id_of(bytes: Option<Vec<u8>>) -> Option<u128> {
    let bytes: [u8; 16] = bytes?.try_into().ok()?;
    Some(u128::from_be_bytes(bytes))
}
