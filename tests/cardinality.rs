//! Model names label metrics up to a bound: 20,000 distinct names (a router passing provider
//! ids through, a typo in a loop) label the first 500 apart and fold the rest into
//! `model="other"`, counted in `flujo_labels_folded_total` and said in one WARN line; the
//! "has no price" lines are bounded the same way. Measured in a child process of its own
//! (this test binary again): the series and size of the Prometheus exposition, the memory
//! the names cost, the WARN lines on stderr.

#[path = "support/prometheus.rs"]
mod prometheus;

use std::collections::HashSet;
use std::process::Command;

use flujo::{TelemetryConfig, TokenUsage, track_cost};
use prometheus::http_get;

const CHILD: &str = "FLUJO_TEST_CARDINALITY_CHILD";
const NAMES: u64 = 20_000;
/// The bound the docs state (`model` labels kept apart).
const KEPT: u64 = 500;

#[track_cost(model = name)]
fn call(name: &str) -> TokenUsage {
    TokenUsage::new(100, 10)
}

/// Resident memory of this process, in KiB.
fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.split_whitespace().next()?.parse().ok())
        .unwrap()
}

fn child() {
    let _telemetry =
        flujo::init_telemetry_with(TelemetryConfig::builder().export_prometheus(true)).unwrap();
    let server = flujo::export::start_prometheus_server(0).unwrap();
    // One name first: what the exporter, the ledger and the recorder cost with no names.
    call("warm-up");
    let _ = flujo::cost::recent_cost_records();
    let before = rss_kib();
    for i in 0..NAMES {
        call(&format!("router/model-{i:05}"));
    }
    // Drains what the calls recorded.
    let _ = flujo::cost::recent_cost_records();
    let after = rss_kib();
    let (status, text) = http_get(server.local_addr(), "/metrics");
    assert_eq!(status, 200);
    let models: HashSet<&str> = text
        .lines()
        .filter(|line| !line.starts_with('#'))
        .flat_map(|line| line.split("model=\"").skip(1))
        .filter_map(|rest| rest.split('"').next())
        .collect();
    let series = text.lines().filter(|line| !line.starts_with('#')).count();
    let folded: u64 = text
        .lines()
        .find_map(|line| line.strip_prefix("flujo_labels_folded_total{label=\"model\"} "))
        .and_then(|value| value.trim().parse().ok())
        .unwrap_or(0);
    println!(
        "CARDINALITY models={} series={series} bytes={} folded={folded} rss_growth_kib={}",
        models.len(),
        text.len(),
        after.saturating_sub(before)
    );
}

fn field(line: &str, key: &str) -> u64 {
    line.split_whitespace()
        .find_map(|word| word.strip_prefix(key)?.strip_prefix('='))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no {key}= in {line}"))
}

#[test]
fn twenty_thousand_model_names_keep_the_series_the_exposition_and_the_memory_bounded() {
    if std::env::var_os(CHILD).is_some() {
        child();
        return;
    }
    let output = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "--nocapture", "--test-threads", "1"])
        .arg("twenty_thousand_model_names_keep_the_series_the_exposition_and_the_memory_bounded")
        .env(CHILD, "1")
        .env_remove("RUST_LOG")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stdout}\n{stderr}");
    // The harness may print the test's name before it on its line.
    let line = stdout
        .lines()
        .find_map(|line| line.find("CARDINALITY ").map(|at| &line[at..]))
        .unwrap_or_else(|| panic!("{stdout}\n{stderr}"));
    println!("{line}");
    // The names kept apart (the warm-up's among them), and `other`.
    assert_eq!(field(line, "models"), KEPT + 1, "{line}");
    assert_eq!(
        field(line, "folded"),
        NAMES + 1 - KEPT,
        "each folded call counted"
    );
    // Before the bound, 10,000 names made 590,000 series and an 86 MB exposition, and 20,000
    // a 1 GB peak; now 501 names' worth (59 series each): measured 29,571 series, 4.7 MB and
    // 23 MiB (the in-memory ledger keeps each name's totals).
    assert!(field(line, "series") < 32_000, "{line}");
    assert!(field(line, "bytes") < 6 << 20, "{line}");
    assert!(field(line, "rss_growth_kib") < 48 << 10, "{line}");
    let folding = stderr.matches("distinct model names have labelled").count();
    assert_eq!(folding, 1, "the fold is said once: {stderr}");
    let unpriced = stderr.matches("has no price").count() as u64;
    assert!(
        unpriced <= KEPT + 1,
        "'has no price' lines are bounded by the labels: {unpriced}"
    );
}
