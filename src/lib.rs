//! # flujo
//!
//! Compile-time instrumentation for AI/LLM pipelines. Annotate functions with
//! [`#[pipeline_step]`](pipeline_step), call [`init_telemetry`] once, and every call records a
//! span (parent links across `.await` and threads), step metrics, retry counts and logs.
//! See the README for the full guide.
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

#[doc(inline)]
pub use flujo_macros::pipeline;
#[doc(inline)]
pub use flujo_macros::pipeline_step;
#[doc(inline)]
pub use flujo_macros::track_cost;
#[doc(inline)]
pub use flujo_runtime::*;
