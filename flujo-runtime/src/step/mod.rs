//! Instrumented calls: the static descriptor of a `#[pipeline_step]`, the call object its
//! expansion drives (timing, context, attempts, fallback, the record), the retry policy and
//! attempt timeouts.

pub(crate) mod call;
pub(crate) mod current;
pub(crate) mod retry;
pub(crate) mod stream;
pub(crate) mod timeout;
