//! OTLP export (feature `otlp`): spans, metrics, logs, and the transport they share.

pub(crate) mod logs;
pub(crate) mod metrics;
pub(crate) mod proto;
pub(crate) mod traces;
pub(crate) mod transport;
pub(crate) mod wire;
