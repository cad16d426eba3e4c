//! What `#[pipeline_step]` expands to: a static [`Step`] per call site and a [`StepCall`]
//! per call that times the call, keeps the span context, counts attempts and hands its record
//! to the collector when it ends.

use crate::core::names::Metric;
use crate::core::names::{
    ERROR_TYPE, FLUJO_FALLBACK, FLUJO_FALLBACK_ERROR, FLUJO_RETRY, FLUJO_RETRY_ATTEMPT,
    FLUJO_RETRY_DELAY_MS, FLUJO_RETRY_ERROR, FLUJO_RETRY_HINTED, FLUJO_RETRY_REASON,
    FLUJO_RETRY_STOPPED_BY,
};
use std::borrow::Cow;
use std::fmt;
use std::mem::ManuallyDrop;
use std::ops::ControlFlow;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use super::advice::Advice;
use super::retry::{RetryPolicy, RetryReason, StopReason, Wait};
use super::timeout::StepTimeout;
use crate::collect::{bridged, recycle, ring, sink, worker};
use crate::core::attribute::{AttributeValue, ToAttributeValue, capped_text};
use crate::core::clock;
use crate::core::context::{self, ContextScope, SpanContext};
use crate::core::record::{
    ErrorDetails, ModelCallRecord, Outcome, SpanEvent, SpanExtras, SpanRecord,
};
use crate::core::site::{CallSite, SiteKind, StepRole};
use crate::core::state::{self, State};
use crate::run::scope;

/// One instrumented function: its call site and retry policy. `#[pipeline_step]` puts one
/// in a `static` next to the function.
#[derive(Debug)]
pub struct Step {
    site: CallSite,
    retry: RetryPolicy,
    /// Declared with a `name` other than the function's: only such a step tells a pipeline
    /// stage (which `pipeline!` names after the function) its name, so that the others pay
    /// nothing for it.
    renamed: bool,
}

/// `a == b`, in a `const fn`.
const fn same_text(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    let mut i = 0;
    while i < a.len() {
        if a[i] != b[i] {
            return false;
        }
        i += 1;
    }
    true
}

impl Step {
    /// Describes a step; `qualified` is the function's `module_path!()` and name,
    /// `module::function`.
    pub const fn new(
        name: &'static str,
        function: &'static str,
        qualified: &'static str,
        retry: RetryPolicy,
    ) -> Step {
        Step::with_role(name, function, qualified, retry, StepRole::Step, name)
    }

    /// Describes a step that is a tool (`kind = "tool"`) or an agent (`kind = "agent"`):
    /// `span_name` is `execute_tool {name}` or `invoke_agent {name}`.
    pub const fn with_role(
        name: &'static str,
        function: &'static str,
        qualified: &'static str,
        retry: RetryPolicy,
        role: StepRole,
        span_name: &'static str,
    ) -> Step {
        Step {
            site: CallSite::step_with_role(
                name,
                function,
                qualified,
                SiteKind::Step,
                role,
                span_name,
            ),
            retry,
            renamed: !same_text(name, function),
        }
    }

    /// Describes the root span of a pipeline's runs: `span_name` is
    /// `invoke_workflow {pipeline}`.
    pub const fn pipeline(
        span_name: &'static str,
        pipeline: &'static str,
        qualified: &'static str,
    ) -> Step {
        Step {
            site: CallSite::new(span_name, pipeline, qualified, SiteKind::Pipeline),
            retry: RetryPolicy::NONE,
            renamed: false,
        }
    }

    /// Describes the span of a `#[track_cost]` function (named after its operation).
    pub(crate) const fn model_call(
        operation: &'static str,
        function: &'static str,
        qualified: &'static str,
    ) -> Step {
        Step {
            site: CallSite::new(operation, function, qualified, SiteKind::ModelCall),
            retry: RetryPolicy::NONE,
            renamed: false,
        }
    }

    /// The step's name (`name = "..."`, or the function's).
    pub fn name(&self) -> &'static str {
        self.site.name
    }

    /// The function's own name.
    pub(crate) fn function(&self) -> &'static str {
        self.site.function
    }

    /// The step its calls run in, when it is a `#[pipeline_step]`.
    fn step_site(&'static self) -> Option<&'static CallSite> {
        (self.site.kind == SiteKind::Step).then_some(&self.site)
    }
}

/// The error type of a step returning `Result`: recorded through `Display`.
#[diagnostic::on_unimplemented(
    message = "the error type `{Self}` of a `#[pipeline_step]` function must implement `Display`",
    label = "flujo records this error's message on the span and in the failure log",
    note = "implement `std::fmt::Display` for `{Self}`, or return an error type that has it"
)]
pub trait StepError {
    /// The message recorded for this error (at most
    /// [`MAX_ATTRIBUTE_VALUE_BYTES`](crate::config::MAX_ATTRIBUTE_VALUE_BYTES) of it).
    fn message(&self) -> String;
}

impl<E: fmt::Display + ?Sized> StepError for E {
    fn message(&self) -> String {
        capped_text(&format_args!("{self}"))
    }
}

/// One call of a step, from entry to its last attempt. Dropping it unfinished (a panic
/// unwinding, a future dropped before completion) still records the span.
pub struct StepCall {
    step: &'static Step,
    attempts: u32,
    finished: bool,
    /// How the current attempt failed, when flujo knows better than its error.
    attempt_failure: AttemptFailure,
    /// When the call began (raw clock), for a step with `retry_for_ms` only.
    began: u64,
    /// The attempts failed and the step's fallback runs: the call ends with its result.
    falling_back: bool,
    /// Refusals counted in the call's run when the current attempt began (steps that retry
    /// only): an attempt during which a call was refused is not retried.
    refusals_before: u64,
    /// `None` while telemetry is off: the call then records nothing and costs a branch.
    /// `ManuallyDrop` because [`StepCall`]'s own `Drop` always takes it out: the field then
    /// needs no drop glue, which keeps the telemetry-off path free of calls.
    active: ManuallyDrop<Option<ActiveCall>>,
}

/// How an attempt failed, where flujo knows better than its error (the retry's reason, the
/// span's `error.type`).
#[derive(Clone, Copy, PartialEq, Eq)]
enum AttemptFailure {
    /// The attempt's own error.
    Error,
    /// It ran past the step's `timeout_ms`.
    TimedOut,
    /// Its value failed the step's validator.
    Invalid,
}

/// What a call records when telemetry is on.
struct ActiveCall {
    /// Telemetry state (and session) when the call began.
    state: State,
    context: SpanContext,
    parent_span_id: u64,
    parent_is_remote: bool,
    start: u64,
    attributes: Vec<(Cow<'static, str>, AttributeValue)>,
    /// Events and a model call's details, allocated only for spans that have them.
    extras: Option<Box<SpanExtras>>,
    /// Synchronous steps make their span current on this thread until they end (and while
    /// an end unwinds: the scope is dropped with the taken-out call).
    _scope: Option<ContextScope>,
}

impl ActiveCall {
    fn is_recording(&self) -> bool {
        self.state.records_spans() && self.context.is_sampled()
    }
}

impl StepCall {
    /// A call that has not begun; [`StepCall::enter`] or [`StepCall::start`] begins it.
    /// (Two steps so that the call is built where it lives: returning it from a function
    /// that also activates it would copy it.)
    #[inline]
    pub const fn new(step: &'static Step) -> StepCall {
        StepCall {
            step,
            attempts: 0,
            finished: false,
            attempt_failure: AttemptFailure::Error,
            began: 0,
            falling_back: false,
            refusals_before: 0,
            active: ManuallyDrop::new(None),
        }
    }

    /// Begins a synchronous call: its span becomes current on this thread until the call ends.
    #[inline]
    pub fn enter(&mut self) {
        self.begin_in_run();
        let state = state::state();
        if state.is_on_or_after_shutdown() {
            self.activate(state, true);
        }
    }

    /// Begins an asynchronous call: the span is made current by [`StepCall::context`]'s
    /// [`SpanContext::instrument`] around each attempt, on whatever thread polls it.
    #[inline]
    pub fn start(&mut self) {
        self.begin_in_run();
        let state = state::state();
        if state.is_on_or_after_shutdown() {
            self.activate(state, false);
        }
    }

    /// Tells a pipeline stage waiting for its step which one it is, and remembers the
    /// refusals so far for a step that may retry.
    #[inline(always)]
    fn begin_in_run(&mut self) {
        if self.step.renamed {
            scope::renamed_step_begins(self.step.site.function, self.step.name());
        }
        if self.step.retry.retries() > 0 {
            self.refusals_before = scope::refusals();
            if self.step.retry.deadline().is_some() {
                self.began = clock::now();
            }
        }
    }

    /// Out of line, so that the telemetry-off path stays a load and a branch (a call after a
    /// shutdown comes here too, to say so).
    #[inline(never)]
    fn activate(&mut self, state: State, make_current: bool) {
        if !state.is_on() {
            return said_after_shutdown(&self.step.site);
        }
        let (parent, context) =
            SpanContext::start_child(make_current, self.step.step_site(), state.session());
        // Assigning a `ManuallyDrop` drops nothing: the `None` written by `new` has no data.
        self.active = ManuallyDrop::new(Some(ActiveCall {
            state,
            context,
            parent_span_id: parent.raw_span_id(),
            parent_is_remote: parent.is_remote(),
            start: clock::now(),
            attributes: Vec::new(),
            extras: None,
            _scope: make_current.then(|| ContextScope::restoring(parent, context)),
        }));
    }

    /// This call's span context ([`SpanContext::NONE`] while telemetry is off).
    #[inline]
    pub fn context(&self) -> SpanContext {
        self.active
            .as_ref()
            .map_or(SpanContext::NONE, |active| active.context)
    }

    /// Whether this call records a span (telemetry on and the trace sampled): field
    /// expressions are only evaluated when it does.
    #[inline]
    pub fn is_recording(&self) -> bool {
        self.active.as_ref().is_some_and(ActiveCall::is_recording)
    }

    /// When the call began (raw clock), or now when it records nothing.
    pub(crate) fn started_at(&self) -> u64 {
        self.active
            .as_ref()
            .map_or_else(clock::now, |active| active.start)
    }

    /// The step's name.
    pub fn step_name(&self) -> &'static str {
        self.step.name()
    }

    /// Records a `fields(key = value)` attribute.
    pub fn record<V: ToAttributeValue + ?Sized>(&mut self, key: &'static str, value: &V) {
        if let Some(value) = value.to_attribute_value() {
            self.push_attribute(key, value);
        }
    }

    /// Records a `fields(key = %value)` attribute.
    pub fn record_display(&mut self, key: &'static str, value: &dyn fmt::Display) {
        self.push_attribute(key, AttributeValue::String(Cow::Owned(capped_text(value))));
    }

    /// Records a `fields(key = ?value)` attribute.
    pub fn record_debug(&mut self, key: &'static str, value: &dyn fmt::Debug) {
        let text = capped_text(&format_args!("{value:?}"));
        self.push_attribute(key, AttributeValue::String(Cow::Owned(text)));
    }

    pub(crate) fn push_attribute(&mut self, key: &'static str, value: AttributeValue) {
        if let Some(active) = &mut *self.active {
            active.attributes.push((Cow::Borrowed(key), value));
        }
    }

    /// Adds an event to the span, if it is recorded (`event` is only called then).
    pub fn push_event(&mut self, event: impl FnOnce() -> SpanEvent) {
        if let Some(active) = self.active.as_mut().filter(|a| a.is_recording()) {
            active
                .extras
                .get_or_insert_with(recycle::extras_box)
                .events
                .push(event());
        }
    }

    /// Ends a call whose function does not return `Result`: it succeeded.
    #[inline]
    pub fn finish_ok(&mut self) {
        self.attempts = 1;
        self.finished = true;
        if self.active.is_some() {
            self.end(Outcome::Ok);
        }
    }

    /// Ends a call of a `Result` function without retries.
    #[inline]
    pub fn finish_result<T, E: StepError>(&mut self, result: &Result<T, E>) {
        self.attempts = 1;
        self.finished = true;
        match result {
            Ok(_) if self.active.is_none() => {}
            Ok(_) => self.succeed(),
            Err(error) => self.fail_or_fall_back(error, None),
        }
    }

    /// The call's value is ready: it ends, unless the value is a stream, which ends it.
    fn succeed(&mut self) {
        if self.step.retry.streams() {
            // Still open: its stream ends it.
            self.finished = false;
        } else {
            self.end(Outcome::Ok);
        }
    }

    /// The step's `timeout_ms`, which each attempt races.
    pub fn attempt_timeout(&self) -> Duration {
        self.step.retry.timeout()
    }

    /// The current attempt ran past `timeout_ms` and was cancelled: one ERROR line, counted
    /// in `flujo_step_timeouts_total`, and `error.type = "timeout"` on the span if the
    /// timeout ends the call. The returned error becomes the attempt's `Err`.
    #[cold]
    pub fn timed_out(&mut self) -> StepTimeout {
        self.attempt_failure = AttemptFailure::TimedOut;
        let timeout = StepTimeout::new(self.step.name(), self.attempt_timeout(), self.attempts + 1);
        let (step, attempt, timeout_ms) = (
            self.step.name(),
            timeout.attempt(),
            self.step.retry.timeout_ms(),
        );
        contain_panic(|| {
            tracing::error!(
                target: "flujo",
                step,
                attempt,
                timeout_ms,
                error.r#type = TIMEOUT,
                "step attempt timed out and was cancelled"
            )
        });
        metrics::counter!(Metric::StepTimeouts.name(), "step" => step).increment(1);
        scope::note_timeout();
        timeout
    }

    /// Whether the step's attempts failed and its fallback is to run now (the call stays
    /// open, so that the fallback's steps and model calls are its children).
    #[inline]
    pub fn falls_back(&self) -> bool {
        self.falling_back
    }

    /// Ends a call with the result of its fallback.
    pub fn finish_fallback<T, E: StepError>(&mut self, result: &Result<T, E>) {
        self.falling_back = false;
        match result {
            Ok(_) => self.end(Outcome::Ok),
            Err(error) => self.fail(error, None),
        }
    }

    /// The last attempt failed: the fallback runs if the step has one, else the call fails.
    /// `stopped_by`: why a step with retries made no more attempts.
    fn fail_or_fall_back<E: StepError>(&mut self, error: &E, stopped_by: Option<StopReason>) {
        if !self.step.retry.has_fallback() {
            return self.fail(error, stopped_by);
        }
        // Open until the fallback ends it: dropped before that, it is recorded as cancelled.
        self.finished = false;
        self.falling_back = true;
        let message = message_of(error);
        let error_type = self.error_type::<E>();
        self.attempt_failure = AttemptFailure::Error;
        let stopped_by = self.note_stop(stopped_by);
        let (step, attempts) = (self.step.name(), self.attempts);
        contain_panic(|| {
            tracing::warn!(
                target: "flujo",
                step,
                attempts,
                stopped_by,
                error.r#type = error_type,
                error = %message,
                "step failed; running its fallback"
            )
        });
        self.push_event(|| {
            SpanEvent::now(
                FLUJO_FALLBACK,
                vec![
                    (ERROR_TYPE.into(), AttributeValue::String(error_type.into())),
                    (
                        FLUJO_FALLBACK_ERROR.into(),
                        AttributeValue::String(message.into()),
                    ),
                ],
            )
        });
        metrics::counter!(Metric::StepFallbacks.name(), "step" => step).increment(1);
        scope::note_fallback();
    }

    /// `error.type` of the current attempt's error: `timeout` when it timed out.
    fn error_type<E: ?Sized>(&self) -> &'static str {
        if self.attempt_failure == AttemptFailure::TimedOut {
            TIMEOUT
        } else {
            std::any::type_name::<E>()
        }
    }

    /// Ends one attempt of a `Result` function with retries: `Continue(delay)` asks the
    /// caller to wait `delay` and run the body again; `Break(result)` is the final result.
    /// `advise` reads what the error says about retrying it ([`RetryAdvice`](super::retry::RetryAdvice)).
    pub fn next_attempt<T, E: StepError>(
        &mut self,
        result: Result<T, E>,
        advise: impl FnOnce(&E) -> Advice,
    ) -> ControlFlow<Result<T, E>, Duration> {
        self.attempts += 1;
        match &result {
            Err(error) => match self.retry_or_stop(advise(error)) {
                Ok(wait) => {
                    self.note_retry(error, wait);
                    self.attempt_failure = AttemptFailure::Error;
                    self.refusals_before = scope::refusals();
                    return ControlFlow::Continue(wait.delay);
                }
                // Ends the call (and sets `finished`), unless a fallback follows.
                Err(stop) => self.fail_or_fall_back(error, Some(stop)),
            },
            // Ends the call, unless a stream follows.
            Ok(_) => self.succeed(),
        }
        ControlFlow::Break(result)
    }

    /// The wait before another attempt after one that failed, or why there is none.
    fn retry_or_stop(&self, advice: Advice) -> Result<Wait, StopReason> {
        // A call refused during this attempt (or a run over its limit) would be refused again.
        if scope::refusals() != self.refusals_before || scope::exhausted() {
            return Err(StopReason::Refused);
        }
        if self.attempts > self.step.retry.retries() {
            return Err(StopReason::Attempts);
        }
        let mut wait = self
            .step
            .retry
            .wait_before(self.attempts, advice)
            .ok_or(StopReason::NotRetryable)?;
        if let Some(deadline) = self.step.retry.deadline() {
            let left = deadline.saturating_sub(clock::elapsed(self.began, clock::now()));
            if left.is_zero() {
                return Err(StopReason::Deadline);
            }
            wait.delay = wait.delay.min(left);
        }
        Ok(wait)
    }

    /// Why the current attempt is retried.
    fn retry_reason(&self, wait: Wait) -> RetryReason {
        match (wait.hinted, self.attempt_failure) {
            (true, _) => RetryReason::RetryAfter,
            (false, AttemptFailure::TimedOut) => RetryReason::Timeout,
            (false, AttemptFailure::Invalid) => RetryReason::Invalid,
            (false, AttemptFailure::Error) => RetryReason::Error,
        }
    }

    /// The current attempt's value failed the step's validator.
    pub(crate) fn note_invalid(&mut self) {
        self.attempt_failure = AttemptFailure::Invalid;
    }

    /// The span attribute and log field of a step with retries that stopped retrying.
    fn note_stop(&mut self, stopped_by: Option<StopReason>) -> Option<&'static str> {
        let stopped_by = stopped_by?.name();
        self.push_attribute(
            FLUJO_RETRY_STOPPED_BY,
            AttributeValue::String(stopped_by.into()),
        );
        Some(stopped_by)
    }

    /// Logs a failed attempt that will be retried, records it as a `flujo.retry` event and
    /// counts it in `flujo_step_retries_total`.
    fn note_retry<E: StepError>(&mut self, error: &E, wait: Wait) {
        let delay_ms = i64::try_from(wait.delay.as_millis()).unwrap_or(i64::MAX);
        let message = message_of(error);
        let (step, attempt, hinted) = (self.step.name(), self.attempts, wait.hinted);
        let reason = self.retry_reason(wait).name();
        contain_panic(|| {
            tracing::warn!(
                target: "flujo",
                step,
                attempt,
                reason,
                delay_ms,
                retry_after = hinted,
                error = %message,
                "step attempt failed; retrying"
            )
        });
        let error_type = self.error_type::<E>();
        self.push_event(|| {
            SpanEvent::now(
                FLUJO_RETRY,
                vec![
                    (
                        FLUJO_RETRY_ATTEMPT.into(),
                        AttributeValue::Int(i64::from(attempt)),
                    ),
                    (
                        FLUJO_RETRY_REASON.into(),
                        AttributeValue::String(reason.into()),
                    ),
                    (FLUJO_RETRY_DELAY_MS.into(), AttributeValue::Int(delay_ms)),
                    (FLUJO_RETRY_HINTED.into(), AttributeValue::Bool(hinted)),
                    (ERROR_TYPE.into(), AttributeValue::String(error_type.into())),
                    (
                        FLUJO_RETRY_ERROR.into(),
                        AttributeValue::String(message.into()),
                    ),
                ],
            )
        });
        metrics::counter!(Metric::StepRetries.name(), "step" => step, "reason" => reason)
            .increment(1);
        scope::note_retry();
    }

    fn fail<E: StepError + ?Sized>(&mut self, error: &E, stopped_by: Option<StopReason>) {
        // The user's `Display` and the log subscriber run contained: a panic in either
        // neither unwinds through the call nor loses its record.
        let details = error_details(error, self.error_type::<E>());
        let stopped_by = self.note_stop(stopped_by);
        let (step, attempts) = (self.step.name(), self.attempts);
        // A timeout has said so at ERROR already.
        if self.attempt_failure != AttemptFailure::TimedOut {
            contain_panic(|| {
                tracing::error!(
                    target: "flujo",
                    step,
                    attempts,
                    stopped_by,
                    error.r#type = details.error_type,
                    error = %details.message,
                    "step failed"
                )
            });
        }
        self.end(Outcome::Error(details));
    }

    /// Ends a model call that failed (logged at WARN: the step that made it logs its own
    /// failure if the error ends it).
    pub(crate) fn fail_model_call<E: StepError + ?Sized>(
        &mut self,
        error: &E,
        call: ModelCallRecord,
    ) {
        self.attempts = 1;
        let details = error_details(error, std::any::type_name::<E>());
        contain_panic(|| {
            tracing::warn!(
                target: "flujo",
                model = %call.model,
                error.r#type = details.error_type,
                error = %details.message,
                "model call failed"
            )
        });
        self.end_with_model_call(Outcome::Error(details), call);
    }

    /// Ends a model call with `outcome`.
    pub(crate) fn end_model_call(&mut self, outcome: Outcome, call: ModelCallRecord) {
        self.attempts = 1;
        self.end_with_model_call(outcome, call);
    }

    /// Ends a call with `outcome` (for the pipeline runner's root span).
    pub(crate) fn end_with(&mut self, outcome: Outcome) {
        self.attempts = 1;
        self.end(outcome);
    }

    /// The call's stream ended: the call ends with it (failed by the chunk error that ended
    /// it, if one did).
    pub(crate) fn end_with_stream<E: StepError + ?Sized>(&mut self, error: Option<&E>) {
        if self.finished {
            return;
        }
        self.attempts = self.attempts.max(1);
        match error {
            None => self.end(Outcome::Ok),
            Some(error) => self.fail(error, None),
        }
    }

    /// Whether the call is recording and has not ended.
    pub(crate) fn is_open(&self) -> bool {
        !self.finished && self.active.is_some()
    }

    /// Ends the call: hands the record of a call that was active to the collector.
    #[inline(never)]
    fn end(&mut self, outcome: Outcome) {
        self.submit_record(outcome, None);
    }

    /// Ends a model call. Apart from [`StepCall::end`], so that a step's end neither moves
    /// nor tests an absent model call (a `ModelCallRecord` is 328 bytes). The record goes into
    /// its box here, once: from here on only the box moves.
    #[inline(never)]
    fn end_with_model_call(&mut self, outcome: Outcome, model_call: ModelCallRecord) {
        if self.active.is_none() {
            // Telemetry is off: nothing is recorded (the call has charged its run), no box.
            self.finished = true;
            return;
        }
        let mut extras = recycle::extras_box();
        extras.model_call = Some(model_call);
        self.submit_record(outcome, Some(extras));
    }

    /// The record built where the ring takes it, the call's state used in place: every move
    /// of a record or of the active call is a copy of 100 to 300 bytes on the hot path.
    #[inline(always)]
    fn submit_record(&mut self, outcome: Outcome, model_call: Option<Box<SpanExtras>>) {
        self.finished = true;
        let Some(active) = self.active.as_mut() else {
            // Telemetry is off: nothing is recorded (a model call has already charged its run).
            return;
        };
        let session = active.state.session();
        let exported = active.is_recording();
        let (trace_id, span_id) = (active.context.raw_trace_id(), active.context.raw_span_id());
        let (parent_span_id, start) = (active.parent_span_id, active.start);
        let attributes = std::mem::take(&mut active.attributes);
        let extras = extras_of(
            active.extras.take(),
            model_call,
            span_id,
            Lineage {
                parent_is_remote: active.parent_is_remote,
                trace_state: active.context.trace_state_id(),
            },
        );
        // The scope ends with the call, before the record is queued.
        drop(active._scope.take());
        // What is left of the active call owns nothing: overwritten, not dropped.
        self.active = ManuallyDrop::new(None);
        let observe_now = extras
            .as_ref()
            .is_some_and(|extras| extras.model_call.is_some())
            && sink::observes_model_calls_at_once();
        let record = || SpanRecord {
            site: &self.step.site,
            session,
            exported,
            observed: false,
            trace_id,
            span_id,
            parent_span_id,
            start,
            end: clock::now(),
            outcome,
            attempts: self.attempts,
            attributes,
            extras,
        };
        if observe_now {
            // A model call's cost goes to a durable ledger from here, so that a hard kill
            // loses only what the ledger's bounded queue holds, whatever waits in the rings.
            let mut record = record();
            if worker::observe_here(&record) {
                record.observed = true;
                // A record its ring cannot take has been observed: only its span is lost.
                ring::submit(|| record, drop);
            }
        } else {
            // A record its ring cannot take is observed here: metrics and cost are never lost.
            ring::submit(record, |record| {
                worker::observe_here(&record);
            });
        }
        context::count_call_end(session);
    }

    #[cold]
    fn end_unfinished(&mut self) {
        let outcome = if std::thread::panicking() {
            let step = self.step.name();
            contain_panic(|| tracing::error!(target: "flujo", step, "step panicked"));
            Outcome::Panicked
        } else {
            Outcome::Cancelled
        };
        self.attempts = self.attempts.max(1);
        self.end(outcome);
    }
}

/// Where a span comes from, when that is more than its parent's id: rare, so kept in the
/// extras.
struct Lineage {
    parent_is_remote: bool,
    /// The id of the trace's `tracestate` (0: none).
    trace_state: u32,
}

impl Lineage {
    /// A local parent and no `tracestate`: nothing for the extras to carry.
    fn is_plain(&self) -> bool {
        !self.parent_is_remote && self.trace_state == 0
    }
}

/// The extras of a finished span: its own, a model call's, events that `tracing` logged
/// inside it (when the bridge is on), and its lineage. Inline for the common span that has
/// none of them.
#[inline(always)]
/// The span's extras: its own (events), a model call's box, the `tracing` events bridged
/// into it and its lineage, in one box.
fn extras_of(
    extras: Option<Box<SpanExtras>>,
    model_call: Option<Box<SpanExtras>>,
    span_id: u64,
    lineage: Lineage,
) -> Option<Box<SpanExtras>> {
    if model_call.is_none() && lineage.is_plain() && !bridged::any_pending() {
        return extras;
    }
    more_extras(extras, model_call, span_id, lineage)
}

#[inline(never)]
fn more_extras(
    extras: Option<Box<SpanExtras>>,
    model_call: Option<Box<SpanExtras>>,
    span_id: u64,
    lineage: Lineage,
) -> Option<Box<SpanExtras>> {
    let bridged = bridged::take(span_id);
    // Events were pending, but none of them this span's.
    if model_call.is_none() && lineage.is_plain() && bridged.kept.is_empty() {
        return extras;
    }
    let mut extras = match (extras, model_call) {
        // A model call's span with events of its own: they join the call's box.
        (Some(mut own), Some(mut call)) => {
            call.events.append(&mut own.events);
            call
        }
        (Some(one), None) | (None, Some(one)) => one,
        (None, None) => recycle::extras_box(),
    };
    extras.events.extend(bridged.kept);
    extras.dropped_events = extras.dropped_events.saturating_add(bridged.dropped);
    extras.parent_is_remote |= lineage.parent_is_remote;
    extras.trace_state = lineage.trace_state;
    Some(extras)
}

/// The error's message; a `Display` that panics does not take the call's record with it.
fn message_of<E: StepError + ?Sized>(error: &E) -> String {
    catch_unwind(AssertUnwindSafe(|| error.message()))
        .unwrap_or_else(|_| "<the error's Display implementation panicked>".to_owned())
}

fn error_details<E: StepError + ?Sized>(error: &E, error_type: &'static str) -> Box<ErrorDetails> {
    Box::new(ErrorDetails {
        error_type,
        message: message_of(error),
    })
}

/// The first call that finds telemetry shut down by its guard (not never started) says so,
/// once per process: without it a dropped guard loses everything without a word.
#[cold]
#[inline(never)]
fn said_after_shutdown(site: &CallSite) {
    static SAID: AtomicBool = AtomicBool::new(false);
    if SAID.swap(true, Ordering::Relaxed) {
        return;
    }
    let call = match site.kind {
        SiteKind::ModelCall => "model call",
        SiteKind::Pipeline => "pipeline run",
        SiteKind::Step | SiteKind::Bridged => "step",
    };
    let function = site.function;
    contain_panic(|| {
        tracing::warn!(
            target: "flujo",
            call,
            function,
            "a {call} started after telemetry was shut down: it and every call after it \
             record no span, metric or cost record. The guard \
             that init_telemetry returned was dropped: `let _ = ...` drops it at once, and so \
             does the end of the function that holds it. Keep it for as long as the program \
             runs: `let _telemetry = flujo::init_telemetry()?;` (said once)"
        )
    });
}

/// `error.type` of a timed-out attempt, as the conventions spell it.
const TIMEOUT: &str = "timeout";

/// Runs a log statement; a panicking log subscriber does not abort recording the call.
fn contain_panic(log: impl FnOnce()) {
    let _ = catch_unwind(AssertUnwindSafe(log));
}

impl Drop for StepCall {
    #[inline]
    fn drop(&mut self) {
        // Every path that sets `finished` has taken `active` out.
        if !self.finished {
            self.end_unfinished();
        }
    }
}
