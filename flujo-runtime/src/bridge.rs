//! The `tracing` bridge: spans and events that `tracing` records inside a flujo step (a
//! library's `#[tracing::instrument]`, a `tracing::info!`) become child spans and span events
//! of that step, in the same trace, exported with everything else.

use std::borrow::Cow;
use std::cell::RefCell;
use std::collections::HashMap;
use std::fmt;
use std::marker::PhantomData;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{LazyLock, Mutex};

use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Subscriber};
use tracing_subscriber::layer::Context;
use tracing_subscriber::registry::LookupSpan;

use crate::attribute::AttributeValue;
use crate::context::SpanContext;
use crate::span::{Outcome, SpanEvent, SpanExtras, SpanRecord};
use crate::step::Step;
use crate::telemetry::{self, SPANS};
use crate::{clock, export};

static BRIDGED: Step = Step::bridged();

/// Whether a bridge layer exists: step calls only look for bridged events then.
static ACTIVE: AtomicBool = AtomicBool::new(false);

/// Events logged directly inside flujo steps, by the step's span id, until the step ends.
static STEP_EVENTS: LazyLock<Mutex<HashMap<u64, Vec<SpanEvent>>>> = LazyLock::new(Mutex::default);

/// Steps with bridged events waiting for the step to end, at most.
const MAX_PENDING_STEPS: usize = 4096;
/// Bridged events kept per span, at most (a chatty loop inside one step stays bounded).
const MAX_EVENTS_PER_SPAN: usize = 128;

thread_local! {
    /// Contexts replaced by entering bridged spans on this thread, innermost last.
    static ENTERED: RefCell<Vec<SpanContext>> = const { RefCell::new(Vec::new()) };
}

/// The events `tracing` logged inside the step with span id `span_id` (called when it ends).
#[inline]
pub(crate) fn take_events(span_id: u64) -> Vec<SpanEvent> {
    if !ACTIVE.load(Ordering::Relaxed) {
        return Vec::new();
    }
    STEP_EVENTS
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .remove(&span_id)
        .unwrap_or_default()
}

/// A `tracing_subscriber` layer that exports `tracing` spans and events emitted inside flujo
/// steps as part of the step's trace. Add it to your subscriber:
///
/// ```
/// use tracing_subscriber::prelude::*;
///
/// tracing_subscriber::registry().with(flujo::tracing_layer()).init();
/// ```
///
/// Spans outside any flujo step, and flujo's own log events, are left alone.
pub fn tracing_layer<S>() -> TracingBridge<S>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    ACTIVE.store(true, Ordering::Relaxed);
    TracingBridge {
        _subscriber: PhantomData,
    }
}

/// See [`tracing_layer`].
pub struct TracingBridge<S> {
    _subscriber: PhantomData<fn(S)>,
}

impl<S> fmt::Debug for TracingBridge<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TracingBridge")
    }
}

/// A `tracing` span being bridged, kept in its extensions.
struct BridgedSpan {
    context: SpanContext,
    parent_span_id: u64,
    start: u64,
    attributes: Vec<(Cow<'static, str>, AttributeValue)>,
    events: Vec<SpanEvent>,
    failed: Option<String>,
}

#[derive(Default)]
struct Fields {
    message: Option<String>,
    attributes: Vec<(Cow<'static, str>, AttributeValue)>,
}

impl Visit for Fields {
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.push(field, AttributeValue::Int(value));
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.push(
            field,
            AttributeValue::Int(i64::try_from(value).unwrap_or(i64::MAX)),
        );
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.push(field, AttributeValue::Float(value));
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.push(field, AttributeValue::Bool(value));
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.push(field, AttributeValue::String(Cow::Owned(value.to_owned())));
    }
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.push(
            field,
            AttributeValue::String(Cow::Owned(format!("{value:?}"))),
        );
    }
}

impl Fields {
    fn push(&mut self, field: &Field, value: AttributeValue) {
        if field.name() == "message" {
            self.message = value
                .as_str()
                .map(str::to_owned)
                .or_else(|| Some(format!("{value:?}")));
        } else {
            self.attributes.push((Cow::Borrowed(field.name()), value));
        }
    }
}

fn recording() -> bool {
    telemetry::state() & SPANS != 0
}

impl<S> tracing_subscriber::Layer<S> for TracingBridge<S>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        if !recording() {
            return;
        }
        let Some(span) = ctx.span(id) else { return };
        // The parent: a bridged `tracing` parent, else the current flujo span.
        let parent = span
            .parent()
            .and_then(|parent| parent.extensions().get::<BridgedSpan>().map(|b| b.context))
            .unwrap_or_else(SpanContext::current);
        if parent.trace_id().is_none() || !parent.is_sampled() {
            return;
        }
        let mut fields = Fields::default();
        attrs.record(&mut fields);
        span.extensions_mut().insert(BridgedSpan {
            context: parent.child(),
            parent_span_id: parent.span_id().map_or(0, |id| id.0),
            start: clock::now(),
            attributes: fields.attributes,
            events: Vec::new(),
            failed: None,
        });
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        if let Some(span) = ctx.span(id)
            && let Some(bridged) = span.extensions_mut().get_mut::<BridgedSpan>()
        {
            let mut fields = Fields::default();
            values.record(&mut fields);
            bridged.attributes.extend(fields.attributes);
        }
    }

    fn on_enter(&self, id: &Id, ctx: Context<'_, S>) {
        if let Some(span) = ctx.span(id)
            && let Some(bridged) = span.extensions().get::<BridgedSpan>()
        {
            // Steps called inside the `tracing` span become its children.
            let previous = bridged.context.make_current();
            let _ = ENTERED.try_with(|entered| entered.borrow_mut().push(previous));
        }
    }

    fn on_exit(&self, id: &Id, ctx: Context<'_, S>) {
        if let Some(span) = ctx.span(id)
            && span.extensions().get::<BridgedSpan>().is_some()
            && let Ok(Some(previous)) = ENTERED.try_with(|entered| entered.borrow_mut().pop())
        {
            previous.make_current();
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        // flujo's own log lines (retries, failures) are already in its spans.
        if !recording() || event.metadata().target().starts_with("flujo") {
            return;
        }
        let mut fields = Fields::default();
        event.record(&mut fields);
        let mut attributes = fields.attributes;
        attributes.push((
            Cow::Borrowed("level"),
            AttributeValue::String(Cow::Borrowed(event.metadata().level().as_str())),
        ));
        let is_error = *event.metadata().level() == tracing::Level::ERROR;
        let name = fields
            .message
            .unwrap_or_else(|| event.metadata().name().to_owned());
        if let Some(span) = ctx.event_span(event)
            && let Some(bridged) = span.extensions_mut().get_mut::<BridgedSpan>()
        {
            if is_error {
                bridged.failed = Some(name.clone());
            }
            if bridged.events.len() < MAX_EVENTS_PER_SPAN {
                bridged.events.push(SpanEvent::now(name, attributes));
            }
            return;
        }
        let current = SpanContext::current();
        if let Some(span_id) = current.span_id().filter(|_| current.is_sampled()) {
            let mut pending = STEP_EVENTS.lock().unwrap_or_else(|e| e.into_inner());
            // Events logged for a step after it ended are never collected: keep the map
            // bounded rather than let such events accumulate.
            if pending.len() >= MAX_PENDING_STEPS && !pending.contains_key(&span_id.0) {
                return;
            }
            let events = pending.entry(span_id.0).or_default();
            if events.len() < MAX_EVENTS_PER_SPAN {
                events.push(SpanEvent::now(name, attributes));
            }
        }
    }

    fn on_close(&self, id: Id, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(&id) else { return };
        let Some(bridged) = span.extensions_mut().remove::<BridgedSpan>() else {
            return;
        };
        let outcome = match bridged.failed {
            None => Outcome::Ok,
            Some(message) => Outcome::Error(Box::new(crate::span::ErrorDetails {
                error_type: "tracing error event",
                message,
            })),
        };
        let record = SpanRecord {
            step: &BRIDGED,
            exported: true,
            trace_id: bridged.context.raw_trace_id(),
            span_id: bridged.context.raw_span_id(),
            parent_span_id: bridged.parent_span_id,
            start: bridged.start,
            end: clock::now(),
            outcome,
            attempts: 1,
            attributes: bridged.attributes,
            extras: Some(Box::new(SpanExtras {
                model_call: None,
                events: bridged.events,
                name: Some(Cow::Borrowed(span.metadata().name())),
            })),
        };
        // A full queue drops the span (counted by the queue); bridged spans have no metrics.
        let _ = export::submit(record);
    }
}
