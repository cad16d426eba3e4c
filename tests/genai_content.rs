//! Opt-in capture of model calls' content (`gen_ai.input.messages`,
//! `gen_ai.output.messages`, `gen_ai.system_instructions`): nothing without it; with it, the
//! conventions' JSON, credentials redacted, text cut at `max_content_bytes`. In a binary of
//! its own: the setting is process-wide.

use flujo::testing::{Capture, StubModel};
use flujo::{TelemetryConfig, init_telemetry_with, track_cost};
use serde_json::{Value, json};

static MODEL: std::sync::LazyLock<StubModel> =
    std::sync::LazyLock::new(|| StubModel::new("gpt-4o-mini"));

#[track_cost(
    model = "gpt-4o-mini",
    system_instructions = system,
    input_messages = [("user", question)],
)]
fn answer(system: &str, question: &str) -> anyhow::Result<flujo::testing::StubCompletion> {
    Ok(MODEL.chat(question)?)
}

fn content(span: &flujo::export::FinishedSpan, key: &str) -> Option<Value> {
    span.attribute(key)
        .map(|value| serde_json::from_str(value.as_str().expect("a JSON string")).unwrap())
}

#[test]
fn content_is_captured_only_when_asked_redacted_and_cut() {
    let capture = Capture::start();
    let question = "my key is sk-proj-0123456789abcdefghij, what is 2 + 2?";

    let guard = init_telemetry_with(TelemetryConfig::builder()).unwrap();
    answer("Be brief.", question).unwrap();
    drop(guard);
    let spans = capture.spans_named("chat gpt-4o-mini");
    for key in [
        "gen_ai.input.messages",
        "gen_ai.output.messages",
        "gen_ai.system_instructions",
    ] {
        assert!(
            spans[0].attribute(key).is_none(),
            "{key} captured while off"
        );
    }

    let guard =
        init_telemetry_with(TelemetryConfig::builder().capture_message_content(true)).unwrap();
    answer("Be brief.", question).unwrap();
    drop(guard);
    let span = &capture.spans_named("chat gpt-4o-mini")[1];
    assert_eq!(
        content(span, "gen_ai.system_instructions"),
        Some(json!([{"type": "text", "content": "Be brief."}]))
    );
    assert_eq!(
        content(span, "gen_ai.input.messages"),
        Some(json!([{"role": "user", "parts": [{"type": "text",
            "content": "my key is [REDACTED], what is 2 + 2?"}]}]))
    );
    let output = content(span, "gen_ai.output.messages").unwrap();
    assert_eq!(output[0]["role"], "assistant");
    assert_eq!(output[0]["finish_reason"], "stop");
    let text = output[0]["parts"][0]["content"].as_str().unwrap();
    assert!(
        text.starts_with("[gpt-4o-mini] my key is [REDACTED]"),
        "{text}"
    );
    assert!(span.attribute("flujo.content.truncated").is_none());

    let guard = init_telemetry_with(
        TelemetryConfig::builder()
            .capture_message_content(true)
            .max_content_bytes(12),
    )
    .unwrap();
    answer("Be brief.", question).unwrap();
    drop(guard);
    let span = &capture.spans_named("chat gpt-4o-mini")[2];
    assert_eq!(
        content(span, "gen_ai.input.messages"),
        Some(json!([{"role": "user", "parts": [{"type": "text", "content": "my key is [R"}]}])),
        "12 bytes of the redacted text, never the key"
    );
    assert_eq!(
        span.attribute("flujo.content.truncated")
            .and_then(|v| v.as_bool()),
        Some(true)
    );
}
