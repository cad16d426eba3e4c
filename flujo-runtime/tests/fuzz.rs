//! Bad input is an error, never a panic or a hang: settings from the environment,
//! `traceparent` headers and report dates (price files: `flujo-pricing/tests/fuzz.rs`), each fed a few thousand generated values
//! (proptest, bounded in cases so the test command stays fast; re-run with
//! `PROPTEST_CASES=100000` for a longer search).

use flujo::cost::ReportDate;
use flujo::{SpanContext, TelemetryConfig};
use proptest::prelude::*;

/// Variables flujo reads, each fuzzed on its own.
const VARIABLES: &[&str] = &[
    "OTEL_SERVICE_NAME",
    "OTEL_TRACES_SAMPLER_ARG",
    "OTEL_TRACES_SAMPLER",
    "OTEL_TRACES_EXPORTER",
    "OTEL_SDK_DISABLED",
    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    "OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT",
    "OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT",
    "OTEL_ATTRIBUTE_COUNT_LIMIT",
    "OTEL_SPAN_EVENT_COUNT_LIMIT",
    "OTEL_EVENT_ATTRIBUTE_COUNT_LIMIT",
    "TELEMETRY_EXPORT_ENABLED",
    "OTLP_EXPORT_ENABLED",
    "OTLP_ENDPOINT",
    "OTEL_EXPORTER_OTLP_ENDPOINT",
    "OTEL_EXPORTER_OTLP_PROTOCOL",
    "OTEL_EXPORTER_OTLP_HEADERS",
    "OTEL_EXPORTER_OTLP_COMPRESSION",
    "OTEL_EXPORTER_OTLP_TIMEOUT",
    "OTEL_BSP_MAX_QUEUE_SIZE",
    "OTEL_BSP_MAX_EXPORT_BATCH_SIZE",
    "OTEL_BSP_SCHEDULE_DELAY",
    "OTEL_METRICS_EXPORTER",
    "OTEL_METRIC_EXPORT_INTERVAL",
    "PROMETHEUS_EXPORT_ENABLED",
    "FLUJO_LOG_FORMAT",
    "RUST_LOG",
    "FLUJO_SHUTDOWN_TIMEOUT_MS",
    "FLUJO_PRICING_STRICT",
    "FLUJO_DAILY_COST_LIMIT_USD",
];

/// Text that looks like what the variables take, and garbage around it.
fn values() -> impl Strategy<Value = String> {
    prop_oneof![
        "[0-9]{0,25}(\\.[0-9]{0,12})?",
        "-?[0-9]{1,5}(e[0-9]{1,3})?",
        "(https?|ftp)?(://)?[a-z0-9.\\[\\]:]{0,30}(:[0-9]{0,7})?(/[a-z]{0,5})?",
        "([a-z%=, ]{0,10}=[A-Za-z0-9%]{0,10},?){0,4}",
        "(true|false|yes|no|on|off|json|text|grpc|http/protobuf|gzip|none|otlp)[ a-z]{0,3}",
        "\\PC{0,40}",
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2_000, ..ProptestConfig::default() })]

    #[test]
    fn any_environment_value_is_accepted_or_an_error_naming_its_variable(
        index in 0..VARIABLES.len(),
        value in values(),
    ) {
        let variable = VARIABLES[index];
        let owned = value.clone();
        let result = TelemetryConfig::default()
            .resolve_from(move |name: &str| (name == variable).then(|| owned.clone()));
        if let Err(error) = result {
            let message = error.to_string();
            prop_assert!(message.contains(variable), "{variable}={value:?}: {message}");
            // A header value is a secret: never repeated.
            if variable == "OTEL_EXPORTER_OTLP_HEADERS" && value.len() > 3 {
                prop_assert!(!message.contains(&value), "{message}");
            }
        }
    }

    #[test]
    fn any_traceparent_is_parsed_or_refused_with_a_short_error(header in "\\PC{0,200}|[0-9a-f-]{50,60}") {
        if let Err(error) = SpanContext::from_traceparent(&header) {
            prop_assert!(error.to_string().len() < 300);
        }
    }

    #[test]
    fn any_report_date_is_a_date_or_an_error_naming_the_argument(text in "[0-9-]{0,12}|\\PC{0,20}") {
        if let Err(error) = text.report_date("start_date") {
            prop_assert!(error.to_string().contains("start_date"), "{error}");
        }
    }
}
