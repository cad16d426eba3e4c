//! Span identity and the two shapes of a finished span: the compact record the hot path
//! writes, and the owned [`FinishedSpan`] that exporters and tests read.

use std::borrow::Cow;
use std::fmt;
use std::time::{Duration, SystemTime};

use crate::attribute::AttributeValue;
use crate::clock;
use crate::cost::ModelCallRecord;
use crate::step::Step;

/// A 128-bit W3C trace id.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TraceId(pub u128);

/// A 64-bit W3C span id.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SpanId(pub u64);

impl fmt::Display for TraceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:032x}", self.0)
    }
}

impl fmt::Debug for TraceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TraceId({self})")
    }
}

impl fmt::Display for SpanId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}

impl fmt::Debug for SpanId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SpanId({self})")
    }
}

/// The outcome of a span, as OpenTelemetry's span status.
#[derive(Clone, Debug, PartialEq, Eq)]
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

/// What a call site records.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StepKind {
    /// A `#[pipeline_step]` function.
    Step,
    /// A `#[track_cost]` model call.
    ModelCall,
    /// The root span of a pipeline run.
    Pipeline,
    /// A `tracing` span bridged by [`crate::tracing_layer`].
    Bridged,
}

/// Static description of an instrumented function, one per call site.
#[derive(Debug, PartialEq, Eq)]
pub struct StepMeta {
    /// Step name (`name = "..."`, or the function's name).
    pub name: &'static str,
    /// The function's own name (`code.function`).
    pub function: &'static str,
    /// The module path of the function (`code.namespace`).
    pub namespace: &'static str,
    /// What the call site records.
    pub kind: StepKind,
}

/// How a span ended. The error details are boxed: they exist only on the error path, and
/// keeping them out of line keeps every record small.
#[derive(Debug)]
pub(crate) enum Outcome {
    Ok,
    Error(Box<ErrorDetails>),
    Panicked,
    Cancelled,
}

#[derive(Debug)]
pub(crate) struct ErrorDetails {
    pub error_type: &'static str,
    pub message: String,
}

/// What the hot path writes: the call site, integer ids, raw clock readings (112 bytes).
/// Everything else, including the step metrics, is derived on the export worker.
pub(crate) struct SpanRecord {
    pub step: &'static Step,
    /// Whether the span is exported; unsampled calls still send a record for their metrics.
    pub exported: bool,
    pub trace_id: u128,
    pub span_id: u64,
    pub parent_span_id: u64,
    pub start: u64,
    pub end: u64,
    pub outcome: Outcome,
    pub attempts: u32,
    pub attributes: Vec<(Cow<'static, str>, AttributeValue)>,
    /// What only some spans have (a model call's usage, events, a name of their own).
    pub extras: Option<Box<SpanExtras>>,
}

/// The rarer parts of a span, kept out of line so that every record stays small.
#[derive(Clone, Debug, Default)]
pub(crate) struct SpanExtras {
    /// What a `#[track_cost]` call adds: model, usage, cost.
    pub model_call: Option<ModelCallRecord>,
    /// Events in the span (retries, bridged `tracing` events).
    pub events: Vec<SpanEvent>,
    /// A name other than the call site's (bridged `tracing` spans).
    pub name: Option<Cow<'static, str>>,
}

/// Something that happened during a span, at one instant (an OpenTelemetry span event).
#[derive(Clone, Debug, PartialEq)]
pub struct SpanEvent {
    /// Event name, e.g. `flujo.retry`.
    pub name: Cow<'static, str>,
    /// Raw clock reading.
    pub(crate) at: u64,
    /// Event attributes.
    pub attributes: Vec<(Cow<'static, str>, AttributeValue)>,
}

impl SpanEvent {
    /// An event named `name` happening now.
    pub(crate) fn now(
        name: impl Into<Cow<'static, str>>,
        attributes: Vec<(Cow<'static, str>, AttributeValue)>,
    ) -> SpanEvent {
        SpanEvent {
            name: name.into(),
            at: clock::now(),
            attributes,
        }
    }

    /// When it happened.
    pub fn time(&self) -> SystemTime {
        clock::to_system_time(self.at)
    }

    /// The value of attribute `key`, if the event has it.
    pub fn attribute(&self, key: &str) -> Option<&AttributeValue> {
        self.attributes
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, value)| value)
    }
}

// The per-thread rings are sized from this (see `export.rs`): keep records small.
const _: () = assert!(std::mem::size_of::<SpanRecord>() <= 112);

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
    /// Outcome.
    pub status: SpanStatus,
    /// Raw clock readings, turned into wall-clock time when read: draining stays cheap.
    start: u64,
    end: u64,
    step: Option<&'static StepMeta>,
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
        // Only step spans carry the `flujo.step.*` attributes; a model call carries `gen_ai.*`.
        let is_step = self.step.is_some_and(|meta| meta.kind == StepKind::Step);
        let step = self.step.into_iter().flat_map(move |step| {
            let step_attributes = [
                ("flujo.step.name", str_value(step.name)),
                (
                    "flujo.step.attempts",
                    AttributeValue::Int(i64::from(self.attempts)),
                ),
            ];
            let code = [
                ("code.function", str_value(step.function)),
                ("code.namespace", str_value(step.namespace)),
            ];
            // Bridged `tracing` spans have no function of their own.
            let has_code = !step.function.is_empty();
            step_attributes
                .into_iter()
                .filter(move |_| is_step)
                .chain(code.into_iter().filter(move |_| has_code))
        });
        let model_call = self
            .extras
            .iter()
            .filter_map(|extras| extras.model_call.as_ref())
            .flat_map(|call| call.attributes());
        let error = self
            .error_type
            .map(|error_type| ("error.type", str_value(error_type)));
        let cancelled = self
            .cancelled
            .then_some(("flujo.step.cancelled", AttributeValue::Bool(true)));
        step.chain(model_call)
            .chain(error)
            .chain(cancelled)
            .chain(self.fields.iter().map(|(k, v)| (k.as_ref(), v.clone())))
    }

    /// The span's events (for example `flujo.retry` before each retry), in order.
    pub fn events(&self) -> &[SpanEvent] {
        self.extras
            .as_ref()
            .map_or(&[][..], |extras| &extras.events)
    }

    /// Wall-clock start.
    pub fn start_time(&self) -> SystemTime {
        clock::to_system_time(self.start)
    }

    /// Wall-clock end.
    pub fn end_time(&self) -> SystemTime {
        clock::to_system_time(self.end)
    }

    /// How long the span lasted.
    pub fn duration(&self) -> Duration {
        clock::elapsed(self.start, self.end)
    }
}

impl From<SpanRecord> for FinishedSpan {
    fn from(record: SpanRecord) -> Self {
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
        let extras = record.extras.as_deref();
        let name = match (
            extras.and_then(|e| e.name.clone()),
            extras.and_then(|e| e.model_call.as_ref()),
        ) {
            (Some(name), _) => name,
            (None, Some(call)) => Cow::Owned(call.span_name()),
            (None, None) => Cow::Borrowed(record.step.meta().name),
        };
        FinishedSpan {
            name,
            trace_id: TraceId(record.trace_id),
            span_id: SpanId(record.span_id),
            parent_span_id: (record.parent_span_id != 0).then_some(SpanId(record.parent_span_id)),
            start: record.start,
            end: record.end,
            status,
            step: Some(record.step.meta()),
            attempts: record.attempts,
            error_type,
            cancelled,
            fields: record.attributes,
            extras: record.extras,
        }
    }
}

fn str_value(s: &'static str) -> AttributeValue {
    AttributeValue::String(Cow::Borrowed(s))
}

/// `spans` as an indented tree, children under their parents, with status, attempts and
/// duration.
pub(crate) fn render_tree(mut spans: Vec<FinishedSpan>) -> String {
    spans.sort_by_key(FinishedSpan::start_time);
    let mut out = String::new();
    let known = |id| spans.iter().any(|span| Some(span.span_id) == id);
    for root in spans.iter().filter(|span| !known(span.parent_span_id)) {
        write_subtree(&mut out, &spans, root, 0);
    }
    out
}

fn write_subtree(out: &mut String, spans: &[FinishedSpan], span: &FinishedSpan, depth: usize) {
    use std::fmt::Write as _;
    let status = match &span.status {
        SpanStatus::Ok => "ok".to_owned(),
        SpanStatus::Unset => "unset".to_owned(),
        SpanStatus::Error { message } => format!("error: {message}"),
    };
    let attempts = span
        .attribute("flujo.step.attempts")
        .and_then(|a| a.as_i64())
        .filter(|attempts| *attempts > 1)
        .map(|attempts| format!(", {attempts} attempts"))
        .unwrap_or_default();
    let _ = writeln!(
        out,
        "{:indent$}{} [{status}{attempts}] {:.3} ms",
        "",
        span.name,
        span.duration().as_secs_f64() * 1e3,
        indent = depth * 2
    );
    for child in spans
        .iter()
        .filter(|child| child.parent_span_id == Some(span.span_id))
    {
        write_subtree(out, spans, child, depth + 1);
    }
}
