//! Records per second a process writes to its durable cost ledger: PostgreSQL (a throwaway
//! local server, started here like the tests' one: `initdb`, loopback, `fsync=off`) and, for
//! reference in the same binary, SQLite on the local disk. Each iteration is a whole session:
//! `init_telemetry`, `RECORDS` priced model calls (each hands its record to the ledger's
//! writer thread), and the shutdown, which waits until every record is committed; the
//! figure is records over that whole time. A session that dropped a record (the buffer
//! outran) fails the bench rather than report a rate it did not write.
//!
//! Run: `cargo bench -p flujo-benches --features postgres,sqlite --bench ledger_write` (PostgreSQL's binaries
//! from `FLUJO_TEST_POSTGRES_BIN` or `/usr/lib/postgresql/*/bin`).

#[path = "../flujo-runtime/tests/support/postgres_server.rs"]
mod postgres_server;

use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use flujo::testing::Capture;
use flujo::{TelemetryConfig, TokenUsage, UsageLimitExceeded, track_cost};
use postgres_server::Server;

/// Records per session: under the PostgreSQL ledger's default buffer (65,536).
const RECORDS: u64 = 50_000;

#[track_cost(model = "gpt-4o-mini")]
fn call(tokens: u64) -> Result<TokenUsage, UsageLimitExceeded> {
    Ok(TokenUsage::new(tokens, 100))
}

/// One session of `RECORDS` calls on `ledger`, timed from init to the end of the shutdown.
fn session(ledger: &str) -> Duration {
    let capture = Capture::counting();
    let started = Instant::now();
    let guard = flujo::init_telemetry_with(
        TelemetryConfig::builder()
            .cost_ledger(ledger)
            .shutdown_timeout(Duration::from_secs(120)),
    )
    .unwrap();
    for i in 0..RECORDS {
        call(1_000 + i % 17).unwrap();
    }
    drop(guard);
    let took = started.elapsed();
    let dropped = capture.counter(
        "flujo_cost_records_dropped_total",
        &[("reason", "ledger_queue_full")],
    ) + capture.counter(
        "flujo_cost_records_dropped_total",
        &[("reason", "ledger_unreachable")],
    );
    assert_eq!(dropped, 0, "the ledger dropped records: no honest rate");
    took
}

fn ledger_write(c: &mut Criterion) {
    let server = Server::start("bench");
    let url = server.create_database("bench");
    let dir = std::env::temp_dir().join(format!("flujo-bench-ledger-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let sqlite = dir.join("ledger.sqlite");
    let sqlite = sqlite.to_str().unwrap();

    let mut group = c.benchmark_group("ledger_write");
    group.sample_size(10);
    group.throughput(Throughput::Elements(RECORDS));
    group.bench_function("postgres", |b| {
        b.iter_custom(|iterations| (0..iterations).map(|_| session(&url)).sum())
    });
    group.bench_function("sqlite", |b| {
        b.iter_custom(|iterations| (0..iterations).map(|_| session(sqlite)).sum())
    });
    group.finish();
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
}

criterion_group!(benches, ledger_write);
criterion_main!(benches);
