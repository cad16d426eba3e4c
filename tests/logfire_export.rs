//! Logfire export against real parts: rotel stands in for Logfire's OTLP endpoint
//! (`logfire_base_url`), and socat, as a transparent proxy that logs what it forwards, shows
//! the authorization header on the wire. One test: the log subscriber is process-wide.
#![cfg(feature = "logfire")]

mod support;

use std::time::{Duration, Instant};

use flujo::{TelemetryConfig, init_telemetry_with, pipeline_step};
use support::{Rotel, WireLog, parse_spans};

const TOKEN: &str = "pylf_v1_us_flujo_test_token_8c2f";

#[pipeline_step(fields(user = "u-17"))]
fn summarize(text: &str) -> usize {
    let words = text.split_whitespace().count();
    flujo::logfire::info!(words, "summarized the input");
    words
}

#[test]
fn spans_and_logs_reach_logfire_with_the_token_in_the_authorization_header() {
    let rotel = Rotel::start_logging(&["traces", "logs"]);
    let wire = WireLog::start(rotel.http);
    let guard = init_telemetry_with(
        TelemetryConfig::builder()
            .service_name("logfire-test")
            .export_telemetry(true)
            .logfire_api_key(TOKEN)
            .logfire_base_url(format!("http://127.0.0.1:{}", wire.port)),
    )
    .expect("telemetry with Logfire export starts");
    assert!(
        !format!("{guard:?}").contains(TOKEN),
        "the token never shows in Debug output"
    );
    assert_eq!(summarize("three small words"), 3);
    drop(guard);

    let deadline = Instant::now() + Duration::from_secs(20);
    let output = loop {
        let output = rotel.output();
        if (output.contains("summarized the input")
            && output.contains("Name           : summarize"))
            || Instant::now() > deadline
        {
            break output;
        }
        std::thread::sleep(Duration::from_millis(50));
    };

    let spans = parse_spans(&output);
    let span = spans
        .iter()
        .find(|s| s.name == "summarize")
        .expect("the step's span arrived");
    assert_eq!(span.attribute("user"), Some("Str(u-17)"));
    let service = span.resource.iter().find(|(k, _)| k == "service.name");
    assert_eq!(service.map(|(_, v)| v.as_str()), Some("Str(logfire-test)"));

    let record = output
        .split("LogRecord #")
        .find(|record| record.contains("Body: Str(summarized the input)"))
        .expect("the log line arrived as a log record");
    assert!(record.contains("SeverityText: INFO"), "{record}");
    assert!(record.contains("-> words: Int(3)"), "{record}");
    assert!(
        record.contains(&format!("Trace ID       : {}", span.trace_id)),
        "the log record is linked to the step's trace: {record}"
    );
    assert!(
        record.contains(&format!("Span ID        : {}", span.id)),
        "{record}"
    );

    let wire = wire.text().to_ascii_lowercase();
    for path in ["post /v1/traces", "post /v1/logs"] {
        let request = wire
            .split(path)
            .nth(1)
            .expect("the request went over the wire");
        // socat -v prints each CRLF as a literal `\r`: headers end at the first line that
        // holds nothing else.
        let headers: Vec<&str> = request
            .lines()
            .skip(1)
            .take_while(|line| line.trim() != "\\r")
            .collect();
        let expected = format!("authorization: {}\\r", TOKEN.to_ascii_lowercase());
        assert!(
            headers.iter().any(|header| header.trim() == expected),
            "{path} carries the token: {headers:?}"
        );
    }
}
