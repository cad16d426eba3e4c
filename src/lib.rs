//! # flujo
//!
//! Compile-time instrumentation for AI/LLM pipelines. Annotate functions with
//! [`#[pipeline_step]`](pipeline_step), call [`init_telemetry`] once, and every call records a
//! span (parent links across `.await` and threads), step metrics, retry counts and logs.
//! See the README for the full guide.
//!
//! The root holds what nearly every program names: the macros, [`init_telemetry`] and its
//! guard, [`TelemetryConfig`], [`SpanContext`] and [`StepFutureExt`], the usage and money
//! types, [`UsageLimits`], and the [`Flujo`] runner with [`Pipeline`]. Everything else lives in
//! named modules: [`config`], [`context`], [`cost`], [`export`], [`pipeline`](mod@pipeline), [`quality`],
//! [`testing`], [`logfire`]; [`prelude`] imports the common set at once.
//!
//! ```
//! use flujo::pipeline_step;
//!
//! #[derive(Debug)]
//! struct ModelError(String);
//! impl std::fmt::Display for ModelError {
//!     fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
//!         f.write_str(&self.0)
//!     }
//! }
//!
//! #[pipeline_step(name = "summarise", retries = 2, backoff = "exponential", backoff_ms = 1)]
//! fn summarise(text: &str) -> Result<String, ModelError> {
//!     if text.is_empty() {
//!         return Err(ModelError("empty input".into()));
//!     }
//!     Ok(text.split('.').next().unwrap_or_default().to_owned())
//! }
//!
//! let _telemetry = flujo::init_telemetry().expect("valid telemetry settings");
//! assert_eq!(summarise("First. Second.").unwrap(), "First");
//! ```
//!
//! ## Cost tracking
//!
//! [`#[track_cost]`](track_cost) on the function that calls a model records a
//! `{operation} {model}` span with the GenAI attributes, token and cost metrics and a cost
//! record priced exactly from flujo's dated price table; [`cost::get_cost_report`] sums them up.
//!
//! ```
//! use flujo::testing::{Capture, StubCompletion, StubError, StubModel};
//! use flujo::{UsageLimitExceeded, track_cost};
//!
//! #[derive(Debug, thiserror::Error)]
//! enum AskError {
//!     #[error(transparent)]
//!     Model(#[from] StubError),
//!     #[error(transparent)]
//!     Budget(#[from] UsageLimitExceeded),
//! }
//!
//! #[track_cost(model = "gpt-4o-mini")]
//! fn ask(model: &StubModel, question: &str) -> Result<StubCompletion, AskError> {
//!     Ok(model.chat(question)?)
//! }
//!
//! let capture = Capture::start();
//! let model = StubModel::new("gpt-4o-mini");
//! ask(&model, "Why is the sky blue?")?;
//! let record = &capture.cost_records()[0];
//! assert_eq!(record.usage.cache_write_input, 1024);
//! assert!(record.cost.is_some());
//! assert_eq!(capture.spans_named("chat gpt-4o-mini").len(), 1);
//! # Ok::<(), AskError>(())
//! ```
//!
//! ## Pipelines
//!
//! [`pipeline!`](macro@pipeline) declares a typed pipeline from steps; [`Flujo`] runs it with a
//! request id, a root span `invoke_workflow {name}`, hooks and usage limits.
//!
//! ```
//! use flujo::{Flujo, pipeline, pipeline_step};
//!
//! #[pipeline_step]
//! fn words(text: String) -> Vec<String> {
//!     text.split_whitespace().map(str::to_owned).collect()
//! }
//!
//! #[pipeline_step]
//! fn count(words: Vec<String>) -> Result<usize, std::num::TryFromIntError> {
//!     Ok(words.len())
//! }
//!
//! pipeline! {
//!     /// Counts the words of a text.
//!     pub pipeline word_count(text: String) -> usize {
//!         words >> count?
//!     }
//! }
//!
//! let result = Flujo::new(word_count::new()).run("one two three".to_owned());
//! assert_eq!(result.output.unwrap(), 3);
//! assert_eq!(result.step_history.len(), 2);
//! ```

#![forbid(unsafe_code)]

#[doc(inline)]
pub use flujo_macros::pipeline;
#[doc(inline)]
pub use flujo_macros::pipeline_step;
#[doc(inline)]
pub use flujo_macros::track_cost;
#[doc(inline)]
pub use flujo_runtime::*;

/// What most programs use: `use flujo::prelude::*;`.
pub mod prelude {
    pub use crate::cost::ReportsUsage;
    pub use crate::pipeline::{Hook, PipelineResult, RunOptions};
    pub use crate::{
        ContextHandle, Flujo, Pipeline, SpanContext, StepFutureExt, TelemetryConfig,
        TelemetryError, TokenUsage, UsageLimitExceeded, UsageLimits, Usd, init_telemetry,
        init_telemetry_with, pipeline, pipeline_step, track_cost,
    };
}
