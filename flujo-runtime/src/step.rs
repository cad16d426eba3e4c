//! What `#[pipeline_step]` expands to: a static [`Step`] per call site and a [`StepCall`]
//! per call that times the call, keeps the span context, counts attempts and records the
//! span and metrics when it ends.

use std::borrow::Cow;
use std::fmt;
use std::mem::ManuallyDrop;
use std::ops::ControlFlow;
use std::sync::OnceLock;
use std::time::Duration;

use metrics::{Counter, Histogram};

use crate::attribute::{AttributeValue, ToAttributeValue};
use crate::context::{ContextScope, SpanContext};
use crate::cost::{self, ModelCallRecord};
use crate::export;
use crate::quality::{self, FromValidationError, ValidationError};
use crate::span::{ErrorDetails, Outcome, SpanEvent, SpanExtras, SpanRecord, StepKind, StepMeta};
use crate::telemetry::{self, SPANS};
use crate::{budget, clock, run};

/// How a step waits between attempts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backoff {
    /// The same delay before every retry.
    Fixed,
    /// The delay doubles with every retry.
    Exponential,
}

/// Longest wait between two attempts, whatever the backoff says.
const MAX_RETRY_DELAY: Duration = Duration::from_secs(60);

/// How often and how patiently a step re-runs its body after an `Err`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    retries: u32,
    backoff: Backoff,
    delay_ms: u64,
}

impl RetryPolicy {
    /// One attempt, no retries.
    pub const NONE: RetryPolicy = RetryPolicy {
        retries: 0,
        backoff: Backoff::Fixed,
        delay_ms: 0,
    };

    /// Up to `retries` more attempts; the n-th retry waits `delay_ms` (fixed) or
    /// `delay_ms * 2^(n-1)` (exponential), at most 60 s.
    pub const fn new(retries: u32, backoff: Backoff, delay_ms: u64) -> RetryPolicy {
        RetryPolicy {
            retries,
            backoff,
            delay_ms,
        }
    }

    /// The wait before retry number `retry` (1-based).
    pub fn delay_before(&self, retry: u32) -> Duration {
        let ms = match self.backoff {
            Backoff::Fixed => self.delay_ms,
            Backoff::Exponential => self.delay_ms.saturating_mul(
                1u64.checked_shl(retry.saturating_sub(1))
                    .unwrap_or(u64::MAX),
            ),
        };
        Duration::from_millis(ms).min(MAX_RETRY_DELAY)
    }
}

/// Metric handles of one step, registered on its first call with telemetry on.
struct StepMetrics {
    calls: [Counter; 3],
    durations: [Histogram; 3],
    retries: Counter,
}

/// Index into [`StepMetrics`] arrays, and the `status` label.
const STATUSES: [&str; 3] = ["ok", "error", "cancelled"];

impl StepMetrics {
    fn register(meta: &StepMeta, pipeline_name: &'static str) -> StepMetrics {
        // A pipeline run's root span counts as a run of the pipeline.
        let (calls, durations, label, value) = match meta.kind {
            StepKind::Pipeline => (
                "flujo_pipeline_runs_total",
                "flujo_pipeline_duration_seconds",
                "pipeline",
                pipeline_name,
            ),
            _ => (
                "flujo_step_calls_total",
                "flujo_step_duration_seconds",
                "step",
                meta.name,
            ),
        };
        StepMetrics {
            calls: STATUSES
                .map(|status| metrics::counter!(calls, label => value, "status" => status)),
            durations: STATUSES
                .map(|status| metrics::histogram!(durations, label => value, "status" => status)),
            retries: metrics::counter!("flujo_step_retries_total", "step" => meta.name),
        }
    }
}

/// One instrumented function: its names, retry policy and cached metric handles.
/// `#[pipeline_step]` puts one in a `static` next to the function.
pub struct Step {
    meta: StepMeta,
    retry: RetryPolicy,
    /// For a pipeline's root span: the pipeline's name (its metrics label).
    pipeline: &'static str,
    metrics: OnceLock<StepMetrics>,
}

impl fmt::Debug for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Step")
            .field("meta", &self.meta)
            .field("retry", &self.retry)
            .finish_non_exhaustive()
    }
}

impl Step {
    /// Describes a step; `namespace` is the function's `module_path!()`.
    pub const fn new(
        name: &'static str,
        function: &'static str,
        namespace: &'static str,
        retry: RetryPolicy,
    ) -> Step {
        Step {
            meta: StepMeta {
                name,
                function,
                namespace,
                kind: StepKind::Step,
            },
            retry,
            pipeline: "",
            metrics: OnceLock::new(),
        }
    }

    /// Describes the root span of a pipeline's runs: `span_name` is
    /// `invoke_workflow {pipeline}`.
    pub const fn pipeline(
        span_name: &'static str,
        pipeline: &'static str,
        namespace: &'static str,
    ) -> Step {
        Step {
            meta: StepMeta {
                name: span_name,
                function: pipeline,
                namespace,
                kind: StepKind::Pipeline,
            },
            retry: RetryPolicy::NONE,
            pipeline,
            metrics: OnceLock::new(),
        }
    }

    /// Describes spans bridged from `tracing` (each named after its own `tracing` span).
    pub(crate) const fn bridged() -> Step {
        Step {
            meta: StepMeta {
                name: "tracing",
                function: "",
                namespace: "",
                kind: StepKind::Bridged,
            },
            retry: RetryPolicy::NONE,
            pipeline: "",
            metrics: OnceLock::new(),
        }
    }

    /// Describes the span of a `#[track_cost]` function (named after its operation).
    pub(crate) const fn model_call(
        operation: &'static str,
        function: &'static str,
        namespace: &'static str,
    ) -> Step {
        Step {
            meta: StepMeta {
                name: operation,
                function,
                namespace,
                kind: StepKind::ModelCall,
            },
            retry: RetryPolicy::NONE,
            pipeline: "",
            metrics: OnceLock::new(),
        }
    }

    /// The step its calls run in, when it is a `#[pipeline_step]`.
    pub(crate) fn step_name(&'static self) -> Option<&'static StepMeta> {
        (self.meta.kind == StepKind::Step).then_some(&self.meta)
    }

    pub(crate) fn meta(&self) -> &StepMeta {
        &self.meta
    }

    fn metrics(&self) -> &StepMetrics {
        self.metrics
            .get_or_init(|| StepMetrics::register(&self.meta, self.pipeline))
    }
}

/// The error type of a step returning `Result`: recorded through `Display`.
#[diagnostic::on_unimplemented(
    message = "the error type `{Self}` of a `#[pipeline_step]` function must implement `Display`",
    label = "flujo records this error's message on the span and in the failure log",
    note = "implement `std::fmt::Display` for `{Self}`, or return an error type that has it"
)]
pub trait StepError {
    /// The message recorded for this error.
    fn message(&self) -> String;
}

impl<E: fmt::Display + ?Sized> StepError for E {
    fn message(&self) -> String {
        self.to_string()
    }
}

/// One call of a step, from entry to its last attempt. Dropping it unfinished (a panic
/// unwinding, a future dropped before completion) still records the span.
pub struct StepCall {
    step: &'static Step,
    attempts: u32,
    finished: bool,
    /// `None` while telemetry is off: the call then records nothing and costs a branch.
    /// `ManuallyDrop` because [`StepCall`]'s own `Drop` always takes it out: the field then
    /// needs no drop glue, which keeps the telemetry-off path free of calls.
    active: ManuallyDrop<Option<ActiveCall>>,
}

/// What a call records when telemetry is on.
struct ActiveCall {
    /// Telemetry state when the call began.
    state: u8,
    context: SpanContext,
    parent_span_id: u64,
    start: u64,
    attributes: Vec<(Cow<'static, str>, AttributeValue)>,
    /// Events and a model call's details, allocated only for spans that have them.
    extras: Option<Box<SpanExtras>>,
    /// Synchronous steps make their span current on this thread until they end.
    _scope: Option<ContextScope>,
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
            active: ManuallyDrop::new(None),
        }
    }

    /// Begins a synchronous call: its span becomes current on this thread until the call ends.
    #[inline]
    pub fn enter(&mut self) {
        let state = telemetry::state();
        if state != 0 {
            self.activate(state, true);
        }
    }

    /// Begins an asynchronous call: the span is made current by [`StepCall::context`]'s
    /// [`SpanContext::instrument`] around each attempt, on whatever thread polls it.
    #[inline]
    pub fn start(&mut self) {
        let state = telemetry::state();
        if state != 0 {
            self.activate(state, false);
        }
    }

    /// Out of line, so that the telemetry-off path stays a load and a branch.
    #[inline(never)]
    fn activate(&mut self, state: u8, make_current: bool) {
        let (parent, context) = SpanContext::start_child(make_current, self.step.step_name());
        // Assigning a `ManuallyDrop` drops nothing: the `None` written by `new` has no data.
        self.active = ManuallyDrop::new(Some(ActiveCall {
            state,
            context,
            parent_span_id: parent.raw_span_id(),
            start: clock::now(),
            attributes: Vec::new(),
            extras: None,
            _scope: make_current.then(|| ContextScope::restoring(parent)),
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

    /// Records a `fields(key = value)` attribute.
    pub fn record<V: ToAttributeValue + ?Sized>(&mut self, key: &'static str, value: &V) {
        if let Some(value) = value.to_attribute_value() {
            self.push_attribute(key, value);
        }
    }

    /// Records a `fields(key = %value)` attribute.
    pub fn record_display(&mut self, key: &'static str, value: &dyn fmt::Display) {
        self.push_attribute(key, AttributeValue::String(Cow::Owned(value.to_string())));
    }

    /// Records a `fields(key = ?value)` attribute.
    pub fn record_debug(&mut self, key: &'static str, value: &dyn fmt::Debug) {
        self.push_attribute(
            key,
            AttributeValue::String(Cow::Owned(format!("{value:?}"))),
        );
    }

    pub(crate) fn push_attribute(&mut self, key: &'static str, value: AttributeValue) {
        if let Some(active) = &mut *self.active {
            active.attributes.push((Cow::Borrowed(key), value));
        }
    }

    /// Adds an event to the span, if it is recorded.
    fn push_event(&mut self, event: impl FnOnce() -> SpanEvent) {
        if let Some(active) = self.active.as_mut().filter(|a| a.is_recording()) {
            active.extras.get_or_insert_default().events.push(event());
        }
    }

    /// Checks an attempt's `Ok` value with `#[pipeline_step(validate = check)]`: a rejected
    /// value becomes an error (a [`ValidationError`] converted into `E`), so the step retries
    /// or fails as for any error. Counted in `flujo_validations_total`.
    pub fn validate<T, E: FromValidationError, V: fmt::Display>(
        &mut self,
        result: Result<T, E>,
        validator: &'static str,
        check: impl FnOnce(&T) -> Result<(), V>,
    ) -> Result<T, E> {
        let Ok(value) = result else {
            return result;
        };
        let step = self.step.meta.name;
        let verdict = check(&value);
        quality::record_validation(step, validator, verdict.is_ok());
        let feedback = match verdict {
            Ok(()) => return Ok(value),
            Err(feedback) => feedback.to_string(),
        };
        run::note_feedback(&feedback);
        self.push_event(|| {
            SpanEvent::now(
                "flujo.validation",
                vec![
                    (
                        "flujo.validator".into(),
                        AttributeValue::String(validator.into()),
                    ),
                    (
                        "flujo.validation.feedback".into(),
                        AttributeValue::String(feedback.clone().into()),
                    ),
                ],
            )
        });
        Err(E::from_validation_error(ValidationError {
            step,
            validator,
            feedback,
        }))
    }

    /// Ends a call whose function does not return `Result`: it succeeded.
    #[inline]
    pub fn finish_ok(&mut self) {
        self.attempts = 1;
        self.finished = true;
        if self.active.is_some() {
            self.end(Outcome::Ok, None);
        }
    }

    /// Ends a call of a `Result` function without retries.
    #[inline]
    pub fn finish_result<T, E: StepError>(&mut self, result: &Result<T, E>) {
        self.attempts = 1;
        self.finished = true;
        match result {
            Ok(_) if self.active.is_none() => {}
            Ok(_) => self.end(Outcome::Ok, None),
            Err(error) => self.fail(error),
        }
    }

    /// Ends one attempt of a `Result` function with retries: `Continue(delay)` asks the
    /// caller to wait `delay` and run the body again; `Break(result)` is the final result.
    pub fn next_attempt<T, E: StepError>(
        &mut self,
        result: Result<T, E>,
    ) -> ControlFlow<Result<T, E>, Duration> {
        self.attempts += 1;
        let retry = self.attempts - 1;
        match &result {
            Err(error) if retry < self.step.retry.retries && !budget::exhausted() => {
                let delay = self.step.retry.delay_before(retry + 1);
                let delay_ms = i64::try_from(delay.as_millis()).unwrap_or(i64::MAX);
                let message = error.message();
                tracing::warn!(
                    target: "flujo",
                    step = self.step.meta.name,
                    attempt = self.attempts,
                    delay_ms,
                    error = %message,
                    "step attempt failed; retrying"
                );
                let attempt = i64::from(self.attempts);
                let error_type = std::any::type_name::<E>();
                self.push_event(|| {
                    SpanEvent::now(
                        "flujo.retry",
                        vec![
                            ("flujo.retry.attempt".into(), AttributeValue::Int(attempt)),
                            ("flujo.retry.delay_ms".into(), AttributeValue::Int(delay_ms)),
                            (
                                "error.type".into(),
                                AttributeValue::String(error_type.into()),
                            ),
                            (
                                "flujo.retry.error".into(),
                                AttributeValue::String(message.into()),
                            ),
                        ],
                    )
                });
                if self.active.is_some() {
                    self.step.metrics().retries.increment(1);
                }
                run::note_retry();
                return ControlFlow::Continue(delay);
            }
            // Both end the call (and set `finished`).
            Err(error) => self.fail(error),
            Ok(_) => self.end(Outcome::Ok, None),
        }
        ControlFlow::Break(result)
    }

    fn fail<E: StepError>(&mut self, error: &E) {
        let details = error_details(error);
        tracing::error!(
            target: "flujo",
            step = self.step.meta.name,
            attempts = self.attempts,
            error.r#type = details.error_type,
            error = %details.message,
            "step failed"
        );
        self.end(Outcome::Error(details), None);
    }

    /// Ends a model call that failed (logged at WARN: the step that made it logs its own
    /// failure if the error ends it).
    pub(crate) fn fail_model_call<E: StepError>(&mut self, error: &E, call: ModelCallRecord) {
        self.attempts = 1;
        let details = error_details(error);
        tracing::warn!(
            target: "flujo",
            model = %call.model,
            error.r#type = details.error_type,
            error = %details.message,
            "model call failed"
        );
        self.end(Outcome::Error(details), Some(call));
    }

    /// Ends a model call with `outcome`.
    pub(crate) fn end_model_call(&mut self, outcome: Outcome, call: ModelCallRecord) {
        self.attempts = 1;
        self.end(outcome, Some(call));
    }

    /// Ends a call with `outcome` (for the pipeline runner's root span).
    pub(crate) fn end_with(&mut self, outcome: Outcome) {
        self.attempts = 1;
        self.end(outcome, None);
    }

    fn end(&mut self, outcome: Outcome, model_call: Option<ModelCallRecord>) {
        self.finished = true;
        let Some(active) = self.active.take() else {
            // Telemetry is off: nothing is recorded (a model call has already charged its run).
            return;
        };
        let record = SpanRecord {
            step: self.step,
            exported: active.is_recording(),
            trace_id: active.context.raw_trace_id(),
            span_id: active.context.raw_span_id(),
            parent_span_id: active.parent_span_id,
            start: active.start,
            end: clock::now(),
            outcome,
            attempts: self.attempts,
            attributes: active.attributes,
            extras: extras_of(active.extras, model_call, active.context.raw_span_id()),
        };
        // The worker applies the step metrics when it drains the record. When the record
        // cannot be queued they are applied here: metrics are never lost.
        if let Err(record) = export::submit(record) {
            StepMetricsBatch::default().add(&record);
        }
    }

    #[cold]
    fn end_unfinished(&mut self) {
        let outcome = if std::thread::panicking() {
            tracing::error!(target: "flujo", step = self.step.meta.name, "step panicked");
            Outcome::Panicked
        } else {
            Outcome::Cancelled
        };
        self.attempts = self.attempts.max(1);
        self.end(outcome, None);
    }
}

/// The extras of a finished span: its own, a model call's, and events that `tracing` logged
/// inside it (when the bridge is on).
fn extras_of(
    extras: Option<Box<SpanExtras>>,
    model_call: Option<ModelCallRecord>,
    span_id: u64,
) -> Option<Box<SpanExtras>> {
    let bridged = crate::bridge::take_events(span_id);
    if model_call.is_none() && bridged.is_empty() {
        return extras;
    }
    let mut extras = extras.unwrap_or_default();
    if model_call.is_some() {
        extras.model_call = model_call;
    }
    extras.events.extend(bridged);
    Some(extras)
}

fn error_details<E: StepError>(error: &E) -> Box<ErrorDetails> {
    Box::new(ErrorDetails {
        error_type: std::any::type_name::<E>(),
        message: error.message(),
    })
}

/// Applies `flujo_step_calls_total` and `flujo_step_duration_seconds` for finished calls.
/// Consecutive calls of the same step and status (the common case in a drained batch) update
/// the call counter once.
#[derive(Default)]
pub(crate) struct StepMetricsBatch {
    pending: Option<(&'static Step, usize, u64)>,
}

impl StepMetricsBatch {
    pub(crate) fn add(&mut self, record: &SpanRecord) {
        if let Some(call) = record.extras.as_ref().and_then(|e| e.model_call.as_ref()) {
            cost::apply(record, call);
            return;
        }
        if record.step.meta.kind == StepKind::Bridged {
            return;
        }
        let status = match record.outcome {
            Outcome::Ok => 0,
            Outcome::Error(_) | Outcome::Panicked => 1,
            Outcome::Cancelled => 2,
        };
        let metrics = record.step.metrics();
        metrics.durations[status].record(clock::elapsed(record.start, record.end).as_secs_f64());
        match &mut self.pending {
            Some((step, pending_status, count))
                if std::ptr::eq(*step, record.step) && *pending_status == status =>
            {
                *count += 1;
            }
            _ => {
                self.apply();
                self.pending = Some((record.step, status, 1));
            }
        }
    }

    pub(crate) fn apply(&mut self) {
        if let Some((step, status, count)) = self.pending.take() {
            step.metrics().calls[status].increment(count);
        }
    }
}

impl Drop for StepMetricsBatch {
    fn drop(&mut self) {
        self.apply();
    }
}

impl ActiveCall {
    fn is_recording(&self) -> bool {
        self.state & SPANS != 0 && self.context.is_sampled()
    }
}

impl Drop for StepCall {
    #[inline]
    fn drop(&mut self) {
        // Every path that sets `finished` has taken `active` out through `end`.
        if !self.finished {
            self.end_unfinished();
        }
    }
}

/// Asserts, with a readable error, that a by-value argument of a retrying step is `Clone`.
#[diagnostic::on_unimplemented(
    message = "`{Self}` must implement `Clone` to be passed by value to a step with `retries`",
    label = "every attempt gets its own clone of this argument",
    note = "take this argument by reference, derive or implement `Clone` for `{Self}`, or remove `retries`"
)]
pub trait RetryArgument {
    /// A fresh copy for the next attempt.
    fn clone_for_attempt(&self) -> Self;
}

impl<T: Clone> RetryArgument for T {
    fn clone_for_attempt(&self) -> Self {
        self.clone()
    }
}

/// Waits `delay` between attempts of an async step without needing a particular runtime.
pub fn retry_delay(delay: Duration) -> futures_timer::Delay {
    futures_timer::Delay::new(delay)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exponential_backoff_doubles_and_is_capped() {
        let policy = RetryPolicy::new(40, Backoff::Exponential, 100);
        assert_eq!(policy.delay_before(1), Duration::from_millis(100));
        assert_eq!(policy.delay_before(3), Duration::from_millis(400));
        assert_eq!(policy.delay_before(39), MAX_RETRY_DELAY);
        let fixed = RetryPolicy::new(3, Backoff::Fixed, 25);
        assert_eq!(fixed.delay_before(3), Duration::from_millis(25));
    }
}
