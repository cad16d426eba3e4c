//! What `#[track_cost]` expands to: a static [`ModelCallSite`] per function and a
//! [`ModelCall`] per call that checks the run's usage limits, times the call as a model-call
//! span, reads the token usage the function returns, prices it exactly, and hands the result
//! to the export worker, which applies the model metrics and appends the cost record to the
//! ledger.

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, LazyLock, Mutex};
use std::time::SystemTime;

use flujo_pricing::{TokenUsage, Usd};

use crate::attribute::AttributeValue;
use crate::budget::{Limit, UsageLimitExceeded};
use crate::context::SpanContext;
use crate::ledger::{self, CostRecord};
use crate::pricing::{self, utc_date};
use crate::run::{self, RunScope};
use crate::span::{Outcome, SpanRecord};
use crate::step::{Step, StepCall, StepError};
use crate::{TraceId, clock};

/// The kind of model call, as `gen_ai.operation.name` spells it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Operation {
    /// A chat completion (`chat`).
    Chat,
    /// A plain text completion (`text_completion`).
    TextCompletion,
    /// An embeddings request (`embeddings`).
    Embeddings,
    /// A Gemini `generateContent` call (`generate_content`).
    GenerateContent,
}

impl Operation {
    /// The `gen_ai.operation.name` value.
    pub const fn as_str(self) -> &'static str {
        match self {
            Operation::Chat => "chat",
            Operation::TextCompletion => "text_completion",
            Operation::Embeddings => "embeddings",
            Operation::GenerateContent => "generate_content",
        }
    }
}

/// The token usage a model call's return value reports. `#[track_cost]` reads it from the
/// function's value (the `Ok` value of a `Result`).
///
/// ```
/// use flujo::{ReportsUsage, TokenUsage};
///
/// struct Completion { text: String, prompt_tokens: u64, completion_tokens: u64, cached: u64 }
///
/// impl ReportsUsage for Completion {
///     fn token_usage(&self) -> Option<TokenUsage> {
///         Some(TokenUsage::new(self.prompt_tokens, self.completion_tokens).with_cache_read(self.cached))
///     }
/// }
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` does not report token usage, which `#[track_cost]` needs to price the call",
    label = "`#[track_cost]` reads the token usage from this value",
    note = "implement `flujo::ReportsUsage` for `{Self}` (return `Some(flujo::TokenUsage::new(input, output))`), \
            or name a function that extracts it: `#[track_cost(model = ..., usage = my_usage_fn)]`"
)]
pub trait ReportsUsage {
    /// The tokens the call used; `None` when the response carries no usage (the call is then
    /// counted as a request without tokens or cost).
    fn token_usage(&self) -> Option<TokenUsage>;

    /// The model that actually answered (`gen_ai.response.model`), when the response says.
    fn response_model(&self) -> Option<&str> {
        None
    }
}

impl ReportsUsage for TokenUsage {
    fn token_usage(&self) -> Option<TokenUsage> {
        Some(*self)
    }
}

impl<T: ReportsUsage + ?Sized> ReportsUsage for &T {
    fn token_usage(&self) -> Option<TokenUsage> {
        (**self).token_usage()
    }
    fn response_model(&self) -> Option<&str> {
        (**self).response_model()
    }
}

impl<T: ReportsUsage + ?Sized> ReportsUsage for Box<T> {
    fn token_usage(&self) -> Option<TokenUsage> {
        (**self).token_usage()
    }
    fn response_model(&self) -> Option<&str> {
        (**self).response_model()
    }
}

impl<T: ReportsUsage> ReportsUsage for Option<T> {
    fn token_usage(&self) -> Option<TokenUsage> {
        self.as_ref().and_then(ReportsUsage::token_usage)
    }
    fn response_model(&self) -> Option<&str> {
        self.as_ref().and_then(ReportsUsage::response_model)
    }
}

/// What a `usage = path` function may return.
#[diagnostic::on_unimplemented(
    message = "a `usage = ...` function must return `flujo::TokenUsage` or `Option<flujo::TokenUsage>`, not `{Self}`"
)]
pub trait IntoTokenUsage {
    /// The usage, if any.
    fn into_token_usage(self) -> Option<TokenUsage>;
}

impl IntoTokenUsage for TokenUsage {
    fn into_token_usage(self) -> Option<TokenUsage> {
        Some(self)
    }
}

impl IntoTokenUsage for Option<TokenUsage> {
    fn into_token_usage(self) -> Option<TokenUsage> {
        self
    }
}

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
}

impl ModelCallSite {
    /// Describes a model-call site; `provider: None` infers it from the model's name.
    pub const fn new(
        operation: Operation,
        provider: Option<&'static str>,
        function: &'static str,
        namespace: &'static str,
    ) -> ModelCallSite {
        ModelCallSite {
            step: Step::model_call(operation.as_str(), function, namespace),
            operation,
            provider,
        }
    }
}

/// One call of a `#[track_cost]` function.
pub struct ModelCall {
    site: &'static ModelCallSite,
    call: StepCall,
    model: Cow<'static, str>,
    run: Option<Arc<RunScope>>,
}

impl ModelCall {
    /// A call that has not begun.
    pub const fn new(site: &'static ModelCallSite) -> ModelCall {
        ModelCall {
            site,
            call: StepCall::new(&site.step),
            model: Cow::Borrowed(""),
            run: None,
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
        let refused = self
            .run
            .as_deref()
            .and_then(|run| run.budget.as_ref())
            .and_then(|budget| budget.check().err())
            .or_else(ledger::daily_limit_reached)
            .or_else(|| {
                let unpriced = pricing::strict()
                    && !pricing::resolve(&self.model, utc_date(SystemTime::now())).is_priced();
                unpriced.then(|| Limit::UnpricedModel {
                    model: self.model.to_string(),
                })
            });
        match refused {
            None => Ok(()),
            Some(limit) => {
                metrics::counter!("flujo_budget_exceeded_total", "limit" => limit.label())
                    .increment(1);
                let refusal = UsageLimitExceeded { limit };
                tracing::warn!(target: "flujo", model = %self.model, "{refusal}");
                if let Some(run) = &self.run {
                    *run.refused.lock().unwrap_or_else(|e| e.into_inner()) = Some(refusal.clone());
                }
                Err(refusal)
            }
        }
    }

    /// This call's span context (for the async body).
    pub fn context(&self) -> SpanContext {
        self.call.context()
    }

    /// Ends a call of a function returning `Result<T, E>`, reading usage from the `Ok` value.
    pub fn finish_result<T: ReportsUsage, E: StepError>(&mut self, result: &Result<T, E>) {
        match result {
            Ok(value) => self.complete(UsageReport::of(value)),
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

    fn fail<E: StepError>(&mut self, error: &E) {
        let details = self.details(None);
        self.call.fail_model_call(error, details);
    }

    /// Ends a call of a function returning `T`, reading usage from the value.
    pub fn finish<T: ReportsUsage>(&mut self, value: &T) {
        self.complete(UsageReport::of(value));
    }

    /// Ends a call of a function returning `T`, reading usage with `usage`.
    pub fn finish_with<T, U: IntoTokenUsage>(&mut self, value: &T, usage: impl FnOnce(&T) -> U) {
        self.complete(UsageReport::from_usage(usage(value)));
    }

    fn complete(&mut self, report: UsageReport) {
        let details = self.details(Some(report));
        self.call.end_model_call(Outcome::Ok, details);
    }

    /// Prices the call and charges the run, here on the calling thread so that the next
    /// call of the run sees what this one used.
    fn details(&mut self, report: Option<UsageReport>) -> ModelCallRecord {
        let timestamp = SystemTime::now();
        let resolved = pricing::resolve(&self.model, utc_date(timestamp));
        let usage = report.as_ref().and_then(|r| r.usage);
        let cost = usage.and_then(|usage| resolved.cost(&usage));
        let step = self.context().step();
        if let Some(usage) = &usage {
            if let Some(run) = self.run.as_deref() {
                if let Some(budget) = &run.budget {
                    budget.add(usage, cost);
                }
                run::note_usage(run, *usage, cost);
            }
            if let Some(cost) = cost {
                ledger::add_to_today(timestamp, cost);
            }
        }
        let provider = self.site.provider.unwrap_or(resolved.provider);
        ModelCallRecord {
            operation: self.site.operation,
            model: std::mem::take(&mut self.model),
            provider,
            response_model: report.and_then(|r| r.response_model),
            usage,
            cost,
            price_version: resolved.version,
            step,
            pipeline: self.run.as_deref().and_then(|run| run.pipeline),
            request_id: self.run.as_deref().and_then(|run| run.request_id.clone()),
            timestamp,
        }
    }
}

/// What a return value said about its usage.
struct UsageReport {
    usage: Option<TokenUsage>,
    response_model: Option<String>,
}

impl UsageReport {
    fn of<T: ReportsUsage + ?Sized>(value: &T) -> UsageReport {
        UsageReport {
            usage: value.token_usage(),
            response_model: value.response_model().map(str::to_owned),
        }
    }

    fn from_usage(usage: impl IntoTokenUsage) -> UsageReport {
        UsageReport {
            usage: usage.into_token_usage(),
            response_model: None,
        }
    }
}

/// What a model call adds to its span record (in its boxed extras: most records are steps).
#[derive(Clone, Debug)]
pub(crate) struct ModelCallRecord {
    pub operation: Operation,
    pub model: Cow<'static, str>,
    pub provider: &'static str,
    pub response_model: Option<String>,
    pub usage: Option<TokenUsage>,
    /// `None`: no usage reported, or the model has no price.
    pub cost: Option<Usd>,
    pub price_version: Arc<str>,
    pub step: Option<&'static str>,
    pub pipeline: Option<&'static str>,
    pub request_id: Option<Arc<str>>,
    pub timestamp: SystemTime,
}

impl ModelCallRecord {
    /// Priced nowhere although it reported usage.
    fn is_unpriced(&self) -> bool {
        self.usage.is_some() && self.cost.is_none()
    }

    /// The span name: `{operation} {model}`, as the GenAI conventions name model-call spans.
    pub(crate) fn span_name(&self) -> String {
        format!("{} {}", self.operation.as_str(), self.model)
    }

    /// The `gen_ai.*` attributes of the span.
    pub(crate) fn attributes(&self) -> Vec<(&'static str, AttributeValue)> {
        let text = |s: &str| AttributeValue::String(Cow::Owned(s.to_owned()));
        let int = |n: u64| AttributeValue::Int(i64::try_from(n).unwrap_or(i64::MAX));
        let mut attributes = vec![
            (
                "gen_ai.operation.name",
                AttributeValue::String(Cow::Borrowed(self.operation.as_str())),
            ),
            (
                "gen_ai.provider.name",
                AttributeValue::String(Cow::Borrowed(self.provider)),
            ),
            (
                "gen_ai.system",
                AttributeValue::String(Cow::Borrowed(self.provider)),
            ),
            ("gen_ai.request.model", text(&self.model)),
        ];
        if let Some(model) = &self.response_model {
            attributes.push(("gen_ai.response.model", text(model)));
        }
        if let Some(usage) = &self.usage {
            attributes.extend([
                ("gen_ai.usage.input_tokens", int(usage.input)),
                ("gen_ai.usage.output_tokens", int(usage.output)),
                (
                    "gen_ai.usage.cache_read.input_tokens",
                    int(usage.cache_read_input),
                ),
                (
                    "gen_ai.usage.cache_creation.input_tokens",
                    int(usage.cache_write_input),
                ),
                (
                    "gen_ai.usage.reasoning.output_tokens",
                    int(usage.reasoning_output),
                ),
            ]);
        }
        if let Some(cost) = self.cost {
            attributes.extend([
                (
                    "gen_ai.usage.cost.amount",
                    AttributeValue::Float(cost.as_f64()),
                ),
                (
                    "gen_ai.usage.cost.currency",
                    AttributeValue::String(Cow::Borrowed("USD")),
                ),
                ("operation.cost", AttributeValue::Float(cost.as_f64())),
            ]);
        }
        if self.is_unpriced() {
            attributes.push(("flujo.cost.unpriced", AttributeValue::Bool(true)));
        }
        attributes.push(("flujo.cost.price_version", text(&self.price_version)));
        attributes
    }
}

/// Applies a finished model call (on the export worker, or on the calling thread when its
/// queue was full): the model metrics, then the cost record into the ledger.
pub(crate) fn apply(record: &SpanRecord, call: &ModelCallRecord) {
    let metrics = CallMetrics::of(call);
    let status = match record.outcome {
        Outcome::Ok => 0,
        Outcome::Error(_) | Outcome::Panicked => 1,
        Outcome::Cancelled => 2,
    };
    metrics.requests[status].increment(1);
    let duration = clock::elapsed(record.start, record.end).as_secs_f64();
    match &record.outcome {
        Outcome::Error(details) => {
            CallMetrics::failed_duration(call, details.error_type).record(duration)
        }
        Outcome::Panicked => CallMetrics::failed_duration(call, "panic").record(duration),
        _ => metrics.duration.record(duration),
    }
    let Some(usage) = call.usage else {
        return;
    };
    metrics.token_usage[0].record(usage.input as f64);
    metrics.token_usage[1].record(usage.output as f64);
    let tokens = [
        usage.input,
        usage.output,
        usage.cache_read_input,
        usage.cache_write_input,
        usage.reasoning_output,
    ];
    for (counter, tokens) in metrics.tokens.iter().zip(tokens) {
        counter.increment(tokens);
    }
    match call.cost {
        Some(cost) => metrics.cost.increment(cost.nanos()),
        None => {
            metrics.unpriced.increment(1);
            warn_unpriced_once(&call.model);
        }
    }
    ledger::accept(CostRecord {
        timestamp: call.timestamp,
        request_id: call.request_id.as_deref().map(str::to_owned),
        trace_id: (record.trace_id != 0).then_some(TraceId(record.trace_id)),
        pipeline: call.pipeline.map(str::to_owned),
        step: call.step.map(str::to_owned),
        model: call.model.to_string(),
        provider: call.provider.to_owned(),
        operation: call.operation.as_str().to_owned(),
        usage,
        cost: call.cost,
        price_version: call.price_version.to_string(),
    });
}

/// The `flujo_tokens_total` token types, in the order [`CallMetrics::tokens`] keeps them.
const TOKEN_TYPES: [&str; 5] = [
    "input",
    "output",
    "cache_read_input",
    "cache_write_input",
    "reasoning_output",
];

/// The metric handles of one (operation, model, provider, pipeline, step): registered on
/// its first call, then reused, so applying a call is a few atomic adds.
struct CallMetrics {
    requests: [metrics::Counter; 3],
    duration: metrics::Histogram,
    token_usage: [metrics::Histogram; 2],
    tokens: [metrics::Counter; 5],
    cost: metrics::Counter,
    unpriced: metrics::Counter,
}

type CallKey = (
    &'static str,
    Cow<'static, str>,
    &'static str,
    &'static str,
    &'static str,
);

/// Distinct label sets kept, at most; past that, handles are registered per call.
const CACHED_CALL_METRICS: usize = 4096;

impl CallMetrics {
    fn of(call: &ModelCallRecord) -> Arc<CallMetrics> {
        static CACHE: LazyLock<Mutex<HashMap<CallKey, Arc<CallMetrics>>>> =
            LazyLock::new(Mutex::default);
        let key: CallKey = (
            call.operation.as_str(),
            call.model.clone(),
            call.provider,
            call.pipeline.unwrap_or(""),
            call.step.unwrap_or(""),
        );
        let mut cache = CACHE.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(found) = cache.get(&key) {
            return Arc::clone(found);
        }
        let metrics = Arc::new(CallMetrics::register(&key));
        if cache.len() < CACHED_CALL_METRICS {
            cache.insert(key, Arc::clone(&metrics));
        }
        metrics
    }

    fn register(key: &CallKey) -> CallMetrics {
        let (operation, model, provider, pipeline, step) = key.clone();
        let model = model.into_owned();
        let genai = |extra: Option<(&'static str, &'static str)>| {
            let mut labels = vec![
                metrics::Label::new("gen_ai.operation.name", operation),
                metrics::Label::new("gen_ai.provider.name", provider),
                metrics::Label::new("gen_ai.request.model", model.clone()),
            ];
            labels.extend(extra.map(|(key, value)| metrics::Label::new(key, value)));
            labels
        };
        CallMetrics {
            requests: ["ok", "error", "cancelled"].map(|status| {
                metrics::counter!("flujo_model_requests_total",
                    "model" => model.clone(), "provider" => provider, "status" => status)
            }),
            duration: metrics::histogram!("gen_ai.client.operation.duration", genai(None)),
            token_usage: ["input", "output"].map(|token_type| {
                metrics::histogram!(
                    "gen_ai.client.token.usage",
                    genai(Some(("gen_ai.token.type", token_type)))
                )
            }),
            tokens: TOKEN_TYPES.map(|token_type| {
                metrics::counter!("flujo_tokens_total",
                    "model" => model.clone(), "provider" => provider, "token_type" => token_type)
            }),
            cost: metrics::counter!(crate::metrics::COST_USD_TOTAL,
                "model" => model.clone(), "provider" => provider,
                "pipeline" => pipeline, "step" => step),
            unpriced: metrics::counter!("flujo_unpriced_calls_total", "model" => model.clone()),
        }
    }

    /// The duration of a failed call, labelled with its `error.type` (rare: not cached).
    fn failed_duration(call: &ModelCallRecord, error_type: &'static str) -> metrics::Histogram {
        metrics::histogram!(
            "gen_ai.client.operation.duration",
            "gen_ai.operation.name" => call.operation.as_str(),
            "gen_ai.provider.name" => call.provider,
            "gen_ai.request.model" => call.model.to_string(),
            "error.type" => error_type
        )
    }
}

fn warn_unpriced_once(model: &str) {
    static WARNED: LazyLock<Mutex<HashSet<String>>> = LazyLock::new(Mutex::default);
    let first = WARNED
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(model.to_owned());
    if first {
        tracing::warn!(
            target: "flujo",
            model,
            "model `{model}` has no price: its calls are recorded as unpriced (not $0). Add it \
             to a price file (FLUJO_PRICING_FILE) or with flujo::set_model_price"
        );
    }
}
