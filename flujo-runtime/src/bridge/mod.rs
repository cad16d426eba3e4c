//! From `tracing` into flujo and back out: the layer that bridges `tracing` spans and events
//! into flujo's traces, the stderr text/JSON log subscriber, and the `logfire` macros.

pub(crate) mod layer;
pub(crate) mod log;
pub mod logfire;
