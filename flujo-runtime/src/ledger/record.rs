//! What the ledger keeps of a model call.

use std::time::SystemTime;

use flujo_pricing::{TokenUsage, Usd};

use crate::core::ids::TraceId;

/// One priced (or unpriced) model call.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct CostRecord {
    /// The record's identity, unique to its model call (made from the call's trace and span
    /// ids): a durable ledger stores it and refuses a second copy, such as a batch written
    /// again after the database committed it but its acknowledgement was lost. `None` for
    /// rows written by a flujo before 0.1.0 had identities.
    pub id: Option<u128>,
    /// When the call ended.
    pub timestamp: SystemTime,
    /// The request id of the run the call belonged to, when known.
    pub request_id: Option<String>,
    /// The trace of the call, when telemetry recorded one.
    pub trace_id: Option<TraceId>,
    /// The pipeline the call ran in, when known.
    pub pipeline: Option<String>,
    /// The `#[pipeline_step]` the call ran in, when any.
    pub step: Option<String>,
    /// The model as the call named it.
    pub model: String,
    /// `gen_ai.provider.name` of the model.
    pub provider: String,
    /// `gen_ai.operation.name` of the call.
    pub operation: String,
    /// Tokens used.
    pub usage: TokenUsage,
    /// Exact cost; `None` when the model has no price (never counted as $0).
    pub cost: Option<Usd>,
    /// The price table that priced the call (see `PriceTable::version`).
    pub price_version: String,
}

/// The identity of the model call with these trace and span ids: distinct for every span of
/// a trace (the span id enters it one-to-one), and across traces as unlikely to collide as
/// two random 128-bit numbers. A call recorded without ids (while its thread exits) gets a
/// random one.
pub(crate) fn record_id(trace_id: u128, span_id: u64) -> u128 {
    if span_id == 0 {
        return fastrand::u128(..);
    }
    trace_id.rotate_left(64) ^ u128::from(span_id)
}

#[cfg(test)]
impl CostRecord {
    /// A record of a call (of model `m`) ending `at`, with identity `id` and cost `nanos`.
    pub(crate) fn sample(id: u128, at: SystemTime, nanos: Option<u64>) -> CostRecord {
        CostRecord {
            id: Some(id),
            timestamp: at,
            request_id: None,
            trace_id: None,
            pipeline: None,
            step: None,
            model: "m".to_owned(),
            provider: "p".to_owned(),
            operation: "chat".to_owned(),
            usage: TokenUsage::new(1, 1),
            cost: nanos.map(Usd::from_nanos),
            price_version: "v".to_owned(),
        }
    }
}
