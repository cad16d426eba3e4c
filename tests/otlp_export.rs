//! OTLP export to a real collector (rotel), over gRPC and HTTP/protobuf, and with no
//! collector at all. Needs the `otlp` feature and rotel, which `scripts/test.sh` installs;
//! a missing rotel is a failure, never a skip.
#![cfg(feature = "otlp")]

use std::fmt;
use std::io::Read;
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use flujo::testing::Capture;
use flujo::{OtlpProtocol, TelemetryConfig, init_telemetry_with, pipeline_step};

/// Telemetry is process-wide: the scenarios take turns.
static TURN: Mutex<()> = Mutex::new(());

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .expect("a free loopback port")
}

/// A rotel collector on free loopback ports, logging every span it receives to a file.
struct Rotel {
    child: Child,
    grpc: u16,
    http: u16,
    log: PathBuf,
}

impl Rotel {
    fn start() -> Rotel {
        let binary = std::env::var_os("FLUJO_ROTEL")
            .map(PathBuf::from)
            .unwrap_or_else(|| {
                PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                    .join(".backends/venv/lib/python3.11/site-packages/rotel/rotel-agent")
            });
        assert!(
            binary.exists(),
            "rotel is not installed at {}: run `bash scripts/test.sh`, which installs it",
            binary.display()
        );
        let (grpc, http) = (free_port(), free_port());
        let log =
            std::env::temp_dir().join(format!("flujo-rotel-{}-{grpc}.log", std::process::id()));
        let out = std::fs::File::create(&log).expect("rotel log file");
        let child = Command::new(&binary)
            .args([
                "start",
                "--otlp-grpc-endpoint",
                &format!("127.0.0.1:{grpc}"),
            ])
            .args(["--otlp-http-endpoint", &format!("127.0.0.1:{http}")])
            .args(["--exporter", "blackhole", "--debug-log", "traces"])
            .args(["--debug-log-verbosity", "detailed", "--disable-batching"])
            .stdout(out.try_clone().expect("log handle"))
            .stderr(out)
            .stdin(Stdio::null())
            .spawn()
            .expect("rotel starts");
        let rotel = Rotel {
            child,
            grpc,
            http,
            log,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while [grpc, http]
            .iter()
            .any(|port| TcpStream::connect(("127.0.0.1", *port)).is_err())
        {
            assert!(
                Instant::now() < deadline,
                "rotel did not listen: {}",
                rotel.output()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        rotel
    }

    fn output(&self) -> String {
        let mut text = String::new();
        if let Ok(mut file) = std::fs::File::open(&self.log) {
            let _ = file.read_to_string(&mut text);
        }
        text
    }

    /// Waits until rotel has logged `spans` spans, returning its output.
    fn wait_for_spans(&self, spans: usize) -> String {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let output = self.output();
            if output.matches("Span #").count() >= spans || Instant::now() > deadline {
                return output;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Rotel {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.log);
    }
}

#[derive(Debug)]
struct ReviewError;

impl fmt::Display for ReviewError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("review rejected the draft")
    }
}

#[pipeline_step(fields(question_len = question.len(), "gen_ai.request.model" = "stub-1"))]
fn draft(question: &str) -> String {
    format!("draft for {question}")
}

#[pipeline_step]
fn review(draft: &str) -> Result<String, ReviewError> {
    if draft.contains("reject") {
        return Err(ReviewError);
    }
    Ok(draft.to_uppercase())
}

#[pipeline_step(name = "answer_question")]
fn answer(question: &str) -> Result<String, ReviewError> {
    review(&draft(question))
}

/// One span as rotel printed it.
#[derive(Debug, Default)]
struct ReceivedSpan {
    trace_id: String,
    parent_id: String,
    id: String,
    name: String,
    status: String,
    status_message: String,
    attributes: Vec<(String, String)>,
    /// Resource attributes of the batch the span came in.
    resource: Vec<(String, String)>,
}

impl ReceivedSpan {
    fn attribute(&self, key: &str) -> Option<&str> {
        self.attributes
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// Parses rotel's `--debug-log-verbosity detailed` dump.
fn parse_spans(output: &str) -> Vec<ReceivedSpan> {
    let mut spans: Vec<ReceivedSpan> = Vec::new();
    let mut resource: Vec<(String, String)> = Vec::new();
    let mut in_resource = false;
    for line in output.lines() {
        let line = line.trim();
        if line.starts_with("ResourceSpans #") {
            resource.clear();
        } else if line == "Resource attributes:" {
            in_resource = true;
        } else if line.starts_with("Span #") {
            in_resource = false;
            spans.push(ReceivedSpan {
                resource: resource.clone(),
                ..ReceivedSpan::default()
            });
        } else if let Some(attribute) = line.strip_prefix("-> ") {
            let (key, value) = attribute.split_once(": ").unwrap_or((attribute, ""));
            let pair = (key.to_owned(), value.to_owned());
            match (in_resource, spans.last_mut()) {
                (true, _) => resource.push(pair),
                (false, Some(span)) => span.attributes.push(pair),
                (false, None) => {}
            }
        } else if let (Some((key, value)), Some(span)) = (line.split_once(" : "), spans.last_mut())
        {
            let value = value.trim().to_owned();
            match key.trim() {
                "Trace ID" => span.trace_id = value,
                "Parent ID" => span.parent_id = value,
                "ID" => span.id = value,
                "Name" => span.name = value,
                "Status code" => span.status = value,
                "Status message" => span.status_message = value,
                _ => {}
            }
        }
    }
    spans
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
    let output = rotel.wait_for_spans(6);
    let spans = parse_spans(&output);
    assert_eq!(spans.len(), 6, "rotel received:\n{output}");

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
        assert_eq!(root.attribute("code.function"), Some("Str(answer)"));
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
    assert_eq!(draft.attribute("gen_ai.request.model"), Some("Str(stub-1)"));

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

/// socat terminating TLS in front of a rotel port, with a certificate signed by a throwaway
/// CA made with the openssl command-line tool.
struct TlsFront {
    child: Child,
    port: u16,
    dir: PathBuf,
}

impl TlsFront {
    fn start(target: u16) -> TlsFront {
        let port = free_port();
        let dir = std::env::temp_dir().join(format!("flujo-tls-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let openssl = |args: &[&str]| {
            let out = Command::new("openssl")
                .args(args)
                .current_dir(&dir)
                .output()
                .expect("openssl runs");
            assert!(
                out.status.success(),
                "openssl {args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        };
        openssl(&[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
            "-days",
            "1",
            "-subj",
            "/CN=flujo test CA",
        ]);
        openssl(&[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
            "-subj",
            "/CN=localhost",
        ]);
        std::fs::write(
            dir.join("server.ext"),
            "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
        )
        .unwrap();
        openssl(&[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "server.pem",
            "-days",
            "1",
            "-extfile",
            "server.ext",
        ]);

        let backends = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".backends/socat");
        let socat = std::env::var_os("FLUJO_SOCAT")
            .map(PathBuf::from)
            .unwrap_or_else(|| backends.join("usr/bin/socat"));
        assert!(
            socat.exists(),
            "socat is not installed at {}: run `bash scripts/test.sh`",
            socat.display()
        );
        let child = Command::new(&socat)
            .env("LD_LIBRARY_PATH", backends.join("usr/lib/x86_64-linux-gnu"))
            .arg(format!(
                "OPENSSL-LISTEN:{port},bind=127.0.0.1,reuseaddr,fork,cert={},key={},verify=0",
                dir.join("server.pem").display(),
                dir.join("server.key").display()
            ))
            .arg(format!("TCP:127.0.0.1:{target}"))
            .stdin(Stdio::null())
            .spawn()
            .expect("socat starts");
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "socat did not listen");
            std::thread::sleep(Duration::from_millis(20));
        }
        TlsFront { child, port, dir }
    }

    fn ca(&self) -> PathBuf {
        self.dir.join("ca.pem")
    }
}

impl Drop for TlsFront {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
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
            draft(&"x".repeat(i % 7)).len(),
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
