//! A SQLite ledger written before one-hour cache writes were recorded still reads, and gains
//! their column when an application opens it for writing; one-hour writes are stored and
//! priced at their own price.
#![cfg(feature = "sqlite")]

use flujo::cost::CostLedger;
use flujo::{TelemetryConfig, TokenUsage, UsageLimitExceeded, track_cost};

/// The table as flujo created it before `cache_write_1h_input_tokens`.
const FIRST_SCHEMA: &str = "
CREATE TABLE cost_records (
    id INTEGER PRIMARY KEY, timestamp_ns INTEGER NOT NULL, day TEXT NOT NULL, request_id TEXT,
    trace_id TEXT, pipeline TEXT, step TEXT, model TEXT NOT NULL, provider TEXT NOT NULL,
    operation TEXT NOT NULL, input_tokens INTEGER NOT NULL, output_tokens INTEGER NOT NULL,
    cache_read_input_tokens INTEGER NOT NULL, cache_write_input_tokens INTEGER NOT NULL,
    reasoning_output_tokens INTEGER NOT NULL, cost_nano_usd INTEGER, price_version TEXT NOT NULL
);
CREATE INDEX cost_records_day ON cost_records(day);
INSERT INTO cost_records (timestamp_ns, day, model, provider, operation, input_tokens,
    output_tokens, cache_read_input_tokens, cache_write_input_tokens, reasoning_output_tokens,
    cost_nano_usd, price_version)
VALUES (1764590400000000000, '2025-12-01', 'gpt-4o-mini', 'openai', 'chat', 1000, 100, 0, 0, 0,
    210000, 'builtin-2025-11-24');
";

#[track_cost(model = "claude-sonnet-4-5")]
fn long_lived_cache(usage: TokenUsage) -> Result<TokenUsage, UsageLimitExceeded> {
    Ok(usage)
}

#[test]
fn an_older_ledger_reads_migrates_and_stores_one_hour_writes() {
    let dir = std::env::temp_dir().join(format!("flujo-ledger-schema-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("old.sqlite");
    rusqlite::Connection::open(&path)
        .unwrap()
        .execute_batch(FIRST_SCHEMA)
        .unwrap();

    let old = CostLedger::open(&path).unwrap();
    let records = old.records("2025-12-01", "2025-12-01").unwrap();
    assert_eq!(records.len(), 1, "the older ledger reads as it is");
    assert_eq!(records[0].usage.cache_write_1h_input, 0);
    let report = old.report("2025-12-01", "2025-12-01").unwrap();
    assert_eq!(report.total_cost, flujo::Usd::from_nanos(210_000));

    // Of 2,000 tokens written to the cache, 1,500 are kept for an hour.
    let usage = TokenUsage::anthropic(100, 0, 2_000, 50).with_cache_write_1h(1_500);
    let guard = flujo::init_telemetry_with(TelemetryConfig::builder().cost_ledger(&path)).unwrap();
    long_lived_cache(usage).unwrap();
    drop(guard);

    let ledger = CostLedger::open(&path).unwrap();
    let records = ledger.records("2000-01-01", "2100-12-31").unwrap();
    assert_eq!(records.len(), 2, "the old record is kept");
    let new = records
        .iter()
        .find(|r| r.model == "claude-sonnet-4-5")
        .unwrap();
    assert_eq!(new.usage, usage);
    // claude-sonnet-4-5: 100 * $3/M + 500 * $3.75/M (five-minute writes) + 1,500 * $6/M
    // (one hour) + 50 * $15/M = $0.0003 + $0.001875 + $0.009 + $0.00075.
    assert_eq!(new.cost, Some(flujo::Usd::parse("0.011925").unwrap()));
    let catalog = flujo_pricing::genai::Catalog::shipped().unwrap();
    let (_, model) = catalog
        .find("claude-sonnet-4-5", Some("anthropic"))
        .unwrap();
    let expected = model.prices_at(new.timestamp).cost(&usage);
    assert_eq!(new.cost, Some(expected));
    assert!(
        expected
            > model
                .prices_at(new.timestamp)
                .cost(&usage.with_cache_write_1h(0)),
        "one-hour writes cost more than five-minute ones"
    );
    let report = ledger.report("2000-01-01", "2100-12-31").unwrap();
    assert_eq!(
        report.tokens_by_model["claude-sonnet-4-5"].cache_write_1h_input,
        1_500
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
