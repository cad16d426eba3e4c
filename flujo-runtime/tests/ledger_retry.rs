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

/// Telemetry is process-wide: the tests take turns.
static TURN: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn rows(path: &std::path::Path) -> i64 {
    let connection = rusqlite::Connection::open(path).unwrap();
    connection
        .query_row("SELECT COUNT(*) FROM cost_records", [], |row| row.get(0))
        .unwrap()
}

#[test]
fn a_failed_insert_is_retried_with_backoff_without_waiting_for_the_next_record() {
    let _turn = TURN.lock().unwrap_or_else(|e| e.into_inner());
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

#[test]
fn stored_amounts_that_overflow_a_sum_never_stop_the_ledger_from_opening() {
    let _turn = TURN.lock().unwrap_or_else(|e| e.into_inner());
    let dir = std::env::temp_dir().join(format!("flujo-ledger-huge-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("ledger.sqlite");
    // Create the ledger, then store two records at the largest amount it keeps.
    drop(flujo::init_telemetry_with(TelemetryConfig::builder().cost_ledger(&path)).unwrap());
    let admin = rusqlite::Connection::open(&path).unwrap();
    let today = flujo::cost::utc_today().to_string();
    for _ in 0..2 {
        admin
            .execute(
                "INSERT INTO cost_records (timestamp_ns, day, model, provider, operation, \
                 input_tokens, output_tokens, cache_read_input_tokens, cache_write_input_tokens, \
                 reasoning_output_tokens, cost_nano_usd, price_version) \
                 VALUES (0, ?1, 'm', 'p', 'chat', ?2, 0, 0, 0, 0, ?2, 'v')",
                rusqlite::params![today, i64::MAX],
            )
            .unwrap();
    }
    drop(admin);
    let guard = flujo::init_telemetry_with(
        TelemetryConfig::builder()
            .cost_ledger(&path)
            .daily_cost_limit_usd(flujo::Usd::parse("1").unwrap()),
    );
    assert!(guard.is_ok(), "the ledger opens: {:?}", guard.err());
    // Reports sum what an SQL SUM overflows on, exactly.
    let today = flujo::cost::utc_today();
    let report = flujo::cost::get_cost_report(today, today).expect("the report reads it");
    assert_eq!(report.total_cost.nanos(), 2 * i64::MAX as u64);
    assert_eq!(report.tokens_by_model["m"].input, 2 * i64::MAX as u64);
    // Today's total saturated, so the daily limit refuses (rather than wrapping to a small sum).
    assert!(call(1).is_err());
    drop(guard);
    std::fs::remove_dir_all(&dir).unwrap();
}
