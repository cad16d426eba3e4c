//! The OpenTelemetry environment, against a real collector (rotel): each case runs a small
//! program (this test binary again, as a child process) under the variables of the
//! specification and checks what arrives at rotel, or that nothing does.

mod support;

use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

use flujo::{SpanContext, TokenUsage, pipeline_step, track_cost};
use support::{Rotel, TlsFront, WireLog, free_port};

const CHILD: &str = "FLUJO_TEST_OTEL_ENV_CHILD";
/// Set for a child that also makes a priced model call and prints the day's cost report.
const PRICED: &str = "FLUJO_TEST_OTEL_ENV_PRICED";
/// Set for a child that prints the settings in force.
const SETTINGS: &str = "FLUJO_TEST_OTEL_ENV_SETTINGS";
/// Set for a child that logs a line.
const LOG: &str = "FLUJO_TEST_OTEL_ENV_LOG";
/// Set for a child that continues a remote trace from headers and prints what it injects.
const PROPAGATE: &str = "FLUJO_TEST_OTEL_ENV_PROPAGATE";
/// The remote trace a [`PROPAGATE`] child continues.
const REMOTE_TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
/// Set for a child whose one span is [`retried`], instead of [`root`]'s three.
const RETRIED: &str = "FLUJO_TEST_OTEL_ENV_RETRIED";
/// Spans one child records: a step and its two child steps.
const SPANS: u64 = 3;

/// An attribute longer than the limits the cases set.
const NOTE: &str = "a note longer than the limit";

#[pipeline_step(fields(note = NOTE))]
fn leaf(n: u32) -> u32 {
    n + 1
}

#[pipeline_step]
fn root(n: u32) -> u32 {
    leaf(leaf(n))
}

static FAILURES: AtomicU32 = AtomicU32::new(0);

/// A step that fails twice before it answers: its span has two retry events, each with six
/// attributes.
#[pipeline_step(retries = 2, backoff = "fixed", backoff_ms = 1)]
fn retried() -> Result<u32, std::io::Error> {
    if FAILURES.fetch_add(1, Ordering::SeqCst) < 2 {
        Err(std::io::Error::other("busy"))
    } else {
        Ok(1)
    }
}

/// A priced model call (outside the steps: it adds no span to theirs).
#[track_cost(model = "gpt-4o-mini")]
fn priced_call() -> TokenUsage {
    TokenUsage::new(1_000, 100)
}

/// The child: telemetry from the environment, three spans, shutdown.
fn child() {
    match flujo::init_telemetry() {
        Ok(guard) => {
            if std::env::var_os(SETTINGS).is_some() {
                println!("SETTINGS {:?}", guard.settings());
            }
            if std::env::var_os(LOG).is_some() {
                tracing::info!(target: "checkout", order = 42, "payment retried");
            }
            if std::env::var_os(PROPAGATE).is_some() {
                let headers = [
                    (
                        "traceparent",
                        format!("00-{REMOTE_TRACE}-00f067aa0ba902b7-01"),
                    ),
                    ("tracestate", "congo=t61rcWkgMzE".to_owned()),
                    ("baggage", "tenant=acme,region=eu%2Dwest".to_owned()),
                ];
                let remote = SpanContext::extract(|name| {
                    headers
                        .iter()
                        .find(|(n, _)| *n == name)
                        .map(|(_, v)| v.as_str())
                });
                remote.in_scope(|| root(1));
                remote.inject_with(|name, value| println!("INJECT {name}={value}"));
                println!("BAGGAGE region={:?}", remote.baggage_entry("region"));
            } else if std::env::var_os(RETRIED).is_some() {
                retried().unwrap();
            } else {
                root(1);
            }
            if std::env::var_os(PRICED).is_some() {
                priced_call();
                let today = flujo::cost::utc_today();
                let report = flujo::cost::get_cost_report(today, today).unwrap();
                println!("COST requests={} {}", report.requests, report.total_cost);
            }
            drop(guard);
            println!("RAN");
        }
        Err(error) => println!("INIT ERROR: {error}"),
    }
}

/// Runs the child under `vars`; its stdout and stderr.
fn run(vars: &[(&str, String)]) -> (String, String) {
    let mut command = Command::new(std::env::current_exe().unwrap());
    command
        .args([
            "--exact",
            "the_specifications_variables_decide_what_arrives",
            "--nocapture",
        ])
        .env(CHILD, "1");
    for variable in [
        "RUST_LOG",
        "OTLP_EXPORT_ENABLED",
        "OTLP_ENDPOINT",
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
        "OTEL_EXPORTER_OTLP_PROTOCOL",
        "OTEL_TRACES_EXPORTER",
        "OTEL_TRACES_SAMPLER",
        "OTEL_TRACES_SAMPLER_ARG",
        "OTEL_SDK_DISABLED",
        "OTEL_SERVICE_NAME",
        "OTEL_RESOURCE_ATTRIBUTES",
        "OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT",
        "OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT",
        "OTEL_ATTRIBUTE_COUNT_LIMIT",
        "OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT",
        "OTEL_SPAN_EVENT_COUNT_LIMIT",
        "OTEL_EVENT_ATTRIBUTE_COUNT_LIMIT",
        "OTEL_PROPAGATORS",
        "OTEL_METRICS_EXPORTER",
        "OTEL_LOGS_EXPORTER",
    ] {
        command.env_remove(variable);
    }
    // Whatever the parent has of the OTLP exporter's variables.
    for (variable, _) in std::env::vars() {
        if variable.starts_with("OTEL_EXPORTER_OTLP_") || variable.starts_with("OTEL_BSP_") {
            command.env_remove(variable);
        }
    }
    for (key, value) in vars {
        command.env(key, value);
    }
    let output = command.output().expect("the child runs");
    let (stdout, stderr) = (
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    );
    assert!(output.status.success(), "{stdout}\n{stderr}");
    (stdout, stderr)
}

/// Runs the child exporting over OTLP to a rotel that logs every span, with `vars` besides;
/// what rotel logged once the child's spans arrived.
fn exported(vars: &[(&str, String)]) -> String {
    exported_spans(vars, SPANS as usize)
}

/// What rotel received from a child run under `vars` that records `spans` spans.
fn exported_spans(vars: &[(&str, String)], spans: usize) -> String {
    let rotel = Rotel::start();
    let endpoint = format!("http://127.0.0.1:{}", rotel.grpc);
    let mut all = vec![
        ("OTLP_EXPORT_ENABLED", "true".to_owned()),
        ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint),
    ];
    all.extend(vars.iter().cloned());
    run(&all);
    rotel.wait_for_spans(spans)
}

#[test]
fn the_specifications_variables_decide_what_arrives() {
    if std::env::var_os(CHILD).is_some() {
        return child();
    }
    let closed = format!("http://127.0.0.1:{}", free_port());
    let case = |name: &str, vars: &[(&str, String)], arrive: bool| {
        let rotel = Rotel::start_counting_on(free_port(), free_port());
        let vars: Vec<(&str, String)> = vars
            .iter()
            .map(|(k, v)| {
                let v = v
                    .replace("{grpc}", &format!("http://127.0.0.1:{}", rotel.grpc))
                    .replace("{http}", &format!("http://127.0.0.1:{}", rotel.http));
                (*k, v)
            })
            .collect();
        let (stdout, stderr) = run(&vars);
        assert!(stdout.contains("RAN"), "{name}: {stdout}\n{stderr}");
        let received = if arrive {
            rotel.wait_for_received(SPANS)
        } else {
            // The child has shut down (its export flushed) before it exited: what was sent has
            // arrived by now.
            std::thread::sleep(std::time::Duration::from_millis(300));
            rotel.received_spans()
        };
        println!("{name}: {received} spans arrived");
        assert_eq!(
            received,
            if arrive { SPANS } else { 0 },
            "{name}:\n{stderr}"
        );
        stderr
    };
    let s = |v: &str| v.to_owned();
    // OTEL_TRACES_EXPORTER=otlp switches OTLP export on (the guide's OTLP_EXPORT_ENABLED is
    // not needed), to the generic endpoint.
    case(
        "OTEL_TRACES_EXPORTER=otlp",
        &[
            ("OTEL_TRACES_EXPORTER", s("otlp")),
            ("OTEL_EXPORTER_OTLP_ENDPOINT", s("{grpc}")),
        ],
        true,
    );
    // OTEL_SDK_DISABLED=true: nothing exported, whatever else says; cost accounting goes on.
    let stderr = case(
        "OTEL_SDK_DISABLED=true",
        &[
            (PRICED, s("1")),
            ("OTEL_SDK_DISABLED", s("true")),
            ("OTEL_TRACES_EXPORTER", s("otlp")),
            ("OTLP_EXPORT_ENABLED", s("true")),
            ("OTEL_EXPORTER_OTLP_ENDPOINT", s("{grpc}")),
        ],
        false,
    );
    assert!(stderr.contains("OTEL_SDK_DISABLED=true"), "said: {stderr}");
    let (stdout, _) = run(&[(PRICED, s("1")), ("OTEL_SDK_DISABLED", s("true"))]);
    assert!(
        stdout.contains("COST requests=1 $0.00021"),
        "cost records go on without export: {stdout}"
    );
    // The sampler.
    case(
        "OTEL_TRACES_SAMPLER=always_off",
        &[
            ("OTLP_EXPORT_ENABLED", s("true")),
            ("OTEL_TRACES_SAMPLER", s("always_off")),
            ("OTEL_EXPORTER_OTLP_ENDPOINT", s("{grpc}")),
        ],
        false,
    );
    case(
        "OTEL_TRACES_SAMPLER=parentbased_traceidratio, OTEL_TRACES_SAMPLER_ARG=1",
        &[
            ("OTLP_EXPORT_ENABLED", s("true")),
            ("OTEL_TRACES_SAMPLER", s("parentbased_traceidratio")),
            ("OTEL_TRACES_SAMPLER_ARG", s("1")),
            ("OTEL_EXPORTER_OTLP_ENDPOINT", s("{grpc}")),
        ],
        true,
    );
    // A signal's endpoint is used as given (its path is not appended to), over the generic one.
    case(
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
        &[
            ("OTLP_EXPORT_ENABLED", s("true")),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", s("http/protobuf")),
            ("OTEL_EXPORTER_OTLP_ENDPOINT", closed.clone()),
            ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", s("{http}/v1/traces")),
        ],
        true,
    );
    // The standard's variable and the guide's disagree: the standard's wins, one WARN names both.
    let stderr = case(
        "OTEL_TRACES_EXPORTER=none with OTLP_EXPORT_ENABLED=true",
        &[
            ("OTEL_TRACES_EXPORTER", s("none")),
            ("OTLP_EXPORT_ENABLED", s("true")),
            ("OTEL_EXPORTER_OTLP_ENDPOINT", s("{grpc}")),
        ],
        false,
    );
    let said: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains("OTEL_TRACES_EXPORTER=none") && l.contains("OTLP_EXPORT_ENABLED"))
        .collect();
    assert_eq!(said.len(), 1, "{stderr}");
    assert!(said[0].contains("WARN"), "{}", said[0]);
    // Arize Phoenix files spans by `openinference.project.name`: the service's name, unless
    // OTEL_RESOURCE_ATTRIBUTES names one (read too: any other resource attribute arrives).
    for (resource, project) in [
        (None, "checkout"),
        (
            Some("openinference.project.name=support-bot,team=payments"),
            "support-bot",
        ),
    ] {
        let mut vars = vec![("OTEL_SERVICE_NAME", s("checkout"))];
        if let Some(resource) = resource {
            vars.push(("OTEL_RESOURCE_ATTRIBUTES", s(resource)));
        }
        let output = exported(&vars);
        assert!(
            output.contains(&format!("-> openinference.project.name: Str({project})")),
            "{output}"
        );
        assert!(
            output.contains("-> service.name: Str(checkout)"),
            "{output}"
        );
        if resource.is_some() {
            assert!(output.contains("-> team: Str(payments)"), "{output}");
        }
    }
    // Attribute limits: values cut to a length, spans cut to a count of attributes (the
    // step's own first, then its fields).
    let output = exported(&[("OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT", s("6"))]);
    assert!(output.contains("-> note: Str(a note)"), "{output}");
    assert!(!output.contains(NOTE), "{output}");
    let output = exported(&[("OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT", s("2"))]);
    assert!(output.contains("-> flujo.step.name: Str(leaf)"), "{output}");
    assert!(!output.contains("-> note:"), "{output}");
    assert!(!output.contains("-> code.function.name:"), "{output}");
    // Event limits: a span keeps its first events, an event its first attributes.
    let output = exported_spans(
        &[
            (RETRIED, s("1")),
            ("OTEL_SPAN_EVENT_COUNT_LIMIT", s("1")),
            ("OTEL_EVENT_ATTRIBUTE_COUNT_LIMIT", s("2")),
        ],
        1,
    );
    assert!(
        output.contains("-> flujo.retry.attempt: Int(1)"),
        "{output}"
    );
    assert!(output.contains("-> DroppedAttributesCount: 4"), "{output}");
    assert!(
        output.contains("-> flujo.retry.reason: Str(error)"),
        "{output}"
    );
    assert!(
        !output.contains("-> flujo.retry.attempt: Int(2)"),
        "{output}"
    );
    assert!(!output.contains("-> flujo.retry.delay_ms:"), "{output}");
    // Values the specification does not allow are errors naming the variable.
    for (variable, bad) in [
        ("OTEL_TRACES_SAMPLER", "sometimes"),
        ("OTEL_TRACES_EXPORTER", "jaeger"),
        ("OTEL_SDK_DISABLED", "perhaps"),
        ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "collector:4317"),
    ] {
        let (stdout, _) = run(&[(variable, s(bad))]);
        assert!(
            stdout.contains("INIT ERROR") && stdout.contains(variable),
            "{variable}={bad}: {stdout}"
        );
    }
}

/// Runs the child exporting spans over OTLP/HTTP to `endpoint` with `vars` besides.
fn http_vars(endpoint: String, vars: &[(&'static str, String)]) -> Vec<(&'static str, String)> {
    let mut all = vec![
        ("OTEL_TRACES_EXPORTER", "otlp".to_owned()),
        ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf".to_owned()),
        ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint),
    ];
    all.extend(vars.iter().cloned());
    all
}

#[test]
fn each_signals_own_variables_win_over_the_generic_ones() {
    let s = |v: &str| v.to_owned();
    // Headers: the signal's own set replaces the generic one (percent-decoded), seen on the
    // wire in front of rotel.
    let rotel = Rotel::start();
    let wire = WireLog::start(rotel.http);
    run(&http_vars(
        format!("http://127.0.0.1:{}", wire.port),
        &[
            ("OTEL_EXPORTER_OTLP_HEADERS", s("x-generic=1")),
            (
                "OTEL_EXPORTER_OTLP_TRACES_HEADERS",
                s("x-tenant=acme%20corp,authorization=Bearer%20sk-test"),
            ),
            ("OTEL_EXPORTER_OTLP_TRACES_COMPRESSION", s("gzip")),
        ],
    ));
    let output = rotel.wait_for_spans(SPANS as usize);
    assert_eq!(output.matches("Span #").count(), SPANS as usize, "{output}");
    let wire = wire.text().to_ascii_lowercase();
    assert!(wire.contains("post /v1/traces "), "{wire}");
    assert!(wire.contains("x-tenant: acme corp"), "{wire}");
    assert!(wire.contains("authorization: bearer sk-test"), "{wire}");
    assert!(wire.contains("content-encoding: gzip"), "{wire}");
    assert!(
        !wire.contains("x-generic"),
        "the signal's headers replace the generic: {wire}"
    );

    // Protocol: the traces' own over the generic one; the generic endpoint gets the signal's
    // path appended over HTTP.
    let rotel = Rotel::start();
    run(&[
        ("OTEL_TRACES_EXPORTER", s("otlp")),
        ("OTEL_EXPORTER_OTLP_PROTOCOL", s("grpc")),
        ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", s("http/protobuf")),
        (
            "OTEL_EXPORTER_OTLP_ENDPOINT",
            format!("http://127.0.0.1:{}", rotel.http),
        ),
    ]);
    let output = rotel.wait_for_spans(SPANS as usize);
    assert_eq!(output.matches("Span #").count(), SPANS as usize, "{output}");

    // A base URL with a path: the signal's path is appended to it (the specification's rule
    // for OTEL_EXPORTER_OTLP_ENDPOINT), seen on the wire.
    let rotel = Rotel::start();
    let wire = WireLog::start(rotel.http);
    run(&http_vars(
        format!("http://127.0.0.1:{}/otlp", wire.port),
        &[],
    ));
    std::thread::sleep(std::time::Duration::from_millis(300));
    let wire = wire.text().to_ascii_lowercase();
    assert!(wire.contains("post /otlp/v1/traces "), "{wire}");

    // The settings no receiver shows, as the child's program has them in force.
    let (stdout, _) = run(&[
        (SETTINGS, s("1")),
        ("OTEL_EXPORTER_OTLP_TIMEOUT", s("3000")),
        ("OTEL_EXPORTER_OTLP_METRICS_TIMEOUT", s("1500")),
        (
            "OTEL_EXPORTER_OTLP_LOGS_ENDPOINT",
            s("http://127.0.0.1:1/logs"),
        ),
        ("OTEL_BSP_MAX_QUEUE_SIZE", s("4096")),
        ("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", s("256")),
        ("OTEL_BSP_SCHEDULE_DELAY", s("250")),
        ("OTEL_BSP_EXPORT_TIMEOUT", s("7000")),
        ("OTEL_METRIC_EXPORT_INTERVAL", s("15000")),
    ]);
    let settings = stdout
        .lines()
        .find(|line| line.starts_with("SETTINGS "))
        .unwrap_or_else(|| panic!("{stdout}"));
    for shown in [
        "traces: OtlpSignal { endpoint: \"http://localhost:4317\"",
        "timeout: 3s",
        "timeout: 1.5s",
        "logs: OtlpSignal { endpoint: \"http://127.0.0.1:1/logs\"",
        "max_queue_size: 4096",
        "max_export_batch_size: 256",
        "schedule_delay: 250ms",
        "export_timeout: 7s",
        "metrics_export_interval: 15s",
    ] {
        assert!(settings.contains(shown), "{shown}: {settings}");
    }

    // Values the specification does not allow, per signal too, are errors naming them.
    for (variable, bad) in [
        ("OTEL_EXPORTER_OTLP_METRICS_PROTOCOL", "thrift"),
        ("OTEL_EXPORTER_OTLP_LOGS_COMPRESSION", "zstd"),
        ("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", "0"),
        ("OTEL_EXPORTER_OTLP_TRACES_HEADERS", "novalue"),
        ("OTEL_BSP_MAX_QUEUE_SIZE", "-1"),
        ("OTEL_BSP_SCHEDULE_DELAY", "soon"),
        ("OTEL_BSP_EXPORT_TIMEOUT", "0"),
        ("OTEL_METRIC_EXPORT_INTERVAL", "10"),
        ("OTEL_METRICS_EXPORTER", "statsd"),
        ("OTEL_LOGS_EXPORTER", "otlp,none"),
        ("OTEL_PROPAGATORS", "b3"),
        ("OTEL_RESOURCE_ATTRIBUTES", "team"),
    ] {
        let (stdout, _) = run(&[(variable, s(bad))]);
        assert!(
            stdout.contains("INIT ERROR") && stdout.contains(variable),
            "{variable}={bad}: {stdout}"
        );
    }
    // A secret is never shown, even in its error.
    let (stdout, _) = run(&[(
        "OTEL_EXPORTER_OTLP_TRACES_HEADERS",
        s("authorization=Bearer sk-live-SECRET,broken"),
    )]);
    assert!(stdout.contains("INIT ERROR"), "{stdout}");
    assert!(!stdout.contains("SECRET"), "{stdout}");
}

#[test]
fn a_collector_behind_mutual_tls_gets_spans_only_with_the_client_certificate() {
    let s = |v: &str| v.to_owned();
    let rotel = Rotel::start_counting_on(free_port(), free_port());
    let front = TlsFront::start_mutual(rotel.http);
    let endpoint = format!("https://localhost:{}", front.port);
    let ca = front.ca().display().to_string();
    // Without the client's certificate the handshake fails: nothing arrives (and the
    // program runs on).
    let (stdout, _) = run(&http_vars(
        endpoint.clone(),
        &[
            ("OTEL_EXPORTER_OTLP_CERTIFICATE", ca.clone()),
            ("FLUJO_SHUTDOWN_TIMEOUT_MS", s("1500")),
        ],
    ));
    assert!(stdout.contains("RAN"), "{stdout}");
    assert_eq!(rotel.received_spans(), 0);
    // With it (the traces' own variables over the generic ones), they arrive.
    let (stdout, stderr) = run(&http_vars(
        endpoint,
        &[
            ("OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE", ca),
            (
                "OTEL_EXPORTER_OTLP_TRACES_CLIENT_KEY",
                front.client_key().display().to_string(),
            ),
            (
                "OTEL_EXPORTER_OTLP_TRACES_CLIENT_CERTIFICATE",
                front.client_certificate().display().to_string(),
            ),
            // The generic ones, never read: the traces' own win.
            (
                "OTEL_EXPORTER_OTLP_CLIENT_KEY",
                s("/nonexistent/generic.key"),
            ),
            (
                "OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE",
                s("/nonexistent/generic.pem"),
            ),
        ],
    ));
    assert!(stdout.contains("RAN"), "{stdout}");
    assert_eq!(rotel.wait_for_received(SPANS), SPANS, "{stderr}");
    // A key without its certificate is an error naming both.
    let (stdout, _) = run(&[(
        "OTEL_EXPORTER_OTLP_CLIENT_KEY",
        front.client_key().display().to_string(),
    )]);
    assert!(
        stdout.contains("INIT ERROR") && stdout.contains("OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE"),
        "{stdout}"
    );
}

#[test]
fn logs_and_metrics_go_where_their_exporter_variables_say() {
    let s = |v: &str| v.to_owned();
    // OTEL_LOGS_EXPORTER=otlp: the application's log lines arrive as OTLP log records, with
    // their fields.
    let rotel = Rotel::start_logging(&["logs"]);
    run(&[
        (LOG, s("1")),
        ("OTEL_LOGS_EXPORTER", s("otlp")),
        (
            "OTEL_EXPORTER_OTLP_LOGS_ENDPOINT",
            format!("http://127.0.0.1:{}", rotel.grpc),
        ),
    ]);
    let output = rotel.wait_for("payment retried");
    assert!(output.contains("payment retried"), "{output}");
    assert!(output.contains("order"), "{output}");
    // The console exporters: spans and metrics on stdout.
    let (stdout, _) = run(&[
        ("OTEL_TRACES_EXPORTER", s("console")),
        ("OTEL_METRICS_EXPORTER", s("console")),
    ]);
    let named = |name: &str| {
        stdout.lines().any(|line| {
            let line = line.trim();
            line.starts_with("Name ") && line.ends_with(&format!(": {name}"))
        })
    };
    assert!(named("leaf") && named("root"), "{stdout}");
    assert!(named("flujo_step_calls_total"), "{stdout}");
}

#[test]
fn otel_propagators_decide_which_headers_are_read_and_written() {
    let s = |v: &str| v.to_owned();
    // The default (tracecontext,baggage): the steps join the remote trace, and both go on.
    let rotel = Rotel::start();
    let (stdout, _) = run(&[
        (PROPAGATE, s("1")),
        ("OTEL_TRACES_EXPORTER", s("otlp")),
        (
            "OTEL_EXPORTER_OTLP_ENDPOINT",
            format!("http://127.0.0.1:{}", rotel.grpc),
        ),
    ]);
    let output = rotel.wait_for_spans(SPANS as usize);
    let spans = support::parse_spans(&output);
    assert_eq!(spans.len(), SPANS as usize, "{output}");
    assert!(
        spans.iter().all(|span| span.trace_id == REMOTE_TRACE),
        "{output}"
    );
    assert!(
        stdout.contains(&format!(
            "INJECT traceparent=00-{REMOTE_TRACE}-00f067aa0ba902b7-01"
        )),
        "{stdout}"
    );
    assert!(
        stdout.contains("INJECT tracestate=congo=t61rcWkgMzE"),
        "{stdout}"
    );
    assert!(
        stdout.contains("INJECT baggage=tenant=acme,region=eu%2Dwest"),
        "{stdout}"
    );
    assert!(
        stdout.contains("BAGGAGE region=Some(\"eu-west\")"),
        "{stdout}"
    );
    // tracecontext alone: no baggage read nor written.
    let (stdout, _) = run(&[(PROPAGATE, s("1")), ("OTEL_PROPAGATORS", s("tracecontext"))]);
    assert!(stdout.contains("INJECT traceparent="), "{stdout}");
    assert!(!stdout.contains("INJECT baggage="), "{stdout}");
    assert!(stdout.contains("BAGGAGE region=None"), "{stdout}");
    // baggage alone: a new trace here, which carries the baggage on.
    let (stdout, _) = run(&[(PROPAGATE, s("1")), ("OTEL_PROPAGATORS", s("baggage"))]);
    assert!(!stdout.contains("INJECT traceparent="), "{stdout}");
    assert!(stdout.contains("INJECT baggage=tenant=acme"), "{stdout}");
    // none: nothing.
    let (stdout, _) = run(&[(PROPAGATE, s("1")), ("OTEL_PROPAGATORS", s("none"))]);
    assert!(!stdout.contains("INJECT"), "{stdout}");
}

#[test]
fn an_unknown_flujo_variable_is_one_warn_naming_the_nearest_known_ones() {
    let (stdout, stderr) = run(&[("FLUJO_PRICE_FILE", "prices.toml".to_owned())]);
    assert!(stdout.contains("RAN"), "{stdout}");
    let said: Vec<&str> = stderr
        .lines()
        .filter(|line| line.contains("FLUJO_PRICE_FILE"))
        .collect();
    assert_eq!(said.len(), 1, "{stderr}");
    assert!(said[0].contains("WARN"), "{}", said[0]);
    assert!(said[0].contains("FLUJO_PRICING_FILE"), "{}", said[0]);
    assert!(said[0].contains("FLUJO_GENAI_PRICES_DATA"), "{}", said[0]);
}
