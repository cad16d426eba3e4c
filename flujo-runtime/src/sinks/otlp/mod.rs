//! OTLP export (feature `otlp`): spans, metrics, and the transport they share.

pub(crate) mod metrics;
pub(crate) mod traces;
pub(crate) mod transport;
