//! What a fault at the collector costs a call: one step with OTLP export to a healthy
//! collector (rotel, when `FLUJO_TEST_ROTEL` names its binary, as `scripts/test.sh` installs it),
//! one that is absent (nothing listens) and one that is stalled (accepts, never answers);
//! and, for reference, an exporter that discards. The OTLP exporter sends from its own
//! thread: a fault shows in the drop counters, not in the calls.
//!
//! Run: `FLUJO_TEST_ROTEL=$(ls $PWD/.backends/venv/lib/python3*/site-packages/rotel/rotel-agent)
//! cargo bench -p flujo-benches --features otlp --bench export_faults`.

use std::hint::black_box;
use std::net::TcpListener;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};

#[path = "support/discard.rs"]
#[allow(dead_code)] // the peer's parts are for the other benches
mod discard;
use discard::DiscardSpans;

#[flujo::pipeline_step]
#[inline(never)]
fn flujo_step(x: u64) -> u64 {
    black_box(x)
        .wrapping_mul(0x9E37_79B9_7F4A_7C15)
        .rotate_left(17)
}

/// A collector that accepts connections and never reads: what a SIGSTOPped one looks like.
fn stalled_collector() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("a loopback port");
    let port = listener.local_addr().expect("its address").port();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming().flatten() {
            held.push(stream);
        }
    });
    port
}

fn absent_collector() -> u16 {
    // Bound and released at once: nothing listens there.
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a loopback port")
        .port()
}

/// rotel on a free port, discarding what it receives, when `FLUJO_TEST_ROTEL` names it.
fn healthy_collector() -> Option<(u16, std::process::Child)> {
    let binary = std::env::var_os("FLUJO_TEST_ROTEL")?;
    let (grpc, http) = (absent_collector(), absent_collector());
    let child = std::process::Command::new(binary)
        .args(["start", "--exporter", "blackhole"])
        .args(["--otlp-grpc-endpoint", &format!("127.0.0.1:{grpc}")])
        .args(["--otlp-http-endpoint", &format!("127.0.0.1:{http}")])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("rotel starts");
    while std::net::TcpStream::connect(("127.0.0.1", grpc)).is_err() {
        std::thread::sleep(Duration::from_millis(20));
    }
    Some((grpc, child))
}

fn otlp_to(port: u16) -> flujo::TelemetryGuard {
    flujo::init_telemetry_with(
        flujo::TelemetryConfig::builder()
            .export_otlp(true)
            .otlp_endpoint(format!("http://127.0.0.1:{port}"))
            .otlp_timeout(Duration::from_millis(500))
            .shutdown_timeout(Duration::from_millis(100))
            .flush_interval(Duration::from_millis(10)),
    )
    .expect("telemetry starts")
}

fn collector_faults(c: &mut Criterion) {
    let mut group = c.benchmark_group("collector_fault");
    let mut x = 0u64;
    {
        let mut telemetry = flujo::init_telemetry_with(
            flujo::TelemetryConfig::builder().flush_interval(Duration::from_millis(10)),
        )
        .expect("telemetry starts");
        telemetry.add_span_exporter(DiscardSpans);
        group.bench_function("discarding_exporter", |b| {
            b.iter(|| {
                x += 1;
                flujo_step(x)
            })
        });
    }
    let healthy = healthy_collector();
    if healthy.is_none() {
        eprintln!(
            "collector_healthy skipped: set FLUJO_TEST_ROTEL to rotel's binary to measure it"
        );
    }
    let cases = [
        ("collector_healthy", healthy.as_ref().map(|(port, _)| *port)),
        ("collector_absent", Some(absent_collector())),
        ("collector_stalled", Some(stalled_collector())),
    ];
    for (name, port) in cases {
        let Some(port) = port else { continue };
        let _telemetry = otlp_to(port);
        group.bench_function(name, |b| {
            b.iter(|| {
                x += 1;
                flujo_step(x)
            })
        });
    }
    group.finish();
    if let Some((_, mut rotel)) = healthy {
        let _ = rotel.kill();
        let _ = rotel.wait();
    }
}

criterion_group!(benches, collector_faults);
criterion_main!(benches);
