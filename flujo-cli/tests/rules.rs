//! `flujo rules`: the shipped Prometheus rules are its output, thresholds are the user's, and
//! the rules pass `promtool check rules` and the shipped unit tests (`promtool test rules`:
//! series in, each alert fires or stays quiet).

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;

fn deploy(file: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../deploy/prometheus")
        .join(file)
}

fn promtool() -> PathBuf {
    PathBuf::from(std::env::var_os("FLUJO_TEST_PROMTOOL").expect(
        "FLUJO_TEST_PROMTOOL names promtool: run the tests with `bash scripts/test.sh`, which \
         installs it",
    ))
}

fn promtool_says(args: &[&str], files: &[&Path]) -> (bool, String) {
    let output = Command::new(promtool())
        .args(args)
        .args(files)
        .output()
        .expect("promtool runs");
    (
        output.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ),
    )
}

#[test]
fn the_shipped_rules_are_what_flujo_rules_prints_with_the_defaults() {
    for (kind, file) in [
        ("alerts", "flujo-alerts.yml"),
        ("recording", "flujo-recording.yml"),
    ] {
        let (ok, printed, stderr) = support::flujo(&["rules", kind]);
        assert!(ok, "{stderr}");
        let shipped = std::fs::read_to_string(deploy(file)).unwrap();
        assert_eq!(
            printed, shipped,
            "deploy/prometheus/{file} is stale: regenerate it with `flujo rules {kind} > deploy/prometheus/{file}`"
        );
    }
}

#[test]
fn the_shipped_rules_pass_promtool_and_their_unit_tests() {
    let (ok, said) = promtool_says(
        &["check", "rules"],
        &[&deploy("flujo-recording.yml"), &deploy("flujo-alerts.yml")],
    );
    assert!(ok, "{said}");
    let (ok, said) = promtool_says(
        &["test", "rules"],
        &[&deploy("tests/flujo-alerts.test.yml")],
    );
    assert!(ok, "{said}");
    assert!(said.contains("SUCCESS"), "{said}");
}

#[test]
fn thresholds_are_the_users_and_bad_ones_name_the_flag() {
    let (ok, printed, stderr) = support::flujo(&[
        "rules",
        "alerts",
        "--daily-budget-usd",
        "250",
        "--step-p95-seconds",
        "4.5",
        "--job-regex",
        "checkout-.*",
    ]);
    assert!(ok, "{stderr}");
    assert!(printed.contains("* 86400 > 250\n"), "{printed}");
    assert!(
        printed.contains("flujo:step_duration_seconds:p95_5m > 4.5"),
        "{printed}"
    );
    assert!(
        printed.contains("up{job=~\"checkout-.*\"} == 0"),
        "{printed}"
    );
    let dir = std::env::temp_dir().join(format!("flujo-rules-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let custom = dir.join("alerts.yml");
    std::fs::write(&custom, &printed).unwrap();
    let (ok, said) = promtool_says(
        &["check", "rules"],
        &[&deploy("flujo-recording.yml"), &custom],
    );
    assert!(ok, "{said}");
    std::fs::remove_dir_all(&dir).unwrap();

    for bad in [
        "--step-error-ratio=-1",
        "--step-error-ratio=NaN",
        "--step-error-ratio=lots",
    ] {
        let (ok, _, stderr) = support::flujo(&["rules", "alerts", bad]);
        assert!(!ok);
        assert!(
            stderr.contains("--step-error-ratio") && stderr.contains("non-negative"),
            "{stderr}"
        );
    }
}

#[test]
fn the_unit_tests_hold_the_thresholds_to_account() {
    // The shipped unit tests against rules with a higher error-ratio threshold: the alert
    // they expect no longer fires, and promtool says so.
    let dir = std::env::temp_dir().join(format!("flujo-rules-mutated-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("tests")).unwrap();
    let (ok, alerts, stderr) = support::flujo(&["rules", "alerts", "--step-error-ratio", "0.5"]);
    assert!(ok, "{stderr}");
    std::fs::write(dir.join("flujo-alerts.yml"), alerts).unwrap();
    std::fs::copy(
        deploy("flujo-recording.yml"),
        dir.join("flujo-recording.yml"),
    )
    .unwrap();
    std::fs::copy(
        deploy("tests/flujo-alerts.test.yml"),
        dir.join("tests/flujo-alerts.test.yml"),
    )
    .unwrap();
    let (ok, said) = promtool_says(
        &["test", "rules"],
        &[&dir.join("tests/flujo-alerts.test.yml")],
    );
    assert!(!ok, "{said}");
    assert!(said.contains("FlujoStepErrorRatioHigh"), "{said}");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// The dashboard's queries read only metrics flujo declares (`flujo::export::Metric`, by their
/// Prometheus names, with a histogram's series suffixes) and the recording rules' names.
#[test]
fn the_dashboard_reads_only_declared_metrics() {
    let dashboard = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/grafana/flujo-dashboard.json"),
    )
    .unwrap();
    let declared: Vec<String> = flujo::export::Metric::ALL
        .iter()
        .map(|metric| metric.prometheus_name())
        .collect();
    let recorded = flujo_runtime_recording_rules();
    let mut read = 0;
    for word in dashboard.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':')) {
        // Metric names (labels such as gen_ai_request_model are not).
        let is_metric = (word.starts_with("flujo_") || word.starts_with("gen_ai_client_"))
            && !word.contains("::");
        // Recording rules are `flujo:<what>:<window>`.
        if word.starts_with("flujo:") && word.matches(':').count() == 2 {
            assert!(
                recorded.contains(&word.to_owned()),
                "{word} is no recording rule"
            );
            continue;
        }
        if !is_metric {
            continue;
        }
        read += 1;
        let base = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|suffix| word.strip_suffix(suffix))
            .unwrap_or(word);
        assert!(
            declared.iter().any(|name| name == word || name == base),
            "the dashboard reads {word}, which flujo does not record"
        );
    }
    assert!(read > 20, "the dashboard's metrics were found: {read}");
}

/// The names of the recording rules `flujo rules recording` writes.
fn flujo_runtime_recording_rules() -> Vec<String> {
    let output = Command::new(env!("CARGO_BIN_EXE_flujo"))
        .args(["rules", "recording"])
        .output()
        .expect("flujo runs");
    String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .filter_map(|line| line.trim().strip_prefix("- record: "))
        .map(str::to_owned)
        .collect()
}
