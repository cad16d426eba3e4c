//! What the ledger keeps of a model call.

use std::time::SystemTime;

use flujo_pricing::{TokenUsage, Usd};

use crate::core::ids::TraceId;

/// One priced (or unpriced) model call.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct CostRecord {
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
