//! The run scope: what a pipeline run (or a `UsageLimits` scope) shares with every step and
//! model call inside it (request id, pipeline, usage so far and its limits), the handle and
//! future wrapper that carry it across tasks and threads, and the refusal a limit returns.

pub(crate) mod handle;
pub(crate) mod limits;
pub(crate) mod scope;
