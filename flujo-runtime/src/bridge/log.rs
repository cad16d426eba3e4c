//! Standard logging on stderr when no exporter takes logs: readable text, or one JSON object
//! per line, filtered by `RUST_LOG`. Events carry the flujo span they were emitted in.

use std::fmt;
use std::io::IsTerminal;

use serde_json::{Map, Value};
use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::time::{FormatTime, SystemTime};
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::layer::{Layer, Layered, SubscriberExt};
use tracing_subscriber::registry::{LookupSpan, Registry};
use tracing_subscriber::util::SubscriberInitExt;

use crate::config::settings::LogFormat;
use crate::core::context::SpanContext;
use crate::run::scope as run;

/// A layer that also receives every event the filter lets through (Logfire's log bridge).
pub(crate) type ExtraLayer = Box<dyn Layer<Layered<EnvFilter, Registry>> + Send + Sync>;

/// The format of the last `init_telemetry` (what the console hook prints in too).
static FORMAT: std::sync::Mutex<Option<LogFormat>> = std::sync::Mutex::new(None);

/// The log format in force: the last `init_telemetry`'s, else `FLUJO_LOG_FORMAT`, else text.
pub(crate) fn format() -> LogFormat {
    let configured = *FORMAT.lock().unwrap_or_else(|e| e.into_inner());
    configured.unwrap_or_else(|| {
        std::env::var("FLUJO_LOG_FORMAT")
            .ok()
            .and_then(|value| value.parse().ok())
            .unwrap_or_default()
    })
}

/// Installs the stderr subscriber (plus `extra`); returns false when the application already
/// installed a global `tracing` subscriber (flujo's logs then go to that one).
pub(crate) fn install(format: LogFormat, filter: &str, extra: Vec<ExtraLayer>) -> bool {
    *FORMAT.lock().unwrap_or_else(|e| e.into_inner()) = Some(format);
    // The filter was validated while resolving the settings.
    let filter = EnvFilter::try_new(filter).unwrap_or_else(|_| EnvFilter::new("info"));
    // An empty `Vec` of layers has no interest in any callsite, which would switch every
    // log line off: no extra layer is `None`.
    let extra = (!extra.is_empty()).then_some(extra);
    let registry = tracing_subscriber::registry().with(filter).with(extra);
    let installed = match format {
        LogFormat::Text => registry
            .with(
                tracing_subscriber::fmt::layer()
                    .event_format(TextLines)
                    // Colour for people at a terminal, never escape codes in log files.
                    .with_ansi(std::io::stderr().is_terminal())
                    .with_writer(std::io::stderr),
            )
            .try_init(),
        LogFormat::Json => registry
            .with(
                tracing_subscriber::fmt::layer()
                    .event_format(JsonLines)
                    .with_writer(std::io::stderr),
            )
            .try_init(),
    };
    installed.is_ok()
}

/// One readable line per event: timestamp, level, target, message and fields, then the
/// `trace_id`/`span_id` of the flujo step the event was logged in.
pub(crate) struct TextLines;

impl<S, N> FormatEvent<S, N> for TextLines
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        SystemTime.format_time(&mut writer)?;
        let metadata = event.metadata();
        write!(writer, " {:>5} {}: ", metadata.level(), metadata.target())?;
        ctx.field_format().format_fields(writer.by_ref(), event)?;
        let context = SpanContext::current();
        if let (Some(trace_id), Some(span_id)) = (context.trace_id(), context.span_id()) {
            write!(writer, " trace_id={trace_id} span_id={span_id}")?;
        }
        // A field the event carries itself is the application's: never repeated.
        if let Some((request_id, pipeline)) = run::current_labels() {
            let fields = metadata.fields();
            if fields.field("request_id").is_none() {
                write!(writer, " request_id={request_id}")?;
            }
            if fields.field("pipeline").is_none() {
                write!(writer, " pipeline={pipeline}")?;
            }
        }
        writeln!(writer)
    }
}

/// One JSON object per event: `timestamp`, `level`, `target`, `event` (the message), the
/// event's fields at the top level, and `trace_id`/`span_id` of the current flujo span.
pub(crate) struct JsonLines;

impl<S, N> FormatEvent<S, N> for JsonLines
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        _ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        writeln!(writer, "{}", Value::Object(json_object(event)))
    }
}

pub(crate) fn json_object(event: &Event<'_>) -> Map<String, Value> {
    let mut timestamp = String::new();
    // Writing into a String cannot fail.
    let _ = SystemTime.format_time(&mut Writer::new(&mut timestamp));
    let metadata = event.metadata();
    let mut object = Map::new();
    object.insert("timestamp".into(), Value::String(timestamp));
    object.insert("level".into(), Value::String(metadata.level().to_string()));
    object.insert("target".into(), Value::String(metadata.target().to_owned()));
    let mut fields = JsonFields::default();
    event.record(&mut fields);
    if let Some(message) = fields.message {
        // The guide's log lines name what happened in `event`; an explicit `event` field wins.
        let key = if fields.object.contains_key("event") {
            "message"
        } else {
            "event"
        };
        object.insert(key.into(), Value::String(message));
    }
    object.extend(fields.object);
    let context = SpanContext::current();
    if let (Some(trace_id), Some(span_id)) = (context.trace_id(), context.span_id()) {
        object.insert("trace_id".into(), Value::String(trace_id.to_string()));
        object.insert("span_id".into(), Value::String(span_id.to_string()));
    }
    // A field the event carries itself is the application's: kept, not replaced.
    if let Some((request_id, pipeline)) = run::current_labels() {
        object
            .entry("request_id")
            .or_insert_with(|| Value::String(request_id.to_string()));
        object
            .entry("pipeline")
            .or_insert_with(|| Value::String(pipeline.to_owned()));
    }
    object
}

#[derive(Default)]
struct JsonFields {
    message: Option<String>,
    object: Map<String, Value>,
}

impl JsonFields {
    fn insert(&mut self, field: &Field, value: Value) {
        self.object.insert(field.name().to_owned(), value);
    }
}

impl Visit for JsonFields {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        let text = format!("{value:?}");
        if field.name() == "message" {
            self.message = Some(text);
        } else {
            self.insert(field, Value::String(text));
        }
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.message = Some(value.to_owned());
        } else {
            self.insert(field, Value::String(value.to_owned()));
        }
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.insert(field, Value::from(value));
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.insert(field, Value::from(value));
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        self.insert(field, Value::from(value));
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.insert(field, Value::from(value));
    }
}
