//! The owned shape of a finished span that exporters and tests read, derived on the worker
//! from a record: standard attributes (`flujo.step.*`, `code.*`, the `gen_ai.*` of a model
//! call) come from the call site and the model-call details when read, so handing a span to
//! the exporters allocates nothing.

use crate::core::names::{
    AGENT_NAME, CODE_FUNCTION_NAME, ERROR_TYPE, FLUJO_COST_PRICE_VERSION, FLUJO_COST_UNPRICED,
    FLUJO_SPAN_TRUNCATED_BYTES, FLUJO_STEP_ATTEMPTS, FLUJO_STEP_CANCELLED, FLUJO_STEP_NAME,
    FLUJO_STREAM_CHUNKS, FLUJO_USAGE_MISSING, GEN_AI_AGENT_NAME, GEN_AI_OPERATION_NAME,
    GEN_AI_PROVIDER_NAME, GEN_AI_REQUEST_MODEL, GEN_AI_REQUEST_STREAM,
    GEN_AI_RESPONSE_FINISH_REASONS, GEN_AI_RESPONSE_ID, GEN_AI_RESPONSE_MODEL,
    GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK, GEN_AI_TOOL_NAME, GEN_AI_TOOL_TYPE,
    GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS, GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS,
    GEN_AI_USAGE_COST, GEN_AI_USAGE_COST_AMOUNT, GEN_AI_USAGE_COST_CURRENCY,
    GEN_AI_USAGE_INPUT_TOKENS, GEN_AI_USAGE_OUTPUT_TOKENS, GEN_AI_USAGE_REASONING_OUTPUT_TOKENS,
    LLM_COST_COMPLETION, LLM_COST_PROMPT, LLM_COST_TOTAL, LLM_MODEL_NAME, LLM_PROVIDER,
    LLM_TOKEN_COUNT_COMPLETION, LLM_TOKEN_COUNT_COMPLETION_REASONING, LLM_TOKEN_COUNT_PROMPT,
    LLM_TOKEN_COUNT_PROMPT_CACHE_READ, LLM_TOKEN_COUNT_PROMPT_CACHE_WRITE, LLM_TOKEN_COUNT_TOTAL,
    OPENINFERENCE_SPAN_KIND, TOOL_NAME,
};
use std::borrow::Cow;
use std::time::{Duration, SystemTime};

use flujo_pricing::{TokenUsage, Usd};

use crate::core::attribute::{AttributeValue, floor_char_boundary};
use crate::core::clock::{self, Anchor};
use crate::core::genai::{self, GenAiCompat, GenAiConventions};
use crate::core::ids::{SpanId, TraceId};
use crate::core::record::{
    ErrorDetails, ModelCallRecord, Outcome, SpanEvent, SpanExtras, SpanRecord,
};
use crate::core::site::{CallSite, SiteKind, StepRole};
use crate::core::trace_state;

/// The outcome of a span, as OpenTelemetry's span status.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SpanStatus {
    /// Not set: the work neither succeeded nor failed (for example a future dropped early).
    Unset,
    /// The work succeeded.
    Ok,
    /// The work failed; `message` is the error's `Display` output.
    Error {
        /// Why it failed.
        message: String,
    },
}

impl SpanStatus {
    /// Whether this is [`SpanStatus::Error`].
    pub fn is_error(&self) -> bool {
        matches!(self, SpanStatus::Error { .. })
    }
}

/// What a span stands for, as OpenTelemetry's span kind says it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SpanKind {
    /// Work inside the application: steps, pipeline runs, bridged `tracing` spans.
    Internal,
    /// A call to a remote service: a model call (an inference request to its provider).
    Client,
}

/// A finished span, as exporters and [`crate::testing::Capture`] see it.
///
/// The standard attributes (`flujo.step.*`, `code.*`, `error.type`) are derived from the
/// span's static description when read, so handing a span to the exporters allocates nothing.
#[derive(Clone, Debug)]
pub struct FinishedSpan {
    /// Span name: the step name for steps.
    pub name: Cow<'static, str>,
    /// The trace this span belongs to.
    pub trace_id: TraceId,
    /// This span's id.
    pub span_id: SpanId,
    /// The enclosing span, `None` for a root span.
    pub parent_span_id: Option<SpanId>,
    /// The enclosing span is in another process (a `traceparent` continued here).
    parent_is_remote: bool,
    /// The trace's W3C `tracestate`, when it came with one.
    trace_state: Option<std::sync::Arc<str>>,
    /// Outcome.
    pub status: SpanStatus,
    /// Raw clock readings, turned into wall-clock time with the anchor of the drain that
    /// delivered the span.
    start: u64,
    end: u64,
    anchor: Anchor,
    site: &'static CallSite,
    attempts: u32,
    error_type: Option<&'static str>,
    cancelled: bool,
    fields: Vec<(Cow<'static, str>, AttributeValue)>,
    extras: Option<Box<SpanExtras>>,
}

impl FinishedSpan {
    /// The value of attribute `key`, if the span has it.
    pub fn attribute(&self, key: &str) -> Option<AttributeValue> {
        self.attributes()
            .find(|(k, _)| *k == key)
            .map(|(_, value)| value)
    }

    /// Every attribute: the standard ones first, then those from `fields(...)`.
    pub fn attributes(&self) -> impl Iterator<Item = (&str, AttributeValue)> + '_ {
        self.keyed_attributes()
            .map(|(key, value)| (key.as_str(), value))
    }

    /// [`FinishedSpan::attributes`], telling static keys (nearly all) from the span's own, so
    /// that an exporter can keep a static key without copying it.
    pub(crate) fn keyed_attributes(
        &self,
    ) -> impl Iterator<Item = (AttributeKey<'_>, AttributeValue)> + '_ {
        let fields = self.fields().iter().map(|(key, value)| {
            let key = match key {
                Cow::Borrowed(key) => AttributeKey::Static(key),
                Cow::Owned(key) => AttributeKey::Owned(key),
            };
            (key, value.clone())
        });
        self.standard_attributes()
            .map(|(key, value)| (AttributeKey::Static(key), value))
            .chain(fields)
    }

    /// The attributes flujo derives (step, code, GenAI, error), before the span's fields.
    pub(crate) fn standard_attributes(
        &self,
    ) -> impl Iterator<Item = (&'static str, AttributeValue)> + '_ {
        // Only step spans carry the `flujo.step.*` attributes; a model call carries `gen_ai.*`.
        let is_step = self.site.kind == SiteKind::Step;
        let step = std::iter::once(self.site).flat_map(move |step| {
            let step_attributes = [
                (FLUJO_STEP_NAME, str_value(step.name)),
                (
                    FLUJO_STEP_ATTEMPTS,
                    AttributeValue::Int(i64::from(self.attempts)),
                ),
            ];
            // The current conventions' one name for the function (`code.function` and
            // `code.namespace` are deprecated). Bridged `tracing` spans have no function.
            let code = (!step.qualified.is_empty())
                .then(|| (CODE_FUNCTION_NAME, str_value(step.qualified)));
            // OpenInference (Arize Phoenix) files a step and a pipeline run as a CHAIN;
            // tools and agents say what they are below.
            let chain = (matches!(step.kind, SiteKind::Step | SiteKind::Pipeline)
                && step.role == StepRole::Step
                && genai::compat().contains(GenAiCompat::OPENINFERENCE))
            .then_some((OPENINFERENCE_SPAN_KIND, str_value("CHAIN")));
            step_attributes
                .into_iter()
                .filter(move |_| is_step)
                .chain(code)
                .chain(chain)
        });
        let role = role_attributes(self.site).into_iter().flatten();
        let model_call = self
            .extras
            .iter()
            .filter_map(|extras| extras.model_call.as_ref())
            .flat_map(|call| model_call_attributes(call));
        let error = self
            .error_type
            .map(|error_type| (ERROR_TYPE, str_value(error_type)));
        let cancelled = self
            .cancelled
            .then_some((FLUJO_STEP_CANCELLED, AttributeValue::Bool(true)));
        step.chain(role)
            .chain(model_call)
            .chain(error)
            .chain(cancelled)
    }

    /// The span's own fields (`fields(...)`, bridged `tracing` fields), after the standard
    /// attributes.
    pub(crate) fn fields(&self) -> &[(Cow<'static, str>, AttributeValue)] {
        &self.fields
    }

    /// The trace's W3C `tracestate`, when the trace came with one (exported with the span).
    pub fn trace_state(&self) -> Option<&str> {
        self.trace_state.as_deref()
    }

    /// Whether the parent span is in another process (the span continues a `traceparent`).
    pub fn parent_is_remote(&self) -> bool {
        self.parent_is_remote
    }

    /// [`SpanKind::Client`] for a model call, [`SpanKind::Internal`] for everything else.
    pub fn kind(&self) -> SpanKind {
        match self.site.kind {
            SiteKind::ModelCall => SpanKind::Client,
            _ => SpanKind::Internal,
        }
    }

    /// The span's events (for example `flujo.retry` before each retry), in order.
    pub fn events(&self) -> &[SpanEvent] {
        self.extras
            .as_ref()
            .map_or(&[][..], |extras| &extras.events)
    }

    /// Events the span did not keep while it ran: `tracing` events logged inside it past
    /// `OTEL_SPAN_EVENT_COUNT_LIMIT` (128 unless set). An exporter adds those it cuts from
    /// [`events`](Self::events) itself, to the same limit, in the span's dropped-events count.
    pub fn dropped_events_count(&self) -> u32 {
        self.extras
            .as_ref()
            .map_or(0, |extras| extras.dropped_events)
    }

    /// Wall-clock start.
    pub fn start_time(&self) -> SystemTime {
        self.anchor.to_system_time(self.start)
    }

    /// Wall-clock end.
    pub fn end_time(&self) -> SystemTime {
        self.anchor.to_system_time(self.end)
    }

    /// How long the span lasted.
    pub fn duration(&self) -> Duration {
        clock::elapsed(self.start, self.end)
    }

    /// About how many bytes the span holds: what an export queue bounded in bytes counts.
    #[cfg_attr(not(feature = "otlp"), allow(dead_code))]
    pub(crate) fn approximate_size(&self) -> usize {
        #[expect(
            clippy::ptr_arg,
            reason = "borrowed text is static: only owned text counts"
        )]
        fn text(text: &Cow<'static, str>) -> usize {
            match text {
                Cow::Borrowed(_) => 0,
                Cow::Owned(owned) => owned.len(),
            }
        }
        fn value(value: &AttributeValue) -> usize {
            match value {
                AttributeValue::String(string) => text(string),
                AttributeValue::StringArray(strings) => strings
                    .iter()
                    .map(|string| std::mem::size_of::<Cow<'static, str>>() + text(string))
                    .sum(),
                _ => 0,
            }
        }
        fn pairs(pairs: &[(Cow<'static, str>, AttributeValue)]) -> usize {
            pairs
                .iter()
                .map(|(key, v)| {
                    std::mem::size_of::<(Cow<'static, str>, AttributeValue)>()
                        + text(key)
                        + value(v)
                })
                .sum()
        }
        let status = match &self.status {
            SpanStatus::Error { message } => message.len(),
            _ => 0,
        };
        let events: usize = self
            .events()
            .iter()
            .map(|event| {
                std::mem::size_of::<SpanEvent>() + text(&event.name) + pairs(&event.attributes)
            })
            .sum();
        std::mem::size_of::<FinishedSpan>()
            + text(&self.name)
            + status
            + pairs(&self.fields)
            + events
            + self
                .extras
                .as_ref()
                .map_or(0, |_| std::mem::size_of::<SpanExtras>())
    }

    /// Cuts the span's longest text values (fields, event attributes, the error message),
    /// evenly, until [`FinishedSpan::approximate_size`] is at most `limit`; the span then
    /// carries `flujo.span.truncated_bytes`. `Cut::TooLarge` when even empty values would not
    /// fit (the span is then left as it was, for its caller to drop).
    #[cfg_attr(not(feature = "otlp"), allow(dead_code))]
    pub(crate) fn cut_to(&mut self, limit: usize) -> Cut {
        let size = self.approximate_size();
        if size <= limit {
            return Cut::Whole;
        }
        let marker = std::mem::size_of::<(Cow<'static, str>, AttributeValue)>();
        let lengths: Vec<usize> = self.owned_texts().iter().map(|text| text.len()).collect();
        let texts: usize = lengths.iter().sum();
        let fixed = size - texts + marker;
        let Some(room) = limit.checked_sub(fixed) else {
            return Cut::TooLarge;
        };
        // The largest `keep` such that the values, each cut to at most `keep`, fit in `room`.
        let kept = |keep: usize| lengths.iter().map(|&len| len.min(keep)).sum::<usize>();
        let (mut fits, mut over) = (0, lengths.iter().copied().max().unwrap_or(0));
        while over - fits > 1 {
            let mid = fits + (over - fits) / 2;
            if kept(mid) <= room {
                fits = mid;
            } else {
                over = mid;
            }
        }
        let mut cut = 0;
        for text in self.owned_texts() {
            let keep = floor_char_boundary(text, fits);
            cut += text.len() - keep;
            text.truncate(keep);
        }
        self.fields.push((
            Cow::Borrowed(FLUJO_SPAN_TRUNCATED_BYTES),
            int_value(cut as u64),
        ));
        Cut::Shortened
    }

    /// The span's text that it owns (what [`FinishedSpan::cut_to`] may cut).
    fn owned_texts(&mut self) -> Vec<&mut String> {
        fn owned<'a>(text: &'a mut Cow<'static, str>) -> Option<&'a mut String> {
            match text {
                Cow::Owned(text) => Some(text),
                Cow::Borrowed(_) => None,
            }
        }
        fn texts(value: &mut AttributeValue) -> Vec<&mut String> {
            match value {
                AttributeValue::String(text) => owned(text).into_iter().collect(),
                AttributeValue::StringArray(texts) => texts.iter_mut().filter_map(owned).collect(),
                _ => Vec::new(),
            }
        }
        let status = match &mut self.status {
            SpanStatus::Error { message } => Some(message),
            _ => None,
        };
        let events = self
            .extras
            .iter_mut()
            .flat_map(|extras| extras.events.iter_mut())
            .flat_map(|event| event.attributes.iter_mut());
        self.fields
            .iter_mut()
            .chain(events)
            .flat_map(|(_, value)| texts(value))
            .chain(status)
            .collect()
    }
}

/// An attribute's key, as [`FinishedSpan::keyed_attributes`] yields it.
#[derive(Clone, Copy, Debug)]
pub(crate) enum AttributeKey<'a> {
    /// A key known at compile time (the standard ones, and `fields(...)` keys).
    Static(&'static str),
    /// A key the span owns (a bridged `tracing` span's dynamic field names).
    Owned(&'a str),
}

impl<'a> AttributeKey<'a> {
    /// The key's text.
    pub(crate) fn as_str(self) -> &'a str {
        match self {
            AttributeKey::Static(key) | AttributeKey::Owned(key) => key,
        }
    }
}

/// What [`FinishedSpan::cut_to`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(not(feature = "otlp"), allow(dead_code))]
pub(crate) enum Cut {
    /// The span fits as it is.
    Whole,
    /// Its longest values were cut to fit.
    Shortened,
    /// It cannot fit, whatever is cut.
    TooLarge,
}

impl FinishedSpan {
    /// The exported shape of `record`, its times fixed with `anchor`.
    /// Takes the box of the span's rarer parts, for [`recycle::send_home`](super::recycle).
    pub(crate) fn take_extras(&mut self) -> Option<Box<SpanExtras>> {
        self.extras.take()
    }

    pub(crate) fn from_record(record: SpanRecord, anchor: &Anchor) -> FinishedSpan {
        let (status, error_type, cancelled) = match record.outcome {
            Outcome::Ok => (SpanStatus::Ok, None, false),
            Outcome::Error(details) => {
                let ErrorDetails {
                    error_type,
                    message,
                } = *details;
                (SpanStatus::Error { message }, Some(error_type), false)
            }
            Outcome::Panicked => (
                SpanStatus::Error {
                    message: "the step panicked".to_owned(),
                },
                Some("panic"),
                false,
            ),
            Outcome::Cancelled => (SpanStatus::Unset, None, true),
        };
        let mut extras = record.extras;
        if let Some(extras) = &mut extras {
            for event in &mut extras.events {
                event.anchor_with(anchor);
            }
        }
        let extras_ref = extras.as_deref();
        let name = match (
            extras_ref.and_then(|e| e.name.clone()),
            extras_ref.and_then(|e| e.model_call.as_ref()),
        ) {
            (Some(name), _) => name,
            (None, Some(call)) => Cow::Owned(call.span_name()),
            (None, None) => Cow::Borrowed(record.site.span_name),
        };
        FinishedSpan {
            name,
            trace_id: TraceId(record.trace_id),
            span_id: SpanId(record.span_id),
            parent_span_id: (record.parent_span_id != 0).then_some(SpanId(record.parent_span_id)),
            parent_is_remote: extras_ref.is_some_and(|extras| extras.parent_is_remote),
            trace_state: extras_ref.and_then(|extras| trace_state::lookup(extras.trace_state)),
            start: record.start,
            end: record.end,
            anchor: *anchor,
            status,
            site: record.site,
            attempts: record.attempts,
            error_type,
            cancelled,
            fields: record.attributes,
            extras,
        }
    }
}

fn str_value(s: &'static str) -> AttributeValue {
    AttributeValue::String(Cow::Borrowed(s))
}

/// A count as an OpenTelemetry integer (the largest `i64` past it).
fn int_value(n: u64) -> AttributeValue {
    AttributeValue::Int(i64::try_from(n).unwrap_or(i64::MAX))
}

/// An amount of USD as a double, what every back-end reads cost as.
fn usd_value(amount: Usd) -> AttributeValue {
    AttributeValue::Float(amount.as_f64())
}

/// The GenAI attributes of a tool's or an agent's span (and OpenInference's span kind);
/// `None` for any other site.
fn role_attributes(site: &CallSite) -> Option<Vec<(&'static str, AttributeValue)>> {
    let (operation, name_key, openinference_kind, openinference_name) = match site.role {
        StepRole::Step => return None,
        StepRole::Tool => ("execute_tool", GEN_AI_TOOL_NAME, "TOOL", TOOL_NAME),
        StepRole::Agent => ("invoke_agent", GEN_AI_AGENT_NAME, "AGENT", AGENT_NAME),
    };
    let mut attributes = vec![
        (GEN_AI_OPERATION_NAME, str_value(operation)),
        (name_key, str_value(site.name)),
    ];
    if site.role == StepRole::Tool {
        attributes.push((GEN_AI_TOOL_TYPE, str_value("function")));
    }
    if genai::compat().contains(GenAiCompat::OPENINFERENCE) {
        attributes.extend([
            (OPENINFERENCE_SPAN_KIND, str_value(openinference_kind)),
            (openinference_name, str_value(site.name)),
        ]);
    }
    Some(attributes)
}

/// The attributes of a model call's span: the OpenTelemetry GenAI ones, then what each
/// back-end in [`genai::compat`] reads cost and usage from. Cache and reasoning counts appear
/// only when there are some: `TokenUsage` holds 0 both for "none" and for "not reported", and
/// a 0 would claim a measurement the provider may not have made.
fn model_call_attributes(call: &ModelCallRecord) -> Vec<(&'static str, AttributeValue)> {
    let text = |s: &str| AttributeValue::String(Cow::Owned(s.to_owned()));
    let compat = genai::compat();
    let mut attributes = vec![
        (
            GEN_AI_OPERATION_NAME,
            AttributeValue::String(Cow::Borrowed(call.operation.as_str())),
        ),
        (
            GEN_AI_PROVIDER_NAME,
            AttributeValue::String(Cow::Borrowed(call.provider)),
        ),
        (GEN_AI_REQUEST_MODEL, text(&call.model)),
    ];
    let response = &call.response;
    if let Some(model) = &response.model {
        attributes.push((GEN_AI_RESPONSE_MODEL, text(model)));
    }
    if let Some(id) = &response.id {
        attributes.push((GEN_AI_RESPONSE_ID, text(id)));
    }
    if !response.finish_reasons.is_empty() {
        attributes.push((
            GEN_AI_RESPONSE_FINISH_REASONS,
            AttributeValue::StringArray(response.finish_reasons.clone()),
        ));
    }
    if let Some(stream) = &call.stream {
        attributes.push((GEN_AI_REQUEST_STREAM, AttributeValue::Bool(true)));
        if let Some(first) = stream.time_to_first_chunk {
            attributes.push((
                GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK,
                AttributeValue::Float(first.as_secs_f64()),
            ));
        }
        attributes.push((FLUJO_STREAM_CHUNKS, int_value(u64::from(stream.chunks))));
    }
    if call.usage_missing {
        attributes.push((FLUJO_USAGE_MISSING, AttributeValue::Bool(true)));
    }
    if let Some(usage) = &call.usage {
        attributes.extend([
            (GEN_AI_USAGE_INPUT_TOKENS, int_value(usage.input)),
            (GEN_AI_USAGE_OUTPUT_TOKENS, int_value(usage.output)),
        ]);
        attributes.extend(usage_details(
            usage,
            [
                GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS,
                GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS,
                GEN_AI_USAGE_REASONING_OUTPUT_TOKENS,
            ],
        ));
    }
    if let Some(conversation) = &call.conversation_id {
        attributes.extend(genai::conversation_attributes(conversation));
    }
    if let Some(cost) = call.cost {
        if compat.contains(GenAiCompat::LOGFIRE) {
            attributes.push(("operation.cost", usd_value(cost)));
        }
        if compat.contains(GenAiCompat::LANGFUSE) {
            attributes.push((GEN_AI_USAGE_COST, usd_value(cost)));
        } else if genai::conventions() == GenAiConventions::LatestExperimental {
            attributes.extend([
                (GEN_AI_USAGE_COST_AMOUNT, usd_value(cost)),
                (GEN_AI_USAGE_COST_CURRENCY, str_value("USD")),
            ]);
        }
    }
    if compat.contains(GenAiCompat::OPENINFERENCE) {
        attributes.extend(openinference_attributes(call));
    }
    if call.is_unpriced() {
        attributes.push((FLUJO_COST_UNPRICED, AttributeValue::Bool(true)));
    }
    attributes.push((FLUJO_COST_PRICE_VERSION, text(&call.price_version)));
    attributes
}

/// The cache-read, cache-write and reasoning counts of `usage` under `keys` (in that order),
/// those that are not 0.
fn usage_details(
    usage: &TokenUsage,
    keys: [&'static str; 3],
) -> impl Iterator<Item = (&'static str, AttributeValue)> {
    let counts = [
        usage.cache_read_input,
        usage.cache_write_input,
        usage.reasoning_output,
    ];
    keys.into_iter()
        .zip(counts)
        .filter(|(_, tokens)| *tokens > 0)
        .map(|(key, tokens)| (key, int_value(tokens)))
}

/// A provider as OpenInference names it (`llm.provider`), from its OpenTelemetry
/// `gen_ai.provider.name`: Phoenix picks its price row and shows the provider by it.
fn openinference_provider(provider: &'static str) -> &'static str {
    match provider {
        "mistral_ai" => "mistralai",
        "x_ai" => "xai",
        "aws.bedrock" => "aws",
        _ if provider.starts_with("gcp.") => "google",
        _ if provider.starts_with("azure.") => "azure",
        other => other,
    }
}

/// What OpenInference (Arize Phoenix) reads from an LLM span: its kind, model and provider,
/// token counts (cache and reasoning as details) and the cost split into prompt and
/// completion.
fn openinference_attributes(call: &ModelCallRecord) -> Vec<(&'static str, AttributeValue)> {
    let model = call.response.model.as_deref().unwrap_or(&call.model);
    let mut attributes = vec![
        (OPENINFERENCE_SPAN_KIND, str_value("LLM")),
        (
            LLM_MODEL_NAME,
            AttributeValue::String(Cow::Owned(model.to_owned())),
        ),
        (
            LLM_PROVIDER,
            str_value(openinference_provider(call.provider)),
        ),
    ];
    if let Some(usage) = &call.usage {
        attributes.extend([
            (LLM_TOKEN_COUNT_PROMPT, int_value(usage.input)),
            (LLM_TOKEN_COUNT_COMPLETION, int_value(usage.output)),
            (
                LLM_TOKEN_COUNT_TOTAL,
                int_value(usage.input.saturating_add(usage.output)),
            ),
        ]);
        attributes.extend(usage_details(
            usage,
            [
                LLM_TOKEN_COUNT_PROMPT_CACHE_READ,
                LLM_TOKEN_COUNT_PROMPT_CACHE_WRITE,
                LLM_TOKEN_COUNT_COMPLETION_REASONING,
            ],
        ));
    }
    if let (Some(cost), Some(output)) = (call.cost, call.output_cost) {
        let prompt = Usd::from_nanos(cost.nanos().saturating_sub(output.nanos()));
        attributes.extend([
            (LLM_COST_TOTAL, usd_value(cost)),
            (LLM_COST_PROMPT, usd_value(prompt)),
            (LLM_COST_COMPLETION, usd_value(output)),
        ]);
    }
    attributes
}

#[cfg(test)]
mod tests {
    use super::*;

    static SITE: CallSite = CallSite::new("big", "big", "tests::big", SiteKind::Step);

    fn span(fields: Vec<String>, error: Option<String>) -> FinishedSpan {
        let record = SpanRecord {
            site: &SITE,
            session: 0,
            exported: true,
            observed: false,
            trace_id: 1,
            span_id: 2,
            parent_span_id: 0,
            start: 0,
            end: 0,
            outcome: error.map_or(Outcome::Ok, |message| {
                Outcome::Error(Box::new(ErrorDetails {
                    error_type: "E",
                    message,
                }))
            }),
            attempts: 1,
            attributes: fields
                .into_iter()
                .map(|text| (Cow::Borrowed("field"), AttributeValue::String(text.into())))
                .collect(),
            extras: None,
        };
        FinishedSpan::from_record(record, &Anchor::now())
    }

    fn lengths(span: &FinishedSpan) -> Vec<usize> {
        span.fields
            .iter()
            .filter_map(|(_, value)| value.as_str().map(str::len))
            .collect()
    }

    #[test]
    fn a_span_that_fits_is_left_whole() {
        let mut small = span(vec!["a".repeat(100)], None);
        assert_eq!(small.cut_to(10_000), Cut::Whole);
        assert_eq!(lengths(&small), [100]);
        assert!(small.attribute("flujo.span.truncated_bytes").is_none());
    }

    #[test]
    fn the_longest_values_are_cut_evenly_until_the_span_fits() {
        let limit = 100_000;
        let mut big = span(
            vec!["a".repeat(200_000), "b".repeat(60_000), "c".repeat(10)],
            Some("e".repeat(80_000)),
        );
        assert_eq!(big.cut_to(limit), Cut::Shortened);
        assert!(big.approximate_size() <= limit);
        let [a, b, c] = lengths(&big)[..] else {
            panic!("three fields")
        };
        assert_eq!(
            (a, c),
            (b, 10),
            "the two long values keep as much; the short one all"
        );
        let SpanStatus::Error { message } = &big.status else {
            panic!("an error")
        };
        assert_eq!(message.len(), a);
        // Nearly all of the room is used.
        assert!(big.approximate_size() > limit - 3 * 8);
        let cut = 200_000 + 60_000 + 80_000 - 3 * a;
        assert_eq!(
            big.attribute("flujo.span.truncated_bytes"),
            Some(AttributeValue::Int(cut as i64))
        );
    }

    #[test]
    fn a_cut_never_splits_a_character() {
        let mut big = span(vec!["é".repeat(100_000)], None);
        assert_eq!(big.cut_to(50_000), Cut::Shortened);
        let text = big.fields[0].1.as_str().unwrap();
        assert!(text.chars().all(|c| c == 'é'));
    }

    #[test]
    fn a_span_of_too_many_fields_cannot_be_cut_to_fit() {
        let mut crowded = span(vec![String::new(); 10_000], None);
        assert_eq!(crowded.cut_to(100_000), Cut::TooLarge);
        assert_eq!(crowded.fields.len(), 10_000, "left as it was");
    }
}
