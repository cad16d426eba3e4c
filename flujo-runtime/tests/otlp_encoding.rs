//! flujo writes OTLP trace requests itself, straight from its spans. What it writes, decoded
//! with opentelemetry-proto, is the request the OpenTelemetry SDK's exporter sends for the
//! same spans, field by field: steps, failed steps, retries and their events, model calls
//! with their usage, cost and finish reasons, a trace continued from another service with its
//! `tracestate`, the attribute limits of `OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT` and
//! `OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT`, and the event limits of `OTEL_SPAN_EVENT_COUNT_LIMIT` and
//! `OTEL_EVENT_ATTRIBUTE_COUNT_LIMIT`.

use flujo::config::TelemetrySettings;
use flujo::export::FinishedSpan;
use flujo::testing::{Capture, StubCompletion, StubModel};
use flujo::{TelemetryConfig, pipeline_step, track_cost};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::KeyValue;
use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message as _;

#[derive(Debug, thiserror::Error)]
enum Refused {
    #[error("the provider refused: {0}")]
    Provider(String),
    #[error(transparent)]
    OverLimit(#[from] flujo::UsageLimitExceeded),
}

#[pipeline_step(name = "draft", fields(question, words = question.split(' ').count()))]
#[track_cost(model = "gpt-4o-mini", provider = "openai")]
fn draft(model: &StubModel, question: &str) -> Result<StubCompletion, Refused> {
    model
        .chat(question)
        .map_err(|error| Refused::Provider(error.to_string()))
}

#[pipeline_step(retries = 2, backoff = "fixed", backoff_ms = 1)]
fn flaky(model: &StubModel) -> Result<StubCompletion, Refused> {
    model
        .chat("hello")
        .map_err(|error| Refused::Provider(error.to_string()))
}

#[pipeline_step]
fn refused(reason: &str) -> Result<(), Refused> {
    Err(Refused::Provider(reason.to_owned()))
}

#[pipeline_step(name = "plan")]
fn plan(model: &StubModel) -> usize {
    let _ = draft(model, "why is the sky blue, in detail, for a child of five");
    let _ = flaky(&StubModel::new("gpt-4o-mini").failing_first(2));
    let _ = refused("é".repeat(40).as_str());
    3
}

/// Every kind of span flujo exports, one batch of them.
fn spans() -> Vec<FinishedSpan> {
    let capture = Capture::start();
    let model = StubModel::new("gpt-4o-mini");
    plan(&model);
    flujo::SpanContext::from_traceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
        .unwrap()
        .with_tracestate("congo=t61rcWkgMzE, rojo=00f067aa0ba902b7")
        .in_scope(|| plan(&model));
    let spans = capture.finished_spans();
    assert_eq!(spans.len(), 10, "{}", capture.span_tree());
    assert!(spans.iter().any(|span| !span.events().is_empty()));
    assert!(spans.iter().any(|span| span.trace_state().is_some()));
    spans
}

fn decoded(bytes: &[u8]) -> ExportTraceServiceRequest {
    ExportTraceServiceRequest::decode(bytes).expect("a valid ExportTraceServiceRequest")
}

/// The resource's attributes in one order (the SDK keeps them in a hash map).
fn sorted(mut attributes: Vec<KeyValue>) -> Vec<KeyValue> {
    attributes.sort_by(|a, b| a.key.cmp(&b.key));
    attributes
}

fn assert_same_request(settings: &TelemetrySettings, spans: &[FinishedSpan]) {
    let (flujo_bytes, sdk_bytes) = flujo::__private::trace_request_both_ways(spans, settings);
    let (mut ours, mut sdks) = (decoded(&flujo_bytes), decoded(&sdk_bytes));
    assert_eq!(ours.resource_spans.len(), 1);
    assert_eq!(sdks.resource_spans.len(), 1);
    let (ours, sdks) = (&mut ours.resource_spans[0], &mut sdks.resource_spans[0]);
    let (our_resource, sdk_resource) =
        (ours.resource.take().unwrap(), sdks.resource.take().unwrap());
    assert_eq!(
        sorted(our_resource.attributes),
        sorted(sdk_resource.attributes)
    );
    assert_eq!(ours.schema_url, sdks.schema_url);
    assert_eq!(ours.scope_spans.len(), 1);
    assert_eq!(sdks.scope_spans.len(), 1);
    let (ours, sdks) = (&ours.scope_spans[0], &sdks.scope_spans[0]);
    assert_eq!(ours.scope, sdks.scope);
    assert_eq!(ours.schema_url, sdks.schema_url);
    assert_eq!(ours.spans.len(), spans.len());
    for (our_span, sdk_span) in ours.spans.iter().zip(&sdks.spans) {
        assert_eq!(our_span, sdk_span, "span {}", sdk_span.name);
    }
    // The same bytes but for the order of the resource's attributes.
    assert_eq!(flujo_bytes.len(), sdk_bytes.len());
}

#[test]
fn flujos_otlp_request_is_the_sdks_field_by_field() {
    let spans = spans();
    let settings = TelemetryConfig::builder()
        .service_name("encoding-test")
        .resolve_from(|name| {
            (name == "OTEL_RESOURCE_ATTRIBUTES").then(|| "team=ai,region=eu".to_owned())
        })
        .unwrap();
    assert_same_request(&settings, &spans);
}

/// The settings of `variables`, and the spans flujo's request for `spans` carries under them.
fn limited(spans: &[FinishedSpan], variables: &[(&str, &str)]) -> (TelemetrySettings, Vec<Span>) {
    let settings = TelemetryConfig::builder()
        .resolve_from(|name| {
            variables
                .iter()
                .find(|(variable, _)| *variable == name)
                .map(|(_, value)| (*value).to_owned())
        })
        .unwrap();
    let (flujo_bytes, _) = flujo::__private::trace_request_both_ways(spans, &settings);
    let mut request = decoded(&flujo_bytes);
    let spans = std::mem::take(&mut request.resource_spans[0].scope_spans[0].spans);
    (settings, spans)
}

#[test]
fn cut_values_and_dropped_attributes_are_the_sdks_too() {
    let spans = spans();
    let (settings, exported) = limited(
        &spans,
        &[
            ("OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT", "7"),
            ("OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT", "4"),
        ],
    );
    assert!(
        exported
            .iter()
            .any(|span| span.dropped_attributes_count > 0)
    );
    assert!(exported.iter().all(|span| span.attributes.len() <= 4));
    assert_same_request(&settings, &spans);
}

#[test]
fn events_past_the_event_limits_are_dropped_and_counted_as_the_sdk_does() {
    let spans = spans();
    let (settings, exported) = limited(
        &spans,
        &[
            ("OTEL_SPAN_EVENT_COUNT_LIMIT", "1"),
            ("OTEL_EVENT_ATTRIBUTE_COUNT_LIMIT", "2"),
        ],
    );
    // `flaky` failed twice before it answered: two retry events, one kept.
    let flaky: Vec<_> = exported
        .iter()
        .filter(|span| span.name == "flaky")
        .collect();
    assert_eq!(flaky.len(), 2);
    for span in flaky {
        assert_eq!(span.events.len(), 1, "{span:?}");
        assert_eq!(span.dropped_events_count, 1, "{span:?}");
        let event = &span.events[0];
        assert_eq!(event.attributes.len(), 2, "{event:?}");
        assert!(event.dropped_attributes_count > 0, "{event:?}");
    }
    assert_same_request(&settings, &spans);
}
