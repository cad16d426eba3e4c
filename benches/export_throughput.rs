//! End to end: 1,000,000 step spans through flujo's OTLP exporter into a real collector
//! (rotel, on loopback, discarding what it receives), over gRPC and over HTTP/protobuf. Prints
//! the spans a second the collector received, the spans dropped (and why), and the peak RSS.
//! Then the same 1,000,000 spans, with the same attributes, through the peer: the
//! OpenTelemetry SDK's batch span processor (default settings) and `opentelemetry-otlp`.
//!
//! Run (rotel as `scripts/test.sh` installs it):
//! `FLUJO_TEST_ROTEL=$(ls $PWD/.backends/venv/lib/python3*/site-packages/rotel/rotel-agent)
//! cargo bench -p flujo-benches --features otlp --bench export_throughput`.

use std::io::Read;
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use flujo::config::OtlpProtocol;
use flujo::testing::Capture;

#[path = "support/memory.rs"]
mod memory;

const SPANS: u64 = 1_000_000;

#[flujo::pipeline_step(fields(i))]
fn step(i: u64) -> u64 {
    step_work(i)
}

fn step_work(i: u64) -> u64 {
    std::hint::black_box(i).wrapping_mul(31)
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a loopback port")
        .port()
}

struct Rotel {
    child: Child,
    log: PathBuf,
    grpc: u16,
    http: u16,
}

impl Rotel {
    fn start(binary: &str) -> Rotel {
        let (grpc, http) = (free_port(), free_port());
        let log = std::env::temp_dir().join(format!("flujo-bench-rotel-{grpc}.log"));
        let out = std::fs::File::create(&log).expect("a log file");
        let child = Command::new(binary)
            .args(["start", "--exporter", "blackhole", "--disable-batching"])
            .args(["--otlp-grpc-endpoint", &format!("127.0.0.1:{grpc}")])
            .args(["--otlp-http-endpoint", &format!("127.0.0.1:{http}")])
            .args(["--debug-log", "traces", "--debug-log-verbosity", "basic"])
            .env("NO_COLOR", "1")
            .stdout(out.try_clone().expect("a log handle"))
            .stderr(out)
            .stdin(Stdio::null())
            .spawn()
            .expect("rotel starts");
        while [grpc, http]
            .iter()
            .any(|port| TcpStream::connect(("127.0.0.1", *port)).is_err())
        {
            std::thread::sleep(Duration::from_millis(20));
        }
        Rotel {
            child,
            log,
            grpc,
            http,
        }
    }

    /// Spans received so far (rotel logs each request's span count).
    fn received(&self) -> u64 {
        let mut text = String::new();
        if let Ok(mut file) = std::fs::File::open(&self.log) {
            let _ = file.read_to_string(&mut text);
        }
        text.lines()
            .filter(|line| line.contains("Received traces"))
            .filter_map(|line| {
                let count = line.rsplit_once("spans=")?.1;
                let digits: String = count.chars().take_while(char::is_ascii_digit).collect();
                digits.parse::<u64>().ok()
            })
            .sum()
    }
}

impl Drop for Rotel {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.log);
    }
}

/// Resets the peak RSS to the current RSS (Linux: `5` into `clear_refs`), so that each run
/// reports its own peak.
fn reset_peak_rss() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

fn peak_rss_mib() -> u64 {
    memory::status_bytes("VmHWM") >> 20
}

fn run(rotel: &Rotel, protocol: OtlpProtocol) {
    let port = match protocol {
        OtlpProtocol::Grpc => rotel.grpc,
        _ => rotel.http,
    };
    reset_peak_rss();
    let before = rotel.received();
    let capture = Capture::counting();
    let guard = flujo::init_telemetry_with(
        flujo::TelemetryConfig::builder()
            .export_otlp(true)
            .otlp_protocol(protocol)
            .otlp_endpoint(format!("http://127.0.0.1:{port}"))
            .shutdown_timeout(Duration::from_secs(60)),
    )
    .expect("telemetry starts");
    let start = Instant::now();
    for i in 0..SPANS {
        step(i);
    }
    let produced = start.elapsed();
    drop(guard);
    let deadline = Instant::now() + Duration::from_secs(30);
    let exported = capture.counter("flujo_telemetry_spans_exported_total", &[]);
    while rotel.received() - before < exported && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let delivered = start.elapsed();
    let received = rotel.received() - before;
    let dropped =
        |reason| capture.counter("flujo_telemetry_spans_dropped_total", &[("reason", reason)]);
    println!(
        "{protocol:?}: {SPANS} spans produced in {:.2} s; rotel received {received} in {:.2} s \
         = {:.0} spans/s; dropped: ring full {}, export queue full {}, export failed {}; \
         peak RSS {} MiB",
        produced.as_secs_f64(),
        delivered.as_secs_f64(),
        received as f64 / delivered.as_secs_f64(),
        dropped("queue_full"),
        dropped("export_queue_full"),
        dropped("export_failed"),
        peak_rss_mib()
    );
}

/// The SDK's own path: a span per call with the attributes flujo's step span carries, through
/// the batch span processor into `opentelemetry-otlp`.
fn sdk_run(rotel: &Rotel, protocol: OtlpProtocol) {
    use opentelemetry::KeyValue;
    use opentelemetry::trace::{Span as _, Tracer as _, TracerProvider as _};
    use opentelemetry_otlp::{WithExportConfig as _, WithHttpConfig as _};
    // tonic's connection is driven by tasks on a runtime; the SDK's processor thread only
    // hands it requests.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let builder = opentelemetry_otlp::SpanExporter::builder();
    let exporter = match protocol {
        OtlpProtocol::Grpc => {
            let _runtime = runtime.enter();
            builder
                .with_tonic()
                .with_endpoint(format!("http://127.0.0.1:{}", rotel.grpc))
                .build()
        }
        _ => builder
            .with_http()
            .with_http_client(reqwest::blocking::Client::new())
            .with_endpoint(format!("http://127.0.0.1:{}/v1/traces", rotel.http))
            .build(),
    }
    .expect("the SDK's exporter builds");
    let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .build();
    let tracer = provider.tracer("bench");
    reset_peak_rss();
    let before = rotel.received();
    let start = Instant::now();
    for i in 0..SPANS {
        let mut span = tracer.start("step");
        span.set_attributes([
            KeyValue::new("flujo.step.name", "step"),
            KeyValue::new("flujo.step.attempts", 1),
            KeyValue::new("code.function", "step"),
            KeyValue::new("code.namespace", "export_throughput"),
            KeyValue::new("i", i as i64),
        ]);
        std::hint::black_box(step_work(i));
        span.end();
    }
    let produced = start.elapsed();
    let _ = provider.shutdown();
    let delivered = start.elapsed();
    // rotel's log lags its answers: read it once it stops growing.
    let mut received = rotel.received() - before;
    loop {
        std::thread::sleep(Duration::from_millis(300));
        let now = rotel.received() - before;
        if now == received {
            break;
        }
        received = now;
    }
    println!(
        "SDK batch processor, {protocol:?}: {SPANS} spans produced in {:.2} s; rotel received \
         {received} in {:.2} s = {:.0} spans/s; dropped {}; peak RSS {} MiB",
        produced.as_secs_f64(),
        delivered.as_secs_f64(),
        received as f64 / delivered.as_secs_f64(),
        SPANS - received,
        peak_rss_mib()
    );
}

fn main() {
    // `cargo bench` passes `--bench`; a filter or `--list` asks nothing of this harness.
    if std::env::args().any(|arg| arg == "--list") {
        return;
    }
    let Ok(binary) = std::env::var("FLUJO_TEST_ROTEL") else {
        eprintln!("export_throughput skipped: set FLUJO_TEST_ROTEL to rotel's binary");
        return;
    };
    let rotel = Rotel::start(&binary);
    run(&rotel, OtlpProtocol::Grpc);
    run(&rotel, OtlpProtocol::HttpProtobuf);
    sdk_run(&rotel, OtlpProtocol::Grpc);
    sdk_run(&rotel, OtlpProtocol::HttpProtobuf);
}
