//! # flujo
//!
//! Compile-time instrumentation for AI/LLM pipelines. Annotate functions with
//! [`#[pipeline_step]`](pipeline_step), the functions that call a model with
//! [`#[track_cost]`](track_cost), call [`init_telemetry`] once, and every call records a span
//! (parent links across `.await` and threads), step and model metrics, retries, exact cost
//! and logs, exported to the tools you already run: an OpenTelemetry collector (OTLP),
//! Prometheus, Logfire, Langfuse, Arize Phoenix, or your own OpenTelemetry SDK setup.
//!
//! **The guide** is in [`guide`]: [getting started](guide::getting_started),
//! [steps](guide::steps), [model calls and cost](guide::cost), [streaming](guide::streaming),
//! [pipelines](guide::pipelines), [export back-ends](guide::export),
//! [OpenTelemetry interop](guide::opentelemetry), [settings](guide::settings),
//! [budgets and ledgers](guide::ledgers), [operations](guide::operations), [logs](guide::logs),
//! [testing](guide::testing), [reliability](guide::reliability).
//!
//! | feature | what it adds |
//! |---|---|
//! | `otlp` | OTLP export of spans and metrics (gRPC or HTTP/protobuf, TLS); implies `opentelemetry` and `tokio` |
//! | `prometheus` | a Prometheus `/metrics` endpoint |
//! | `logfire` | spans and logs to Logfire |
//! | `opentelemetry` | interop with the application's OpenTelemetry SDK (0.33) and `tracing` setup |
//! | `sqlite` | the durable cost ledger in a SQLite file |
//! | `postgres` | the cost ledger in PostgreSQL, shared by a fleet, with fleet-wide budgets |
//! | `async-openai` | usage read from `async-openai`'s response types |
//! | `genai` | usage read from the `genai` crate's chat response and stream events |
//! | `ollama` | usage read from `ollama-rs`'s chat and generation responses |
//! | `rig` | usage read from `rig-core`'s completion response (needs Rust 1.95) |
//! | `tokio` | waits step aside for the tokio runtime's other tasks |
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
//! ## A first tracked model call
//!
//! [`#[track_cost]`](track_cost) on the function that calls a model records a
//! `{operation} {model}` span with the GenAI attributes, token and cost metrics and a cost
//! record priced exactly from the `genai-prices` data flujo ships; [`cost::get_cost_report`]
//! sums them up. (Here flujo's stub model stands in for a provider's client.)
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
//!
//! ## Next: export to a collector
//!
//! Build with the `otlp` feature and set `OTLP_EXPORT_ENABLED=true`: spans and metrics go to
//! the OpenTelemetry collector at `http://localhost:4317` (gRPC). Elsewhere, name it with
//! `OTLP_ENDPOINT` (or `OTEL_EXPORTER_OTLP_ENDPOINT`), or in code:
//!
//! ```no_run
//! # #[cfg(feature = "otlp")]
//! # fn main() -> Result<(), flujo::TelemetryError> {
//! let _telemetry = flujo::init_telemetry_with(
//!     flujo::TelemetryConfig::builder()
//!         .service_name("checkout")
//!         .export_otlp(true)
//!         .otlp_endpoint("http://collector:4317"),
//! )?;
//! # Ok(()) }
//! # #[cfg(not(feature = "otlp"))]
//! # fn main() {}
//! ```
//!
//! [`guide::export`] covers HTTP/protobuf, TLS, headers, Prometheus and Logfire;
//! [`guide::settings`] every setting and environment variable.

#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]

// The guide's pages, shown by rustdoc; their samples are doctests when every feature they use
// is on (the test command runs them so).
#[cfg(any(
    doc,
    all(
        doctest,
        feature = "otlp",
        feature = "prometheus",
        feature = "logfire",
        feature = "sqlite",
        feature = "postgres",
        feature = "async-openai"
    )
))]
pub mod guide;

/// The README's samples, compiled and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct Readme;

/// Declares typed pipelines from `#[pipeline_step]` functions; run them with [`Flujo`].
///
/// ```text
/// pipeline! {
///     /// Doc comment: recorded as `flujo.pipeline.description`.
///     #[pipeline(version = "1.0.0")]             // optional: `flujo.pipeline.version`
///     pub pipeline NAME(input: In) -> Out { a? >> b.await? >> c }
///     pipeline WITH_CONTEXT(ctx: &Ctx, input: In) -> Out { .. }   // every step gets `ctx` first
/// }
/// ```
///
/// Stages are written as Rust calls them: `step`, `step?` (a `Result` step; its `Err` ends
/// the run with a [`pipeline::PipelineError`]), `step.await`, `step.await?`. Each declaration
/// generates a type named like the pipeline: `NAME::new()` without a context,
/// `NAME::new(ctx)` with one. A stage whose value does not fit the next one is a compile
/// error at that step.
///
/// ```
/// use flujo::{Flujo, pipeline, pipeline_step};
///
/// #[pipeline_step]
/// fn split(text: String) -> Vec<String> {
///     text.split_whitespace().map(str::to_owned).collect()
/// }
///
/// #[pipeline_step]
/// fn count(words: Vec<String>) -> usize {
///     words.len()
/// }
///
/// pipeline! {
///     /// Counts words.
///     #[pipeline(version = "1.0.0")]
///     pipeline words(text: String) -> usize { split >> count }
/// }
///
/// assert_eq!(Flujo::new(words::new()).run("a b c".to_owned()).output.unwrap(), 3);
/// ```
#[doc(inline)]
pub use flujo_macros::pipeline;
/// Instruments a function as a pipeline step: a span per call, step metrics, retries with
/// backoff, failure logs.
///
/// | argument | meaning |
/// |---|---|
/// | `name = "..."` | span and metric name of the step (default: the function's name) |
/// | `fields(key = expr, ...)` | span attributes, evaluated only when the span is recorded: `key = expr` (integers, floats, bools, strings), `key = %expr` (`Display`), `key = ?expr` (`Debug`), `param` alone (that parameter); keys may be dotted or string literals; `None` records nothing |
/// | `skip(a, b)` / `skip_all` | these parameters are never recorded: a `fields` expression that reads one in any form is a compile error |
/// | `retries = N` | re-run the body on `Err` up to N more times (the function returns `Result`; a call refused by a usage limit is never retried) |
/// | `backoff = "fixed"` / `"exponential"` | wait `backoff_ms` before each retry, or `backoff_ms * 2^(n-1)` (default); at most `max_backoff_ms` |
/// | `backoff_ms = N` | base delay in milliseconds (default 100) |
/// | `jitter = "full"` / `"equal"` / `"none"` | how each wait is spread (default: `full` for exponential, `none` for fixed) |
/// | `max_backoff_ms = N` | the longest wait, computed or asked for by the error's [`RetryAdvice`] (default 60,000) |
/// | `retry_for_ms = N` | a deadline across attempts and waits: the last wait is cut to what is left (an attempt under way is bounded by `timeout_ms`, not cut) |
/// | `retry_if = path` | `fn(&E) -> bool`: whether an error is retried, for an error without [`RetryAdvice`] |
/// | `validate = path` | `fn(&T) -> Result<(), impl Display>` run on each `Ok`: a rejection becomes the error (`E: From<flujo::quality::ValidationError>`) and is retried |
/// | `crate = path` | where flujo is, for crates that re-export it (default `::flujo`) |
///
/// Works on sync fns and `async fn`s, methods (`self`, `&self`, `&mut self`), generics,
/// `impl Trait` anywhere in the output, `#[async_trait]` methods, and functions returning a
/// future whose last expression is an `async` block (`async { }`, `async move { }`,
/// `Box::pin(async ..)`, `async move { }.boxed()`). Nothing is recorded unless named in
/// `fields`.
///
/// ```
/// use flujo::pipeline_step;
///
/// #[derive(Debug)]
/// struct ModelError;
/// impl std::fmt::Display for ModelError {
///     fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
///         f.write_str("rate limited")
///     }
/// }
///
/// #[pipeline_step(name = "answer", retries = 2, backoff_ms = 1, skip(api_key), fields(model))]
/// fn ask(model: &str, api_key: &str, question: &str) -> Result<String, ModelError> {
///     let _ = api_key;
///     Ok(format!("{model}: {question}"))
/// }
///
/// assert_eq!(ask("stub", "sk-secret", "hi").unwrap(), "stub: hi");
/// ```
#[doc(inline)]
pub use flujo_macros::pipeline_step;
/// Tracks a model call: a `{operation} {model}` span with the GenAI attributes, token and
/// cost metrics, an exactly priced cost record in the ledger, and admission against the usage
/// limits (a refused call returns [`UsageLimitExceeded`], converted into the error type).
///
/// | argument | meaning |
/// |---|---|
/// | `model = "gpt-4o"` / `model = <expr>` | the model; an expression is read when the call starts |
/// | `provider = "openai"` | `gen_ai.provider.name` (default: the price table's, else inferred from the name) |
/// | `operation = "chat"` | `chat` (default), `text_completion`, `embeddings`, `generate_content` |
/// | `usage = path` | `fn(&T) -> TokenUsage` (or `Option<TokenUsage>`) instead of [`cost::ReportsUsage`] |
/// | `unpriced` | silences the compile-time warning for a literal model without a built-in price |
/// | `crate = path` | where flujo is, for crates that re-export it |
///
/// The function's value (its `Ok` value) reports the usage through [`cost::ReportsUsage`];
/// a function returning `Result` needs `E: From<UsageLimitExceeded>` so that a limit can
/// refuse the call. It composes with `#[pipeline_step]` in either order: the step is the
/// model call's parent.
///
/// ```
/// use flujo::{TokenUsage, UsageLimitExceeded, track_cost};
///
/// #[track_cost(model = "gpt-4o-mini")]
/// fn complete(prompt: &str) -> Result<TokenUsage, UsageLimitExceeded> {
///     Ok(TokenUsage::new(prompt.len() as u64, 20))
/// }
///
/// assert_eq!(complete("hello").unwrap().output, 20);
/// ```
#[doc(inline)]
pub use flujo_macros::track_cost;
#[doc(inline)]
pub use flujo_runtime::*;

/// What most programs use: `use flujo::prelude::*;`.
pub mod prelude {
    // Re-exports, documented where they live (the macros only: `crate::pipeline` would also
    // bring the `pipeline` module).
    #[doc(no_inline)]
    pub use crate::cost::ReportsUsage;
    #[doc(no_inline)]
    pub use crate::pipeline::{Hook, PipelineResult, RunOptions};
    #[doc(no_inline)]
    pub use crate::{
        ContextHandle, Flujo, Pipeline, SpanContext, StepFutureExt, TelemetryConfig,
        TelemetryError, TokenUsage, UsageLimitExceeded, UsageLimits, Usd, init_telemetry,
        init_telemetry_with,
    };
    #[doc(no_inline)]
    pub use flujo_macros::{pipeline, pipeline_step, track_cost};
}
