//! What `#[track_cost]` expands to: a static [`ModelCallSite`] per function and a
//! [`ModelCall`] per call that checks the usage limits, times the call as a model-call span,
//! reads the token usage the function returns, prices it exactly and charges the run, then
//! hands the record to the collector (whose cost observer applies the model metrics and
//! appends the cost record to the ledger).

use crate::core::names::Metric;
use crate::core::names::{
    FLUJO_CONTENT_TRUNCATED, GEN_AI_INPUT_MESSAGES, GEN_AI_OPERATION_NAME, GEN_AI_OUTPUT_MESSAGES,
    GEN_AI_PROVIDER_NAME, GEN_AI_REQUEST_MODEL, GEN_AI_SYSTEM_INSTRUCTIONS,
};
use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::SystemTime;

use flujo_pricing::extract::Count;
use flujo_pricing::{MAX_TOKENS_PER_CALL, TokenUsage};

use super::content::{self, Captured, GenAiMessages};
use super::usage::{CallSite, IntoTokenUsage, ReportsUsage, UsageReport};
use crate::accounting::budget;
use crate::accounting::pricing::{self, utc_date, utc_time};
use crate::core::attribute::{AttributeValue, ToAttributeValue};
use crate::core::context::SpanContext;
use crate::core::record::{ModelCallRecord, Operation, Outcome, StreamTiming};
use crate::metrics::labels;
use crate::run::limits::{Progress, Reservation, UsageLimitExceeded};
use crate::run::scope::{self as run, RunScope};
use crate::step::call::{Step, StepCall, StepError};

/// A `model = <expr>` value: any string.
#[diagnostic::on_unimplemented(
    message = "the `model` of `#[track_cost]` must be a string (`&str`, `String`), not `{Self}`",
    label = "the model name is read from this expression"
)]
pub trait ModelName {
    /// The name.
    fn model_name(&self) -> &str;
}

impl ModelName for str {
    fn model_name(&self) -> &str {
        self
    }
}

impl ModelName for String {
    fn model_name(&self) -> &str {
        self
    }
}

impl ModelName for Cow<'_, str> {
    fn model_name(&self) -> &str {
        self
    }
}

impl<T: ModelName + ?Sized> ModelName for &T {
    fn model_name(&self) -> &str {
        (**self).model_name()
    }
}

/// A runtime `model = <expr>`, copied because the call outlives the expression's borrow.
pub fn model_name<T: ModelName + ?Sized>(model: &T) -> Cow<'static, str> {
    Cow::Owned(model.model_name().to_owned())
}

/// Converts a refusal into the function's error type.
#[diagnostic::on_unimplemented(
    message = "the error type `{Self}` of a `#[track_cost]` function cannot hold a `flujo::UsageLimitExceeded`",
    label = "a call over its usage limit returns this error instead of calling the model",
    note = "implement `From<flujo::UsageLimitExceeded>` for `{Self}` (e.g. a `#[from]` variant), or return \
            an error type that has it (`anyhow::Error`, `Box<dyn std::error::Error + Send + Sync>`)"
)]
pub trait FromUsageLimitExceeded {
    /// The error to return.
    fn from_usage_limit_exceeded(refusal: UsageLimitExceeded) -> Self;
}

impl<E: From<UsageLimitExceeded>> FromUsageLimitExceeded for E {
    fn from_usage_limit_exceeded(refusal: UsageLimitExceeded) -> Self {
        E::from(refusal)
    }
}

/// One `#[track_cost]` function: its operation, provider and span description.
pub struct ModelCallSite {
    step: Step,
    operation: Operation,
    provider: Option<&'static str>,
    /// `api = "..."`: the API flavor a JSON response body is read with.
    api: Option<&'static str>,
    /// A stream of this site ended without reporting usage, and that was said.
    usage_missing_said: AtomicBool,
}

impl ModelCallSite {
    /// Describes a model-call site; `provider: None` infers it from the model's name.
    pub const fn new(
        operation: Operation,
        provider: Option<&'static str>,
        function: &'static str,
        qualified: &'static str,
    ) -> ModelCallSite {
        ModelCallSite {
            step: Step::model_call(operation.as_str(), function, qualified),
            operation,
            provider,
            api: None,
            usage_missing_said: AtomicBool::new(false),
        }
    }

    /// This site, reading a JSON response body with the API flavor `api` (`responses`,
    /// `chat`, `anthropic`, ... as the price data names them).
    #[must_use]
    pub const fn with_api(mut self, api: &'static str) -> ModelCallSite {
        self.api = Some(api);
        self
    }
}

/// One call of a `#[track_cost]` function.
pub struct ModelCall {
    site: &'static ModelCallSite,
    call: StepCall,
    model: Cow<'static, str>,
    run: Option<Arc<RunScope>>,
    /// What the call reserved of its run's limits, until it ends.
    reservation: Option<Reservation>,
    /// What a streamed call has charged its run so far, as its chunks reported usage.
    charged: Progress,
    /// How a streamed call's chunks arrived, once it ended.
    stream: Option<StreamTiming>,
}

impl ModelCall {
    /// A call that has not begun.
    pub const fn new(site: &'static ModelCallSite) -> ModelCall {
        ModelCall {
            site,
            call: StepCall::new(&site.step),
            model: Cow::Borrowed(""),
            run: None,
            reservation: None,
            charged: Progress::NONE,
            stream: None,
        }
    }

    /// Begins a synchronous call of `model`, unless a usage limit refuses it.
    pub fn enter(&mut self, model: Cow<'static, str>) -> Result<(), UsageLimitExceeded> {
        self.admit(model)?;
        self.call.enter();
        Ok(())
    }

    /// Begins an asynchronous call of `model`, unless a usage limit refuses it.
    pub fn start(&mut self, model: Cow<'static, str>) -> Result<(), UsageLimitExceeded> {
        self.admit(model)?;
        self.call.start();
        Ok(())
    }

    /// Begins a call whose function cannot return an error: a usage limit cannot refuse it,
    /// so it is logged and counted instead.
    pub fn enter_unrefusable(&mut self, model: Cow<'static, str>, is_async: bool) {
        if let Err(refusal) = self.admit(model) {
            tracing::warn!(
                target: "flujo",
                model = %self.model,
                "{refusal}; the function does not return Result, so flujo could not refuse the call"
            );
        }
        if is_async {
            self.call.start();
        } else {
            self.call.enter();
        }
    }

    fn admit(&mut self, model: Cow<'static, str>) -> Result<(), UsageLimitExceeded> {
        self.model = model;
        self.run = run::current();
        self.reservation = Some(budget::admit(
            &self.model,
            self.site.provider,
            self.run.as_deref(),
        )?);
        Ok(())
    }

    /// This call's span context (for the async body).
    pub fn context(&self) -> SpanContext {
        self.call.context()
    }

    /// Whether the call records a span: `fields(...)` are only evaluated when it does.
    pub fn is_recording(&self) -> bool {
        self.call.is_recording()
    }

    /// Records a `fields(key = value)` attribute on the model call's span.
    pub fn record<V: ToAttributeValue + ?Sized>(&mut self, key: &'static str, value: &V) {
        self.call.record(key, value);
    }

    /// Records a `fields(key = %value)` attribute.
    pub fn record_display(&mut self, key: &'static str, value: &dyn fmt::Display) {
        self.call.record_display(key, value);
    }

    /// Records a `fields(key = ?value)` attribute.
    pub fn record_debug(&mut self, key: &'static str, value: &dyn fmt::Debug) {
        self.call.record_debug(key, value);
    }

    /// Whether the call's content is captured (capture on, and the call records a span): the
    /// `input_messages` and `system_instructions` expressions are only evaluated then.
    pub fn captures_content(&self) -> bool {
        content::is_captured() && self.call.is_recording()
    }

    /// Records `gen_ai.input.messages`, redacted and cut to the content budget.
    pub fn capture_input_messages<M: GenAiMessages + ?Sized>(&mut self, messages: &M) {
        self.push_content(
            GEN_AI_INPUT_MESSAGES,
            content::input_messages(&messages.messages()),
        );
    }

    /// Records `gen_ai.system_instructions`, redacted and cut to the content budget.
    pub fn capture_system_instructions<T: AsRef<str> + ?Sized>(&mut self, instructions: &T) {
        self.push_content(
            GEN_AI_SYSTEM_INSTRUCTIONS,
            content::system_instructions(instructions.as_ref()),
        );
    }

    fn push_content(&mut self, key: &'static str, captured: Captured) {
        self.call
            .push_attribute(key, AttributeValue::String(Cow::Owned(captured.json)));
        if captured.truncated {
            self.call
                .push_attribute(FLUJO_CONTENT_TRUNCATED, AttributeValue::Bool(true));
        }
    }

    /// Ends a call of a function returning `Result<T, E>`, reading usage from the `Ok` value.
    pub fn finish_result<T: ReportsUsage, E: StepError>(&mut self, result: &Result<T, E>) {
        match result {
            Ok(value) => {
                let report = UsageReport::of(value, &self.site());
                self.complete(report);
            }
            Err(error) => self.fail(error),
        }
    }

    /// Ends a call of a function returning `Result<T, E>`, reading usage with `usage`.
    pub fn finish_result_with<T, E: StepError, U: IntoTokenUsage>(
        &mut self,
        result: &Result<T, E>,
        usage: impl FnOnce(&T) -> U,
    ) {
        match result {
            Ok(value) => self.complete(UsageReport::from_usage(usage(value))),
            Err(error) => self.fail(error),
        }
    }

    pub(crate) fn fail<E: StepError + ?Sized>(&mut self, error: &E) {
        let details = self.details(None);
        self.call.fail_model_call(error, details);
    }

    /// The labels of this call's `gen_ai.client.operation.*` histograms.
    pub(crate) fn metric_labels(&self) -> Vec<metrics::Label> {
        let provider = self.site.provider.unwrap_or_else(|| {
            pricing::resolve(&self.model, self.site.provider, utc_date(SystemTime::now())).provider
        });
        vec![
            metrics::Label::new(GEN_AI_OPERATION_NAME, self.site.operation.as_str()),
            metrics::Label::new(GEN_AI_PROVIDER_NAME, provider),
            metrics::Label::new(GEN_AI_REQUEST_MODEL, labels::model(&self.model).to_owned()),
        ]
    }

    /// When the call began (raw clock), or now when it records nothing.
    pub(crate) fn started_at(&self) -> u64 {
        self.call.started_at()
    }

    /// A streamed call's chunks reported `usage` so far: the run is charged the difference
    /// now, so that its other calls see the tokens (and their cost) as they arrive.
    pub(crate) fn charge_progress(&mut self, usage: &TokenUsage) {
        let Some(run) = self.run.as_deref() else {
            return;
        };
        let usage = usage.clamped();
        let now = utc_time(SystemTime::now());
        let cost = pricing::resolve(&self.model, self.site.provider, now.date())
            .costs(&usage, now, &[])
            .map(|(cost, _)| cost);
        self.charged = budget::charge_progress(run, self.charged, &usage, cost);
    }

    /// Ends a streamed call: it finished (`error: None`) or a chunk was an error; priced for
    /// the usage the chunks reported.
    pub(crate) fn end_stream<E: StepError + ?Sized>(
        &mut self,
        report: UsageReport,
        timing: StreamTiming,
        error: Option<&E>,
    ) {
        self.stream = Some(timing);
        self.note_usage(&report);
        let details = self.details(Some(report));
        match error {
            None => self.call.end_model_call(Outcome::Ok, details),
            Some(error) => self.call.fail_model_call(error, details),
        }
    }

    /// Ends a streamed call whose stream was dropped before its end.
    pub(crate) fn cancel_stream(&mut self, report: UsageReport, timing: StreamTiming) {
        self.stream = Some(timing);
        self.note_usage(&report);
        if self.call.is_open() {
            tracing::warn!(target: "flujo", model = %self.model,
                "streamed model call dropped before its end; recorded with the usage seen so far");
        }
        let details = self.details(Some(report));
        self.call.end_model_call(Outcome::Cancelled, details);
    }

    /// A call whose response (or stream) reported no usage is counted and said once per call
    /// site (its cost is unknown, never $0).
    fn note_usage(&mut self, report: &UsageReport) {
        if report.usage.is_some() {
            return;
        }
        metrics::counter!(Metric::ModelUsageMissing.name(),
            "model" => labels::model(&self.model).to_owned())
        .increment(1);
        if self.site.usage_missing_said.swap(true, Ordering::Relaxed) {
            return;
        }
        let function = self.site.step.function();
        if self.stream.is_some() {
            tracing::warn!(target: "flujo", model = %self.model, function,
                "a streamed model call ended without its chunks reporting usage: it is recorded \
                 with flujo.usage.missing and no cost (not $0). For OpenAI-style APIs set \
                 `stream_options.include_usage`; check the chunk type's StreamChunk::chunk_usage \
                 (said once per function; counted in flujo_model_usage_missing_total)");
        } else {
            tracing::warn!(target: "flujo", model = %self.model, function,
                "a model call's response reported no usage: it is recorded with \
                 flujo.usage.missing and no cost (not $0). For a JSON body, check that it holds \
                 the provider's usage, and name the provider and API (`#[track_cost(provider = \
                 ..., api = ...)]`) if the model's name does not tell (said once per function; \
                 counted in flujo_model_usage_missing_total)");
        }
    }

    /// Ends a call of a function returning `T`, reading usage from the value.
    pub fn finish<T: ReportsUsage>(&mut self, value: &T) {
        let report = UsageReport::of(value, &self.site());
        self.complete(report);
    }

    /// What reading a response body needs of this call.
    pub(crate) fn site(&self) -> CallSite<'_> {
        CallSite {
            model: &self.model,
            provider: self.site.provider,
            api: self.site.api,
        }
    }

    /// Ends a call of a function returning `T`, reading usage with `usage`.
    pub fn finish_with<T, U: IntoTokenUsage>(&mut self, value: &T, usage: impl FnOnce(&T) -> U) {
        self.complete(UsageReport::from_usage(usage(value)));
    }

    fn complete(&mut self, mut report: UsageReport) {
        self.note_usage(&report);
        if let Some(output) = report.output.take()
            && self.call.is_recording()
        {
            self.push_content(GEN_AI_OUTPUT_MESSAGES, output);
        }
        let details = self.details(Some(report));
        self.call.end_model_call(Outcome::Ok, details);
    }

    /// Prices the call and charges the run, here on the calling thread so that the next
    /// call of the run sees what this one used.
    fn details(&mut self, report: Option<UsageReport>) -> ModelCallRecord {
        let timestamp = SystemTime::now();
        // Converted once: the price's dates and hours, and the day the budgets charge.
        let at = utc_time(timestamp);
        let report_given = report.is_some();
        let resolved = pricing::resolve(&self.model, self.site.provider, at.date());
        let reported = report.as_ref().and_then(|r| r.usage);
        let context: Vec<(&str, &str)> = report.as_ref().map_or_else(Vec::new, |r| {
            r.price_context
                .iter()
                .map(|(key, value)| (*key, value.as_str()))
                .collect()
        });
        let usage = reported.map(TokenUsage::clamped);
        // Only a body that reported units beyond tokens has any.
        let units = report
            .as_ref()
            .map(|r| r.units.as_slice())
            .filter(|units| !units.is_empty());
        let (cost, output_cost) = match (reported, units) {
            (Some(usage), Some(units)) if usage.is_within_bounds() => {
                let units: Vec<(&str, Count)> = units
                    .iter()
                    .map(|(unit, count)| (unit.as_str(), *count))
                    .collect();
                match resolved.costs_of(&units, at, &context) {
                    Some(Ok(costs)) => Some(costs),
                    Some(Err(reason)) => {
                        unpriceable(&self.model, &reason);
                        None
                    }
                    None => None,
                }
                .unzip()
            }
            (Some(usage), _) if usage.is_within_bounds() => {
                resolved.costs(&usage, at, &context).unzip()
            }
            (Some(usage), _) => {
                out_of_bounds(&self.model, &usage);
                (None, None)
            }
            (None, _) => (None, None),
        };
        let step = self.context().step();
        budget::charge(
            self.run.as_deref(),
            self.reservation.take().unwrap_or_default(),
            usage.as_ref(),
            cost,
            at.date(),
            std::mem::replace(&mut self.charged, Progress::NONE),
        );
        let provider = self.site.provider.unwrap_or(resolved.provider);
        ModelCallRecord {
            operation: self.site.operation,
            model: std::mem::take(&mut self.model),
            provider,
            response: report.map(|r| r.response).unwrap_or_default(),
            usage,
            cost,
            output_cost,
            price_version: resolved.version,
            step,
            pipeline: self.run.as_deref().and_then(|run| run.pipeline),
            request_id: self.run.as_deref().and_then(|run| run.request_id.clone()),
            conversation_id: self
                .run
                .as_deref()
                .and_then(|run| run.conversation_id.clone()),
            usage_missing: report_given && usage.is_none(),
            stream: self.stream.take(),
            timestamp,
        }
    }
}

/// A response body whose usage the price data's rule refuses to price (a count below the
/// counts within it, a priced unit left out while parts of it were reported): recorded
/// unpriced (counted with the unpriced calls where the record is applied), said once per
/// process.
fn unpriceable(model: &str, reason: &str) {
    static SAID: AtomicBool = AtomicBool::new(false);
    if !SAID.swap(true, Ordering::Relaxed) {
        tracing::warn!(target: "flujo", model, reason,
            "a call of model `{model}` returned usage that cannot be priced: {reason}; it is \
             recorded unpriced (its cost is unknown, not $0) (said once; counted in \
             flujo_unpriced_calls_total)");
    }
}

/// A call that reported more tokens than a call can use: recorded clamped and unpriced,
/// counted, and said once per process (a bug in reading usage repeats on every call).
fn out_of_bounds(model: &str, usage: &TokenUsage) {
    static SAID: AtomicBool = AtomicBool::new(false);
    metrics::counter!(Metric::TokenUsageOutOfBounds.name(),
        "model" => labels::model(model).to_owned())
    .increment(1);
    if !SAID.swap(true, Ordering::Relaxed) {
        tracing::warn!(target: "flujo", model, ?usage, max = MAX_TOKENS_PER_CALL,
            "a call of model `{model}` reported more tokens than one call can use (at most \
             flujo::cost::MAX_TOKENS_PER_CALL = {MAX_TOKENS_PER_CALL} of each kind): its counts \
             are recorded clamped to that bound, and the call is not priced because of it (its \
             cost is unknown, not $0; the model's price is not in question); check how its usage \
             is read (said once; counted in flujo_token_usage_out_of_bounds_total)");
    }
}

impl Drop for ModelCall {
    /// A call dropped before it finished (a timeout cancelled its future) or unwound by a
    /// panic is still a model call: its span is `{operation} {model}` with the GenAI
    /// attributes, and `flujo_model_requests_total` counts it as `cancelled` or `error`.
    fn drop(&mut self) {
        if !self.call.is_open() {
            // Not recording (telemetry off): only the run's reservation is given back.
            if let Some(reservation) = self.reservation.take() {
                budget::charge(
                    self.run.as_deref(),
                    reservation,
                    None,
                    None,
                    utc_date(SystemTime::now()),
                    std::mem::replace(&mut self.charged, Progress::NONE),
                );
            }
            return;
        }
        let outcome = if std::thread::panicking() {
            tracing::error!(target: "flujo", model = %self.model, "model call panicked");
            Outcome::Panicked
        } else {
            tracing::warn!(target: "flujo", model = %self.model, "model call cancelled before it finished");
            Outcome::Cancelled
        };
        let details = self.details(None);
        self.call.end_model_call(outcome, details);
    }
}
