//! What `#[track_cost]` expands to: a static [`ModelCallSite`] per function and a
//! [`ModelCall`] per call that checks the run's usage limits, times the call as a model-call
//! span, reads the token usage the function returns, prices it exactly, and hands the result
//! to the export worker, which applies the model metrics and appends the cost record to the
//! ledger.

use std::borrow::Cow;
use std::collections::HashSet;
use std::fmt;
use std::path::Path;
use std::sync::{Arc, LazyLock, Mutex, RwLock};
use std::time::SystemTime;

use flujo_pricing::{Date, ModelPrice, PriceTable, PricingError, TokenUsage, Usd};

use crate::attribute::AttributeValue;
use crate::budget::{Limit, UsageLimitExceeded};
use crate::context::SpanContext;
use crate::ledger::{self, CostRecord};
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
                let pricing = pricing();
                (pricing.strict && !pricing.table.knows(&self.model)).then(|| {
                    Limit::UnpricedModel {
                        model: self.model.to_string(),
                    }
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
        let pricing = pricing();
        let timestamp = SystemTime::now();
        let usage = report.as_ref().and_then(|r| r.usage);
        let cost = usage.and_then(|usage| {
            pricing
                .table
                .price(&self.model, &usage, utc_date(timestamp))
                .map(|priced| priced.cost)
        });
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
        let provider = match self.site.provider {
            Some(provider) => Cow::Borrowed(provider),
            None => pricing
                .table
                .provider_of(&self.model)
                .map_or(Cow::Borrowed("unknown"), Cow::Owned),
        };
        ModelCallRecord {
            operation: self.site.operation,
            model: std::mem::take(&mut self.model),
            provider,
            response_model: report.and_then(|r| r.response_model),
            usage,
            cost,
            price_version: Arc::clone(&pricing.version),
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
    pub provider: Cow<'static, str>,
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
            ("gen_ai.provider.name", text(&self.provider)),
            ("gen_ai.system", text(&self.provider)),
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
    let model = call.model.to_string();
    let provider = call.provider.to_string();
    let status = match record.outcome {
        Outcome::Ok => "ok",
        Outcome::Error(_) | Outcome::Panicked => "error",
        Outcome::Cancelled => "cancelled",
    };
    metrics::counter!("flujo_model_requests_total",
        "model" => model.clone(), "provider" => provider.clone(), "status" => status)
    .increment(1);
    let operation = call.operation.as_str();
    let genai_labels = |extra: Option<(&'static str, &'static str)>| {
        let mut labels = vec![
            metrics::Label::new("gen_ai.operation.name", operation),
            metrics::Label::new("gen_ai.provider.name", provider.clone()),
            metrics::Label::new("gen_ai.request.model", model.clone()),
        ];
        if let Some((key, value)) = extra {
            labels.push(metrics::Label::new(key, value));
        }
        labels
    };
    let error_type = match &record.outcome {
        Outcome::Error(details) => Some(("error.type", details.error_type)),
        Outcome::Panicked => Some(("error.type", "panic")),
        _ => None,
    };
    metrics::histogram!("gen_ai.client.operation.duration", genai_labels(error_type))
        .record(clock::elapsed(record.start, record.end).as_secs_f64());
    let Some(usage) = call.usage else {
        return;
    };
    metrics::histogram!(
        "gen_ai.client.token.usage",
        genai_labels(Some(("gen_ai.token.type", "input")))
    )
    .record(usage.input as f64);
    metrics::histogram!(
        "gen_ai.client.token.usage",
        genai_labels(Some(("gen_ai.token.type", "output")))
    )
    .record(usage.output as f64);
    for (token_type, tokens) in [
        ("input", usage.input),
        ("output", usage.output),
        ("cache_read_input", usage.cache_read_input),
        ("cache_write_input", usage.cache_write_input),
        ("reasoning_output", usage.reasoning_output),
    ] {
        metrics::counter!("flujo_tokens_total",
            "model" => model.clone(), "provider" => provider.clone(), "token_type" => token_type)
        .increment(tokens);
    }
    let pipeline = call.pipeline.unwrap_or("");
    let step = call.step.unwrap_or("");
    match call.cost {
        Some(cost) => metrics::counter!(crate::metrics::COST_USD_TOTAL,
            "model" => model.clone(), "provider" => provider.clone(),
            "pipeline" => pipeline, "step" => step)
        .increment(cost.nanos()),
        None => {
            metrics::counter!("flujo_unpriced_calls_total", "model" => model.clone()).increment(1);
            warn_unpriced_once(&model);
        }
    }
    ledger::accept(CostRecord {
        timestamp: call.timestamp,
        request_id: call.request_id.as_deref().map(str::to_owned),
        trace_id: (record.trace_id != 0).then_some(TraceId(record.trace_id)),
        pipeline: call.pipeline.map(str::to_owned),
        step: call.step.map(str::to_owned),
        model,
        provider,
        operation: operation.to_owned(),
        usage,
        cost: call.cost,
        price_version: call.price_version.to_string(),
    });
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

/// The prices in force and whether an unpriced model is refused.
pub(crate) struct Pricing {
    pub(crate) table: PriceTable,
    pub(crate) version: Arc<str>,
    pub(crate) strict: bool,
}

impl fmt::Debug for Pricing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pricing")
            .field("version", &self.version)
            .field("strict", &self.strict)
            .finish()
    }
}

static PRICING: LazyLock<RwLock<Arc<Pricing>>> =
    LazyLock::new(|| RwLock::new(Arc::new(pricing_from(PriceTable::builtin(), false))));

fn pricing_from(table: PriceTable, strict: bool) -> Pricing {
    Pricing {
        version: Arc::from(table.version()),
        table,
        strict,
    }
}

/// The prices in force. A read lock held for a pointer copy: model calls take milliseconds
/// to seconds, and prices change only at init or by [`set_model_price`].
pub(crate) fn pricing() -> Arc<Pricing> {
    Arc::clone(&PRICING.read().unwrap_or_else(|e| e.into_inner()))
}

fn update_pricing(
    update: impl FnOnce(&Pricing) -> Result<Pricing, PricingError>,
) -> Result<(), PricingError> {
    let mut current = PRICING.write().unwrap_or_else(|e| e.into_inner());
    *current = Arc::new(update(&current)?);
    Ok(())
}

/// Loads the price file (on top of the built-in table) and the strict setting at init.
pub(crate) fn configure(file: Option<&Path>, strict: bool) -> Result<(), PricingError> {
    update_pricing(|_| {
        let mut table = PriceTable::builtin();
        if let Some(file) = file {
            table.merge_file(file)?;
        }
        Ok(pricing_from(table, strict))
    })
}

/// Adds or replaces a model's price for this process, on top of the built-in table and any
/// price file. Calls priced afterwards use it.
///
/// ```
/// let price = flujo::ModelPrice::new("acme-llm", 0.5, 1.5)?.with_provider("acme");
/// flujo::set_model_price(price);
/// # Ok::<(), flujo::PricingError>(())
/// ```
pub fn set_model_price(price: ModelPrice) {
    let _ = update_pricing(|current| {
        let mut table = current.table.clone();
        table.insert(price);
        Ok(pricing_from(table, current.strict))
    });
}

/// The UTC calendar date of `time`.
pub(crate) fn utc_date(time: SystemTime) -> Date {
    time::OffsetDateTime::from(time).date()
}
