//! The OpenTelemetry environment, against a real collector (rotel): each case runs a small
//! program (this test binary again, as a child process) under the variables of the
//! specification and checks what arrives at rotel, or that nothing does.

mod support;

use std::process::Command;

use flujo::{TokenUsage, pipeline_step, track_cost};
use support::{Rotel, free_port};

const CHILD: &str = "FLUJO_OTEL_ENV_CHILD";
/// Set for a child that also makes a priced model call and prints the day's cost report.
const PRICED: &str = "FLUJO_OTEL_ENV_PRICED";
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

/// A priced model call (outside the steps: it adds no span to theirs).
#[track_cost(model = "gpt-4o-mini")]
fn priced_call() -> TokenUsage {
    TokenUsage::new(1_000, 100)
}

/// The child: telemetry from the environment, three spans, shutdown.
fn child() {
    match flujo::init_telemetry() {
        Ok(guard) => {
            root(1);
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
    ] {
        command.env_remove(variable);
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
    let rotel = Rotel::start();
    let endpoint = format!("http://127.0.0.1:{}", rotel.grpc);
    let mut all = vec![
        ("OTLP_EXPORT_ENABLED", "true".to_owned()),
        ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint),
    ];
    all.extend(vars.iter().cloned());
    run(&all);
    rotel.wait_for_spans(SPANS as usize)
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
