//! End to end: 1,000,000 step spans through flujo's OTLP exporter into a real collector
//! (rotel, on loopback, discarding what it receives), over gRPC and over HTTP/protobuf, offered
//! at a paced 500,000 spans a second and then back to back. Prints the spans a second the
//! collector received, the spans dropped (and why), the peak RSS, and the CPU time of each of
//! flujo's threads per span (the producer's record, the export worker's drain and encoding,
//! the sender's requests): spans a second one core of each could take. Then the same spans,
//! with the same attributes, through the peer: the OpenTelemetry SDK's batch span processor
//! (default settings) and `opentelemetry-otlp`.
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
/// The paced runs' offered loads: the export target of `benches/README.md`, and twice it.
const PACED_RATES: [u64; 2] = [500_000, 1_000_000];

/// How fast the producer records: paced at a rate, or back to back.
#[derive(Clone, Copy, Debug)]
enum Offered {
    Paced(u64),
    BackToBack,
}

/// Produces `SPANS` spans with `record`, paced as `offered` says (a tick a millisecond: the
/// tick's share, then a sleep until the next).
fn produce(offered: Offered, mut record: impl FnMut(u64)) {
    let Offered::Paced(rate) = offered else {
        (0..SPANS).for_each(record);
        return;
    };
    let per_tick = rate / 1000;
    let start = Instant::now();
    let mut i = 0;
    for tick in 1.. {
        for _ in 0..per_tick.min(SPANS - i) {
            record(i);
            i += 1;
        }
        if i == SPANS {
            return;
        }
        let next = start + Duration::from_millis(tick);
        if let Some(wait) = next.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
    }
}

/// The CPU time (user and system) a thread's `stat` file says it took.
fn stat_cpu(stat: &std::path::Path) -> Duration {
    const TICKS_PER_SECOND: u64 = 100; // USER_HZ, 100 on every Linux this runs on.
    let stat = std::fs::read_to_string(stat).unwrap_or_default();
    // After the command's closing parenthesis: state is field 3; utime, stime 14 and 15.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map_or(vec![], |(_, rest)| rest.split_whitespace().collect());
    let field = |n: usize| {
        fields
            .get(n - 3)
            .and_then(|f| f.parse::<u64>().ok())
            .unwrap_or(0)
    };
    Duration::from_millis((field(14) + field(15)) * 1000 / TICKS_PER_SECOND)
}

/// CPU time of this process's threads named `name` (Linux; zero elsewhere).
fn thread_cpu(name: &str) -> Duration {
    std::fs::read_dir("/proc/self/task")
        .into_iter()
        .flatten()
        .flatten()
        .map(|task| task.path())
        .filter(|path| {
            std::fs::read_to_string(path.join("comm")).is_ok_and(|comm| comm.trim() == name)
        })
        .map(|path| stat_cpu(&path.join("stat")))
        .sum()
}

/// The calling thread's CPU time.
fn own_cpu() -> Duration {
    stat_cpu(std::path::Path::new("/proc/thread-self/stat"))
}

/// Spans a second one core takes at `cpu` for `spans`.
fn per_core(spans: u64, cpu: Duration) -> String {
    if cpu.is_zero() {
        return "-".to_owned();
    }
    format!("{:.0}k", spans as f64 / cpu.as_secs_f64() / 1000.0)
}

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

fn run(rotel: &Rotel, protocol: OtlpProtocol, offered: Offered) {
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
    let (producer, worker, sender) = (
        own_cpu(),
        thread_cpu("flujo-export"),
        thread_cpu("flujo-otlp"),
    );
    let start = Instant::now();
    produce(offered, |i| {
        step(i);
    });
    let produced = start.elapsed();
    let producer = own_cpu() - producer;
    let dropped =
        |reason| capture.counter("flujo_telemetry_spans_dropped_total", &[("reason", reason)]);
    // Every span settled (in rotel, or counted as dropped) before the threads' CPU is read:
    // they end with the guard.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let exported = capture.counter("flujo_telemetry_spans_exported_total", &[]);
        let settled = rotel.received() - before
            + dropped("queue_full")
            + dropped("export_queue_full")
            + dropped("export_failed");
        if (settled >= SPANS && rotel.received() - before >= exported) || Instant::now() > deadline
        {
            break;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let delivered = start.elapsed();
    let (worker, sender) = (
        thread_cpu("flujo-export") - worker,
        thread_cpu("flujo-otlp") - sender,
    );
    drop(guard);
    let received = rotel.received() - before;
    let drained = SPANS - dropped("queue_full");
    println!(
        "flujo, {protocol:?}, {offered:?}: {SPANS} spans produced in {:.2} s; rotel received \
         {received} in {:.2} s = {:.0} spans/s; dropped: ring full {}, export queue full {}, \
         export failed {}; peak RSS {} MiB; a core's spans/s: producer {}, worker {}, sender {}",
        produced.as_secs_f64(),
        delivered.as_secs_f64(),
        received as f64 / delivered.as_secs_f64(),
        dropped("queue_full"),
        dropped("export_queue_full"),
        dropped("export_failed"),
        peak_rss_mib(),
        per_core(SPANS, producer),
        per_core(drained, worker),
        per_core(received, sender),
    );
}

/// The SDK's own path: a span per call with the attributes flujo's step span carries, through
/// the batch span processor into `opentelemetry-otlp`.
fn sdk_run(rotel: &Rotel, protocol: OtlpProtocol, offered: Offered) {
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
    produce(offered, |i| {
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
    });
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
        "SDK batch processor, {protocol:?}, {offered:?}: {SPANS} spans produced in {:.2} s; \
         rotel received {received} in {:.2} s = {:.0} spans/s; dropped {}; peak RSS {} MiB",
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
    let paced = PACED_RATES.map(Offered::Paced);
    for offered in paced.into_iter().chain([Offered::BackToBack]) {
        for protocol in [OtlpProtocol::Grpc, OtlpProtocol::HttpProtobuf] {
            run(&rotel, protocol, offered);
            sdk_run(&rotel, protocol, offered);
        }
    }
}
