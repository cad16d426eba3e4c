//! Instrumented calls: the static descriptor of a `#[pipeline_step]`, the call object its
//! expansion drives (timing, context, attempts, the record), and the retry policy. Imports
//! `core`, `collect` and `run`.

pub(crate) mod call;
pub(crate) mod current;
pub(crate) mod retry;
