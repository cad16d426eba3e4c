//! OTLP export to a real collector (rotel), over gRPC and HTTP/protobuf, and with no
//! collector at all. Needs the `otlp` feature and rotel, which `scripts/test.sh` installs;
//! a missing rotel is a failure, never a skip.
#![cfg(feature = "otlp")]

#[path = "support/stub_provider.rs"]
mod stub_provider;
mod support;

use support::{ReceivedSpan, Rotel, TlsFront, free_port, parse_spans, resident_bytes};

use std::fmt;
use std::sync::Mutex;
use std::time::Duration;

use flujo::config::{GenAiCompat, GenAiConventions, OtlpProtocol};
use flujo::testing::Capture;
use flujo::{TelemetryConfig, init_telemetry_with, pipeline_step};

/// Telemetry is process-wide: the scenarios take turns.
static TURN: Mutex<()> = Mutex::new(());

#[derive(Debug)]
struct ReviewError;

impl fmt::Display for ReviewError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("review rejected the draft")
    }
}

struct Draft {
    text: String,
    usage: flujo::TokenUsage,
}

impl flujo::cost::ReportsUsage for Draft {
    fn token_usage(&self) -> Option<flujo::TokenUsage> {
        Some(self.usage)
    }
    fn response_id(&self) -> Option<&str> {
        Some("chatcmpl-7")
    }
    fn finish_reasons(&self) -> Vec<std::borrow::Cow<'_, str>> {
        vec!["stop".into()]
    }
}

#[pipeline_step(fields(question_len = question.len(), "flujo.prompt.kind" = "question"))]
#[flujo::track_cost(model = "gpt-4o-mini")]
fn draft(question: &str) -> Draft {
    Draft {
        text: format!("draft for {question}"),
        usage: flujo::TokenUsage::new(1_200, 80).with_cache_read(1_024),
    }
}

#[pipeline_step]
fn review(draft: &str) -> Result<String, ReviewError> {
    if draft.contains("reject") {
        return Err(ReviewError);
    }
    Ok(draft.to_uppercase())
}

/// Steps only the metrics-push test calls: their counts are that test's own, whatever else ran
/// in this process before (a recorder attached later gets a counter's whole value).
#[pipeline_step]
fn pushed_draft(question: &str) -> String {
    format!("draft for {question}")
}

#[pipeline_step]
fn pushed_review(draft: &str) -> Result<String, ReviewError> {
    review(draft)
}

#[pipeline_step(name = "answer_question")]
fn answer(question: &str) -> Result<String, ReviewError> {
    review(&draft(question).text)
}

/// Checks a model-call span as rotel received it, name by name and type by type: the
/// OpenTelemetry GenAI attributes always, and each back-end's in `compat`, none other.
/// (`gpt-4o-mini`: $0.15/M input, $0.075/M cached, $0.60/M output; 1,200 input tokens of
/// which 1,024 cached, 80 output.)
fn assert_genai_attributes(
    span: &ReceivedSpan,
    compat: GenAiCompat,
    conventions: GenAiConventions,
) {
    assert_eq!(
        span.kind, "SPAN_KIND_CLIENT",
        "an inference request: {span:?}"
    );
    let always = [
        ("gen_ai.operation.name", "Str(chat)"),
        ("gen_ai.provider.name", "Str(openai)"),
        ("gen_ai.request.model", "Str(gpt-4o-mini)"),
        ("gen_ai.response.id", "Str(chatcmpl-7)"),
        ("gen_ai.response.finish_reasons", "Slice(Str(stop))"),
        ("gen_ai.usage.input_tokens", "Int(1200)"),
        ("gen_ai.usage.output_tokens", "Int(80)"),
        ("gen_ai.usage.cache_read.input_tokens", "Int(1024)"),
    ];
    // 176 * 0.15 + 1,024 * 0.075 + 80 * 0.60 = 26.4 + 76.8 + 48 micro-dollars.
    let total = "Double(0.0001512)";
    let logfire = [("operation.cost", total)];
    let langfuse = [("gen_ai.usage.cost", total)];
    let openinference = [
        ("openinference.span.kind", "Str(LLM)"),
        ("llm.model_name", "Str(gpt-4o-mini)"),
        ("llm.provider", "Str(openai)"),
        ("llm.token_count.prompt", "Int(1200)"),
        ("llm.token_count.completion", "Int(80)"),
        ("llm.token_count.total", "Int(1280)"),
        ("llm.token_count.prompt_details.cache_read", "Int(1024)"),
        ("llm.cost.total", total),
        ("llm.cost.prompt", "Double(0.0001032)"),
        ("llm.cost.completion", "Double(0.000048)"),
    ];
    let mut expected: Vec<(&str, &str)> = always.to_vec();
    for (backend, attributes) in [
        (GenAiCompat::LOGFIRE, &logfire[..]),
        (GenAiCompat::LANGFUSE, &langfuse[..]),
        (GenAiCompat::OPENINFERENCE, &openinference[..]),
    ] {
        if compat.contains(backend) {
            expected.extend(attributes);
        } else {
            for (key, _) in attributes {
                assert_eq!(span.attribute(key), None, "{key} without {backend:?}");
            }
        }
    }
    // The cost proposal's names come with the current draft, and never to Langfuse.
    let proposal = [
        ("gen_ai.usage.cost.amount", total),
        ("gen_ai.usage.cost.currency", "Str(USD)"),
    ];
    if conventions == GenAiConventions::LatestExperimental
        && !compat.contains(GenAiCompat::LANGFUSE)
    {
        expected.extend(proposal);
    } else {
        for (key, _) in proposal {
            assert_eq!(span.attribute(key), None, "{key} misread by Langfuse");
        }
    }
    for (key, value) in expected {
        assert_eq!(span.attribute(key), Some(value), "{key}: {span:?}");
    }
    // Deprecated; and a count the call did not have (no cache write, no reasoning) is not
    // claimed as 0.
    for key in [
        "gen_ai.usage.cache_creation.input_tokens",
        "gen_ai.usage.reasoning.output_tokens",
        "llm.token_count.prompt_details.cache_write",
        "llm.token_count.completion_details.reasoning",
        "gen_ai.system",
    ] {
        assert_eq!(span.attribute(key), None, "{key}");
    }
}

/// Runs two pipeline calls (one failing) with OTLP export to rotel and checks what arrived.
/// `connect` points the configuration at the collector (directly or through a TLS front) and
/// returns whatever must stay alive while exporting.
fn export_run<Front>(
    service: &str,
    connect: impl FnOnce(&Rotel, TelemetryConfig) -> (TelemetryConfig, Front),
) {
    let _turn = TURN.lock().unwrap_or_else(|e| e.into_inner());
    let rotel = Rotel::start();
    let config = TelemetryConfig::builder()
        .service_name(service)
        .version("1.2.3")
        .environment("test")
        .export_otlp(true);
    let (config, _front) = connect(&rotel, config);
    let guard = init_telemetry_with(config).expect("telemetry with OTLP export starts");
    answer("why?").expect("first run succeeds");
    answer("reject this").expect_err("second run fails");
    drop(guard); // flushes, then waits for the last export
    let output = rotel.wait_for_spans(8);
    let spans = parse_spans(&output);
    assert_eq!(spans.len(), 8, "rotel received:\n{output}");

    let roots: Vec<&ReceivedSpan> = spans
        .iter()
        .filter(|s| s.name == "answer_question")
        .collect();
    assert_eq!(roots.len(), 2);
    for root in &roots {
        assert_eq!(root.parent_id, "", "the pipeline step is a root");
        let children: Vec<&str> = spans
            .iter()
            .filter(|s| s.parent_id == root.id)
            .map(|s| s.name.as_str())
            .collect();
        assert_eq!(children.len(), 2, "draft and review under {root:?}");
        assert!(children.contains(&"draft") && children.contains(&"review"));
        assert!(
            spans
                .iter()
                .filter(|s| s.parent_id == root.id)
                .all(|s| s.trace_id == root.trace_id)
        );
        assert_eq!(
            root.attribute("code.function.name"),
            Some("Str(otlp_export::answer)")
        );
        assert_eq!(root.attribute("flujo.step.attempts"), Some("Int(1)"));
    }
    assert_ne!(roots[0].trace_id, roots[1].trace_id);

    let failed_root = roots
        .iter()
        .find(|r| r.status == "STATUS_CODE_ERROR")
        .expect("a failed run");
    assert_eq!(failed_root.status_message, "review rejected the draft");
    assert_eq!(
        failed_root.attribute("error.type"),
        Some("Str(otlp_export::ReviewError)")
    );
    let ok_root = roots
        .iter()
        .find(|r| r.status == "STATUS_CODE_OK")
        .expect("a successful run");
    assert_ne!(ok_root.id, failed_root.id);

    let draft = spans.iter().find(|s| s.name == "draft").unwrap();
    assert_eq!(
        draft.attribute("question_len"),
        Some("Int(4)"),
        "integers stay integers"
    );
    assert_eq!(draft.attribute("flujo.prompt.kind"), Some("Str(question)"));
    let model_call = spans
        .iter()
        .find(|s| s.name == "chat gpt-4o-mini" && s.parent_id == draft.id)
        .expect("the model call is a child of its step");
    assert_eq!(model_call.trace_id, draft.trace_id);
    assert_genai_attributes(model_call, GenAiCompat::ALL, GenAiConventions::V1_41);
    assert_eq!(draft.kind, "SPAN_KIND_INTERNAL", "a step is internal work");

    for span in &spans {
        let resource = |key: &str| {
            span.resource
                .iter()
                .find(|(k, _)| k == key)
                .map(|(_, v)| v.clone())
        };
        assert_eq!(resource("service.name"), Some(format!("Str({service})")));
        assert_eq!(resource("service.version").as_deref(), Some("Str(1.2.3)"));
        assert_eq!(
            resource("deployment.environment.name").as_deref(),
            Some("Str(test)")
        );
        assert_eq!(
            resource("telemetry.sdk.language").as_deref(),
            Some("Str(rust)")
        );
    }
}

/// The `spans` spans that `run` records with `config`, exported over gRPC to a rotel of their
/// own, as rotel received them.
fn exported_spans_of(
    config: TelemetryConfig,
    spans: usize,
    run: impl FnOnce(),
) -> Vec<ReceivedSpan> {
    let _turn = TURN.lock().unwrap_or_else(|e| e.into_inner());
    let rotel = Rotel::start();
    let guard = init_telemetry_with(
        config
            .export_otlp(true)
            .otlp_endpoint(format!("http://127.0.0.1:{}", rotel.grpc)),
    )
    .unwrap();
    run();
    drop(guard);
    parse_spans(&rotel.wait_for_spans(spans))
}

/// `FLUJO_GENAI_COMPAT` (here through the builder) narrows a model-call span's names to the
/// back-ends named: the others' names are not there; and the current draft of the conventions
/// (`OTEL_SEMCONV_STABILITY_OPT_IN=gen_ai_latest_experimental`) adds the cost proposal's names
/// unless Langfuse is among them.
#[test]
fn genai_compat_narrows_the_names_to_the_backends_named() {
    use GenAiConventions::{LatestExperimental, V1_41};
    let sets = [
        (GenAiCompat::OTEL, V1_41),
        (GenAiCompat::LANGFUSE, V1_41),
        (GenAiCompat::LOGFIRE.with(GenAiCompat::OPENINFERENCE), V1_41),
        (GenAiCompat::OTEL, LatestExperimental),
        (GenAiCompat::ALL, LatestExperimental),
    ];
    for (compat, conventions) in sets {
        let config = TelemetryConfig::builder()
            .genai_compat(compat)
            .genai_conventions(conventions);
        let spans = exported_spans_of(config, 2, || {
            draft("q");
        });
        let model_call = spans
            .iter()
            .find(|span| span.name == "chat gpt-4o-mini")
            .expect("the model call arrived");
        assert_genai_attributes(model_call, compat, conventions);
    }
}

#[test]
fn spans_arrive_over_grpc() {
    export_run("otlp-grpc-test", |rotel, config| {
        let endpoint = format!("http://127.0.0.1:{}", rotel.grpc);
        (
            config
                .otlp_protocol(OtlpProtocol::Grpc)
                .otlp_endpoint(endpoint),
            (),
        )
    });
}

#[test]
fn spans_arrive_over_http_protobuf() {
    export_run("otlp-http-test", |rotel, config| {
        let endpoint = format!("http://127.0.0.1:{}", rotel.http);
        (
            config
                .otlp_protocol(OtlpProtocol::HttpProtobuf)
                .otlp_endpoint(endpoint),
            (),
        )
    });
}

#[test]
fn spans_arrive_gzip_compressed_with_headers() {
    export_run("otlp-gzip-test", |rotel, config| {
        let endpoint = format!("http://127.0.0.1:{}", rotel.http);
        let config = config
            .otlp_protocol(OtlpProtocol::HttpProtobuf)
            .otlp_endpoint(endpoint)
            .otlp_gzip(true)
            .otlp_header("x-tenant", "ml-team");
        (config, ())
    });
    export_run("otlp-grpc-gzip-test", |rotel, config| {
        let endpoint = format!("http://127.0.0.1:{}", rotel.grpc);
        (config.otlp_endpoint(endpoint).otlp_gzip(true), ())
    });
}

#[test]
fn spans_arrive_over_https_with_a_private_ca() {
    export_run("otlp-https-test", |rotel, config| {
        let front = TlsFront::start(rotel.http);
        let config = config
            .otlp_protocol(OtlpProtocol::HttpProtobuf)
            .otlp_endpoint(format!("https://127.0.0.1:{}", front.port))
            .otlp_certificate(front.ca());
        (config, front)
    });
}

#[test]
fn spans_arrive_over_grpc_with_tls() {
    export_run("otlp-grpcs-test", |rotel, config| {
        let front = TlsFront::start(rotel.grpc);
        let config = config
            .otlp_protocol(OtlpProtocol::Grpc)
            .otlp_endpoint(format!("https://127.0.0.1:{}", front.port))
            .otlp_certificate(front.ca());
        (config, front)
    });
}

#[test]
fn a_missing_ca_file_is_an_error_naming_it() {
    let _turn = TURN.lock().unwrap_or_else(|e| e.into_inner());
    let err = init_telemetry_with(
        TelemetryConfig::builder()
            .export_otlp(true)
            .otlp_endpoint("https://127.0.0.1:4318")
            .otlp_protocol(OtlpProtocol::HttpProtobuf)
            .otlp_certificate("/nonexistent/ca.pem"),
    )
    .unwrap_err();
    assert!(err.to_string().contains("/nonexistent/ca.pem"), "{err}");
    assert!(err.to_string().contains("OTLP"), "{err}");
}

#[test]
fn a_ca_file_without_a_certificate_is_an_error_naming_it() {
    let _turn = TURN.lock().unwrap_or_else(|e| e.into_inner());
    let dir = std::env::temp_dir().join(format!("flujo-ca-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for (name, text) in [
        ("empty.pem", ""),
        (
            "key.pem",
            "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIA==\n-----END PRIVATE KEY-----\n",
        ),
        ("words.pem", "not a certificate\n"),
    ] {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        for protocol in [OtlpProtocol::Grpc, OtlpProtocol::HttpProtobuf] {
            let err = init_telemetry_with(
                TelemetryConfig::builder()
                    .export_otlp(true)
                    .otlp_endpoint("https://127.0.0.1:4318")
                    .otlp_protocol(protocol)
                    .otlp_certificate(&path),
            )
            .unwrap_err()
            .to_string();
            assert!(err.contains(&path.display().to_string()), "{err}");
            assert!(err.contains("holds no PEM certificate"), "{err}");
        }
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn without_a_collector_calls_succeed_and_failed_exports_are_counted() {
    let _turn = TURN.lock().unwrap_or_else(|e| e.into_inner());
    let closed = free_port(); // nothing listens here
    let capture = Capture::start();
    let guard = init_telemetry_with(
        TelemetryConfig::builder()
            .export_otlp(true)
            .otlp_endpoint(format!("http://127.0.0.1:{closed}"))
            .otlp_timeout(Duration::from_millis(200))
            .shutdown_timeout(Duration::from_secs(2))
            .max_export_batch_size(10)
            .max_queue_size(20),
    )
    .expect("telemetry starts even though no collector listens");
    for i in 0..500 {
        assert_eq!(
            draft(&"x".repeat(i % 7)).text.len(),
            10 + i % 7,
            "the step's result is untouched"
        );
    }
    drop(guard);
    let failed = capture.counter("flujo_telemetry_export_errors_total", &[]);
    let dropped_failed = capture.counter(
        "flujo_telemetry_spans_dropped_total",
        &[("reason", "export_failed")],
    );
    let dropped_full = capture.counter(
        "flujo_telemetry_spans_dropped_total",
        &[("reason", "export_queue_full")],
    );
    assert!(failed >= 1, "export errors are counted");
    assert_eq!(
        capture.counter("flujo_telemetry_spans_unconfirmed_total", &[]),
        0,
        "spans that reached no collector are known to be lost, not unconfirmed"
    );
    assert_eq!(
        dropped_failed + dropped_full,
        capture.finished_spans().len() as u64,
        "every span is counted"
    );
    assert!(dropped_failed + dropped_full > 0, "lost spans are counted");
    assert_eq!(
        capture.counter("flujo_telemetry_spans_exported_total", &[]),
        0
    );
    assert_eq!(
        capture.counter(
            "flujo_step_calls_total",
            &[("step", "draft"), ("status", "ok")]
        ),
        500,
        "metrics are complete whatever happens to export"
    );
}

/// Starting, exporting and shutting down from inside the application's own tokio runtime
/// (both flavours) neither deadlocks nor panics, and the spans still arrive.
async fn export_from_async_main(flavor: &str) {
    let rotel = Rotel::start();
    let guard = init_telemetry_with(
        TelemetryConfig::builder()
            .service_name(format!("otlp-tokio-{flavor}"))
            .export_otlp(true)
            .otlp_endpoint(format!("http://127.0.0.1:{}", rotel.grpc)),
    )
    .expect("telemetry starts inside a tokio runtime");
    #[pipeline_step]
    async fn fetch(i: u32) -> u32 {
        tokio::task::yield_now().await;
        i * 2
    }
    let sum: u32 = futures::future::join_all((0..4).map(fetch))
        .await
        .into_iter()
        .sum();
    assert_eq!(sum, 12);
    drop(guard); // blocks briefly on flujo's own threads, never on this runtime
    let spans = parse_spans(&rotel.wait_for_spans(4));
    assert_eq!(spans.iter().filter(|s| s.name == "fetch").count(), 4);
}

#[test]
fn works_from_a_current_thread_tokio_runtime() {
    let _turn = TURN.lock().unwrap_or_else(|e| e.into_inner());
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(export_from_async_main("current"));
}

#[test]
fn works_from_a_multi_thread_tokio_runtime() {
    let _turn = TURN.lock().unwrap_or_else(|e| e.into_inner());
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
        .block_on(export_from_async_main("multi"));
}

#[test]
fn metrics_are_pushed_over_otlp_with_the_prometheus_names() {
    let _turn = TURN.lock().unwrap_or_else(|e| e.into_inner());
    let rotel = Rotel::start_logging(&["metrics"]);
    let guard = init_telemetry_with(
        TelemetryConfig::builder()
            .service_name("otlp-metrics-test")
            .export_otlp_metrics(true)
            .metrics_export_interval(Duration::from_millis(200))
            .otlp_endpoint(format!("http://127.0.0.1:{}", rotel.grpc)),
    )
    .expect("telemetry with OTLP metrics starts");
    for question in ["a", "b", "c"] {
        pushed_draft(question);
    }
    let _ = pushed_review("reject");
    drop(guard); // pushes the last values
    let output = rotel.output();

    // The last push of a metric holds its final cumulative values.
    let last_block = |name: &str| -> String {
        let marker = format!("-> Name: {name}\n");
        let start = output
            .rfind(&marker)
            .unwrap_or_else(|| panic!("{name} was pushed:\n{output}"));
        let rest = &output[start + marker.len()..];
        rest[..rest.find("-> Name: ").unwrap_or(rest.len())].to_owned()
    };
    // Attribute order varies between pushes: find the data point that has both.
    let point = |block: &str, step: &str, status: &str| -> String {
        block
            .split("DataPoints #")
            .find(|point| {
                point.contains(&format!("-> step: Str({step})\n"))
                    && point.contains(&format!("-> status: Str({status})\n"))
            })
            .unwrap_or_else(|| panic!("no {step}/{status} data point in {block}"))
            .to_owned()
    };

    let calls = last_block("flujo_step_calls_total");
    assert!(
        calls.contains("DataType: Sum") && calls.contains("IsMonotonic: true"),
        "{calls}"
    );
    assert!(
        point(&calls, "pushed_draft", "ok").contains("Value: 3"),
        "{calls}"
    );
    assert!(
        point(&calls, "pushed_review", "error").contains("Value: 1"),
        "{calls}"
    );

    let durations = last_block("flujo_step_duration_seconds");
    assert!(
        durations.contains("DataType: Histogram"),
        "histograms, not summaries: {durations}"
    );
    assert!(durations.contains("-> Unit: s"), "{durations}");
    let draft_durations = point(&durations, "pushed_draft", "ok");
    assert!(draft_durations.contains("Count: 3"), "{draft_durations}");
    assert!(
        draft_durations.contains("ExplicitBounds #0: 0.0005"),
        "the same buckets as Prometheus"
    );
    assert!(output.contains("-> service.name: Str(otlp-metrics-test)"));
}

impl std::error::Error for ReviewError {}

static HOOK_ATTEMPTS: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);

#[pipeline_step(retries = 1, backoff = "fixed", backoff_ms = 1)]
fn hooked_step(question: String) -> Result<String, ReviewError> {
    if HOOK_ATTEMPTS.fetch_add(1, std::sync::atomic::Ordering::SeqCst) == 0 {
        return Err(ReviewError);
    }
    Ok(question)
}

flujo::pipeline! {
    #[pipeline(version = "3.0.0")]
    pipeline hooked(question: String) -> String {
        hooked_step?
    }
}

#[test]
fn the_otlp_hook_sends_the_runs_of_its_runner() {
    let _turn = TURN.lock().unwrap_or_else(|e| e.into_inner());
    let rotel = Rotel::start();
    // Telemetry without an exporter of its own: only the hook exports.
    let guard = init_telemetry_with(TelemetryConfig::builder().service_name("hook-test"))
        .expect("telemetry starts");
    let hook = flujo::export::OpenTelemetryHook::otlp(&format!("http://127.0.0.1:{}", rotel.grpc))
        .expect("the hook starts its exporter");
    let runner = flujo::Flujo::new(hooked::new()).with_hook(hook);
    let result = runner.run("hello".to_owned());
    assert_eq!(result.output.unwrap(), "hello");
    // A run without the hook is not sent.
    let _ = answer("not exported");
    drop(runner); // flushes the hook's exporter
    drop(guard);
    let output = rotel.wait_for_spans(2);
    let spans = parse_spans(&output);
    let names: Vec<&str> = spans.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names.len(), 2, "only the hooked run: {names:?}");
    let root = spans
        .iter()
        .find(|s| s.name == "invoke_workflow hooked")
        .unwrap();
    let step = spans.iter().find(|s| s.name == "hooked_step").unwrap();
    assert_eq!(step.parent_id, root.id);
    assert_eq!(
        root.attribute("flujo.request_id").map(|v| v.to_owned()),
        Some(format!("Str({})", result.request_id))
    );
    assert_eq!(root.attribute("flujo.pipeline.version"), Some("Str(3.0.0)"));
    assert_eq!(
        root.attribute("gen_ai.operation.name"),
        Some("Str(invoke_workflow)")
    );
    assert!(
        output.contains("flujo.retry"),
        "the retry arrives as a span event:\n{output}"
    );
}

/// A collector that accepts connections and never answers (a stalled process), for `hold`:
/// its port, and the thread holding the connections, which returns how many it accepted.
fn stalled_collector(hold: Duration) -> (u16, std::thread::JoinHandle<usize>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let held = std::thread::spawn(move || {
        // Accept and hold the connections open without reading a byte.
        let mut connections = Vec::new();
        listener.set_nonblocking(true).unwrap();
        let until = std::time::Instant::now() + hold;
        while std::time::Instant::now() < until {
            if let Ok((stream, _)) = listener.accept() {
                connections.push(stream);
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        connections.len()
    });
    (port, held)
}

/// A collector that asks for a pause (HTTP 429 with `Retry-After`) gets the batch again once
/// the pause is over, and it is counted as exported, once.
#[test]
fn a_collectors_retry_after_is_honoured() {
    let _turn = TURN.lock().unwrap_or_else(|e| e.into_inner());
    let collector = stub_provider::StubProvider::start(vec![
        ("429 Too Many Requests", "retry-after: 1\r\n", ""),
        ("200 OK", "", ""),
    ]);
    let capture = Capture::start();
    let guard = init_telemetry_with(
        TelemetryConfig::builder()
            .export_otlp(true)
            .otlp_protocol(OtlpProtocol::HttpProtobuf)
            .otlp_endpoint(format!("{}/v1/traces", collector.base))
            .otlp_timeout(Duration::from_secs(3))
            .shutdown_timeout(Duration::from_secs(5)),
    )
    .unwrap();
    draft("a question");
    drop(guard);
    let arrivals = collector.arrivals();
    assert_eq!(
        arrivals.len(),
        2,
        "the request, and once more after the pause"
    );
    let waited = arrivals[1] - arrivals[0];
    assert!(
        waited >= Duration::from_secs(1) && waited < Duration::from_millis(1500),
        "{waited:?}: the pause asked for, with at most 100 ms of jitter"
    );
    assert_eq!(
        capture.counter("flujo_telemetry_spans_exported_total", &[]),
        capture.finished_spans().len() as u64
    );
}

/// A collector slower to answer than flujo is to encode gets sixteen requests at once (over
/// HTTP/1.1, sixteen connections), and no more: the rest wait in the bounded export queue.
#[test]
fn sixteen_requests_are_in_flight_at_once_and_no_more() {
    let _turn = TURN.lock().unwrap_or_else(|e| e.into_inner());
    let (port, held) = stalled_collector(Duration::from_millis(1500));
    let capture = Capture::start();
    let guard = init_telemetry_with(
        TelemetryConfig::builder()
            .export_otlp(true)
            .otlp_protocol(OtlpProtocol::HttpProtobuf)
            .otlp_endpoint(format!("http://127.0.0.1:{port}/v1/traces"))
            .otlp_timeout(Duration::from_secs(5))
            .shutdown_timeout(Duration::from_millis(800))
            .max_export_batch_size(1),
    )
    .unwrap();
    for i in 0..40 {
        draft(&"x".repeat(i % 7));
    }
    drop(guard);
    assert_eq!(held.join().unwrap(), 16, "requests in flight at once");
    let lost = capture.counter(
        "flujo_telemetry_spans_dropped_total",
        &[("reason", "shutdown")],
    );
    assert_eq!(
        lost,
        capture.finished_spans().len() as u64,
        "every span counted"
    );
}

/// Spans queued or in flight when `shutdown_timeout` expires are counted, every one.
#[test]
fn spans_still_queued_at_the_shutdown_timeout_are_counted() {
    let _turn = TURN.lock().unwrap_or_else(|e| e.into_inner());
    let (port, held) = stalled_collector(Duration::from_secs(2));
    let capture = Capture::start();
    let guard = init_telemetry_with(
        TelemetryConfig::builder()
            .export_otlp(true)
            .otlp_endpoint(format!("http://127.0.0.1:{port}"))
            .otlp_timeout(Duration::from_secs(5))
            .shutdown_timeout(Duration::from_millis(300))
            .max_export_batch_size(10)
            .max_queue_size(1000),
    )
    .unwrap();
    for i in 0..200 {
        draft(&"x".repeat(i % 7));
    }
    drop(guard);
    let counted =
        |reason| capture.counter("flujo_telemetry_spans_dropped_total", &[("reason", reason)]);
    let accounted = capture.counter("flujo_telemetry_spans_exported_total", &[])
        + counted("export_failed")
        + counted("export_queue_full")
        + counted("shutdown");
    println!(
        "exported {}, failed {}, queue full {}, lost at shutdown {}",
        capture.counter("flujo_telemetry_spans_exported_total", &[]),
        counted("export_failed"),
        counted("export_queue_full"),
        counted("shutdown")
    );
    // The capture saw every span the exporter was given.
    let recorded = capture.finished_spans().len() as u64;
    assert!(recorded >= 200);
    assert!(
        counted("shutdown") > 0,
        "the stalled export's spans are counted at shutdown"
    );
    assert_eq!(accounted, recorded, "every span is exported or counted");
    held.join().unwrap();
}

/// A collector that stops answering is said once (a WARN line, and the stall counter), not
/// only visible in the drop counters later.
#[test]
fn a_collector_that_stops_answering_is_reported_once() {
    let _turn = TURN.lock().unwrap_or_else(|e| e.into_inner());
    let (port, held) = stalled_collector(Duration::from_secs(3));
    let capture = Capture::start();
    let guard = init_telemetry_with(
        TelemetryConfig::builder()
            .export_otlp(true)
            .otlp_endpoint(format!("http://127.0.0.1:{port}"))
            .otlp_timeout(Duration::from_millis(200))
            .shutdown_timeout(Duration::from_millis(1500))
            .max_export_batch_size(10),
    )
    .unwrap();
    for i in 0..50 {
        draft(&"x".repeat(i % 7));
    }
    std::thread::sleep(Duration::from_millis(700));
    drop(guard);
    assert_eq!(
        capture.counter("flujo_telemetry_export_stalls_total", &[]),
        1,
        "one stall, reported once"
    );
    held.join().unwrap();
}

/// Export over `protocol` to `rotel`.
fn exporting_to(rotel: &Rotel, protocol: OtlpProtocol) -> TelemetryConfig {
    TelemetryConfig::builder()
        .export_otlp(true)
        .otlp_protocol(protocol)
        .otlp_endpoint(format!("http://127.0.0.1:{}", rotel.port(protocol)))
}

/// An export the collector answers only after `otlp_timeout` (a paused collector) is sent
/// again when it times out, never counted as dropped: the spans arrive, and each span the
/// exporter was given is in exactly one counter.
#[test]
fn timed_out_exports_are_sent_again_not_counted_as_dropped() {
    for protocol in [OtlpProtocol::Grpc, OtlpProtocol::HttpProtobuf] {
        let _turn = TURN.lock().unwrap_or_else(|e| e.into_inner());
        let rotel = Rotel::start();
        let capture = Capture::start();
        let guard = init_telemetry_with(
            exporting_to(&rotel, protocol)
                .otlp_timeout(Duration::from_millis(300))
                .shutdown_timeout(Duration::from_secs(10))
                .max_export_batch_size(10),
        )
        .unwrap();
        // A first export connects while the collector answers.
        draft("warm up");
        rotel.wait_for_spans(1);
        rotel.pause();
        for i in 0..30 {
            draft(&"x".repeat(i % 7));
        }
        // The first attempt times out (300 ms), the next one waits in the collector's socket.
        std::thread::sleep(Duration::from_millis(700));
        rotel.resume();
        drop(guard);
        let recorded = capture.finished_spans().len() as u64;
        let dropped =
            |reason| capture.counter("flujo_telemetry_spans_dropped_total", &[("reason", reason)]);
        let exported = capture.counter("flujo_telemetry_spans_exported_total", &[]);
        let unconfirmed = capture.counter("flujo_telemetry_spans_unconfirmed_total", &[]);
        println!(
            "{protocol:?}: recorded {recorded}, exported {exported}, unconfirmed {unconfirmed}, \
             failed {}, stalls {}",
            dropped("export_failed"),
            capture.counter("flujo_telemetry_export_stalls_total", &[])
        );
        assert_eq!(
            dropped("export_failed"),
            0,
            "{protocol:?}: a timeout is not a failure"
        );
        assert_eq!(dropped("shutdown") + dropped("export_queue_full"), 0);
        assert_eq!(
            exported + unconfirmed,
            recorded,
            "{protocol:?}: one counter each"
        );
        assert_eq!(
            exported, recorded,
            "{protocol:?}: the resent batches were answered"
        );
        assert!(capture.counter("flujo_telemetry_export_stalls_total", &[]) >= 1);
        let output = rotel.wait_for_spans(recorded as usize);
        let mut ids: Vec<String> = parse_spans(&output).into_iter().map(|s| s.id).collect();
        ids.sort();
        ids.dedup();
        assert_eq!(
            ids.len() as u64,
            recorded,
            "{protocol:?}: every span arrived"
        );
    }
}

#[pipeline_step(fields(prompt = %prompt))]
fn long_prompt(prompt: &str) -> usize {
    prompt.len()
}

/// The export queue is bounded in bytes as well as in spans: spans with large fields stop
/// being queued at `MAX_EXPORT_QUEUE_BYTES` (dropped and counted), whatever the span bound.
#[test]
fn the_export_queue_is_bounded_in_bytes() {
    let _turn = TURN.lock().unwrap_or_else(|e| e.into_inner());
    let rotel = Rotel::start();
    rotel.pause();
    let capture = Capture::start();
    let guard = init_telemetry_with(
        TelemetryConfig::builder()
            .export_otlp(true)
            .otlp_endpoint(format!("http://127.0.0.1:{}", rotel.grpc))
            .otlp_timeout(Duration::from_secs(5))
            .shutdown_timeout(Duration::from_millis(300))
            .max_export_batch_size(1)
            .max_queue_size(10_000),
    )
    .unwrap();
    let prompt = "p".repeat(1 << 20);
    let spans = 100;
    for _ in 0..spans {
        long_prompt(&prompt);
        // One span per drain, so that each is offered to the queue on its own.
        capture.finished_spans();
    }
    let full = capture.counter(
        "flujo_telemetry_spans_dropped_total",
        &[("reason", "export_queue_full")],
    );
    // The export queue holds at most 64 MiB of spans (the guide's export page).
    let bound_mib = 64;
    assert!(
        full >= spans - bound_mib && full <= spans - bound_mib + 2,
        "{full} of {spans} one-MiB spans refused by a {bound_mib} MiB queue"
    );
    rotel.resume();
    drop(guard);
}

/// The largest queue accepted costs nothing until spans wait in it: nothing is allocated per
/// slot up front.
#[test]
fn the_largest_export_queue_is_allocated_as_spans_arrive() {
    let _turn = TURN.lock().unwrap_or_else(|e| e.into_inner());
    let before = resident_bytes();
    let guard = init_telemetry_with(
        TelemetryConfig::builder()
            .export_otlp(true)
            .otlp_endpoint(format!("http://127.0.0.1:{}", free_port()))
            // The largest queue settings accept (1,048,576 spans, the settings table).
            .max_queue_size(1 << 20)
            .max_export_batch_size(1)
            .shutdown_timeout(Duration::from_millis(100)),
    )
    .unwrap();
    let grown = resident_bytes().saturating_sub(before);
    drop(guard);
    assert!(
        grown < 8 << 20,
        "init with a 1,048,576-span queue took {} MiB",
        grown >> 20
    );
}

#[pipeline_step(fields(system = %system, context = %context, history = %history, answer = %answer))]
fn huge_step(system: &str, context: &str, history: &str, answer: &str) -> usize {
    system.len() + context.len() + history.len() + answer.len()
}

/// One span larger than a collector takes in one message (4 MiB over gRPC) neither takes its
/// batch down nor is sent whole: it is cut to `MAX_EXPORTED_SPAN_BYTES` and counted, and the
/// batches around it arrive. A field recorded from a 16 MiB value keeps its first
/// `MAX_ATTRIBUTE_VALUE_BYTES`.
#[test]
fn one_huge_span_is_cut_alone_and_its_batch_arrives() {
    for protocol in [OtlpProtocol::Grpc, OtlpProtocol::HttpProtobuf] {
        let _turn = TURN.lock().unwrap_or_else(|e| e.into_inner());
        let rotel = Rotel::start_counting_on(free_port(), free_port());
        let capture = Capture::start();
        let guard = init_telemetry_with(exporting_to(&rotel, protocol)).unwrap();
        let mib = "m".repeat(1 << 20);
        let before = resident_bytes();
        for i in 0..200 {
            long_prompt("a short prompt");
            if i == 100 {
                huge_step(&mib, &mib, &mib, &mib);
                long_prompt(&"x".repeat(16 << 20));
            }
        }
        let spans = capture.finished_spans();
        let grown = resident_bytes().saturating_sub(before);
        assert_eq!(
            rotel.wait_for_received(202),
            202,
            "{protocol:?}: every span arrived"
        );
        drop(guard);
        let counter = |name, labels: &[(&str, &str)]| capture.counter(name, labels);
        assert_eq!(
            counter(
                "flujo_telemetry_spans_dropped_total",
                &[("reason", "export_failed")]
            ),
            0,
            "{protocol:?}"
        );
        assert_eq!(counter("flujo_telemetry_spans_exported_total", &[]), 202);
        assert_eq!(counter("flujo_telemetry_spans_truncated_total", &[]), 1);
        let capped = spans
            .iter()
            .filter_map(|span| span.attribute("prompt"))
            .map(|prompt| prompt.as_str().map_or(0, str::len))
            .max();
        assert_eq!(
            capped,
            Some(flujo::config::MAX_ATTRIBUTE_VALUE_BYTES),
            "a 16 MiB field keeps its first MAX_ATTRIBUTE_VALUE_BYTES"
        );
        assert!(grown < 64 << 20, "{protocol:?}: grew {} MiB", grown >> 20);
    }
}

#[flujo::track_cost(model = "gpt-4o-mini", input_messages = question, system_instructions = "Be brief.")]
fn captured_call(question: &str) -> Draft {
    Draft {
        text: String::new(),
        usage: flujo::TokenUsage::new(10, 2),
    }
}

/// Content capture on real exported spans: nothing while off; while on, the conventions'
/// JSON with a planted API key redacted, and text cut at `max_content_bytes`.
#[test]
fn content_is_exported_only_when_captured_redacted_and_cut() {
    let question = "use sk-ant-api03-abcdefghijklmnopqrstuvwxyz to answer";
    for (capture, max_bytes) in [(false, 1024), (true, 1024), (true, 8)] {
        let config = TelemetryConfig::builder()
            .capture_message_content(capture)
            .max_content_bytes(max_bytes);
        let spans = exported_spans_of(config, 1, || {
            captured_call(question);
        });
        let span = &spans[0];
        let json = |key| {
            span.attribute(key).map(|value| {
                let text = value
                    .strip_prefix("Str(")
                    .and_then(|v| v.strip_suffix(')'))
                    .unwrap_or_else(|| panic!("{key} is a string: {value}"));
                serde_json::from_str::<serde_json::Value>(text).unwrap()
            })
        };
        let input = json("gen_ai.input.messages");
        let system = json("gen_ai.system_instructions");
        match (capture, max_bytes) {
            (false, _) => assert_eq!((input, system), (None, None), "nothing while off"),
            (true, 1024) => {
                assert_eq!(
                    input.unwrap(),
                    serde_json::json!([{"role": "user", "parts": [{"type": "text",
                        "content": "use [REDACTED] to answer"}]}])
                );
                assert_eq!(
                    system.unwrap(),
                    serde_json::json!([{"type": "text", "content": "Be brief."}])
                );
                assert_eq!(span.attribute("flujo.content.truncated"), None);
            }
            _ => {
                assert_eq!(
                    input.unwrap()[0]["parts"][0]["content"],
                    "use [RED",
                    "the first 8 bytes of the redacted text"
                );
                assert_eq!(
                    span.attribute("flujo.content.truncated"),
                    Some("Bool(true)")
                );
            }
        }
    }
}

#[pipeline_step(kind = "tool", name = "lookup")]
fn lookup_tool(city: &str) -> usize {
    city.len()
}

#[pipeline_step(kind = "agent")]
fn planner_agent(city: &str) -> usize {
    lookup_tool(city)
}

/// Tool and agent steps as a collector receives them: the conventions' span names, kinds and
/// attributes, typed.
#[test]
fn tool_and_agent_spans_arrive_as_the_conventions_name_them() {
    let spans = exported_spans_of(TelemetryConfig::builder(), 2, || {
        planner_agent("Oslo");
    });
    let named = |name: &str| {
        spans
            .iter()
            .find(|span| span.name == name)
            .unwrap_or_else(|| panic!("{name} arrived: {spans:?}"))
    };
    let agent = named("invoke_agent planner_agent");
    let tool = named("execute_tool lookup");
    assert_eq!(tool.parent_id, agent.id);
    for (span, expected) in [
        (
            agent,
            &[
                ("gen_ai.operation.name", "Str(invoke_agent)"),
                ("gen_ai.agent.name", "Str(planner_agent)"),
                ("openinference.span.kind", "Str(AGENT)"),
            ][..],
        ),
        (
            tool,
            &[
                ("gen_ai.operation.name", "Str(execute_tool)"),
                ("gen_ai.tool.name", "Str(lookup)"),
                ("gen_ai.tool.type", "Str(function)"),
                ("openinference.span.kind", "Str(TOOL)"),
                ("tool.name", "Str(lookup)"),
            ][..],
        ),
    ] {
        assert_eq!(span.kind, "SPAN_KIND_INTERNAL", "{}", span.name);
        for (key, value) in expected {
            assert_eq!(span.attribute(key), Some(*value), "{key} on {}", span.name);
        }
    }
}

/// A trace continued from another service keeps its W3C `tracestate` on the spans a collector
/// receives, and their parent is marked remote.
#[test]
fn a_continued_trace_exports_its_tracestate() {
    let remote = flujo::SpanContext::from_traceparent(
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
    )
    .unwrap()
    .with_tracestate("congo=t61rcWkgMzE");
    let spans = exported_spans_of(TelemetryConfig::builder(), 2, || {
        remote.in_scope(|| planner_agent("Rome"));
    });
    assert_eq!(spans.len(), 2);
    for span in &spans {
        assert_eq!(span.trace_state, "congo=t61rcWkgMzE", "{span:?}");
    }
}

/// The guide's "Integration: OpenTelemetry" setup in Rust: the application's tracer provider
/// with a batch span processor in front of `opentelemetry-otlp`, `tracing-opentelemetry`
/// spans for requests, and flujo sharing the provider's processor. At rotel: one trace, the
/// request span the parent of the flujo run, the provider's resource on every span.
#[test]
fn flujo_spans_go_through_the_applications_batch_processor_inside_its_request_span() {
    use opentelemetry::trace::TracerProvider as _;
    use opentelemetry_otlp::{WithExportConfig as _, WithHttpConfig as _};
    use tracing_subscriber::layer::SubscriberExt as _;

    let _turn = TURN.lock().unwrap_or_else(|e| e.into_inner());
    let rotel = Rotel::start();
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_http_client(reqwest::blocking::Client::new())
        .with_endpoint(format!("http://127.0.0.1:{}/v1/traces", rotel.http))
        .build()
        .expect("the application's exporter builds");
    let processor = flujo::export::otel::SharedSpanProcessor::new(
        opentelemetry_sdk::trace::BatchSpanProcessor::builder(exporter).build(),
    );
    let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder()
        .with_resource(
            opentelemetry_sdk::Resource::builder()
                .with_service_name("checkout-api")
                .build(),
        )
        .with_span_processor(processor.clone())
        .build();
    let mut guard = init_telemetry_with(TelemetryConfig::builder()).expect("telemetry starts");
    guard
        .share_otel_processor(&processor)
        .expect("flujo feeds it");
    let subscriber = tracing_subscriber::registry()
        .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("checkout")));
    tracing::subscriber::with_default(subscriber, || {
        let request = tracing::info_span!("POST /answer");
        let _entered = request.enter();
        answer("why?").expect("the run succeeds");
    });
    drop(guard); // flushes flujo's spans into the processor
    provider
        .shutdown()
        .expect("the provider exports and shuts down");
    // The request, the run, its two steps and the draft's model call.
    let output = rotel.wait_for_spans(5);
    let spans = parse_spans(&output);
    assert_eq!(spans.len(), 5, "rotel received:\n{output}");
    let request = spans
        .iter()
        .find(|s| s.name == "POST /answer")
        .expect("the request span");
    let run = spans
        .iter()
        .find(|s| s.name == "answer_question")
        .expect("flujo's root span");
    assert_eq!(
        run.parent_id, request.id,
        "the flujo root is the request's child"
    );
    for span in &spans {
        assert_eq!(
            span.trace_id, request.trace_id,
            "{span:?} in the request's trace"
        );
        assert!(
            span.resource
                .iter()
                .any(|(key, value)| key == "service.name" && value.contains("checkout-api")),
            "{span:?}"
        );
    }
    for step in ["draft", "review"] {
        let span = spans.iter().find(|s| s.name == step).expect(step);
        assert_eq!(span.parent_id, run.id, "{step} under the run");
    }
}

#[flujo::track_cost(model = "gpt-4o-mini")]
fn streamed_draft()
-> impl futures::Stream<Item = Result<flujo::testing::StubChunk, flujo::testing::StubError>> {
    flujo::testing::StubModel::new("gpt-4o-mini")
        .chat_stream("stream me", flujo::testing::StubStreamUsage::LastChunk)
        .expect("the stub answers")
}

#[derive(Debug, thiserror::Error)]
#[error(transparent)]
struct TooSlow(#[from] flujo::StepTimeout);

#[pipeline_step(timeout_ms = 1)]
async fn never_answers() -> Result<(), TooSlow> {
    std::future::pending().await
}

/// A streamed call's and a timed-out step's attributes, with their OTLP types, as a collector
/// receives them.
#[test]
fn streamed_calls_and_timeouts_arrive_with_their_attributes() {
    let spans = exported_spans_of(TelemetryConfig::builder(), 2, || {
        let chunks = futures::executor::block_on_stream(streamed_draft()).count();
        assert!(chunks > 1);
        assert!(futures::executor::block_on(never_answers()).is_err());
    });
    let streamed = spans
        .iter()
        .find(|span| span.name == "chat gpt-4o-mini")
        .expect("the streamed call arrived");
    assert_eq!(
        streamed.attribute("gen_ai.request.stream"),
        Some("Bool(true)")
    );
    let first = streamed
        .attribute("gen_ai.response.time_to_first_chunk")
        .expect("time to first chunk");
    assert!(
        first.starts_with("Double("),
        "a double, in seconds: {first}"
    );
    assert!(
        streamed
            .attribute("flujo.stream.chunks")
            .is_some_and(|v| v.starts_with("Int("))
    );
    assert!(
        streamed
            .attribute("gen_ai.usage.input_tokens")
            .is_some_and(|v| v.starts_with("Int(")),
        "priced from the last chunk: {streamed:?}"
    );
    let timed_out = spans
        .iter()
        .find(|span| span.name == "never_answers")
        .expect("the timed-out step arrived");
    assert_eq!(timed_out.attribute("error.type"), Some("Str(timeout)"));
    assert_eq!(timed_out.status, "STATUS_CODE_ERROR");
}

/// The child of [`an_export_failure_names_the_endpoint_protocol_and_the_mismatch`]: exports
/// over `protocol` to `endpoint` with flujo's own stderr log subscriber, then shuts down.
fn export_to_the_wrong_server(protocol: &str, endpoint: &str) {
    let protocol = match protocol {
        "grpc" => OtlpProtocol::Grpc,
        _ => OtlpProtocol::HttpProtobuf,
    };
    let guard = init_telemetry_with(
        TelemetryConfig::builder()
            .export_otlp(true)
            .otlp_protocol(protocol)
            .otlp_endpoint(endpoint)
            .otlp_timeout(Duration::from_secs(2))
            .shutdown_timeout(Duration::from_secs(3))
            .max_export_batch_size(10),
    )
    .expect("telemetry starts");
    for i in 0..20 {
        draft(&"x".repeat(i % 7));
    }
    drop(guard);
}

/// An export that fails names where it went and over what; when the answer shows the other
/// protocol's server (an OTLP/HTTP port asked over gRPC, a gRPC port asked over HTTP) it says
/// which protocol to set, on any port (not only 4317/4318). Each case runs in a child process,
/// whose stderr has flujo's log lines.
#[test]
fn an_export_failure_names_the_endpoint_protocol_and_the_mismatch() {
    const CHILD: &str = "FLUJO_TEST_WRONG_SERVER_CHILD";
    if let Ok(child) = std::env::var(CHILD) {
        let (protocol, endpoint) = child.split_once(' ').expect("protocol and endpoint");
        return export_to_the_wrong_server(protocol, endpoint);
    }
    let _turn = TURN.lock().unwrap_or_else(|e| e.into_inner());
    let rotel = Rotel::start();
    for (protocol, name, server, other) in [
        ("grpc", "grpc", OtlpProtocol::HttpProtobuf, "http/protobuf"),
        ("http", "http/protobuf", OtlpProtocol::Grpc, "grpc"),
    ] {
        let endpoint = format!("http://127.0.0.1:{}", rotel.port(server));
        let output = std::process::Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "an_export_failure_names_the_endpoint_protocol_and_the_mismatch",
                "--nocapture",
            ])
            .env(CHILD, format!("{protocol} {endpoint}"))
            .env_remove("RUST_LOG")
            .output()
            .expect("the child runs");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(output.status.success(), "{stderr}");
        let failed: Vec<&str> = stderr
            .lines()
            .filter(|line| line.contains("failed; spans are dropped and counted"))
            .collect();
        assert_eq!(failed.len(), 1, "one line per outage:\n{stderr}");
        let line = failed[0];
        assert!(line.contains(&endpoint), "names the endpoint: {line}");
        assert!(
            line.contains(&format!("over {name}")),
            "names the protocol: {line}"
        );
        assert!(
            line.contains(&format!("OTEL_EXPORTER_OTLP_PROTOCOL={other}")),
            "says which protocol the answer shows: {line}"
        );
    }
}
