//! Two processes writing costs to one SQLite ledger at once lose no row.
#![cfg(feature = "sqlite")]

use std::path::PathBuf;
use std::process::Command;

use flujo::{TelemetryConfig, TokenUsage, UsageLimitExceeded, track_cost};

const WRITER: &str = "FLUJO_TEST_LEDGER_WRITER";
const CALLS: u64 = 5_000;

#[track_cost(model = "gpt-4o-mini")]
fn call(tokens: u64) -> Result<TokenUsage, UsageLimitExceeded> {
    Ok(TokenUsage::new(tokens, 1))
}

/// In a child process (started by the test below, with the ledger path in `WRITER`): write
/// `CALLS` cost records, then shut down (which commits them).
#[test]
fn writer() {
    let Some(path) = std::env::var_os(WRITER) else {
        return; // Not a child: the test below drives this.
    };
    let guard =
        flujo::init_telemetry_with(TelemetryConfig::builder().cost_ledger(PathBuf::from(path)))
            .unwrap();
    for i in 0..CALLS {
        call(1 + i % 3).unwrap();
    }
    drop(guard);
}

#[test]
fn two_processes_on_one_ledger_lose_no_row() {
    let dir = std::env::temp_dir().join(format!("flujo-two-writers-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("ledger.sqlite");
    let children: Vec<_> = (0..2)
        .map(|_| {
            Command::new(std::env::current_exe().unwrap())
                .args(["--exact", "writer", "--test-threads", "1"])
                .env(WRITER, &path)
                .spawn()
                .unwrap()
        })
        .collect();
    for mut child in children {
        assert!(child.wait().unwrap().success());
    }
    let ledger = flujo::cost::CostLedger::open(&path).unwrap();
    let report = ledger
        .report(flujo::cost::utc_today(), flujo::cost::utc_today())
        .unwrap();
    assert_eq!(
        report.requests,
        2 * CALLS,
        "every row of both writers is there"
    );
    // 1, 2 or 3 input tokens a call, in a repeating pattern, in each writer.
    let per_writer: u64 = (0..CALLS).map(|i| 1 + i % 3).sum();
    assert_eq!(report.totals().tokens.input, 2 * per_writer);
    std::fs::remove_dir_all(&dir).unwrap();
}
