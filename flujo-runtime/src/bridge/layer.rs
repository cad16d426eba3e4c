//! The `tracing` bridge: spans and events that `tracing` records inside a flujo step (a
//! library's `#[tracing::instrument]`, a `tracing::info!`) become child spans and span events
//! of that step, in the same trace, exported with everything else.

use std::borrow::Cow;
use std::cell::RefCell;
use std::fmt;
use std::marker::PhantomData;

use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Subscriber};
use tracing_subscriber::layer::Context;
use tracing_subscriber::registry::LookupSpan;

use crate::collect::{bridged, ring};
use crate::core::attribute::{AttributeValue, capped_copy, capped_text};
use crate::core::clock;
use crate::core::context::SpanContext;
use crate::core::record::{ErrorDetails, Outcome, SpanEvent, SpanExtras, SpanRecord};
use crate::core::site::{CallSite, SiteKind};
use crate::core::state;

static BRIDGED: CallSite = CallSite::new("tracing", "", "", SiteKind::Bridged);

thread_local! {
    /// Contexts replaced by entering bridged spans on this thread, innermost last.
    static ENTERED: RefCell<Vec<SpanContext>> = const { RefCell::new(Vec::new()) };
}

/// A `tracing_subscriber` layer that exports `tracing` spans and events emitted inside flujo
/// steps as part of the step's trace. Add it to your subscriber:
///
/// ```
/// use tracing_subscriber::prelude::*;
///
/// tracing_subscriber::registry().with(flujo::export::tracing_layer()).init();
/// ```
///
/// Spans outside any flujo step, and flujo's own log events, are left alone.
pub fn tracing_layer<S>() -> TracingBridge<S>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    bridged::activate();
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
    parent_is_remote: bool,
    start: u64,
    attributes: Vec<(Cow<'static, str>, AttributeValue)>,
    events: bridged::Events,
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
        self.push(
            field,
            AttributeValue::String(Cow::Owned(capped_copy(value))),
        );
    }
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        let text = capped_text(&format_args!("{value:?}"));
        self.push(field, AttributeValue::String(Cow::Owned(text)));
    }
}

impl Fields {
    fn push(&mut self, field: &Field, value: AttributeValue) {
        if field.name() == "message" {
            self.message = value
                .as_str()
                .map(str::to_owned)
                .or_else(|| Some(capped_text(&format_args!("{value:?}"))));
        } else {
            self.attributes.push((Cow::Borrowed(field.name()), value));
        }
    }
}

fn recording() -> bool {
    state::state().records_spans()
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
            parent_is_remote: parent.is_remote(),
            start: clock::now(),
            attributes: fields.attributes,
            events: bridged::Events::default(),
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
            bridged.events.push(SpanEvent::now(name, attributes));
            return;
        }
        let current = SpanContext::current();
        if let Some(span_id) = current.span_id().filter(|_| current.is_sampled()) {
            bridged::push(span_id.0, SpanEvent::now(name, attributes));
        }
    }

    fn on_close(&self, id: Id, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(&id) else { return };
        let Some(bridged) = span.extensions_mut().remove::<BridgedSpan>() else {
            return;
        };
        let outcome = match bridged.failed {
            None => Outcome::Ok,
            Some(message) => Outcome::Error(Box::new(ErrorDetails {
                error_type: "tracing error event",
                message,
            })),
        };
        let record = SpanRecord {
            site: &BRIDGED,
            session: state::current_session(),
            exported: true,
            observed: false,
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
                events: bridged.events.kept,
                dropped_events: bridged.events.dropped,
                name: Some(Cow::Borrowed(span.metadata().name())),
                parent_is_remote: bridged.parent_is_remote,
                trace_state: bridged.context.trace_state_id(),
                home: 0,
            })),
        };
        // A full ring drops the span (counted by the ring); bridged spans have no metrics.
        ring::submit(|| record, drop);
    }
}
