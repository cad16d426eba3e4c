//! A cost record whose SQLite insert fails is retried with backoff by the ledger's writer on
//! its own, not only when another record arrives; failures are counted.
#![cfg(feature = "sqlite")]

use std::time::{Duration, Instant};

use flujo::testing::Capture;
use flujo::{TelemetryConfig, TokenUsage, UsageLimitExceeded, track_cost};

#[track_cost(model = "gpt-4o-mini")]
fn call(tokens: u64) -> Result<TokenUsage, UsageLimitExceeded> {
    Ok(TokenUsage::new(tokens, 1))
}

fn rows(path: &std::path::Path) -> i64 {
    let connection = rusqlite::Connection::open(path).unwrap();
    connection
        .query_row("SELECT COUNT(*) FROM cost_records", [], |row| row.get(0))
        .unwrap()
}

#[test]
fn a_failed_insert_is_retried_with_backoff_without_waiting_for_the_next_record() {
    let dir = std::env::temp_dir().join(format!("flujo-ledger-retry-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("ledger.sqlite");
    let guard = flujo::init_telemetry_with(TelemetryConfig::builder().cost_ledger(&path)).unwrap();
    let capture = Capture::start();
    call(1).unwrap();
    flujo::cost::get_cost_report(flujo::cost::utc_today(), flujo::cost::utc_today()).unwrap();
    assert_eq!(rows(&path), 1);

    // Every insert fails until the trigger is dropped.
    let admin = rusqlite::Connection::open(&path).unwrap();
    admin
        .execute_batch(
            "CREATE TRIGGER refuse BEFORE INSERT ON cost_records \
             BEGIN SELECT RAISE(ABORT, 'injected failure'); END;",
        )
        .unwrap();
    call(2).unwrap();
    std::thread::sleep(Duration::from_millis(400));
    assert_eq!(
        rows(&path),
        1,
        "the insert fails while the trigger is there"
    );
    admin.execute_batch("DROP TRIGGER refuse;").unwrap();

    // No other record arrives: the writer retries on its own.
    let deadline = Instant::now() + Duration::from_secs(10);
    while rows(&path) < 2 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(
        rows(&path),
        2,
        "the failed record was written by the writer's retry"
    );
    assert!(capture.counter("flujo_cost_ledger_write_errors_total", &[]) >= 1);
    drop(capture);
    drop(guard);
    std::fs::remove_dir_all(&dir).unwrap();
}
