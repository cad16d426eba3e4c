//! The resolution of settings: precedence, bounds, errors, redaction.

use std::time::Duration;

use flujo_pricing::Usd;

use super::groups::GROUPS;
use super::spans::MAX_QUEUE_SIZE;
use super::*;
use crate::accounting::budget::WhenUnreachable;
use crate::core::genai::GenAiConventions;
use crate::ledger::{LedgerLocation, MAX_COST_LEDGER_BUFFER};

fn env(pairs: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
    move |name| {
        pairs
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| (*v).to_owned())
    }
}

fn error_for(variable: &'static str, value: &'static str) -> TelemetryError {
    TelemetryConfig::default()
        .resolve_from(move |name: &str| (name == variable).then(|| value.to_owned()))
        .unwrap_err()
}

#[test]
fn an_error_about_a_secret_bearing_variable_never_echoes_its_value() {
    for bad in [
        "authorization=Bearer sk-live-SECRET,broken",
        "authorization=Bearer%2sk-live-SECRET",
        "x-api-key=sk-live-SECRET%",
    ] {
        let error = error_for("OTEL_EXPORTER_OTLP_HEADERS", bad);
        let shown = format!("{error} {error:?}");
        assert!(!shown.contains("SECRET"), "{shown}");
        assert!(shown.contains("OTEL_EXPORTER_OTLP_HEADERS"), "{shown}");
    }
}

#[test]
fn otel_traces_sampler_names_the_sampler_and_its_argument_applies_only_to_ratios() {
    let rate = |pairs: &'static [(&'static str, &'static str)]| {
        TelemetryConfig::default()
            .resolve_from(env(pairs))
            .unwrap()
            .sampling_rate
    };
    assert_eq!(rate(&[("OTEL_TRACES_SAMPLER", "always_off")]), 0.0);
    assert_eq!(
        rate(&[("OTEL_TRACES_SAMPLER", "parentbased_always_off")]),
        0.0
    );
    assert_eq!(rate(&[("OTEL_TRACES_SAMPLER", "ALWAYS_ON")]), 1.0);
    assert_eq!(
        rate(&[("OTEL_TRACES_SAMPLER", "parentbased_always_on")]),
        1.0
    );
    assert_eq!(
        rate(&[
            ("OTEL_TRACES_SAMPLER", "traceidratio"),
            ("OTEL_TRACES_SAMPLER_ARG", "0.5")
        ]),
        0.5
    );
    // A ratio sampler without its argument samples everything (the specification's
    // default argument), and an argument without a ratio sampler is not used, and said.
    assert_eq!(rate(&[("OTEL_TRACES_SAMPLER", "traceidratio")]), 1.0);
    let settings = TelemetryConfig::default()
        .resolve_from(env(&[("OTEL_TRACES_SAMPLER_ARG", "0.1")]))
        .unwrap();
    assert_eq!(settings.sampling_rate, 1.0);
    assert!(
        settings
            .notices
            .iter()
            .any(|n| n.text.contains("OTEL_TRACES_SAMPLER_ARG")),
        "{:?}",
        settings.notices
    );
    // Code wins.
    let settings = TelemetryConfig::builder()
        .sampling_rate(0.3)
        .resolve_from(env(&[("OTEL_TRACES_SAMPLER", "always_off")]))
        .unwrap();
    assert_eq!(settings.sampling_rate, 0.3);
    for bad in ["sometimes", "jaeger_remote"] {
        let error = error_for("OTEL_TRACES_SAMPLER", bad).to_string();
        assert!(
            error.contains("OTEL_TRACES_SAMPLER") && error.contains("parentbased_traceidratio"),
            "{error}"
        );
    }
}

#[test]
fn otel_sdk_disabled_switches_every_export_off_whatever_else_says() {
    let settings = TelemetryConfig::builder()
        .export_otlp(true)
        .export_prometheus(true)
        .resolve_from(env(&[
            ("OTEL_SDK_DISABLED", "true"),
            ("OTLP_EXPORT_ENABLED", "true"),
            ("TELEMETRY_EXPORT_ENABLED", "true"),
            ("OTEL_METRICS_EXPORTER", "otlp"),
        ]))
        .unwrap();
    assert!(settings.exporters.sdk_disabled);
    assert!(!settings.exporters.otlp_traces && !settings.exporters.prometheus);
    assert!(!settings.exporters.logfire && !settings.exporters.otlp_metrics);
    assert!(
        settings
            .notices
            .iter()
            .any(|n| n.text.contains("OTEL_SDK_DISABLED"))
    );
    let resolved = TelemetryConfig::default().resolve_from(env(&[
        ("OTEL_SDK_DISABLED", "false"),
        ("OTLP_EXPORT_ENABLED", "1"),
    ]));
    if cfg!(feature = "otlp") {
        let settings = resolved.unwrap();
        assert!(!settings.exporters.sdk_disabled && settings.exporters.otlp_traces);
    } else {
        let error = resolved.unwrap_err().to_string();
        assert!(error.contains("OTLP_EXPORT_ENABLED"), "{error}");
    }
    let error = error_for("OTEL_SDK_DISABLED", "maybe").to_string();
    assert!(error.contains("OTEL_SDK_DISABLED"), "{error}");
}

#[test]
fn otel_traces_exporter_switches_otlp_export_and_wins_over_the_guides_variable() {
    let settings = |pairs: &'static [(&'static str, &'static str)]| {
        TelemetryConfig::default().resolve_from(env(pairs)).unwrap()
    };
    let otlp = TelemetryConfig::default().resolve_from(env(&[("OTEL_TRACES_EXPORTER", "otlp")]));
    if cfg!(feature = "otlp") {
        assert!(otlp.unwrap().exporters.otlp_traces);
    } else {
        // Without the feature, the error names the variable that asked for it.
        let error = otlp.unwrap_err().to_string();
        assert!(error.contains("OTEL_TRACES_EXPORTER=otlp"), "{error}");
    }
    assert!(
        !settings(&[("OTEL_TRACES_EXPORTER", "none")])
            .exporters
            .otlp_traces
    );
    let both = settings(&[
        ("OTEL_TRACES_EXPORTER", "none"),
        ("OTLP_EXPORT_ENABLED", "true"),
    ]);
    assert!(!both.exporters.otlp_traces, "the standard's variable wins");
    let said: Vec<_> = both
        .notices
        .iter()
        .filter(|n| {
            n.text.contains("OTEL_TRACES_EXPORTER") && n.text.contains("OTLP_EXPORT_ENABLED")
        })
        .collect();
    assert_eq!(said.len(), 1, "one WARN naming both: {:?}", both.notices);
    // Code wins over both.
    let code = TelemetryConfig::builder()
        .export_otlp(true)
        .resolve_from(env(&[("OTEL_TRACES_EXPORTER", "none")]));
    assert_eq!(
        code.map(|s| s.exporters.otlp_traces).ok(),
        cfg!(feature = "otlp").then_some(true)
    );
    let prometheus =
        TelemetryConfig::default().resolve_from(env(&[("OTEL_METRICS_EXPORTER", "prometheus")]));
    if cfg!(feature = "prometheus") {
        assert!(prometheus.unwrap().exporters.prometheus);
    } else {
        let error = prometheus.unwrap_err().to_string();
        assert!(
            error.contains("OTEL_METRICS_EXPORTER=prometheus"),
            "{error}"
        );
    }
    for bad in ["zipkin,otlp", "jaeger"] {
        let error = error_for("OTEL_TRACES_EXPORTER", bad).to_string();
        assert!(
            error.contains("OTEL_TRACES_EXPORTER") && error.contains("otlp"),
            "{error}"
        );
    }
}

#[test]
fn a_signal_endpoint_is_used_as_given_and_wins_over_the_generic_one() {
    let settings = TelemetryConfig::default()
        .resolve_from(env(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318"),
            (
                "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
                "http://127.0.0.1:9999/custom/traces",
            ),
            (
                "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT",
                "http://127.0.0.1:9998",
            ),
        ]))
        .unwrap();
    assert_eq!(
        settings.otlp.traces.endpoint,
        "http://127.0.0.1:9999/custom/traces"
    );
    assert_eq!(settings.otlp.metrics.endpoint, "http://127.0.0.1:9998");
    let error = error_for("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "collector:4317").to_string();
    assert!(
        error.contains("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"),
        "{error}"
    );
}

#[test]
fn attribute_limits_come_from_the_span_variable_then_the_generic_one() {
    let defaults = TelemetryConfig::default().resolve_from(env(&[])).unwrap();
    assert_eq!(
        defaults.spans.attribute_value_length_limit, None,
        "no limit by default"
    );
    assert_eq!(
        defaults.spans.span_attribute_count_limit, 128,
        "the specification's default"
    );
    let generic = TelemetryConfig::default()
        .resolve_from(env(&[
            ("OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT", "40"),
            ("OTEL_ATTRIBUTE_COUNT_LIMIT", "12"),
        ]))
        .unwrap();
    assert_eq!(generic.spans.attribute_value_length_limit, Some(40));
    assert_eq!(generic.spans.span_attribute_count_limit, 12);
    let span = TelemetryConfig::default()
        .resolve_from(env(&[
            ("OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT", "40"),
            ("OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT", "8"),
            ("OTEL_ATTRIBUTE_COUNT_LIMIT", "12"),
            ("OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT", "3"),
        ]))
        .unwrap();
    assert_eq!(span.spans.attribute_value_length_limit, Some(8));
    assert_eq!(span.spans.span_attribute_count_limit, 3);
    // Events: the specification's defaults, the generic count for their attributes unless
    // the event variable says.
    assert_eq!(defaults.spans.span_event_count_limit, 128);
    assert_eq!(defaults.spans.event_attribute_count_limit, 128);
    assert_eq!(generic.spans.event_attribute_count_limit, 12);
    let events = TelemetryConfig::default()
        .resolve_from(env(&[
            ("OTEL_ATTRIBUTE_COUNT_LIMIT", "12"),
            ("OTEL_EVENT_ATTRIBUTE_COUNT_LIMIT", "5"),
            ("OTEL_SPAN_EVENT_COUNT_LIMIT", "7"),
        ]))
        .unwrap();
    assert_eq!(events.spans.event_attribute_count_limit, 5);
    assert_eq!(events.spans.span_event_count_limit, 7);
    assert_eq!(events.spans.span_attribute_count_limit, 12);
    for variable in [
        "OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT",
        "OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT",
        "OTEL_ATTRIBUTE_COUNT_LIMIT",
        "OTEL_SPAN_EVENT_COUNT_LIMIT",
        "OTEL_EVENT_ATTRIBUTE_COUNT_LIMIT",
    ] {
        for bad in ["-1", "0", "many", "99999999999"] {
            let error = error_for(variable, bad).to_string();
            assert!(error.contains(variable), "{error}");
        }
    }
}

#[test]
fn durations_have_documented_bounds() {
    for (variable, bad, good) in [
        ("OTEL_BSP_SCHEDULE_DELAY", "18446744073709551615", "250"),
        ("OTEL_BSP_SCHEDULE_DELAY", "0", "1"),
        ("FLUJO_SHUTDOWN_TIMEOUT_MS", "86400000", "0"),
        ("OTEL_EXPORTER_OTLP_TIMEOUT", "0", "600000"),
        ("OTEL_METRIC_EXPORT_INTERVAL", "3600001", "100"),
    ] {
        let error = error_for(variable, bad).to_string();
        assert!(
            error.contains(variable) && error.contains("milliseconds from"),
            "{error}"
        );
        assert!(
            TelemetryConfig::default()
                .resolve_from(move |name: &str| (name == variable).then(|| good.to_owned()))
                .is_ok(),
            "{variable}={good}"
        );
    }
    let error = TelemetryConfig::builder()
        .flush_interval(Duration::from_secs(u64::MAX))
        .resolve_from(env(&[]))
        .unwrap_err()
        .to_string();
    assert!(error.contains("flush_interval"), "{error}");
    let error = TelemetryConfig::builder()
        .shutdown_timeout(Duration::from_secs(3600))
        .resolve_from(env(&[]))
        .unwrap_err()
        .to_string();
    assert!(error.contains("shutdown_timeout"), "{error}");
}

#[test]
fn counts_have_a_documented_maximum() {
    for variable in ["OTEL_BSP_MAX_QUEUE_SIZE", "OTEL_BSP_MAX_EXPORT_BATCH_SIZE"] {
        for huge in ["18446744073709551615", "99999999999"] {
            let error = error_for(variable, huge).to_string();
            assert!(
                error.contains(variable) && error.contains("at most"),
                "{error}"
            );
        }
    }
    let error = TelemetryConfig::builder()
        .max_queue_size(usize::MAX)
        .resolve_from(env(&[]))
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("max_queue_size") && error.contains("at most"),
        "{error}"
    );
    assert!(
        TelemetryConfig::builder()
            .max_queue_size(MAX_QUEUE_SIZE)
            .resolve_from(env(&[]))
            .is_ok()
    );
}

#[test]
fn an_impossible_port_and_a_zero_timeout_are_refused() {
    let error = error_for("OTLP_ENDPOINT", "http://127.0.0.1:99999").to_string();
    assert!(error.contains("OTLP_ENDPOINT"), "{error}");
    let error = error_for("OTEL_EXPORTER_OTLP_TIMEOUT", "0").to_string();
    assert!(
        error.contains("OTEL_EXPORTER_OTLP_TIMEOUT") && error.contains("from 1 to"),
        "{error}"
    );
    let error = TelemetryConfig::builder()
        .otlp_timeout(Duration::ZERO)
        .resolve_from(env(&[]))
        .unwrap_err()
        .to_string();
    assert!(error.contains("otlp_timeout"), "{error}");
}

#[test]
fn a_huge_daily_limit_saturates_instead_of_refusing_everything() {
    let settings = TelemetryConfig::default()
        .resolve_from(env(&[(
            "FLUJO_DAILY_COST_LIMIT_USD",
            "100000000000000000000",
        )]))
        .unwrap();
    assert_eq!(settings.ledger.daily_limit, Some(Usd::from_nanos(u64::MAX)));
    let exact = TelemetryConfig::default()
        .resolve_from(env(&[("FLUJO_DAILY_COST_LIMIT_USD", "25.5")]))
        .unwrap();
    assert_eq!(exact.ledger.daily_limit, Some(Usd::parse("25.5").unwrap()));
    const BAD: [&str; 5] = ["inf", "-1", "1e30", "2.0000000001", "twelve"];
    for bad in BAD {
        let vars = move |name: &str| (name == "FLUJO_DAILY_COST_LIMIT_USD").then(|| bad.to_owned());
        let result = TelemetryConfig::default().resolve_from(vars);
        assert!(result.is_err(), "{bad:?} is refused, naming the variable");
    }
}

#[test]
fn defaults_apply_without_environment() {
    let settings = TelemetryConfig::default().resolve_from(env(&[])).unwrap();
    assert_eq!(settings.resource.service_name, "flujo");
    assert_eq!(settings.sampling_rate, 1.0);
    assert!(!settings.exporters.otlp_traces);
    assert_eq!(settings.logs.format, LogFormat::Text);
    assert_eq!(settings.genai.compat, GenAiCompat::ALL);
    assert_eq!(settings.genai.conventions, GenAiConventions::V1_41);
    assert!(
        !settings.genai.capture_message_content,
        "off unless asked for"
    );
    assert_eq!(settings.genai.max_content_bytes, 64 << 10);
    assert_eq!(settings.spans.schedule_delay, Duration::from_millis(100));
    assert_eq!(settings.shutdown_timeout, Duration::from_secs(5));
}

#[test]
fn environment_fills_in_and_code_wins() {
    let vars = env(&[
        ("OTEL_SERVICE_NAME", "from-env"),
        ("OTEL_TRACES_SAMPLER", "parentbased_traceidratio"),
        ("OTEL_TRACES_SAMPLER_ARG", "0.25"),
        ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4317"),
        ("FLUJO_LOG_FORMAT", "JSON"),
        ("FLUJO_GENAI_COMPAT", "otel,logfire"),
        (
            "OTEL_SEMCONV_STABILITY_OPT_IN",
            "http,gen_ai_latest_experimental",
        ),
        ("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", "true"),
        ("FLUJO_GENAI_CONTENT_MAX_BYTES", "4096"),
    ]);
    let settings = TelemetryConfig::default().resolve_from(&vars).unwrap();
    assert_eq!(settings.resource.service_name, "from-env");
    assert_eq!(settings.sampling_rate, 0.25);
    assert_eq!(settings.otlp.traces.endpoint, "http://127.0.0.1:4317");
    assert_eq!(settings.logs.format, LogFormat::Json);
    assert_eq!(settings.genai.compat, GenAiCompat::LOGFIRE);
    assert_eq!(
        settings.genai.conventions,
        GenAiConventions::LatestExperimental
    );
    assert!(settings.genai.capture_message_content);
    assert_eq!(settings.genai.max_content_bytes, 4096);

    let explicit = TelemetryConfig::builder()
        .service_name("from-code")
        .sampling_rate(0.5)
        .log_format(LogFormat::Text)
        .resolve_from(&vars)
        .unwrap();
    assert_eq!(explicit.resource.service_name, "from-code");
    assert_eq!(explicit.sampling_rate, 0.5);
    assert_eq!(explicit.logs.format, LogFormat::Text);
}

#[test]
fn flujo_endpoint_variable_wins_over_the_standard_one() {
    let settings = TelemetryConfig::default()
        .resolve_from(env(&[
            ("OTLP_ENDPOINT", "https://collector:4318"),
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://other:4317"),
        ]))
        .unwrap();
    assert_eq!(settings.otlp.traces.endpoint, "https://collector:4318");
}

#[test]
fn bad_values_name_the_variable_the_value_and_what_is_accepted() {
    let err = TelemetryConfig::default()
        .resolve_from(env(&[("TELEMETRY_EXPORT_ENABLED", "maybe")]))
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "environment variable TELEMETRY_EXPORT_ENABLED=\"maybe\" is invalid: \
             expected one of true, false, 1, 0, yes, no, on, off"
    );
    let err = TelemetryConfig::default()
        .resolve_from(env(&[("OTLP_ENDPOINT", "collector:4317")]))
        .unwrap_err();
    assert!(matches!(
        err,
        TelemetryError::InvalidEnvVar {
            variable: "OTLP_ENDPOINT",
            ..
        }
    ));
    let err = TelemetryConfig::default()
        .resolve_from(env(&[("OTEL_TRACES_SAMPLER_ARG", "2")]))
        .unwrap_err();
    assert!(err.to_string().contains("a number from 0.0 to 1.0"));
    let err = TelemetryConfig::default()
        .resolve_from(env(&[("FLUJO_GENAI_COMPAT", "langfuse,datadog")]))
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "environment variable FLUJO_GENAI_COMPAT=\"langfuse,datadog\" is invalid: expected \
             a comma-separated list of otel, logfire, langfuse, openinference, or all"
    );
    let err = TelemetryConfig::default()
        .resolve_from(env(&[("FLUJO_GENAI_CONTENT_MAX_BYTES", "99999999999")]))
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "environment variable FLUJO_GENAI_CONTENT_MAX_BYTES=\"99999999999\" is invalid: \
             expected a whole number of bytes from 1 to 1048576 (MAX_ATTRIBUTE_VALUE_BYTES)"
    );
    let err = TelemetryConfig::default()
        .resolve_from(env(&[("RUST_LOG", "info,[[")]))
        .unwrap_err();
    assert!(matches!(
        err,
        TelemetryError::InvalidEnvVar {
            variable: "RUST_LOG",
            ..
        }
    ));
}

#[test]
fn bad_explicit_settings_name_the_field() {
    let err = TelemetryConfig::builder()
        .sampling_rate(1.5)
        .resolve_from(env(&[]))
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "telemetry setting `sampling_rate` = 1.5 is invalid: expected a number from 0.0 to 1.0"
    );
    let err = TelemetryConfig::builder()
        .otlp_endpoint("not a url")
        .resolve_from(env(&[]))
        .unwrap_err();
    assert!(matches!(
        err,
        TelemetryError::InvalidSetting {
            field: "otlp_endpoint",
            ..
        }
    ));
    assert!(
        TelemetryConfig::builder()
            .sampling_rate(f64::NAN)
            .resolve_from(env(&[]))
            .is_err()
    );
}

#[cfg(feature = "logfire")]
#[test]
fn logfire_export_needs_a_token_and_reads_logfires_own_variables() {
    let err = TelemetryConfig::default()
        .resolve_from(env(&[("TELEMETRY_EXPORT_ENABLED", "true")]))
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("LOGFIRE_API_KEY (or LOGFIRE_TOKEN)"),
        "{err}"
    );
    let settings = TelemetryConfig::default()
        .resolve_from(env(&[
            ("TELEMETRY_EXPORT_ENABLED", "true"),
            ("LOGFIRE_TOKEN", "pylf_v1_eu_secret"),
            ("LOGFIRE_BASE_URL", "http://127.0.0.1:9999"),
        ]))
        .unwrap();
    assert_eq!(
        settings.logfire.api_key.unwrap().expose(),
        "pylf_v1_eu_secret"
    );
    assert_eq!(
        settings.logfire.base_url.as_deref(),
        Some("http://127.0.0.1:9999")
    );
}

#[test]
fn otlp_transport_settings_come_from_the_standard_variables() {
    let settings = TelemetryConfig::default()
        .resolve_from(env(&[
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"),
            (
                "OTEL_EXPORTER_OTLP_HEADERS",
                "authorization=Bearer%20abc,x-team=ml",
            ),
            ("OTEL_EXPORTER_OTLP_COMPRESSION", "gzip"),
            ("OTEL_BSP_MAX_QUEUE_SIZE", "100"),
            ("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "10"),
            ("OTEL_EXPORTER_OTLP_TIMEOUT", "2500"),
        ]))
        .unwrap();
    assert_eq!(settings.otlp.traces.protocol, OtlpProtocol::HttpProtobuf);
    assert_eq!(settings.otlp.traces.headers[0].0, "authorization");
    assert_eq!(settings.otlp.traces.headers[0].1.expose(), "Bearer abc");
    assert_eq!(settings.otlp.traces.headers[1].1.expose(), "ml");
    assert!(settings.otlp.traces.gzip);
    assert_eq!(settings.spans.max_queue_size, 100);
    assert_eq!(settings.spans.max_export_batch_size, 10);
    assert_eq!(settings.otlp.traces.timeout, Duration::from_millis(2500));
    assert!(
        !format!("{settings:?}").contains("Bearer"),
        "header values are secrets"
    );

    for (variable, value) in [
        ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json"),
        ("OTEL_EXPORTER_OTLP_HEADERS", "novalue"),
        ("OTEL_EXPORTER_OTLP_COMPRESSION", "zip"),
        ("OTEL_BSP_MAX_QUEUE_SIZE", "0"),
    ] {
        let vars = [(variable, value)];
        let err = TelemetryConfig::default()
            .resolve_from(|name| {
                vars.iter()
                    .find(|(k, _)| *k == name)
                    .map(|(_, v)| (*v).to_owned())
            })
            .unwrap_err();
        assert!(
            matches!(&err, TelemetryError::InvalidEnvVar { variable: v, .. } if *v == variable),
            "{err}"
        );
    }
    let explicit = TelemetryConfig::builder()
        .otlp_header("authorization", "Bearer xyz")
        .resolve_from(env(&[("OTEL_EXPORTER_OTLP_HEADERS", "a=b")]))
        .unwrap();
    assert_eq!(
        explicit.otlp.traces.headers.len(),
        1,
        "code wins over the environment"
    );
    assert_eq!(explicit.otlp.traces.headers[0].1.expose(), "Bearer xyz");
}

#[cfg(not(feature = "otlp"))]
#[test]
fn an_exporter_that_is_not_compiled_in_names_its_feature() {
    let err = TelemetryConfig::default()
        .resolve_from(env(&[("OTLP_EXPORT_ENABLED", "true")]))
        .unwrap_err();
    assert_eq!(
        err,
        TelemetryError::FeatureNotEnabled {
            setting: "OTLP_EXPORT_ENABLED=true".to_owned(),
            feature: "otlp"
        }
    );
    assert!(err.to_string().contains("features = [\"otlp\"]"));
}

#[test]
fn secrets_never_show_in_debug_output() {
    let config = TelemetryConfig::builder().logfire_api_key("sk-secret-token");
    assert!(!format!("{config:?}").contains("sk-secret"));
    let settings = config.resolve_from(env(&[])).unwrap();
    assert!(!format!("{settings:?}").contains("sk-secret"));
    let key = settings.logfire.api_key.unwrap();
    assert_eq!(key.expose(), "sk-secret-token");
    assert_eq!(key.to_string(), "<redacted>");
}

#[test]
fn ledger_settings_have_documented_bounds_and_name_what_is_wrong() {
    for (variable, value, expected) in [
        ("FLUJO_COST_LEDGER_BUFFER", "0", "from 1 to 1048576"),
        ("FLUJO_COST_LEDGER_BUFFER", "1048577", "from 1 to 1048576"),
        ("FLUJO_COST_LEDGER_REFRESH_MS", "99", "from 100 to 60000"),
        ("FLUJO_COST_LEDGER_REFRESH_MS", "60001", "from 100 to 60000"),
        (
            "FLUJO_COST_LEDGER_UNREACHABLE",
            "maybe",
            "open (calls go on",
        ),
        ("FLUJO_MONTHLY_COST_LIMIT_USD", "-3", "USD"),
    ] {
        let error = error_for(variable, value).to_string();
        assert!(
            error.contains(variable) && error.contains(expected),
            "{error}"
        );
    }
    let settings = TelemetryConfig::default()
        .resolve_from(env(&[
            ("FLUJO_COST_LEDGER_BUFFER", "1048576"),
            ("FLUJO_COST_LEDGER_REFRESH_MS", "100"),
            ("FLUJO_COST_LEDGER_UNREACHABLE", "Closed"),
            ("FLUJO_MONTHLY_COST_LIMIT_USD", "250"),
        ]))
        .unwrap();
    assert_eq!(settings.ledger.buffer, Some(MAX_COST_LEDGER_BUFFER));
    assert_eq!(settings.ledger.refresh, Duration::from_millis(100));
    assert_eq!(settings.ledger.unreachable, WhenUnreachable::Closed);
    assert_eq!(
        settings.ledger.monthly_limit,
        Some(Usd::parse("250").unwrap())
    );
    let defaults = TelemetryConfig::default().resolve_from(env(&[])).unwrap();
    assert_eq!(defaults.ledger.buffer, None, "each store's own default");
    assert_eq!(defaults.ledger.refresh, Duration::from_secs(1));
    assert_eq!(defaults.ledger.unreachable, WhenUnreachable::Open);
    let error = TelemetryConfig::builder()
        .cost_ledger_refresh(Duration::from_secs(61))
        .resolve_from(env(&[]))
        .unwrap_err()
        .to_string();
    assert!(error.contains("cost_ledger_refresh"), "{error}");
    let error = TelemetryConfig::builder()
        .cost_ledger_buffer(0)
        .resolve_from(env(&[]))
        .unwrap_err()
        .to_string();
    assert!(error.contains("cost_ledger_buffer"), "{error}");
}

#[test]
fn a_postgres_ledger_url_keeps_its_password_out_of_debug_output_and_errors() {
    const URL: &str = "postgres://flujo:pg-secret@db:5432/costs";
    let url = URL;
    let config = TelemetryConfig::builder().cost_ledger(url);
    assert!(!format!("{config:?}").contains("pg-secret"));
    let settings = TelemetryConfig::default().resolve_from(env(&[("FLUJO_COST_LEDGER", URL)]));
    if cfg!(feature = "postgres") {
        let settings = settings.unwrap();
        assert!(matches!(
            settings.ledger.location,
            Some(LedgerLocation(crate::ledger::Location::Postgres(_)))
        ));
        assert!(!format!("{settings:?}").contains("pg-secret"));
    } else {
        let error = settings.unwrap_err();
        assert_eq!(
            error,
            TelemetryError::FeatureNotEnabled {
                setting: "FLUJO_COST_LEDGER=postgres://flujo:***@db:5432/costs".to_owned(),
                feature: "postgres"
            }
        );
    }
}

#[test]
fn each_signal_takes_its_own_variable_then_the_generic_one_and_code_wins_over_both() {
    let vars = env(&[
        ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"),
        ("OTEL_EXPORTER_OTLP_METRICS_PROTOCOL", "http/protobuf"),
        ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318/base"),
        ("OTEL_EXPORTER_OTLP_TIMEOUT", "2000"),
        ("OTEL_EXPORTER_OTLP_LOGS_TIMEOUT", "500"),
        ("OTEL_EXPORTER_OTLP_HEADERS", "x-a=1"),
        ("OTEL_EXPORTER_OTLP_TRACES_HEADERS", "x-b=2"),
    ]);
    let settings = TelemetryConfig::default().resolve_from(&vars).unwrap();
    let otlp = &settings.otlp;
    assert_eq!(otlp.traces.protocol, OtlpProtocol::Grpc);
    assert_eq!(otlp.metrics.protocol, OtlpProtocol::HttpProtobuf);
    // gRPC takes the base URL as it is; HTTP appends the signal's path to it.
    assert_eq!(otlp.traces.endpoint, "http://collector:4318/base");
    assert_eq!(
        otlp.metrics.endpoint,
        "http://collector:4318/base/v1/metrics"
    );
    assert_eq!(otlp.traces.timeout, Duration::from_secs(2));
    assert_eq!(otlp.logs.timeout, Duration::from_millis(500));
    assert_eq!(otlp.traces.headers[0].0, "x-b");
    assert_eq!(
        otlp.traces.headers.len(),
        1,
        "the signal's headers replace the generic"
    );
    assert_eq!(otlp.metrics.headers[0].0, "x-a");
    // Code wins over every variable, for every signal.
    let settings = TelemetryConfig::builder()
        .otlp_protocol(OtlpProtocol::HttpProtobuf)
        .otlp_timeout(Duration::from_secs(1))
        .otlp_endpoint("http://code:4318")
        .resolve_from(env(&[
            ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "grpc"),
            ("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", "9000"),
            ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://env:4318/x"),
        ]))
        .unwrap();
    assert_eq!(settings.otlp.traces.protocol, OtlpProtocol::HttpProtobuf);
    assert_eq!(settings.otlp.traces.timeout, Duration::from_secs(1));
    assert_eq!(settings.otlp.traces.endpoint, "http://code:4318/v1/traces");
    // The guide's variable keeps a path it has.
    let settings = TelemetryConfig::builder()
        .otlp_protocol(OtlpProtocol::HttpProtobuf)
        .resolve_from(env(&[("OTLP_ENDPOINT", "http://collector:4318/v1/traces")]))
        .unwrap();
    assert_eq!(
        settings.otlp.traces.endpoint,
        "http://collector:4318/v1/traces"
    );
}

#[test]
fn mutual_tls_needs_the_key_and_the_certificate_of_the_same_signal() {
    let error = TelemetryConfig::default()
        .resolve_from(env(&[("OTEL_EXPORTER_OTLP_TRACES_CLIENT_KEY", "/k.pem")]))
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE"),
        "{error}"
    );
    let settings = TelemetryConfig::builder()
        .otlp_client_key("/k.pem")
        .otlp_client_certificate("/c.pem")
        .resolve_from(env(&[]))
        .unwrap();
    assert_eq!(
        settings.otlp.logs.client_certificate.as_deref(),
        Some(std::path::Path::new("/c.pem"))
    );
}

#[test]
fn the_batch_may_not_exceed_the_queue() {
    let error = TelemetryConfig::default()
        .resolve_from(env(&[
            ("OTEL_BSP_MAX_QUEUE_SIZE", "100"),
            ("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "200"),
        ]))
        .unwrap_err()
        .to_string();
    assert!(error.contains("OTEL_BSP_MAX_QUEUE_SIZE"), "{error}");
}

#[test]
fn propagators_and_the_project_name_follow_code_then_the_environment() {
    let settings = TelemetryConfig::default()
        .resolve_from(env(&[("OTEL_PROPAGATORS", "baggage")]))
        .unwrap();
    assert_eq!(settings.propagators, Propagators::BAGGAGE);
    assert_eq!(
        TelemetryConfig::default()
            .resolve_from(env(&[]))
            .unwrap()
            .propagators,
        Propagators::default()
    );
    let settings = TelemetryConfig::builder()
        .propagators(Propagators::NONE)
        .resolve_from(env(&[("OTEL_PROPAGATORS", "baggage")]))
        .unwrap();
    assert_eq!(settings.propagators, Propagators::NONE);
    // The project: code, then PHOENIX_PROJECT_NAME, then OTEL_RESOURCE_ATTRIBUTES, then the
    // service name; none when the OpenInference names are off.
    let project = |config: TelemetryConfig, pairs| {
        config
            .resolve_from(env(pairs))
            .unwrap()
            .resource
            .project_name
    };
    const ATTRIBUTES: (&str, &str) = (
        "OTEL_RESOURCE_ATTRIBUTES",
        "openinference.project.name=attrs,team=a%2Cb",
    );
    assert_eq!(
        project(TelemetryConfig::builder().service_name("svc"), &[]).as_deref(),
        Some("svc")
    );
    assert_eq!(
        project(TelemetryConfig::default(), &[ATTRIBUTES]).as_deref(),
        Some("attrs")
    );
    assert_eq!(
        project(
            TelemetryConfig::default(),
            &[ATTRIBUTES, ("PHOENIX_PROJECT_NAME", "phoenix")]
        )
        .as_deref(),
        Some("phoenix")
    );
    assert_eq!(
        project(
            TelemetryConfig::builder().project_name("code"),
            &[("PHOENIX_PROJECT_NAME", "phoenix")]
        )
        .as_deref(),
        Some("code")
    );
    assert_eq!(
        project(
            TelemetryConfig::builder().genai_compat(GenAiCompat::OTEL),
            &[("PHOENIX_PROJECT_NAME", "phoenix")]
        ),
        None
    );
    let settings = TelemetryConfig::default()
        .resolve_from(env(&[ATTRIBUTES]))
        .unwrap();
    assert!(
        settings
            .resource
            .attributes
            .contains(&("team".to_owned(), "a,b".to_owned()))
    );
}

#[test]
fn every_variable_the_resolution_reads_is_declared() {
    let read = std::cell::RefCell::new(std::collections::BTreeSet::new());
    TelemetryConfig::default()
        .resolve_from(|name| {
            read.borrow_mut().insert(name.to_owned());
            None
        })
        .unwrap();
    let declared: Vec<&str> = GROUPS
        .iter()
        .flat_map(|(_, declared)| declared.iter())
        .flat_map(|setting| {
            setting
                .signal_env()
                .iter()
                .chain(setting.meta().env)
                .copied()
        })
        .collect();
    for name in read.into_inner() {
        assert!(
            declared.contains(&name.as_str()),
            "{name} is read but not declared"
        );
    }
}
