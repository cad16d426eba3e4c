//! Pipelines declared with `pipeline!`, the `Flujo` runner, and hooks around runs.
//!
//! (Layer `pipeline`: also quality, the validators, checklists and scores of
//! `flujo::quality`. Imports `core`, `metrics`, for quality's counters, `run` and `step`;
//! never an exporter or the ledger.)

pub(crate) mod hooks;
pub(crate) mod quality;
pub(crate) mod result;
pub(crate) mod runner;

pub use self::hooks::{Hook, RunInfo};
pub use self::runner::{
    Flujo, Pipeline, PipelineError, PipelineInfo, PipelineResult, RunOptions, StepResult,
};
