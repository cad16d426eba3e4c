//! Instrumented calls: the static descriptor of a `#[pipeline_step]`, the call object its
//! expansion drives (timing, context, attempts, fallback, the record), the retry policy and
//! attempt timeouts.

pub(crate) mod advice;
pub(crate) mod call;
#[cfg(any(
    feature = "reqwest",
    feature = "async-openai-client",
    feature = "genai",
    feature = "ollama",
    feature = "rig"
))]
mod client_errors;
pub(crate) mod current;
pub(crate) mod retry;
pub(crate) mod stream;
pub(crate) mod timeout;
