//! flujo inside the application's own OpenTelemetry setup (feature `opentelemetry`): its
//! spans through the application's tracer provider's processor, parents from the current
//! OpenTelemetry context (set by `tracing-opentelemetry`), the sampled flag respected, the
//! step's context for instrumented HTTP clients, and logs that name the step.

use std::collections::HashMap;
use std::io::{BufRead as _, BufReader, Write as _};
use std::net::{TcpListener, TcpStream};
use std::sync::Mutex;

use flujo::export::otel::SharedSpanProcessor;
use flujo::{Flujo, SpanContext, init_telemetry, pipeline, pipeline_step};
use opentelemetry::Context;
use opentelemetry::trace::{SpanId, TraceContextExt as _, TraceId, TracerProvider as _};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::logs::{InMemoryLogExporter, SdkLoggerProvider};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::{
    InMemorySpanExporter, SdkTracerProvider, SimpleSpanProcessor, SpanData,
};
use tracing_subscriber::layer::SubscriberExt as _;

/// Telemetry is process-wide: one test at a time.
static TURN: Mutex<()> = Mutex::new(());

#[pipeline_step]
fn tokenize(text: String) -> Vec<String> {
    tracing::info!(words = text.split_whitespace().count(), "tokenized");
    text.split_whitespace().map(str::to_owned).collect()
}

#[pipeline_step]
async fn shout(words: Vec<String>) -> Vec<String> {
    words.iter().map(|w| w.to_uppercase()).collect()
}

#[pipeline_step]
fn join(words: Vec<String>) -> String {
    words.join(" ")
}

pipeline! {
    pub pipeline shouting(text: String) -> String {
        tokenize >> shout.await >> join
    }
}

/// The application's provider, with the processor it shares with flujo.
fn provider() -> (
    SdkTracerProvider,
    SharedSpanProcessor<SimpleSpanProcessor<InMemorySpanExporter>>,
    InMemorySpanExporter,
) {
    let exporter = InMemorySpanExporter::default();
    let processor = SharedSpanProcessor::new(SimpleSpanProcessor::new(exporter.clone()));
    let provider = SdkTracerProvider::builder()
        .with_resource(Resource::builder().with_service_name("interop-app").build())
        .with_span_processor(processor.clone())
        .build();
    (provider, processor, exporter)
}

/// The application's provider, and telemetry that feeds its processor.
fn fed_by_flujo() -> (
    SdkTracerProvider,
    InMemorySpanExporter,
    flujo::TelemetryGuard,
) {
    let (provider, processor, exporter) = provider();
    let mut telemetry = init_telemetry().unwrap();
    telemetry.share_otel_processor(&processor).unwrap();
    (provider, exporter, telemetry)
}

fn flujo_spans(spans: &[SpanData]) -> Vec<&SpanData> {
    spans
        .iter()
        .filter(|span| span.instrumentation_scope.name() == "flujo")
        .collect()
}

fn named<'a>(spans: &'a [&SpanData], name: &str) -> &'a SpanData {
    spans
        .iter()
        .find(|span| span.name == name)
        .unwrap_or_else(|| panic!("no span {name} in {:?}", names(spans)))
}

fn names(spans: &[&SpanData]) -> Vec<String> {
    spans.iter().map(|span| span.name.to_string()).collect()
}

#[test]
fn a_pipelines_spans_reach_the_applications_processor_with_their_parents() {
    let _turn = TURN.lock().unwrap_or_else(|e| e.into_inner());
    let (provider, exporter, telemetry) = fed_by_flujo();
    let output = Flujo::new(shouting::new()).run("three small words".to_owned());
    assert_eq!(output.output.unwrap(), "THREE SMALL WORDS");
    drop(telemetry);

    let all = exporter.get_finished_spans().unwrap();
    let spans = flujo_spans(&all);
    assert!(
        spans.len() >= 4,
        "a run and three steps: {:?}",
        names(&spans)
    );
    let trace = spans[0].span_context.trace_id();
    assert!(
        spans
            .iter()
            .all(|span| span.span_context.trace_id() == trace)
    );
    let roots: Vec<_> = spans
        .iter()
        .filter(|span| span.parent_span_id == SpanId::INVALID)
        .collect();
    assert_eq!(roots.len(), 1, "one root: {:?}", names(&spans));
    let root = roots[0].span_context.span_id();
    for step in ["tokenize", "shout", "join"] {
        let span = named(&spans, step);
        assert_eq!(span.parent_span_id, root, "{step} is a child of the run");
        assert!(!span.parent_span_is_remote);
        assert!(
            span.attributes
                .iter()
                .any(|kv| kv.key.as_str() == "flujo.step.name" && kv.value.as_str() == step),
            "{step}: {:?}",
            span.attributes
        );
        assert!(span.start_time <= span.end_time);
    }
    // Through the provider's processor: the provider's resource, not flujo's.
    provider.force_flush().unwrap();
    let _ = provider.shutdown();
}

#[test]
fn a_run_inside_a_tracing_opentelemetry_span_is_its_child() {
    let _turn = TURN.lock().unwrap_or_else(|e| e.into_inner());
    let (provider, exporter, telemetry) = fed_by_flujo();
    let subscriber = tracing_subscriber::registry()
        .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("app")));
    tracing::subscriber::with_default(subscriber, || {
        let request = tracing::info_span!("GET /shout");
        let _entered = request.enter();
        Flujo::new(shouting::new())
            .run("inside a request".to_owned())
            .output
            .unwrap();
    });
    drop(telemetry);

    let all = exporter.get_finished_spans().unwrap();
    let request = all
        .iter()
        .find(|span| span.name == "GET /shout")
        .expect("the request span is exported");
    let spans = flujo_spans(&all);
    assert!(spans.len() >= 4, "{:?}", names(&spans));
    let trace = request.span_context.trace_id();
    assert!(
        spans
            .iter()
            .all(|span| span.span_context.trace_id() == trace),
        "every flujo span is in the request's trace"
    );
    let ids: Vec<SpanId> = spans.iter().map(|s| s.span_context.span_id()).collect();
    let roots: Vec<_> = spans
        .iter()
        .filter(|span| !ids.contains(&span.parent_span_id))
        .collect();
    assert_eq!(roots.len(), 1, "{:?}", names(&spans));
    assert_eq!(roots[0].parent_span_id, request.span_context.span_id());
    assert!(!roots[0].parent_span_is_remote, "a parent in this process");
    let _ = provider.shutdown();
}

#[test]
fn an_unsampled_application_span_records_no_flujo_spans() {
    let _turn = TURN.lock().unwrap_or_else(|e| e.into_inner());
    let (provider, exporter, telemetry) = fed_by_flujo();
    let unsampled = opentelemetry::trace::SpanContext::new(
        TraceId::from(0x4bf9_2f35_77b3_4da6_a3ce_929d_0e0e_4736_u128),
        SpanId::from(0x00f0_67aa_0ba9_02b7_u64),
        opentelemetry::trace::TraceFlags::default(),
        false,
        Default::default(),
    );
    {
        let _current = Context::new().with_remote_span_context(unsampled).attach();
        Flujo::new(shouting::new())
            .run("not sampled".to_owned())
            .output
            .unwrap();
    }
    drop(telemetry);
    let all = exporter.get_finished_spans().unwrap();
    assert!(
        flujo_spans(&all).is_empty(),
        "{:?}",
        names(&flujo_spans(&all))
    );
    let _ = provider.shutdown();
}

/// Answers every request with the `traceparent` it came with.
fn echo_traceparent_server() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut traceparent = String::new();
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line.trim().is_empty() {
                    break;
                }
                if let Some(value) = line.strip_prefix("traceparent: ") {
                    traceparent = value.trim().to_owned();
                }
            }
            let mut stream = stream;
            let _ = write!(
                stream,
                "HTTP/1.1 200 OK\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{traceparent}",
                traceparent.len()
            );
        }
    });
    port
}

/// A small HTTP client that injects the current OpenTelemetry context, as instrumented
/// clients do; returns the response body.
fn get(port: u16, context: &Context) -> String {
    let mut headers = HashMap::new();
    opentelemetry::global::get_text_map_propagator(|propagator| {
        propagator.inject_context(context, &mut headers);
    });
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let mut request = "GET / HTTP/1.1\r\nhost: 127.0.0.1\r\n".to_owned();
    for (name, value) in &headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    stream.write_all(request.as_bytes()).unwrap();
    let mut response = String::new();
    std::io::Read::read_to_string(&mut stream, &mut response).unwrap();
    response
        .split("\r\n\r\n")
        .nth(1)
        .unwrap_or_default()
        .to_owned()
}

/// What a step sent: its own `traceparent`, what `SpanContext::inject` wrote, and what the
/// server saw from a client injecting the step's context and the current context.
#[pipeline_step]
fn call_service(port: u16) -> [Option<String>; 4] {
    let current = SpanContext::current();
    let mut injected = HashMap::new();
    current.inject(&mut injected);
    [
        current.traceparent(),
        injected.remove("traceparent"),
        Some(get(port, &current.otel_context())),
        // What a client instrumented with OpenTelemetry alone sends: the current context.
        Some(get(port, &Context::current())),
    ]
}

#[test]
fn a_step_calling_a_server_sends_the_steps_traceparent() {
    let _turn = TURN.lock().unwrap_or_else(|e| e.into_inner());
    opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
    let port = echo_traceparent_server();
    let (provider, exporter, telemetry) = fed_by_flujo();
    let sent = call_service(port);
    drop(telemetry);
    let all = exporter.get_finished_spans().unwrap();
    let spans = flujo_spans(&all);
    let step = named(&spans, "call_service");
    let expected = format!(
        "00-{}-{}-01",
        step.span_context.trace_id(),
        step.span_context.span_id()
    );
    let [own, injected, converted, current] = sent.map(Option::unwrap_or_default);
    assert_eq!(own, expected);
    assert_eq!(injected, expected, "SpanContext::inject");
    assert_eq!(
        converted, expected,
        "SpanContext::otel_context, injected by the client"
    );
    assert_eq!(current, expected, "Context::current() inside the step");
    let _ = provider.shutdown();
}

#[test]
fn logs_of_a_step_through_the_opentelemetry_appender_name_the_step() {
    let _turn = TURN.lock().unwrap_or_else(|e| e.into_inner());
    let (provider, exporter, telemetry) = fed_by_flujo();
    let logs = InMemoryLogExporter::default();
    let logger_provider = SdkLoggerProvider::builder()
        .with_simple_exporter(logs.clone())
        .build();
    let subscriber = tracing_subscriber::registry().with(
        opentelemetry_appender_tracing::layer::OpenTelemetryTracingBridge::new(&logger_provider),
    );
    tracing::subscriber::with_default(subscriber, || {
        Flujo::new(shouting::new())
            .run("log me".to_owned())
            .output
            .unwrap();
    });
    drop(telemetry);
    let all = exporter.get_finished_spans().unwrap();
    let spans = flujo_spans(&all);
    let step = named(&spans, "tokenize");
    let emitted = logs.get_emitted_logs().unwrap();
    let record = emitted
        .iter()
        .find(|log| {
            log.record
                .attributes_iter()
                .any(|(key, _)| key.as_str() == "words")
        })
        .expect("the step's log line is exported");
    let context = record
        .record
        .trace_context()
        .expect("it carries a trace context");
    assert_eq!(context.trace_id, step.span_context.trace_id());
    assert_eq!(context.span_id, step.span_context.span_id());
    let _ = logger_provider.shutdown();
    let _ = provider.shutdown();
}

#[pipeline_step]
fn current_otel_span() -> bool {
    Context::current().has_active_span()
}

#[test]
fn activation_is_on_with_an_opentelemetry_destination_unless_switched_off() {
    let _turn = TURN.lock().unwrap_or_else(|e| e.into_inner());
    let telemetry = init_telemetry().unwrap();
    assert!(
        !current_otel_span(),
        "no OpenTelemetry setup handed to flujo: off"
    );
    drop(telemetry);

    let (provider, processor, _) = provider();
    let mut telemetry = init_telemetry().unwrap();
    telemetry.share_otel_processor(&processor).unwrap();
    assert!(
        current_otel_span(),
        "on by default once flujo feeds the application's processor"
    );
    drop(telemetry);

    let mut telemetry = flujo::init_telemetry_with(
        flujo::TelemetryConfig::builder().otel_context_activation(false),
    )
    .unwrap();
    telemetry.share_otel_processor(&processor).unwrap();
    assert!(!current_otel_span(), "switched off");
    drop(telemetry);
    let _ = provider.shutdown();
}
