//! Scenarios that need a fresh process: environment variables read by `init_telemetry`, and
//! the stderr log subscriber it installs. The test binary re-runs itself as the child.

use std::fmt;
use std::process::Command;

use flujo::testing::Capture;
use flujo::{TokenUsage, UsageLimitExceeded, logfire, pipeline_step, track_cost};

#[path = "support/readme.rs"]
mod readme;

const CHILD: &str = "FLUJO_TEST_CHILD";

#[derive(Debug)]
struct ModelError;

impl fmt::Display for ModelError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("rate limited")
    }
}

static CALLS: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);

#[pipeline_step(retries = 1, backoff = "fixed", backoff_ms = 5)]
fn flaky() -> Result<u32, ModelError> {
    if CALLS.fetch_add(1, std::sync::atomic::Ordering::SeqCst) == 0 {
        return Err(ModelError);
    }
    logfire::info!(inside = true, "inside the step");
    Ok(1)
}

#[pipeline_step]
fn broken() -> Result<(), ModelError> {
    Err(ModelError)
}

#[track_cost(model = "gpt-4o-mini")]
fn known_model() -> Result<TokenUsage, UsageLimitExceeded> {
    Ok(TokenUsage::new(1_000, 100))
}

#[track_cost(model = "acme-x", unpriced)]
fn acme_model() -> Result<TokenUsage, UsageLimitExceeded> {
    Ok(TokenUsage::new(1_000_000, 0))
}

#[track_cost(model = "gpt-4o-mini")]
fn absurd_usage() -> TokenUsage {
    // What a wrapped subtraction in reading usage reports.
    TokenUsage::new(u64::MAX - 3, 10)
}

/// Five events on its span: more than the limit its scenario sets.
#[pipeline_step]
fn scored() {
    for score in 0..5 {
        flujo::quality::record_score("relevance", f64::from(score) / 5.0);
    }
}

#[pipeline_step]
fn double(n: u32) -> u32 {
    logfire::info!(n, "doubling");
    // The application's own request id field, which flujo must not repeat or replace.
    logfire::info!(request_id = "app-request-9", "handled upstream");
    n * 2
}

flujo::pipeline! {
    pipeline logged(n: u32) -> u32 {
        double >> double
    }
}

/// Model calls under the settings of the environment; prints what was recorded.
fn cost_scenario() {
    let capture = Capture::start();
    for _ in 0..10 {
        known_model().expect("a priced model is never refused");
    }
    match acme_model() {
        Ok(_) => println!("acme called"),
        Err(refusal) => println!("acme refused: {refusal}"),
    }
    let labels = [("model", "gpt-4o-mini"), ("provider", "openai")];
    let with = |extra: (&'static str, &'static str)| {
        let mut labels = labels.to_vec();
        labels.push(extra);
        labels
    };
    let records = capture.cost_records();
    println!(
        "spans={} requests={} input_tokens={} cost_nanos={} records={} acme_cost={:?} acme_prices={:?}",
        capture.spans_named("chat gpt-4o-mini").len(),
        capture.counter("flujo_model_requests_total", &with(("status", "ok"))),
        capture.counter("flujo_tokens_total", &with(("token_type", "input"))),
        capture
            .cost_usd(
                &with(("pipeline", ""))
                    .into_iter()
                    .chain([("step", "")])
                    .collect::<Vec<_>>()
            )
            .nanos(),
        records.len(),
        records.iter().find(|r| r.model == "acme-x").map(|r| r.cost),
        records
            .iter()
            .find(|r| r.model == "acme-x")
            .map(|r| r.price_version.clone()),
    );
}

/// What the child does: initialise from the environment, emit the log lines under test.
/// The README's `main`, returning the error.
fn readme_main() -> Result<(), flujo::TelemetryError> {
    let _telemetry = flujo::init_telemetry()?;
    Ok(())
}

/// What a program does after its guard is gone: a model call, a step and a pipeline run.
fn calls_after_the_guard() {
    let _ = known_model();
    let _ = double(1);
    let result = flujo::Flujo::new(logged::new()).run(1);
    println!("output={:?}", result.output.map_err(|e| e.to_string()));
}

/// Initialises telemetry in a helper that keeps the guard in a local: dropped on return.
fn start_telemetry() {
    let _telemetry = flujo::init_telemetry().expect("telemetry starts");
}

fn child(scenario: &str) {
    if scenario == "guard_discarded" {
        // What rustc's help for the `must_use` warning suggests.
        let _ = flujo::init_telemetry();
        calls_after_the_guard();
        return;
    }
    if scenario == "guard_in_helper" {
        start_telemetry();
        calls_after_the_guard();
        return;
    }
    if scenario == "code_sampling_rate" {
        let config = flujo::TelemetryConfig::builder().sampling_rate(1.5);
        if let Err(error) = flujo::init_telemetry_with(config) {
            println!("init error: {error}");
        }
        return;
    }
    if scenario == "main_error" {
        // What the standard library does with the `Result` a `main` returns.
        let _ = std::process::Termination::report(readme_main());
        return;
    }
    match flujo::init_telemetry() {
        Err(error) => println!("init error: {error}"),
        Ok(guard) => {
            if scenario == "out_of_bounds" {
                absurd_usage();
                known_model().unwrap();
                return;
            }
            if scenario == "settings" {
                println!("{:?}", guard.settings());
                return;
            }
            if scenario == "events" {
                let capture = Capture::start();
                scored();
                let span = &capture.spans_named("scored")[0];
                println!(
                    "events={} dropped={}",
                    span.events().len(),
                    span.dropped_events_count()
                );
                return;
            }
            if scenario == "cost" {
                cost_scenario();
                return;
            }
            if scenario == "console" {
                let result = flujo::Flujo::new(logged::new())
                    .with_hook(flujo::export::OpenTelemetryHook::console())
                    .run(1);
                println!("output={:?}", result.output.map_err(|e| e.to_string()));
                return;
            }
            if scenario == "pipeline" {
                let result = flujo::Flujo::new(logged::new())
                    .run_with(7, flujo::pipeline::RunOptions::new().request_id("req-7"));
                println!("output={:?}", result.output.map_err(|e| e.to_string()));
                return;
            }
            logfire::info!(
                event = "pipeline_start",
                pipeline = "default",
                models = "gpt-4,gpt-3.5-turbo",
                duration_ms = 1500,
                "starting"
            );
            logfire::debug!("debug detail");
            let _ = flaky();
            let _ = broken();
            drop(guard);
        }
    }
}

struct Output {
    stdout: String,
    stderr: String,
}

fn run_child(scenario: &str, env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(std::env::current_exe().expect("test binary path"));
    for var in [
        "RUST_LOG",
        "FLUJO_LOG_FORMAT",
        "TELEMETRY_EXPORT_ENABLED",
        "OTLP_EXPORT_ENABLED",
        "OTLP_ENDPOINT",
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        "OTEL_SERVICE_NAME",
        "OTEL_TRACES_SAMPLER_ARG",
        "OTEL_TRACES_SAMPLER",
        "OTEL_TRACES_EXPORTER",
        "OTEL_METRICS_EXPORTER",
        "OTEL_SDK_DISABLED",
        "LOGFIRE_API_KEY",
        "PROMETHEUS_EXPORT_ENABLED",
        "OTEL_EXPORTER_OTLP_PROTOCOL",
        "OTEL_EXPORTER_OTLP_HEADERS",
        "OTEL_EXPORTER_OTLP_COMPRESSION",
        "OTEL_EXPORTER_OTLP_TIMEOUT",
        "OTEL_BSP_MAX_QUEUE_SIZE",
        "OTEL_BSP_MAX_EXPORT_BATCH_SIZE",
        "OTEL_BSP_SCHEDULE_DELAY",
        "OTEL_SPAN_EVENT_COUNT_LIMIT",
        "FLUJO_PRICING_FILE",
        "FLUJO_PRICES_FILE",
        "FLUJO_GENAI_PRICES_DATA",
        "FLUJO_PRICING_STRICT",
        "FLUJO_COST_LEDGER",
        "FLUJO_DAILY_COST_LIMIT_USD",
    ] {
        command.env_remove(var);
    }
    command.env(CHILD, scenario).envs(env.iter().copied());
    let output = command.output().expect("child process runs");
    assert!(
        output.status.success(),
        "child {scenario} failed: {output:?}"
    );
    Output {
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

fn json_logs_have_the_guides_fields_and_the_step_context() {
    let out = run_child("logs", &[("FLUJO_LOG_FORMAT", "json")]);
    let lines: Vec<serde_json::Value> = out
        .stderr
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}")))
        .collect();

    let start = lines
        .iter()
        .find(|l| l["event"] == "pipeline_start")
        .expect("pipeline_start");
    assert_eq!(start["level"], "INFO");
    assert_eq!(start["pipeline"], "default");
    assert_eq!(start["models"], "gpt-4,gpt-3.5-turbo");
    assert_eq!(start["duration_ms"], 1500);
    assert_eq!(start["message"], "starting");
    assert!(start["timestamp"].as_str().unwrap().ends_with('Z'));
    assert!(
        !lines.iter().any(|l| l["event"] == "debug detail"),
        "RUST_LOG defaults to info"
    );

    let retry = lines
        .iter()
        .find(|l| l["level"] == "WARN")
        .expect("a WARN per retry");
    assert_eq!(retry["event"], "step attempt failed; retrying");
    assert_eq!(retry["step"], "flaky");
    assert_eq!(retry["attempt"], 1);
    assert_eq!(retry["delay_ms"], 5);
    assert_eq!(retry["error"], "rate limited");
    assert_eq!(
        retry["trace_id"].as_str().unwrap().len(),
        32,
        "logs carry the step's trace"
    );

    let inside = lines
        .iter()
        .find(|l| l["event"] == "inside the step")
        .unwrap();
    assert_eq!(inside["span_id"], retry["span_id"], "same step, same span");

    let failure = lines
        .iter()
        .find(|l| l["level"] == "ERROR")
        .expect("an ERROR on failure");
    assert_eq!(failure["event"], "step failed");
    assert_eq!(failure["step"], "broken");
    assert_eq!(failure["attempts"], 1);
    assert_eq!(failure["error.type"], "process::ModelError");
}

fn text_logs_are_readable_and_respect_rust_log() {
    let out = run_child("logs", &[("RUST_LOG", "warn")]);
    assert!(out.stderr.contains("WARN"), "{}", out.stderr);
    assert!(out.stderr.contains("step attempt failed; retrying"));
    assert!(out.stderr.contains("ERROR"));
    assert!(out.stderr.contains("step failed"));
    assert!(
        !out.stderr.contains("pipeline_start"),
        "INFO is filtered out by RUST_LOG=warn"
    );
    assert!(!out.stderr.trim_start().starts_with('{'), "text, not JSON");
}

fn a_bad_variable_is_an_error_naming_it_and_the_accepted_values() {
    // Bytes that are not UTF-8 are an error naming the variable, not "unset".
    {
        use std::os::unix::ffi::OsStrExt;
        for variable in ["OTLP_EXPORT_ENABLED", "FLUJO_COST_LEDGER"] {
            let output = Command::new(std::env::current_exe().unwrap())
                .env(CHILD, "logs")
                .env(variable, std::ffi::OsStr::from_bytes(b"true\xff"))
                .output()
                .unwrap();
            let stdout = String::from_utf8_lossy(&output.stdout);
            assert!(
                stdout.contains(&format!(
                    "init error: environment variable {variable} is not valid UTF-8"
                )),
                "{stdout}"
            );
        }
    }
    let out = run_child("main_error", &[("OTEL_TRACES_SAMPLER_ARG", "2")]);
    assert_eq!(
        out.stderr.trim(),
        "Error: environment variable OTEL_TRACES_SAMPLER_ARG=\"2\" is invalid: expected a \
         number from 0.0 to 1.0",
        "a main returning the error prints its message"
    );
    let out = run_child("logs", &[("TELEMETRY_EXPORT_ENABLED", "maybe")]);
    assert_eq!(
        out.stdout.trim(),
        "init error: environment variable TELEMETRY_EXPORT_ENABLED=\"maybe\" is invalid: \
         expected one of true, false, 1, 0, yes, no, on, off"
    );
    let out = run_child("logs", &[("OTLP_ENDPOINT", "collector:4317")]);
    assert!(
        out.stdout.contains("OTLP_ENDPOINT=\"collector:4317\""),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains("http:// or https:// URL"));
    let out = run_child("logs", &[("RUST_LOG", "info,[[")]);
    assert!(
        out.stdout.contains("RUST_LOG=\"info,[[\""),
        "{}",
        out.stdout
    );
    let out = run_child("logs", &[("FLUJO_LOG_FORMAT", "yaml")]);
    assert!(
        out.stdout.contains("expected text or json"),
        "{}",
        out.stdout
    );
}

fn an_exporter_that_is_not_compiled_in_names_the_feature() {
    if cfg!(feature = "otlp") {
        return;
    }
    let out = run_child("logs", &[("OTLP_EXPORT_ENABLED", "true")]);
    assert!(
        out.stdout
            .contains("OTLP_EXPORT_ENABLED=true needs flujo's `otlp` feature"),
        "{}",
        out.stdout
    );
}

/// The README quotes init errors; each quoted line is what flujo prints, to the character.
fn the_readmes_quoted_errors_are_what_flujo_prints() {
    let block = readme::quoted_after(
        "settings",
        "A bad value is an error that names it and what is accepted:",
    );
    let quoted: Vec<&str> = block.lines().collect();
    assert_eq!(quoted.len(), 3, "{block}");
    let printed = |scenario: &str, env: &[(&str, &str)]| {
        let out = run_child(scenario, env);
        out.stdout
            .lines()
            .find_map(|line| line.strip_prefix("init error: "))
            .unwrap_or_else(|| panic!("{scenario} {env:?} printed no init error: {}", out.stdout))
            .to_owned()
    };
    assert_eq!(
        printed("logs", &[("TELEMETRY_EXPORT_ENABLED", "maybe")]),
        quoted[0]
    );
    assert_eq!(printed("code_sampling_rate", &[]), quoted[1]);
    // A build with the feature has nothing to refuse.
    if !cfg!(feature = "otlp") {
        assert_eq!(
            printed("logs", &[("OTLP_EXPORT_ENABLED", "true")]),
            quoted[2]
        );
    }
}

fn standard_otel_variables_are_read() {
    let out = run_child(
        "settings",
        &[
            ("OTEL_SERVICE_NAME", "checkout"),
            ("OTEL_TRACES_SAMPLER", "parentbased_traceidratio"),
            ("OTEL_TRACES_SAMPLER_ARG", "0.25"),
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4317"),
            ("LOGFIRE_API_KEY", "lf-secret-value"),
        ],
    );
    assert!(
        out.stdout.contains("service_name: \"checkout\""),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains("sampling_rate: 0.25"));
    assert!(
        out.stdout
            .contains("traces: OtlpSignal { endpoint: \"http://127.0.0.1:4317\""),
        "{}",
        out.stdout
    );
    assert!(
        !out.stdout.contains("lf-secret-value"),
        "the token is never printed"
    );
}

fn a_span_keeps_the_events_otel_span_event_count_limit_says_and_counts_the_rest() {
    let out = run_child("events", &[("OTEL_SPAN_EVENT_COUNT_LIMIT", "3")]);
    assert!(out.stdout.contains("events=3 dropped=2"), "{}", out.stdout);
    let out = run_child("events", &[]);
    assert!(out.stdout.contains("events=5 dropped=0"), "{}", out.stdout);
}

fn cost_metrics_and_records_are_never_sampled() {
    let out = run_child("cost", &[("OTEL_TRACES_SAMPLER", "always_off")]);
    // 10 calls of 1_000 input * $0.15/M + 100 output * $0.60/M = 210 µ$ each.
    assert!(
        out.stdout
            .contains("spans=0 requests=10 input_tokens=10000 cost_nanos=2100000 records=11"),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains("acme called"), "not strict by default");
    assert!(
        out.stdout.contains("acme_cost=Some(None)"),
        "unpriced, not $0: {}",
        out.stdout
    );
    assert!(
        out.stderr.contains("model `acme-x` has no price"),
        "one WARN for the unpriced model: {}",
        out.stderr
    );
}

fn pricing_settings_come_from_the_environment() {
    let out = run_child("cost", &[("FLUJO_PRICING_STRICT", "true")]);
    assert!(
        out.stdout.contains(
            "acme refused: model `acme-x` has no price and strict pricing is on (FLUJO_PRICING_STRICT)"
        ),
        "{}",
        out.stdout
    );

    let dir = std::env::temp_dir().join(format!("flujo-prices-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let good = dir.join("acme.toml");
    std::fs::write(
        &good,
        "version = \"acme-7\"\n[[model]]\nname = \"acme-x\"\ninput = 0.25\noutput = 1\n",
    )
    .unwrap();
    let out = run_child(
        "cost",
        &[
            ("FLUJO_PRICING_FILE", good.to_str().unwrap()),
            ("FLUJO_PRICING_STRICT", "true"),
        ],
    );
    assert!(out.stdout.contains("acme called"), "{}", out.stdout);
    assert!(
        out.stdout
            .contains("acme_cost=Some(Some(Usd($0.250000000)))"),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains("+acme.toml@acme-7"), "{}", out.stdout);

    let bad = dir.join("bad.toml");
    std::fs::write(
        &bad,
        "[[model]]\nname = \"acme-x\"\ninput = \"cheap\"\noutput = 1\n",
    )
    .unwrap();
    let out = run_child("cost", &[("FLUJO_PRICING_FILE", bad.to_str().unwrap())]);
    assert!(
        out.stdout.contains(&format!(
            "init error: price file {}, line 3: field `input`",
            bad.display()
        )),
        "{}",
        out.stdout
    );
    // A newer genai-prices data file replaces the shipped data, without rebuilding.
    let data = dir.join("data.json");
    std::fs::write(
        &data,
        r#"{"genai_prices_version": "9.9.9", "providers": [{"id": "acme", "name": "Acme",
            "model_match": {"starts_with": "acme"},
            "models": [{"id": "acme-x", "match": {"equals": "acme-x"},
                        "prices": {"input_mtok": 0.5, "output_mtok": 2}}]}]}"#,
    )
    .unwrap();
    let out = run_child(
        "cost",
        &[("FLUJO_GENAI_PRICES_DATA", data.to_str().unwrap())],
    );
    assert!(
        out.stdout
            .contains("acme_cost=Some(Some(Usd($0.500000000)))"),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains("genai-prices-9.9.9"), "{}", out.stdout);
    assert!(
        out.stdout.contains("cost_nanos=0"),
        "gpt-4o-mini is not in that file: {}",
        out.stdout
    );
    let broken = dir.join("broken.json");
    std::fs::write(
        &broken,
        r#"{"providers": [{"id": "acme", "name": "Acme", "models": [{"id": "acme-x",
            "match": {"equals": "acme-x"}, "prices": {"input_mtok": 0.1234567}}]}]}"#,
    )
    .unwrap();
    // The variable's old name still works.
    let out = run_child("cost", &[("FLUJO_PRICES_FILE", broken.to_str().unwrap())]);
    assert!(
        out.stdout.contains(&format!(
            "init error: price file {}, line 1: provider acme, model acme-x, input_mtok: price 0.1234567: more than 6 decimals",
            broken.display()
        )),
        "{}",
        out.stdout
    );
    let out = run_child("cost", &[("FLUJO_DAILY_COST_LIMIT_USD", "lots")]);
    assert!(
        out.stdout.contains(
            "environment variable FLUJO_DAILY_COST_LIMIT_USD=\"lots\" is invalid: expected a non-negative amount of USD"
        ),
        "{}",
        out.stdout
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

fn pipeline_runs_put_request_id_and_pipeline_on_every_log_line() {
    // The console hook prints each run in the log format in force.
    let out = run_child("console", &[("FLUJO_LOG_FORMAT", "json")]);
    let run: serde_json::Value = out
        .stderr
        .lines()
        .filter_map(|line| serde_json::from_str(line).ok())
        .find(|line: &serde_json::Value| line["event"] == "flujo run")
        .unwrap_or_else(|| panic!("no JSON run line: {}", out.stderr));
    assert_eq!(run["pipeline"], "logged");
    let names: Vec<&str> = run["spans"]
        .as_array()
        .unwrap()
        .iter()
        .map(|span| span["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["invoke_workflow logged", "double", "double"]);
    assert_eq!(run["spans"][1]["depth"], 1);
    let out = run_child("console", &[]);
    assert!(out.stderr.contains("flujo run "), "{}", out.stderr);
    assert!(out.stderr.contains("  double [ok]"), "{}", out.stderr);

    let out = run_child("pipeline", &[("FLUJO_LOG_FORMAT", "json")]);
    assert!(out.stdout.contains("output=Ok(28)"), "{}", out.stdout);
    let lines: Vec<serde_json::Value> = out
        .stderr
        .lines()
        .filter_map(|line| serde_json::from_str(line).ok())
        .filter(|line: &serde_json::Value| line["event"] == "doubling")
        .collect();
    assert_eq!(lines.len(), 2, "{}", out.stderr);
    for line in &lines {
        assert_eq!(line["request_id"], "req-7");
        assert_eq!(line["pipeline"], "logged");
        assert!(line["trace_id"].is_string());
    }
    let own: Vec<serde_json::Value> = out
        .stderr
        .lines()
        .filter_map(|line| serde_json::from_str(line).ok())
        .filter(|line: &serde_json::Value| line["event"] == "handled upstream")
        .collect();
    assert_eq!(own.len(), 2, "{}", out.stderr);
    assert!(
        own.iter().all(|line| line["request_id"] == "app-request-9"),
        "the application's own request_id field is kept: {}",
        out.stderr
    );
    let out = run_child("pipeline", &[]);
    assert!(
        out.stderr
            .lines()
            .filter(|line| line.contains("doubling"))
            .all(|line| line.contains(" request_id=req-7 pipeline=logged")),
        "{}",
        out.stderr
    );
    for line in out
        .stderr
        .lines()
        .filter(|line| line.contains("handled upstream"))
    {
        assert_eq!(
            line.matches("request_id=").count(),
            1,
            "printed once: {line}"
        );
        assert!(
            line.contains("request_id=\"app-request-9\"")
                || line.contains("request_id=app-request-9"),
            "{line}"
        );
    }
}

/// A guard dropped by `let _ =` or at the end of a helper: the drop says so at once, and the
/// first call after it says what happened and the fix, once; a guard kept while calls run says
/// neither.
fn a_dropped_guard_is_said_once() {
    const AFTER: &str = "after telemetry was shut down";
    const EARLY: &str = "before anything was recorded";
    for scenario in ["guard_discarded", "guard_in_helper"] {
        let out = run_child(scenario, &[]);
        let after: Vec<&str> = out.stderr.lines().filter(|l| l.contains(AFTER)).collect();
        assert_eq!(after.len(), 1, "{scenario}: said once:\n{}", out.stderr);
        assert!(after[0].contains("WARN"), "{}", after[0]);
        // It names the first call that found telemetry gone, and the fix.
        assert!(after[0].contains("known_model"), "{}", after[0]);
        assert!(
            after[0].contains("let _telemetry = flujo::init_telemetry()"),
            "{}",
            after[0]
        );
        let early: Vec<&str> = out.stderr.lines().filter(|l| l.contains(EARLY)).collect();
        assert_eq!(early.len(), 1, "{scenario}:\n{}", out.stderr);
        assert!(early[0].contains("WARN"), "{}", early[0]);
        assert!(early[0].contains("let _telemetry"), "{}", early[0]);
        assert!(out.stdout.contains("output=Ok(4)"), "{}", out.stdout);
    }
    // The guard lives while the calls run, and is dropped after them.
    let out = run_child("logs", &[]);
    assert!(!out.stderr.contains(AFTER), "{}", out.stderr);
    assert!(!out.stderr.contains(EARLY), "{}", out.stderr);
}

/// A priced model's call over the token bound is said as what it is (clamped, not priced
/// because of the bound, the bound's real path), never as a model without a price.
fn a_call_over_the_token_bound_is_said_as_such_not_as_unpriced() {
    let out = run_child("out_of_bounds", &[]);
    let said: Vec<&str> = out
        .stderr
        .lines()
        .filter(|line| line.contains("more tokens than one call can use"))
        .collect();
    assert_eq!(said.len(), 1, "{}", out.stderr);
    for words in [
        "clamped",
        "not priced",
        "flujo::cost::MAX_TOKENS_PER_CALL",
        "gpt-4o-mini",
    ] {
        assert!(said[0].contains(words), "{words}: {}", said[0]);
    }
    assert!(
        !out.stderr.contains("has no price"),
        "gpt-4o-mini has a price: {}",
        out.stderr
    );
}

fn main() {
    if let Ok(scenario) = std::env::var(CHILD) {
        child(&scenario);
        return;
    }
    let tests: [(&str, fn()); 12] = [
        (
            "a_span_keeps_the_events_otel_span_event_count_limit_says_and_counts_the_rest",
            a_span_keeps_the_events_otel_span_event_count_limit_says_and_counts_the_rest,
        ),
        (
            "a_call_over_the_token_bound_is_said_as_such_not_as_unpriced",
            a_call_over_the_token_bound_is_said_as_such_not_as_unpriced,
        ),
        (
            "the_readmes_quoted_errors_are_what_flujo_prints",
            the_readmes_quoted_errors_are_what_flujo_prints,
        ),
        ("a_dropped_guard_is_said_once", a_dropped_guard_is_said_once),
        (
            "pipeline_runs_put_request_id_and_pipeline_on_every_log_line",
            pipeline_runs_put_request_id_and_pipeline_on_every_log_line,
        ),
        (
            "cost_metrics_and_records_are_never_sampled",
            cost_metrics_and_records_are_never_sampled,
        ),
        (
            "pricing_settings_come_from_the_environment",
            pricing_settings_come_from_the_environment,
        ),
        (
            "json_logs_have_the_guides_fields_and_the_step_context",
            json_logs_have_the_guides_fields_and_the_step_context,
        ),
        (
            "text_logs_are_readable_and_respect_rust_log",
            text_logs_are_readable_and_respect_rust_log,
        ),
        (
            "a_bad_variable_is_an_error_naming_it_and_the_accepted_values",
            a_bad_variable_is_an_error_naming_it_and_the_accepted_values,
        ),
        (
            "an_exporter_that_is_not_compiled_in_names_the_feature",
            an_exporter_that_is_not_compiled_in_names_the_feature,
        ),
        (
            "standard_otel_variables_are_read",
            standard_otel_variables_are_read,
        ),
    ];
    let mut failed = 0;
    for (name, test) in tests {
        let ok = std::panic::catch_unwind(test).is_ok();
        println!("test {name} ... {}", if ok { "ok" } else { "FAILED" });
        failed += usize::from(!ok);
    }
    println!(
        "\ntest result: {}. {} passed; {failed} failed; 0 ignored; 0 measured; 0 filtered out",
        if failed == 0 { "ok" } else { "FAILED" },
        tests.len() - failed
    );
    if failed > 0 {
        std::process::exit(1);
    }
}
