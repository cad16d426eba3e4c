//! `flujo cost --ledger postgres://...` on a real PostgreSQL ledger written by flujo.

#[path = "../../flujo-runtime/tests/support/postgres_server.rs"]
mod postgres_server;
mod support;

use flujo::{TelemetryConfig, TokenUsage, UsageLimitExceeded, pipeline_step, track_cost};
use postgres_server::Server;

#[pipeline_step(name = "summarise")]
#[track_cost(model = "gpt-4o-mini")]
fn mini(tokens: u64) -> Result<TokenUsage, UsageLimitExceeded> {
    Ok(TokenUsage::new(tokens, tokens / 2))
}

#[test]
fn the_cli_reports_a_postgres_ledger_and_never_prints_its_password() {
    let server = Server::start("cli");
    let url = server.create_database("cli");
    let guard =
        flujo::init_telemetry_with(TelemetryConfig::builder().cost_ledger(url.as_str())).unwrap();
    for _ in 0..100 {
        mini(1_000).unwrap();
    }
    drop(guard);
    let today = flujo::cost::utc_today().to_string();
    // 100 * (1_000 * 0.15 + 500 * 0.6) µ$ = $0.045
    let (ok, json, stderr) = support::flujo(&[
        "cost",
        "--ledger",
        &url,
        "--from",
        &today,
        "--to",
        &today,
        "--group-by",
        "step",
        "--format",
        "json",
    ]);
    assert!(ok, "{stderr}");
    let json: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(json["total_cost_nano_usd"], 45_000_000);
    assert_eq!(json["groups"][0]["step"], "summarise");
    assert_eq!(json["groups"][0]["requests"], 100);

    // The ledger from the environment, as the application names it; a wrong password is an
    // error naming the URL without it.
    let wrong = url.replace(&server.password, "wrong-password");
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_flujo"))
        .args(["cost", "--from", &today, "--to", &today])
        .env("FLUJO_COST_LEDGER", &wrong)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(
        stderr.contains("postgres://flujo:***@127.0.0.1"),
        "{stderr}"
    );
    assert!(
        stderr.contains("password authentication failed"),
        "{stderr}"
    );
    assert!(!stderr.contains("wrong-password"), "{stderr}");
    let (_, help, _) = {
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_flujo"))
            .args(["cost", "--help"])
            .env("FLUJO_COST_LEDGER", &url)
            .output()
            .unwrap();
        (
            output.status.success(),
            String::from_utf8_lossy(&output.stdout).into_owned(),
            (),
        )
    };
    assert!(
        help.contains("FLUJO_COST_LEDGER") && !help.contains(&server.password),
        "{help}"
    );
}
