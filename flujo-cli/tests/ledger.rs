//! The durable cost ledger across restarts, its daily limit, and the `flujo cost` CLI on it.

use std::path::Path;

use flujo::cost::Limit;
use flujo::{TelemetryConfig, TokenUsage, UsageLimitExceeded, Usd, pipeline_step, track_cost};

#[track_cost(model = "gpt-4o-mini")]
fn mini(tokens: u64) -> Result<TokenUsage, UsageLimitExceeded> {
    Ok(TokenUsage::new(tokens, tokens / 2).with_cache_read(tokens / 4))
}

#[pipeline_step(name = "summarise")]
#[track_cost(model = "claude-haiku-4-5")]
fn haiku(tokens: u64) -> Result<TokenUsage, UsageLimitExceeded> {
    Ok(TokenUsage::anthropic(tokens, 0, 0, 100))
}

/// One telemetry session at a time: the tests of this binary run on parallel threads.
static ONE_SESSION: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn run_process(ledger: &Path, daily_limit: Option<Usd>, work: impl FnOnce()) {
    let _one = ONE_SESSION.lock().unwrap_or_else(|e| e.into_inner());
    let mut config = TelemetryConfig::builder().cost_ledger(ledger);
    if let Some(limit) = daily_limit {
        config = config.daily_cost_limit_usd(limit);
    }
    let guard = flujo::init_telemetry_with(config).expect("telemetry starts");
    work();
    // Dropping the guard commits every record and closes the file.
    drop(guard);
}

mod support;

/// A folder of this test process with no ledger in it yet, and the ledger's path there.
fn fresh_ledger(name: &str) -> (std::path::PathBuf, std::path::PathBuf) {
    let dir = std::env::temp_dir().join(format!("flujo-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let ledger = dir.join("costs.sqlite");
    let _ = std::fs::remove_file(&ledger);
    (dir, ledger)
}

/// `flujo cost` over every call of the ledger at `path`, with `extra` arguments.
fn all_time(path: &str, extra: &[&str]) -> (bool, String, String) {
    let mut args = vec![
        "--ledger",
        path,
        "--from",
        "2000-01-01",
        "--to",
        "2100-12-31",
    ];
    args.extend_from_slice(extra);
    flujo_cost(&args)
}

fn flujo_cost(args: &[&str]) -> (bool, String, String) {
    support::flujo(&[&["cost"], args].concat())
}

#[test]
fn the_ledger_survives_restarts_and_the_cli_reports_it() {
    let (dir, ledger) = fresh_ledger("ledger");

    run_process(&ledger, None, || {
        for _ in 0..100 {
            mini(1_000).unwrap();
        }
    });
    run_process(&ledger, None, || {
        for _ in 0..10 {
            haiku(50_000).unwrap();
        }
        let report = flujo::cost::get_cost_report("2000-01-01", "2100-12-31").unwrap();
        assert_eq!(report.requests, 110, "the report reads the durable ledger");
    });

    // mini: 100 * (750 * 0.15 + 250 * 0.075 + 500 * 0.6) µ$ = 100 * 431.25 µ$ = $0.043125
    // haiku: 10 * (50_000 * 1 + 100 * 5) µ$ = $0.505
    let opened = flujo::cost::CostLedger::open(&ledger).unwrap();
    let report = opened.report("2000-01-01", "2100-12-31").unwrap();
    assert_eq!(
        report.cost_by_model["gpt-4o-mini"],
        Usd::parse("0.043125").unwrap()
    );
    assert_eq!(
        report.cost_by_model["claude-haiku-4-5"],
        Usd::parse("0.505").unwrap()
    );
    assert_eq!(report.total_cost, Usd::parse("0.548125").unwrap());
    assert_eq!(
        report.cost_by_step["summarise"],
        Usd::parse("0.505").unwrap()
    );
    assert_eq!(
        report.cost_by_step["(none)"],
        Usd::parse("0.043125").unwrap()
    );
    let records = opened.records("2000-01-01", "2100-12-31").unwrap();
    assert_eq!(records.len(), 110);
    assert_eq!(
        records.iter().filter_map(|r| r.cost).sum::<Usd>(),
        report.total_cost
    );
    assert!(
        records
            .iter()
            .all(|r| r.price_version == flujo::prices_version())
    );
    let today = report.by_day.keys().next().copied().unwrap();
    assert_eq!(report.by_month.len(), 1);

    // A third start with a daily limit below today's spending refuses at once: the limit
    // counts what earlier processes spent today.
    run_process(&ledger, Some(Usd::parse("0.5").unwrap()), || {
        match mini(10) {
            Err(UsageLimitExceeded {
                limit: Limit::DailyCost { spent, .. },
            }) => assert_eq!(spent, Usd::parse("0.548125").unwrap()),
            other => panic!("expected the daily limit, got {other:?}"),
        }
    });

    let path = ledger.to_str().unwrap();
    let all_time = |extra: &[&str]| all_time(path, extra);
    let (ok, table, stderr) = all_time(&[]);
    assert!(ok, "{stderr}");
    let lines: Vec<&str> = table.lines().collect();
    assert!(
        lines[0].starts_with("model") && lines[0].contains("cost"),
        "{table}"
    );
    assert!(
        lines[1].starts_with("claude-haiku-4-5") && lines[1].ends_with("$0.51"),
        "{table}"
    );
    assert!(
        lines[2].starts_with("gpt-4o-mini")
            && lines[2].contains(" 100 ")
            && lines[2].ends_with("$0.04"),
        "{table}"
    );
    assert!(
        lines[3].starts_with("total") && lines[3].ends_with("$0.55"),
        "{table}"
    );
    // More decimals on request: the exact $0.043125 of the mini calls.
    let (ok, precise, stderr) = all_time(&["--precision", "6"]);
    assert!(ok, "{stderr}");
    assert!(
        precise.lines().nth(2).unwrap().ends_with("$0.043125"),
        "{precise}"
    );
    let (ok, _, stderr) = all_time(&["--precision", "12"]);
    assert!(!ok && stderr.contains("--precision"), "{stderr}");

    let (ok, csv, _) = all_time(&["--group-by", "step", "--format", "csv"]);
    assert!(ok);
    assert_eq!(
        csv.lines().collect::<Vec<_>>(),
        [
            "step,requests,unpriced_requests,input_tokens,cache_read_input_tokens,cache_write_input_tokens,output_tokens,reasoning_output_tokens,cost_usd",
            "(none),100,0,100000,25000,0,50000,0,0.043125000",
            "summarise,10,0,500000,0,0,1000,0,0.505000000",
        ]
    );

    let (ok, json, _) = flujo_cost(&[
        "--ledger",
        path,
        "--from",
        &today.to_string(),
        "--to",
        &today.to_string(),
        "--group-by",
        "day",
        "--format",
        "json",
    ]);
    assert!(ok);
    let json: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(json["total_cost_nano_usd"], 548_125_000);
    assert_eq!(json["groups"][0]["day"], today.to_string());
    assert_eq!(json["groups"][0]["requests"], 110);

    for (ledger, from, group_by, expected) in [
        (
            path,
            "2024-13-01",
            "model",
            "invalid --from \"2024-13-01\": expected a date as YYYY-MM-DD",
        ),
        (
            "/nonexistent/costs.sqlite",
            "2024-01-01",
            "model",
            "cost ledger /nonexistent/costs.sqlite",
        ),
        (
            path,
            "2024-01-01",
            "colour",
            "possible values: model, step, pipeline, day, month",
        ),
    ] {
        let (ok, _, stderr) = flujo_cost(&[
            "--ledger",
            ledger,
            "--from",
            from,
            "--to",
            "2024-12-31",
            "--group-by",
            group_by,
        ]);
        assert!(!ok, "{ledger} {from} {group_by} should fail");
        assert!(stderr.contains(expected), "{stderr}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[track_cost(model = "acme-in-house", unpriced)]
fn in_house(tokens: u64) -> Result<TokenUsage, UsageLimitExceeded> {
    Ok(TokenUsage::new(tokens, 10))
}

/// A model without a price is unknown in every format, never `$0.00` or 0.
#[test]
fn unpriced_calls_are_unknown_in_every_format_never_zero() {
    let (dir, ledger) = fresh_ledger("unpriced");
    run_process(&ledger, None, || {
        mini(1_000).unwrap();
        in_house(500).unwrap();
    });
    let path = ledger.to_str().unwrap();
    let cost = |format: &str| {
        let (ok, out, stderr) = all_time(path, &["--format", format]);
        assert!(ok, "{stderr}");
        out
    };
    // mini(1_000): 750 * 0.15 + 250 * 0.075 + 500 * 0.6 µ$ = $0.00043125.
    let table = cost("table");
    let row = |name: &str| {
        table
            .lines()
            .find(|line| line.starts_with(name))
            .unwrap_or_else(|| panic!("no {name} row: {table}"))
            .to_owned()
    };
    assert!(
        row("acme-in-house").trim_end().ends_with("unknown"),
        "{table}"
    );
    assert!(
        row("total")
            .trim_end()
            .ends_with("$0.00043 + 1 unpriced call"),
        "{table}"
    );
    assert!(!table.contains("$0.00 "), "{table}");

    let csv = cost("csv");
    let acme = csv
        .lines()
        .find(|l| l.starts_with("acme-in-house"))
        .unwrap();
    assert!(
        acme.ends_with(",1,1,500,0,0,10,0,"),
        "cost_usd empty: {csv}"
    );

    let json: serde_json::Value = serde_json::from_str(&cost("json")).unwrap();
    let groups = json["groups"].as_array().unwrap();
    let acme = groups
        .iter()
        .find(|g| g["model"] == "acme-in-house")
        .unwrap();
    assert!(acme["cost_usd"].is_null(), "{json:#}");
    assert!(acme["cost_nano_usd"].is_null(), "{json:#}");
    let mini = groups.iter().find(|g| g["model"] == "gpt-4o-mini").unwrap();
    assert_eq!(mini["cost_usd"], "0.000431250");
    assert_eq!(json["total_cost_nano_usd"], 431_250);
    assert_eq!(json["unpriced_requests"], 1);
    let _ = std::fs::remove_dir_all(&dir);
}
