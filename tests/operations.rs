//! The operations files (`deploy/`) against a real Prometheus that scraped the example
//! application producing every metric family (`examples/operations.rs`: failures, retries,
//! timeouts, fallbacks, refusals, unpriced and streamed calls, quality, a SQLite ledger, an
//! OTLP exporter whose collector is gone): every PromQL expression of the dashboard and of
//! the rules returns data, every rule evaluates without error, a name flujo does not export
//! fails the test, and the dashboard has the structure of the Grafana schema it declares.

#[path = "../examples/operations.rs"]
#[allow(dead_code)]
mod operations;
#[path = "support/prometheus.rs"]
mod prometheus;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use prometheus::{PrometheusServer, query};
use serde_json::Value;

fn deploy(file: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("deploy")
        .join(file)
}

fn dashboard() -> Value {
    serde_json::from_str(&std::fs::read_to_string(deploy("grafana/flujo-dashboard.json")).unwrap())
        .expect("the dashboard is JSON")
}

/// The dashboard's panels, rows' nested panels included.
fn panels(dashboard: &Value) -> Vec<&Value> {
    let mut all = Vec::new();
    for panel in dashboard["panels"].as_array().unwrap() {
        all.push(panel);
        if let Some(nested) = panel["panels"].as_array() {
            all.extend(nested);
        }
    }
    all
}

/// Every query of the dashboard, with its template variables as Grafana fills them for
/// "All" and a short time range.
fn dashboard_queries(dashboard: &Value) -> Vec<(String, String)> {
    panels(dashboard)
        .into_iter()
        .flat_map(|panel| {
            let title = panel["title"].as_str().unwrap_or_default().to_owned();
            panel["targets"]
                .as_array()
                .into_iter()
                .flatten()
                .map(move |target| (title.clone(), target["expr"].as_str().unwrap().to_owned()))
        })
        .map(|(title, expr)| {
            let filled = expr
                .replace("$__rate_interval", "1m")
                .replace("$__range", "10m")
                .replace("$job", ".*")
                .replace("$pipeline", ".*")
                .replace("$model", ".*");
            (title, filled)
        })
        .collect()
}

/// Metric names an expression reads: identifiers before a selector's `{` or a range's `[`,
/// and bare names of flujo's metrics and recording rules.
fn metric_names(expr: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let bytes = expr.as_bytes();
    let (mut i, mut in_braces, mut in_quotes) = (0, false, false);
    while i < bytes.len() {
        let c = bytes[i] as char;
        if in_quotes {
            in_quotes = c != '"';
            i += 1;
            continue;
        }
        match c {
            '"' => in_quotes = true,
            '{' => in_braces = true,
            '}' => in_braces = false,
            c if !in_braces && (c.is_ascii_alphabetic() || c == '_' || c == ':') => {
                let start = i;
                while i < bytes.len()
                    && ((bytes[i] as char).is_ascii_alphanumeric()
                        || matches!(bytes[i], b'_' | b':'))
                {
                    i += 1;
                }
                let word = &expr[start..i];
                let next = expr[i..].trim_start().chars().next();
                // Label lists: `by (...)`, `on (...)` and their kin name labels, not metrics.
                if matches!(
                    word,
                    "by" | "without" | "on" | "ignoring" | "group_left" | "group_right"
                ) && next == Some('(')
                {
                    i += expr[i..].find(')').map_or(expr.len() - i, |end| end + 1);
                    continue;
                }
                let flujo_like = word.starts_with("flujo") || word.starts_with("gen_ai_");
                if matches!(next, Some('{' | '[')) || (flujo_like && next != Some('(')) {
                    names.insert(word.to_owned());
                }
                continue;
            }
            _ => {}
        }
        i += 1;
    }
    names
}

/// An alert's expression with its comparisons kept as 0/1 (`> bool`), so that it returns
/// the series it watches whether or not they cross the threshold.
fn as_signal(expr: &str) -> String {
    expr.replace(" > ", " > bool ").replace(" == ", " == bool ")
}

fn has_data(answer: &Value) -> bool {
    answer["status"] == "success"
        && answer["data"]["result"]
            .as_array()
            .is_some_and(|result| !result.is_empty())
}

#[test]
fn every_rule_and_dashboard_expression_returns_data_from_a_real_prometheus() {
    // The application: the example's traffic, a SQLite ledger, an OTLP exporter whose
    // collector is gone (a closed port: export errors and dropped spans, as in an outage).
    let dir = std::env::temp_dir().join(format!("flujo-operations-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let collector = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let guard = flujo::init_telemetry_with(
        flujo::TelemetryConfig::builder()
            .service_name("operations-test")
            .export_otlp(true)
            .otlp_endpoint(collector)
            .otlp_timeout(Duration::from_millis(200))
            .cost_ledger(dir.join("costs.sqlite"))
            .daily_cost_limit_usd(flujo::Usd::parse("1000").unwrap())
            .shutdown_timeout(Duration::from_millis(500)),
    )
    .unwrap();
    // Traffic before Prometheus is served is in its first scrape, at its full value.
    operations::round(0);
    let app = flujo::export::start_prometheus_server(0).unwrap();
    let (_, first) = prometheus::http_get(app.local_addr(), "/metrics");
    let reviews = first
        .lines()
        .find(|line| {
            line.starts_with("flujo_step_calls_total{")
                && line.contains("step=\"review\"")
                && line.contains("status=\"ok\"")
        })
        .unwrap_or_else(|| panic!("no review calls in the first scrape:\n{first}"));
    assert!(reviews.ends_with(" 1"), "{reviews}");
    assert!(
        first.contains("\nflujo_telemetry_spans_exported_total 0"),
        "{first}"
    );
    let running = std::sync::Arc::new(AtomicBool::new(true));
    let traffic = {
        let running = std::sync::Arc::clone(&running);
        std::thread::spawn(move || {
            let mut round = 1;
            while running.load(Ordering::Relaxed) {
                operations::round(round);
                round += 1;
                std::thread::sleep(Duration::from_millis(50));
            }
        })
    };
    let server = PrometheusServer::start(
        app.local_addr(),
        &[
            deploy("prometheus/flujo-recording.yml"),
            deploy("prometheus/flujo-alerts.yml"),
        ],
    );
    server.wait_for("/api/v1/targets", |answer| {
        answer["data"]["activeTargets"][0]["health"] == "up"
    });
    // Rates need two scrapes of every family; the recording rules one evaluation after.
    server.wait_for(&query("flujo:step_duration_seconds:p95_5m"), has_data);
    server.wait_for(&query("flujo:cost_per_run_usd:rate5m"), has_data);

    let exported: BTreeSet<String> = server.wait_for("/api/v1/label/__name__/values", |answer| {
        answer["status"] == "success"
    })["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|name| name.as_str().unwrap().to_owned())
        .collect();

    // The dashboard.
    let dashboard = dashboard();
    let queries = dashboard_queries(&dashboard);
    assert!(queries.len() >= 25, "{} queries", queries.len());
    for (panel, expr) in &queries {
        for name in metric_names(expr) {
            assert!(
                exported.contains(&name),
                "panel {panel:?} reads `{name}`, which flujo does not export (nor a recording rule records)"
            );
        }
        let answer = server.wait_for(&query(expr), |answer| answer["status"] == "success");
        assert!(
            has_data(&answer),
            "panel {panel:?}: `{expr}` returned no data: {answer}"
        );
    }
    for variable in dashboard["templating"]["list"].as_array().unwrap() {
        let Some(definition) = variable["definition"].as_str() else {
            continue;
        };
        // label_values(metric, label): the metric has the label.
        let inner = definition
            .strip_prefix("label_values(")
            .and_then(|rest| rest.strip_suffix(')'))
            .unwrap_or_else(|| panic!("variable {definition}"));
        let (selector, label) = inner.rsplit_once(',').unwrap();
        let selector = selector.replace("$job", ".*");
        let answer = server.wait_for(
            &query(&format!("count by ({}) ({selector})", label.trim())),
            |answer| answer["status"] == "success",
        );
        assert!(has_data(&answer), "variable {definition} has no values");
    }

    // The rules: every one evaluated without error; every recording rule records data;
    // every alert's expression returns the series it watches.
    let rules = server.wait_for("/api/v1/rules", |answer| {
        answer["data"]["groups"].as_array().is_some_and(|groups| {
            groups.iter().all(|group| {
                group["rules"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .all(|rule| rule["health"] == "ok")
            })
        })
    });
    let mut alerts = 0;
    for group in rules["data"]["groups"].as_array().unwrap() {
        for rule in group["rules"].as_array().unwrap() {
            let (name, expr) = (
                rule["name"].as_str().unwrap(),
                rule["query"].as_str().unwrap(),
            );
            for metric in metric_names(expr) {
                assert!(
                    exported.contains(&metric),
                    "rule {name} reads `{metric}`, which flujo does not export"
                );
            }
            let promql = if rule["type"] == "alerting" {
                alerts += 1;
                as_signal(expr)
            } else {
                name.to_owned()
            };
            let answer = server.wait_for(&query(&promql), |answer| answer["status"] == "success");
            assert!(
                has_data(&answer),
                "rule {name}: `{promql}` returned no data: {answer}"
            );
        }
    }
    assert_eq!(alerts, 18);
    // What the example does wrong on purpose fires (the rules with no `for`), or waits its
    // `for` (the export errors of the missing collector).
    let firing = server.wait_for(&query("ALERTS{alertstate=\"firing\"}"), |answer| {
        let names: BTreeSet<&str> = answer["data"]["result"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|alert| alert["metric"]["alertname"].as_str())
            .collect();
        names.contains("FlujoBudgetRefusals") && names.contains("FlujoUnpricedModelCalls")
    });
    assert!(has_data(&firing));
    let pending = server.wait_for(
        &query("ALERTS{alertname=\"FlujoExportErrors\",alertstate=\"pending\"}"),
        has_data,
    );
    assert!(has_data(&pending));

    // The application goes away: its target is down, and the rule for it sees that.
    running.store(false, Ordering::Relaxed);
    traffic.join().unwrap();
    app.shutdown();
    server.wait_for(&query("up == 0"), has_data);
    let down = rules["data"]["groups"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|group| group["rules"].as_array().unwrap())
        .find(|rule| rule["name"] == "FlujoTargetDown")
        .unwrap()["query"]
        .as_str()
        .unwrap()
        .to_owned();
    let answer = server.wait_for(&query(&down), has_data);
    assert_eq!(answer["data"]["result"][0]["metric"]["job"], "app");
    drop(guard);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_dashboard_has_the_structure_of_its_grafana_schema_version() {
    let dashboard = dashboard();
    // Grafana's dashboard JSON model, schema version 39 (Grafana 10.x and 11.x).
    assert_eq!(dashboard["schemaVersion"], 39);
    for field in ["uid", "title"] {
        assert!(
            dashboard[field].as_str().is_some_and(|v| !v.is_empty()),
            "{field}"
        );
    }
    assert!(dashboard["time"]["from"].is_string() && dashboard["time"]["to"].is_string());
    let variables = dashboard["templating"]["list"].as_array().unwrap();
    let names: Vec<&str> = variables
        .iter()
        .map(|v| v["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["datasource", "job", "pipeline", "model"]);
    for variable in &variables[1..] {
        assert_eq!(variable["type"], "query");
        assert_eq!(variable["datasource"]["uid"], "${datasource}");
        assert!(variable["includeAll"].as_bool().unwrap() && variable["multi"].as_bool().unwrap());
    }
    assert_eq!(variables[0]["type"], "datasource");
    assert_eq!(variables[0]["query"], "prometheus");

    let known = [
        "row",
        "timeseries",
        "stat",
        "heatmap",
        "table",
        "gauge",
        "bargauge",
        "text",
    ];
    let mut ids = BTreeSet::new();
    let mut cells: BTreeSet<(u64, u64)> = BTreeSet::new();
    for panel in panels(&dashboard) {
        let id = panel["id"].as_u64().expect("every panel has a numeric id");
        assert!(ids.insert(id), "panel id {id} is used twice");
        let kind = panel["type"].as_str().unwrap();
        assert!(known.contains(&kind), "panel type {kind}");
        let grid = &panel["gridPos"];
        let (x, y, w, h) = (
            grid["x"].as_u64().unwrap(),
            grid["y"].as_u64().unwrap(),
            grid["w"].as_u64().unwrap(),
            grid["h"].as_u64().unwrap(),
        );
        assert!(
            w >= 1 && x + w <= 24 && h >= 1,
            "{:?} does not fit the 24-column grid",
            panel["title"]
        );
        // No two panels overlap.
        for dx in x..x + w {
            for dy in y..y + h {
                assert!(
                    cells.insert((dx, dy)),
                    "{:?} overlaps another panel",
                    panel["title"]
                );
            }
        }
        if kind == "row" {
            continue;
        }
        assert!(panel["title"].as_str().is_some_and(|t| !t.is_empty()));
        assert!(
            panel["description"].as_str().is_some_and(|t| !t.is_empty()),
            "{:?}",
            panel["title"]
        );
        assert_eq!(panel["datasource"]["uid"], "${datasource}");
        let targets = panel["targets"].as_array().expect("a panel queries");
        assert!(!targets.is_empty());
        let mut refs = BTreeSet::new();
        for target in targets {
            assert!(refs.insert(target["refId"].as_str().unwrap().to_owned()));
            assert!(target["expr"].as_str().is_some_and(|e| !e.is_empty()));
        }
    }
}

#[test]
fn the_metric_name_check_catches_a_name_flujo_does_not_export() {
    let names = metric_names(
        "sum by (gen_ai_request_model, le) (rate(flujo_cost_dollars_total{job=~\".*\", model=\"a{b\"}[5m])) / on (job) flujo:x:rate5m",
    );
    assert_eq!(
        names,
        BTreeSet::from([
            "flujo_cost_dollars_total".to_owned(),
            "flujo:x:rate5m".to_owned()
        ])
    );
    assert_eq!(as_signal("a > 1 and b == 0"), "a > bool 1 and b == bool 0");
}
