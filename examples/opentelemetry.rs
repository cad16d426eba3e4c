//! flujo inside an application's own OpenTelemetry setup, offline: the application's tracer
//! provider (here with the SDK's in-memory exporter; in production a `BatchSpanProcessor`
//! around `opentelemetry-otlp`, Datadog, Zipkin...), a `tracing-opentelemetry` span per
//! request, and flujo sharing the provider's processor. Prints the one trace they make.
//!
//! Run: `cargo run --example opentelemetry --features opentelemetry`

use flujo::export::otel::SharedSpanProcessor;
use flujo::{Flujo, SpanContext, pipeline, pipeline_step};
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider, SimpleSpanProcessor};
use tracing_subscriber::layer::SubscriberExt as _;

#[pipeline_step]
fn plan(question: String) -> Vec<String> {
    question.split_whitespace().map(str::to_owned).collect()
}

#[pipeline_step]
fn answer(words: Vec<String>) -> String {
    // What an instrumented HTTP client called here would send.
    let mut headers = std::collections::HashMap::new();
    SpanContext::current().inject(&mut headers);
    println!(
        "a request from `answer` carries traceparent {}",
        headers["traceparent"]
    );
    format!("{} words", words.len())
}

pipeline! {
    pub pipeline assistant(question: String) -> String {
        plan >> answer
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
    let exporter = InMemorySpanExporter::default();
    let processor = SharedSpanProcessor::new(SimpleSpanProcessor::new(exporter.clone()));
    let provider = SdkTracerProvider::builder()
        .with_resource(
            Resource::builder()
                .with_service_name("assistant-api")
                .build(),
        )
        .with_span_processor(processor.clone())
        .build();
    let subscriber = tracing_subscriber::registry()
        .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("assistant-api")));

    let mut telemetry = flujo::init_telemetry()?;
    telemetry.share_otel_processor(&processor)?;
    tracing::subscriber::with_default(subscriber, || {
        let request = tracing::info_span!("POST /ask");
        let _entered = request.enter();
        let result = Flujo::new(assistant::new()).run("what is flujo".to_owned());
        println!(
            "answer: {}",
            result.output.expect("the stub pipeline answers")
        );
    });
    drop(telemetry); // flushes flujo's spans into the processor

    let mut spans = exporter.get_finished_spans()?;
    spans.sort_by_key(|span| span.start_time);
    for span in &spans {
        println!(
            "trace {} span {} parent {} {:<8} {}",
            span.span_context.trace_id(),
            span.span_context.span_id(),
            span.parent_span_id,
            span.instrumentation_scope.name(),
            span.name
        );
    }
    provider.shutdown()?;
    Ok(())
}
