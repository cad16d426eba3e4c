//! Pipelines declared with `pipeline!` and the [`Flujo`] runner: a run has a request id and a
//! root span `invoke_workflow {pipeline}` under which every step nests, hooks around each
//! step, usage limits, and a [`PipelineResult`] with the step history and totals.

use crate::core::names::{
    FLUJO_PIPELINE_DESCRIPTION, FLUJO_PIPELINE_NAME, FLUJO_PIPELINE_VERSION, FLUJO_REQUEST_ID,
    GEN_AI_OPERATION_NAME, GEN_AI_WORKFLOW_NAME,
};
use std::borrow::Cow;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use flujo_pricing::{TokenUsage, Usd};

use super::hooks::{self, Hook, RunInfo};
pub use super::result::{IntoStepSource, PipelineError, StepResult};
use crate::core::attribute::{AttributeValue, capped_copy};
use crate::core::context::SpanContext;
use crate::core::genai::conversation_attributes;
use crate::core::ids::TraceId;
use crate::core::record::{ErrorDetails, Outcome};
use crate::run::handle::WithContext;
use crate::run::limits::UsageLimits;
use crate::run::scope::{self, RunScope};
use crate::step::call::{Step, StepCall};

/// What `pipeline!` declares about a pipeline.
#[derive(Debug)]
#[non_exhaustive]
pub struct PipelineInfo {
    /// The pipeline's name (`gen_ai.workflow.name`).
    pub name: &'static str,
    /// `version = "..."`, recorded as `flujo.pipeline.version`.
    pub version: Option<&'static str>,
    /// The doc comment, recorded as `flujo.pipeline.description`.
    pub description: Option<&'static str>,
    /// The steps, in order.
    pub steps: &'static [&'static str],
    pub(crate) root: &'static Step,
}

impl PipelineInfo {
    /// What `pipeline!` generates.
    #[doc(hidden)]
    pub const fn new(
        name: &'static str,
        version: Option<&'static str>,
        description: Option<&'static str>,
        steps: &'static [&'static str],
        root: &'static Step,
    ) -> PipelineInfo {
        PipelineInfo {
            name,
            version,
            description,
            steps,
            root,
        }
    }
}

/// A pipeline declared with `pipeline!`: run it with [`Flujo`].
pub trait Pipeline {
    /// What the first step takes.
    type Input;
    /// What the last step produces.
    type Output;

    /// Its name, version, description and steps.
    fn info(&self) -> &'static PipelineInfo;

    /// Runs the steps; called by [`Flujo`], which sets up the run around it.
    #[doc(hidden)]
    fn run_steps<'a>(
        &'a self,
        run: &'a RunState,
        input: Self::Input,
    ) -> impl Future<Output = Result<Self::Output, PipelineError>> + 'a;
}

/// What a run produced, and how.
#[derive(Debug)]
#[non_exhaustive]
pub struct PipelineResult<O> {
    /// The last step's output, or why the run failed.
    pub output: Result<O, PipelineError>,
    /// The run's request id.
    pub request_id: String,
    /// The run's trace (`None` while telemetry is off).
    pub trace_id: Option<TraceId>,
    /// Every step that ran, in order.
    pub step_history: Vec<StepResult>,
    /// Tokens used by all steps.
    pub total_tokens: TokenUsage,
    /// Exact cost of all steps.
    pub total_cost: Usd,
}

/// Per-run options of [`Flujo::run_with`]: `RunOptions::new().request_id("req-1")`.
#[derive(Clone, Debug, Default)]
#[non_exhaustive]
pub struct RunOptions {
    /// The request id; generated when `None`.
    pub request_id: Option<String>,
    /// Continue this trace (e.g. [`SpanContext::from_traceparent`] of an incoming request);
    /// default: the current span, else a new trace.
    pub parent: Option<SpanContext>,
    /// The conversation (session, thread) the run belongs to: `gen_ai.conversation.id` on the
    /// run's root span and every model call in it (and `session.id`, which Langfuse and
    /// OpenInference group by). Default: none.
    pub conversation_id: Option<String>,
}

impl RunOptions {
    /// The defaults: a generated request id, the current span as parent.
    pub fn new() -> RunOptions {
        RunOptions::default()
    }

    /// Sets [`RunOptions::request_id`](RunOptions#structfield.request_id).
    #[must_use]
    pub fn request_id(mut self, request_id: impl Into<String>) -> RunOptions {
        self.request_id = Some(request_id.into());
        self
    }

    /// Sets [`RunOptions::parent`](RunOptions#structfield.parent).
    #[must_use]
    pub fn parent(mut self, parent: SpanContext) -> RunOptions {
        self.parent = Some(parent);
        self
    }

    /// Sets [`RunOptions::conversation_id`](RunOptions#structfield.conversation_id).
    #[must_use]
    pub fn conversation_id(mut self, conversation_id: impl Into<String>) -> RunOptions {
        self.conversation_id = Some(conversation_id.into());
        self
    }
}

/// Runs a pipeline: `Flujo::new(pipeline).with_hook(hook).with_usage_limits(limits).run(input)`.
pub struct Flujo<P> {
    pipeline: P,
    hooks: Vec<Arc<dyn Hook>>,
    limits: Option<UsageLimits>,
}

impl<P: Pipeline> Flujo<P> {
    /// A runner for `pipeline`, without hooks or limits.
    pub fn new(pipeline: P) -> Flujo<P> {
        Flujo {
            pipeline,
            hooks: Vec::new(),
            limits: None,
        }
    }

    /// Adds a hook (called in the order added).
    #[must_use]
    pub fn with_hook(mut self, hook: impl Hook + 'static) -> Flujo<P> {
        self.hooks.push(Arc::new(hook));
        self
    }

    /// Adds hooks, as the guide's `Flujo(pipeline, hooks=[...])`.
    #[must_use]
    pub fn with_hooks(mut self, hooks: impl IntoIterator<Item = Arc<dyn Hook>>) -> Flujo<P> {
        self.hooks.extend(hooks);
        self
    }

    /// Limits what each run's model calls may use (see [`UsageLimits`]).
    #[must_use]
    pub fn with_usage_limits(mut self, limits: UsageLimits) -> Flujo<P> {
        self.limits = Some(limits);
        self
    }

    /// The pipeline.
    pub fn pipeline(&self) -> &P {
        &self.pipeline
    }

    /// Runs the pipeline to completion on this thread. Steps that are `async` are polled
    /// here too; use [`Flujo::run_async`] inside an async runtime.
    pub fn run(&self, input: P::Input) -> PipelineResult<P::Output> {
        block_on(self.run_async(input))
    }

    /// [`Flujo::run`] with a request id or a parent trace.
    pub fn run_with(&self, input: P::Input, options: RunOptions) -> PipelineResult<P::Output> {
        block_on(self.run_async_with(input, options))
    }

    /// Runs the pipeline.
    pub async fn run_async(&self, input: P::Input) -> PipelineResult<P::Output> {
        self.run_async_with(input, RunOptions::default()).await
    }

    /// Runs the pipeline with a request id or a parent trace.
    pub async fn run_async_with(
        &self,
        input: P::Input,
        options: RunOptions,
    ) -> PipelineResult<P::Output> {
        let info = self.pipeline.info();
        let request_id: Arc<str> = options.request_id.map_or_else(new_request_id, Arc::from);
        let conversation_id: Option<Arc<str>> = options
            .conversation_id
            .map(|id| Arc::from(capped_copy(&id)));
        let scope = Arc::new(RunScope {
            budget: self.limits.map(UsageLimits::budget),
            pipeline: Some(info.name),
            request_id: Some(Arc::clone(&request_id)),
            conversation_id: conversation_id.clone(),
            ..RunScope::default()
        });
        let mut root = StepCall::new(info.root);
        options
            .parent
            .unwrap_or_else(SpanContext::current)
            .in_scope(|| root.start());
        if root.is_recording() {
            let text = |s: &str| AttributeValue::String(Cow::Owned(s.to_owned()));
            root.push_attribute(
                GEN_AI_OPERATION_NAME,
                AttributeValue::String("invoke_workflow".into()),
            );
            root.push_attribute(
                GEN_AI_WORKFLOW_NAME,
                AttributeValue::String(info.name.into()),
            );
            root.push_attribute(
                FLUJO_PIPELINE_NAME,
                AttributeValue::String(info.name.into()),
            );
            root.push_attribute(FLUJO_REQUEST_ID, text(&request_id));
            if let Some(conversation) = &conversation_id {
                for (key, value) in conversation_attributes(conversation) {
                    root.push_attribute(key, value);
                }
            }
            if let Some(version) = info.version {
                root.push_attribute(
                    FLUJO_PIPELINE_VERSION,
                    AttributeValue::String(version.into()),
                );
            }
            if let Some(description) = info.description {
                root.push_attribute(
                    FLUJO_PIPELINE_DESCRIPTION,
                    AttributeValue::String(description.into()),
                );
            }
        }
        let state = RunState {
            run: RunInfo {
                pipeline: info.name,
                version: info.version,
                request_id: request_id.to_string(),
                trace_id: root.context().trace_id(),
            },
            hooks: &self.hooks,
            scope: Arc::clone(&scope),
            history: Mutex::new(Vec::new()),
        };
        hooks::each(&self.hooks, "pre_run", |hook| hook.pre_run(&state.run));
        let output = WithContext::new(
            root.context(),
            Some(scope),
            self.pipeline.run_steps(&state, input),
        )
        .await;
        match &output {
            Ok(_) => root.end_with(Outcome::Ok),
            Err(error) => {
                tracing::error!(
                    target: "flujo",
                    pipeline = info.name,
                    request_id = %request_id,
                    step = error.step,
                    error = %error,
                    "pipeline run failed"
                );
                root.end_with(Outcome::Error(Box::new(ErrorDetails {
                    error_type: error.error_type,
                    message: error.to_string(),
                })));
            }
        }
        let RunState { run, history, .. } = state;
        let step_history = history.into_inner().unwrap_or_else(|e| e.into_inner());
        hooks::each(&self.hooks, "post_run", |hook| {
            hook.post_run(&run, &step_history, output.as_ref().err())
        });
        PipelineResult {
            total_tokens: step_history
                .iter()
                .fold(TokenUsage::default(), |sum, s| sum + s.tokens),
            total_cost: step_history.iter().map(|s| s.cost).sum(),
            output,
            request_id: run.request_id,
            trace_id: run.trace_id,
            step_history,
        }
    }
}

/// 128 random bits as 32 hex digits.
fn new_request_id() -> Arc<str> {
    Arc::from(format!("{:032x}", fastrand::u128(..)).as_str())
}

/// A run in progress, as the code `pipeline!` generates sees it.
#[doc(hidden)]
pub struct RunState<'a> {
    run: RunInfo,
    hooks: &'a [Arc<dyn Hook>],
    scope: Arc<RunScope>,
    history: Mutex<Vec<StepResult>>,
}

/// A step's value on its way to what comes next in a pipeline. A step that returns `Result`
/// or a future must be written `step?` or `step.await` in `pipeline!`: its value reaching the
/// next step as is would be a forgotten `?` or `.await`, and is a compile error saying so at
/// that step. (Method resolution picks the `Result` method, then the future one, then the
/// plain value's, which is why there are three.)
#[doc(hidden)]
pub struct StageValue<T>(pub Option<T>);

/// A `Result` handed on without `?`.
#[diagnostic::on_unimplemented(
    message = "this step returns `{Self}`: write `step?` in `pipeline!` to pass its `Ok` value on \
               (and end the run with its `Err`)",
    label = "this step returns `Result`: write `?` after it",
    note = "to hand a `Result` itself to the next step, wrap it in a type of your own"
)]
#[doc(hidden)]
pub trait ForgottenQuestionMark {}

/// A future handed on without `.await`.
#[diagnostic::on_unimplemented(
    message = "this step returns a future (`{Self}`): write `step.await` (or `step.await?`) in `pipeline!`",
    label = "this step is `async`: write `.await` after it",
    note = "to hand a future itself to the next step, wrap it in a type of your own"
)]
#[doc(hidden)]
pub trait ForgottenAwait {}

impl<T, E> StageValue<Result<T, E>> {
    /// Refused at compile time (no type implements [`ForgottenQuestionMark`]); typed as the
    /// `Ok` value so that the compiler reports only that.
    pub fn hand_on(self) -> T
    where
        Result<T, E>: ForgottenQuestionMark,
    {
        unreachable!("no type implements ForgottenQuestionMark")
    }
}

/// The future case of [`StageValue::hand_on`].
#[doc(hidden)]
pub trait FutureStage {
    /// The future.
    type Future: Future;
    /// Refused at compile time (no type implements [`ForgottenAwait`]); typed as the
    /// future's output so that the compiler reports only that.
    fn hand_on(self) -> <Self::Future as Future>::Output
    where
        Self::Future: ForgottenAwait;
}

impl<F: Future> FutureStage for StageValue<F> {
    type Future = F;
    fn hand_on(self) -> F::Output
    where
        F: ForgottenAwait,
    {
        unreachable!("no type implements ForgottenAwait")
    }
}

/// The plain case of [`StageValue::hand_on`]: the value itself.
#[doc(hidden)]
pub trait PlainStage<T> {
    /// The value.
    fn hand_on(&mut self) -> T;
}

impl<T> PlainStage<T> for StageValue<T> {
    fn hand_on(&mut self) -> T {
        match self.0.take() {
            Some(value) => value,
            None => unreachable!("a stage value is handed on once"),
        }
    }
}

/// A step that has started; see [`RunState::step_started`].
#[doc(hidden)]
pub struct Stage {
    name: &'static str,
    started: Instant,
}

impl RunState<'_> {
    /// Before a step: runs the `pre_step` hooks and starts its clock.
    pub fn step_started(&self, name: &'static str) -> Stage {
        hooks::each(self.hooks, "pre_step", |hook| {
            hook.pre_step(&self.run, name)
        });
        self.scope.begin_stage();
        *self.scope.refused.lock().unwrap_or_else(|e| e.into_inner()) = None;
        scope::expect_stage_step(name);
        Stage {
            name,
            started: Instant::now(),
        }
    }

    /// After a step that returns a plain value.
    pub fn step_ok<T>(&self, stage: Stage, value: T) -> T {
        self.finish(stage, None);
        value
    }

    /// After a step that returns `Result`: its error ends the run.
    pub fn step_result<T, E: IntoStepSource>(
        &self,
        stage: Stage,
        result: Result<T, E>,
    ) -> Result<T, PipelineError> {
        match result {
            Ok(value) => {
                self.finish(stage, None);
                Ok(value)
            }
            Err(error) => {
                let error = PipelineError {
                    step: self.stage_name(&stage),
                    error_type: std::any::type_name::<E>(),
                    source: error.into_step_source(),
                    limit: self
                        .scope
                        .refused
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .take(),
                };
                self.finish(stage, Some(&error));
                Err(error)
            }
        }
    }

    /// The declared name of the stage's step (`name = ".."`), else the function's name that
    /// `pipeline!` wrote.
    fn stage_name(&self, stage: &Stage) -> &'static str {
        self.scope.stage_step().unwrap_or(stage.name)
    }

    fn finish(&self, stage: Stage, error: Option<&PipelineError>) {
        scope::stage_step_done();
        let name = self.stage_name(&stage);
        let usage = self.scope.end_stage();
        let result = StepResult {
            name,
            success: error.is_none(),
            attempts: 1 + usage.retries,
            timeouts: usage.timeouts,
            fallbacks: usage.fallbacks,
            latency: stage.started.elapsed(),
            tokens: usage.tokens,
            cost: usage.cost,
            unpriced_calls: usage.unpriced_calls,
            feedback: error.map(|e| e.source.to_string()).or(usage.feedback),
        };
        match error {
            None => hooks::each(self.hooks, "post_step", |hook| {
                hook.post_step(&self.run, &result)
            }),
            Some(error) => hooks::each(self.hooks, "on_step_failure", |hook| {
                hook.on_step_failure(&self.run, &result, error)
            }),
        }
        self.history
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(result);
    }
}

/// Runs `future` to completion on this thread. With feature `tokio`: outside any runtime, on
/// a shared one (so steps that need tokio's timers or sockets work); on a multi-thread
/// runtime's worker, as a blocking section of that runtime. Otherwise it is polled here.
fn block_on<F: Future>(future: F) -> F::Output {
    #[cfg(feature = "tokio")]
    {
        use tokio::runtime::{Handle, RuntimeFlavor};
        match Handle::try_current() {
            Ok(handle) if handle.runtime_flavor() == RuntimeFlavor::MultiThread => {
                return tokio::task::block_in_place(|| handle.block_on(future));
            }
            Ok(_) => {}
            Err(_) => {
                if let Some(runtime) = shared_runtime() {
                    return runtime.block_on(future);
                }
            }
        }
    }
    poll_here(future)
}

/// The runtime `Flujo::run` drives steps on outside any runtime (feature `tokio`): one worker
/// for timers and sockets, made on first use; `None` if the OS refused its thread.
#[cfg(feature = "tokio")]
fn shared_runtime() -> Option<&'static tokio::runtime::Runtime> {
    static RUNTIME: std::sync::OnceLock<Option<tokio::runtime::Runtime>> =
        std::sync::OnceLock::new();
    RUNTIME
        .get_or_init(|| {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .thread_name("flujo-run")
                .enable_all()
                .build()
                .ok()
        })
        .as_ref()
}

/// Polls `future` to completion on this thread.
fn poll_here<F: Future>(future: F) -> F::Output {
    struct ThreadWaker(std::thread::Thread);
    impl std::task::Wake for ThreadWaker {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = std::task::Waker::from(Arc::new(ThreadWaker(std::thread::current())));
    let mut context = std::task::Context::from_waker(&waker);
    let mut future = std::pin::pin!(future);
    loop {
        if let std::task::Poll::Ready(output) = future.as_mut().poll(&mut context) {
            return output;
        }
        std::thread::park();
    }
}
