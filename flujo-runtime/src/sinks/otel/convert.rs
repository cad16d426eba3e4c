//! Finished spans as the OpenTelemetry SDK's `SpanData`, and flujo's resource.

use crate::core::names::OPENINFERENCE_PROJECT_NAME;
use std::borrow::Cow;

use opentelemetry::trace::{SpanContext, SpanKind, Status, TraceFlags, TraceState};
use opentelemetry::{Array, InstrumentationScope, Key, KeyValue, StringValue, Value};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::{SpanData, SpanEvents, SpanLinks};

use crate::collect::finished::{AttributeKey, FinishedSpan, SpanKind as FlujoSpanKind, SpanStatus};
use crate::config::settings::{ResourceSettings, SpanQueueSettings};
use crate::core::attribute::AttributeValue;
use crate::core::record::SpanEvent;

/// The instrumentation scope of every span flujo exports.
pub(crate) fn scope() -> InstrumentationScope {
    InstrumentationScope::builder("flujo")
        .with_version(env!("CARGO_PKG_VERSION"))
        .build()
}

/// The resource of flujo's own exports: the service, its version and environment.
/// Built from the settings alone (the SDK's own detectors add `telemetry.sdk.*`; the
/// environment's `OTEL_RESOURCE_ATTRIBUTES` came through the settings, so that code and
/// `resolve_from` decide it too).
pub(crate) fn resource(settings: &ResourceSettings) -> Resource {
    let mut attributes: Vec<KeyValue> = settings
        .attributes
        .iter()
        .map(|(key, value)| KeyValue::new(key.clone(), value.clone()))
        .collect();
    attributes.push(KeyValue::new(
        "deployment.environment.name",
        settings.environment.clone(),
    ));
    if let Some(version) = &settings.version {
        attributes.push(KeyValue::new("service.version", version.clone()));
    }
    if let Some(project) = &settings.project_name {
        // The resource attribute OpenInference readers (Arize Phoenix) file spans by.
        attributes.push(KeyValue::new(OPENINFERENCE_PROJECT_NAME, project.clone()));
    }
    Resource::builder_empty()
        .with_detectors(&[Box::new(
            opentelemetry_sdk::resource::TelemetryResourceDetector,
        )])
        .with_attributes(attributes)
        .with_service_name(settings.service_name.clone())
        .build()
}

/// The limits of exported spans (the `OTEL_*_LIMIT` variables).
#[derive(Clone, Copy, Debug)]
pub(crate) struct SpanLimits {
    /// Characters a value keeps, at most.
    pub(crate) value_chars: Option<usize>,
    /// Attributes a span keeps, at most: its own first, then its fields.
    pub(crate) attributes: usize,
    /// Events a span keeps, at most: the first ones.
    pub(crate) events: usize,
    /// Attributes an event keeps, at most.
    pub(crate) event_attributes: usize,
}

impl SpanLimits {
    pub(crate) fn of(settings: &SpanQueueSettings) -> SpanLimits {
        SpanLimits {
            value_chars: settings.attribute_value_length_limit,
            attributes: settings.span_attribute_count_limit,
            events: settings.span_event_count_limit,
            event_attributes: settings.event_attribute_count_limit,
        }
    }

    /// The events of `span` that are exported, and how many it dropped in all: while it ran
    /// and here.
    pub(crate) fn events<'a>(&self, span: &'a FinishedSpan) -> (&'a [SpanEvent], u32) {
        let all = span.events();
        let kept = &all[..all.len().min(self.events)];
        let cut = u32::try_from(all.len() - kept.len()).unwrap_or(u32::MAX);
        (kept, span.dropped_events_count().saturating_add(cut))
    }

    /// How many of an event's `attributes` are dropped.
    pub(crate) fn dropped_event_attributes(&self, attributes: usize) -> u32 {
        u32::try_from(attributes.saturating_sub(self.event_attributes)).unwrap_or(u32::MAX)
    }
}

pub(crate) fn span_data(
    span: &FinishedSpan,
    scope: &InstrumentationScope,
    limits: &SpanLimits,
) -> SpanData {
    let mut attributes: Vec<KeyValue> = span
        .keyed_attributes()
        .map(|(key, value)| {
            let key = match key {
                AttributeKey::Static(key) => Key::from_static_str(key),
                AttributeKey::Owned(key) => Key::from(key.to_owned()),
            };
            KeyValue::new(key, otel_value(value, limits.value_chars))
        })
        .collect();
    let dropped = attributes.len().saturating_sub(limits.attributes);
    attributes.truncate(limits.attributes);
    SpanData {
        span_context: SpanContext::new(
            span.trace_id.0.into(),
            span.span_id.0.into(),
            TraceFlags::SAMPLED,
            false,
            span.trace_state()
                .and_then(|state| state.parse::<TraceState>().ok())
                .unwrap_or_default(),
        ),
        parent_span_id: span.parent_span_id.map_or(0, |id| id.0).into(),
        parent_span_is_remote: span.parent_is_remote(),
        span_kind: match span.kind() {
            FlujoSpanKind::Client => SpanKind::Client,
            _ => SpanKind::Internal,
        },
        name: span.name.clone(),
        start_time: span.start_time(),
        end_time: span.end_time(),
        attributes,
        dropped_attributes_count: u32::try_from(dropped).unwrap_or(u32::MAX),
        events: span_events(span, limits),
        links: SpanLinks::default(),
        status: match &span.status {
            SpanStatus::Unset => Status::Unset,
            SpanStatus::Ok => Status::Ok,
            SpanStatus::Error { message } => Status::error(message.clone()),
        },
        instrumentation_scope: scope.clone(),
    }
}

fn span_events(span: &FinishedSpan, limits: &SpanLimits) -> SpanEvents {
    let (kept, dropped) = limits.events(span);
    let mut events = SpanEvents::default();
    events.events = kept
        .iter()
        .map(|event| {
            let attributes = event
                .attributes
                .iter()
                .take(limits.event_attributes)
                .map(|(key, value)| {
                    KeyValue::new(key.clone(), otel_value(value.clone(), limits.value_chars))
                })
                .collect();
            let dropped_attributes = limits.dropped_event_attributes(event.attributes.len());
            opentelemetry::trace::Event::new(
                event.name.clone(),
                event.time(),
                attributes,
                dropped_attributes,
            )
        })
        .collect();
    events.dropped_count = dropped;
    events
}

fn otel_value(value: AttributeValue, chars: Option<usize>) -> Value {
    let cut = |text| string_value(cut_to(text, chars));
    match value {
        AttributeValue::Bool(b) => Value::Bool(b),
        AttributeValue::Int(i) => Value::I64(i),
        AttributeValue::Float(f) => Value::F64(f),
        AttributeValue::String(s) => Value::String(cut(s)),
        AttributeValue::StringArray(strings) => {
            Value::Array(Array::String(strings.into_iter().map(cut).collect()))
        }
    }
}

/// `text` cut to its first `chars` characters (the attribute value length limit), when a
/// limit is set.
pub(crate) fn cut_chars(text: &str, chars: Option<usize>) -> &str {
    match chars.and_then(|n| text.char_indices().nth(n)) {
        Some((end, _)) => &text[..end],
        None => text,
    }
}

/// [`cut_chars`], keeping a static text static and cutting an owned one in place.
fn cut_to(mut text: Cow<'static, str>, chars: Option<usize>) -> Cow<'static, str> {
    let end = cut_chars(&text, chars).len();
    match &mut text {
        Cow::Borrowed(borrowed) => *borrowed = &borrowed[..end],
        Cow::Owned(owned) => owned.truncate(end),
    }
    text
}

/// A string as the SDK keeps one: a static one stays static, an owned one is moved.
fn string_value(text: Cow<'static, str>) -> StringValue {
    match text {
        Cow::Borrowed(text) => StringValue::from(text),
        Cow::Owned(text) => StringValue::from(text),
    }
}
