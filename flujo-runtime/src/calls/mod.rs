//! Model calls: `ModelCall`, what `#[track_cost]` expands to; streamed calls; usage from
//! responses (`ReportsUsage`, JSON bodies and the provider adapters); the capture of a call's content; and
//! the observer that applies a finished call's cost to metrics and the ledger.

pub(crate) mod apply;
pub(crate) mod chunk;
pub(crate) mod content;
#[cfg(feature = "genai")]
mod genai;
mod json;
pub(crate) mod model_call;
#[cfg(feature = "ollama")]
mod ollama;
#[cfg(feature = "async-openai")]
mod openai;
#[cfg(feature = "rig")]
mod rig;
pub(crate) mod stream;
pub(crate) mod usage;
