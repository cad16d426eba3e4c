//! How a durable ledger stores a record's values as SQL integers and text, and reads them
//! back: shared by the SQLite and PostgreSQL stores, whose columns are the same.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::core::ids::TraceId;

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
pub(super) fn timestamp_of(nanos: i64) -> SystemTime {
    UNIX_EPOCH + Duration::from_nanos(count(nanos))
}

/// A stored trace id (hexadecimal text) read back.
pub(super) fn trace_id_of(text: Option<String>) -> Option<TraceId> {
    text.and_then(|t| u128::from_str_radix(&t, 16).ok())
        .map(TraceId)
}

/// A stored record identity (16 bytes, big-endian) read back; anything else is no identity.
pub(super) fn record_id_of(bytes: Option<Vec<u8>>) -> Option<u128> {
    let bytes: [u8; 16] = bytes?.try_into().ok()?;
    Some(u128::from_be_bytes(bytes))
}
