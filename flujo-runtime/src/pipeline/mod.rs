//! Pipelines declared with `pipeline!`, the `Flujo` runner, and hooks around runs.
//!
//! Also quality: the validators, checklists and scores of `flujo::quality`.

pub(crate) mod hooks;
pub(crate) mod quality;
pub(crate) mod result;
pub(crate) mod runner;

pub use self::hooks::{Hook, RunInfo};
pub use self::runner::{PipelineError, PipelineInfo, PipelineResult, RunOptions, StepResult};
