//! The hot-path core: clock, ids, attribute values, call-site descriptors, the span record,
//! the span context and `traceparent`, the on/off state and the sampler, the back-ends
//! whose GenAI names spans carry, the wait an HTTP answer asks for, and secrets hidden in a
//! text. It imports nothing of flujo; every other layer builds on it.

pub(crate) mod attribute;
pub(crate) mod blocking;
pub(crate) mod clock;
pub(crate) mod context;
pub(crate) mod genai;
pub(crate) mod ids;
pub(crate) mod names;
#[cfg(feature = "opentelemetry")]
pub(crate) mod otel;
#[cfg(feature = "opentelemetry")]
pub(crate) mod otel_current;
pub(crate) mod percent;
pub(crate) mod propagation;
pub(crate) mod record;
pub(crate) mod redact;
pub(crate) mod retry_after;
pub(crate) mod site;
pub(crate) mod state;
pub(crate) mod sync;
pub(crate) mod trace_state;
