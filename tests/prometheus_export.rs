//! Prometheus export checked by the real Prometheus tools: `promtool check metrics` lints the
//! exposition, and a Prometheus server scrapes the app and answers PromQL over its HTTP API.
//! Needs the `prometheus` feature and Debian's prometheus package, which `scripts/test.sh`
//! unpacks into `.backends/`; a missing tool is a failure, never a skip.
#![cfg(feature = "prometheus")]

use std::fmt;
use std::io::Write;
use std::net::TcpListener;
use std::process::{Command, Stdio};

use flujo::{TelemetryConfig, TelemetryError, TokenUsage, pipeline_step, track_cost};

#[path = "support/prometheus.rs"]
mod prometheus;
use prometheus::{PrometheusServer, http_get, query, query_value, tool};

#[derive(Debug)]
struct Flaky;

impl fmt::Display for Flaky {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("flaky")
    }
}

#[pipeline_step]
fn scraped_ok(x: u32) -> u32 {
    x + 1
}

#[pipeline_step]
fn exposed_ok(x: u32) -> u32 {
    x * 2
}

#[pipeline_step]
fn exposed_error() -> Result<(), Flaky> {
    Err(Flaky)
}

static RETRY_CALLS: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);

#[pipeline_step(retries = 2, backoff = "fixed", backoff_ms = 1)]
fn scraped_retry() -> Result<(), Flaky> {
    if RETRY_CALLS
        .fetch_add(1, std::sync::atomic::Ordering::SeqCst)
        .is_multiple_of(2)
    {
        return Err(Flaky);
    }
    Ok(())
}

/// 10_000 input tokens (4_000 of them cached) and 500 output tokens of gpt-4o:
/// 6_000 * $2.50/M + 4_000 * $1.25/M + 500 * $10/M = $0.025 per call.
#[pipeline_step(name = "scraped_model_step")]
#[track_cost(model = "gpt-4o", provider = "openai")]
fn scraped_model_call() -> Result<TokenUsage, anyhow::Error> {
    Ok(TokenUsage::new(10_000, 500).with_cache_read(4_000))
}

#[track_cost(model = "gpt-4o-mini")]
fn exposed_model_call() -> TokenUsage {
    TokenUsage::new(100, 10)
}

#[pipeline_step(kind = "tool")]
fn exposed_tool() -> u32 {
    1
}

#[pipeline_step(kind = "agent")]
fn exposed_agent() -> u32 {
    exposed_tool()
}

/// A streamed answer, the last chunk with the usage.
#[track_cost(model = "gpt-4.1")]
fn exposed_stream()
-> impl futures::Stream<Item = Result<flujo::testing::StubChunk, flujo::testing::StubError>> {
    flujo::testing::StubModel::new("gpt-4.1")
        .chat_stream(
            "three words here",
            flujo::testing::StubStreamUsage::LastChunk,
        )
        .expect("the stub answers")
}

#[derive(Debug, thiserror::Error)]
#[error(transparent)]
struct TimedOut(#[from] flujo::StepTimeout);

#[pipeline_step(timeout_ms = 1, fallback = exposed_quick)]
async fn exposed_slow() -> Result<u32, TimedOut> {
    never_ready().await;
    Ok(0)
}

async fn exposed_quick() -> Result<u32, TimedOut> {
    Ok(1)
}

/// Never ready: the step's timeout cancels it.
async fn never_ready() {
    std::future::pending::<()>().await
}

/// Telemetry with Prometheus export on, for the whole test binary.
fn telemetry() -> &'static flujo::TelemetryGuard {
    static GUARD: std::sync::OnceLock<flujo::TelemetryGuard> = std::sync::OnceLock::new();
    GUARD.get_or_init(|| {
        flujo::init_telemetry_with(TelemetryConfig::builder().export_prometheus(true))
            .expect("telemetry with Prometheus export starts")
    })
}

#[test]
fn the_exposition_passes_promtool_and_has_help_units_and_buckets() {
    telemetry();
    for i in 0..5 {
        exposed_ok(i);
    }
    let _ = exposed_error();
    exposed_model_call();
    exposed_agent();
    let chunks = futures::executor::block_on_stream(exposed_stream()).count();
    assert_eq!(futures::executor::block_on(exposed_slow()).unwrap(), 1);
    let server = flujo::export::start_prometheus_server(0).expect("serves on a free port");
    assert_eq!(
        server.local_addr().ip().to_string(),
        "127.0.0.1",
        "loopback by default"
    );
    assert_ne!(server.local_addr().port(), 0, "the real port is reported");

    let (status, text) = http_get(server.local_addr(), "/metrics");
    assert_eq!(status, 200);
    assert!(text.contains("# HELP flujo_step_calls_total "), "{text}");
    assert!(text.contains("# TYPE flujo_step_calls_total counter"));
    assert!(
        text.contains("# TYPE flujo_step_duration_seconds histogram"),
        "histograms, not summaries"
    );
    assert!(text.contains(
        "flujo_step_duration_seconds_bucket{step=\"exposed_ok\",status=\"ok\",le=\"0.0005\"}"
    ));
    assert!(
        text.contains("flujo_step_calls_total{step=\"exposed_ok\",status=\"ok\"} 5"),
        "{text}"
    );
    assert!(text.contains("flujo_step_calls_total{step=\"exposed_error\",status=\"error\"} 1"));
    for family in [
        "# TYPE flujo_tokens_total counter",
        "# TYPE flujo_model_requests_total counter",
        "# TYPE flujo_cost_usd_total counter",
        "# HELP flujo_cost_usd_total Cost of priced model calls in USD",
        "# TYPE gen_ai_client_token_usage histogram",
        "# TYPE gen_ai_client_operation_duration_seconds histogram",
        "# TYPE gen_ai_client_operation_time_to_first_chunk_seconds histogram",
        "# TYPE gen_ai_client_operation_time_per_output_chunk_seconds histogram",
        "# TYPE flujo_step_timeouts_total counter",
        "# TYPE flujo_step_fallbacks_total counter",
        "flujo_step_timeouts_total{step=\"exposed_slow\"} 1",
        "flujo_step_fallbacks_total{step=\"exposed_slow\"} 1",
    ] {
        assert!(text.contains(family), "{family} missing:\n{text}");
    }
    let per_chunk = format!(
        "gen_ai_client_operation_time_per_output_chunk_seconds_count{{gen_ai_operation_name=\"chat\",gen_ai_provider_name=\"openai\",gen_ai_request_model=\"gpt-4.1\"}} {}",
        chunks - 1
    );
    assert!(text.contains(&per_chunk), "{per_chunk} missing:\n{text}");
    assert!(
        text.contains("gen_ai_client_token_usage_bucket{gen_ai_operation_name=\"chat\",gen_ai_provider_name=\"openai\",gen_ai_request_model=\"gpt-4o-mini\",gen_ai_token_type=\"input\",le=\"67108864\"}"),
        "the GenAI token buckets:\n{text}"
    );
    // The conventions' buckets of each GenAI duration (the agent's reach 409.6 s).
    for bucket in [
        "gen_ai_execute_tool_duration_seconds_bucket{gen_ai_tool_name=\"exposed_tool\",le=\"81.92\"}",
        "gen_ai_invoke_agent_duration_seconds_bucket{gen_ai_agent_name=\"exposed_agent\",le=\"409.6\"}",
        "gen_ai_client_operation_time_to_first_chunk_seconds_bucket{gen_ai_operation_name=\"chat\",gen_ai_provider_name=\"openai\",gen_ai_request_model=\"gpt-4.1\",le=\"81.92\"}",
    ] {
        assert!(text.contains(bucket), "{bucket} missing:\n{text}");
    }
    assert!(
        text.contains("flujo_cost_usd_total{model=\"gpt-4o-mini\",provider=\"openai\",pipeline=\"\",step=\"\"} 0.000021000"),
        "the cost in USD, exactly:\n{text}"
    );
    assert_eq!(http_get(server.local_addr(), "/other").0, 404);

    let mut promtool = Command::new(tool("FLUJO_TEST_PROMTOOL", "promtool"))
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool runs");
    promtool
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let checked = promtool.wait_with_output().unwrap();
    assert!(
        checked.status.success(),
        "promtool check metrics failed:\n{}{}",
        String::from_utf8_lossy(&checked.stdout),
        String::from_utf8_lossy(&checked.stderr)
    );
    server.shutdown();
}

#[test]
fn a_busy_address_is_an_error_naming_it() {
    telemetry();
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let err = flujo::export::start_prometheus_server(port).unwrap_err();
    assert!(matches!(err, TelemetryError::PrometheusServer { .. }));
    assert!(
        err.to_string().contains(&format!("127.0.0.1:{port}")),
        "{err}"
    );
}

#[test]
fn a_prometheus_server_scrapes_step_counts_that_promql_returns() {
    telemetry();
    let app = flujo::export::start_prometheus_server(0).expect("serves");
    for i in 0..7 {
        scraped_ok(i);
    }
    for _ in 0..3 {
        scraped_retry().expect("the retry succeeds");
    }
    for _ in 0..4 {
        scraped_model_call().expect("the model call succeeds");
    }
    let prometheus = PrometheusServer::start(app.local_addr(), &[]);
    prometheus.wait_for("/api/v1/targets", |answer| {
        answer["data"]["activeTargets"][0]["health"] == "up"
    });

    let ok = prometheus.wait_for(
        &query("flujo_step_calls_total{step=\"scraped_ok\",status=\"ok\"}"),
        |answer| query_value(answer) == Some(7.0),
    );
    assert_eq!(query_value(&ok), Some(7.0));
    let retries = prometheus.wait_for(
        &query("flujo_step_retries_total{step=\"scraped_retry\"}"),
        |answer| query_value(answer) == Some(3.0),
    );
    assert_eq!(query_value(&retries), Some(3.0));
    let durations = prometheus.wait_for(
        &query("flujo_step_duration_seconds_count{step=\"scraped_retry\",status=\"ok\"}"),
        |answer| query_value(answer) == Some(3.0),
    );
    assert_eq!(query_value(&durations), Some(3.0));

    let model = "model=\"gpt-4o\",provider=\"openai\"";
    for (token_type, expected) in [
        ("input", 40_000.0),
        ("cache_read_input", 16_000.0),
        ("output", 2_000.0),
    ] {
        let tokens = prometheus.wait_for(
            &query(&format!(
                "flujo_tokens_total{{{model},token_type=\"{token_type}\"}}"
            )),
            |answer| query_value(answer) == Some(expected),
        );
        assert_eq!(query_value(&tokens), Some(expected), "{token_type}");
    }
    let cost = prometheus.wait_for(
        &query(&format!(
            "flujo_cost_usd_total{{{model},step=\"scraped_model_step\"}}"
        )),
        |answer| query_value(answer) == Some(0.1),
    );
    assert_eq!(query_value(&cost), Some(0.1), "4 calls at $0.025");
    let requests = prometheus.wait_for(
        &query(&format!(
            "flujo_model_requests_total{{{model},status=\"ok\"}}"
        )),
        |answer| query_value(answer) == Some(4.0),
    );
    assert_eq!(query_value(&requests), Some(4.0));
    let token_histogram = prometheus.wait_for(
        &query("sum(gen_ai_client_token_usage_sum{gen_ai_request_model=\"gpt-4o\",gen_ai_token_type=\"output\"})"),
        |answer| query_value(answer) == Some(2_000.0),
    );
    assert_eq!(query_value(&token_histogram), Some(2_000.0));
    let durations = prometheus.wait_for(
        &query("gen_ai_client_operation_duration_seconds_count{gen_ai_request_model=\"gpt-4o\"}"),
        |answer| query_value(answer) == Some(4.0),
    );
    assert_eq!(query_value(&durations), Some(4.0));
    app.shutdown();
}
