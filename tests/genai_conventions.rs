//! The two versions of the GenAI conventions' names: v1.41 by default, the current draft with
//! `OTEL_SEMCONV_STABILITY_OPT_IN=gen_ai_latest_experimental` (here through the builder, in
//! a binary of its own: the choice is process-wide).

use flujo::config::{GenAiCompat, GenAiConventions};
use flujo::testing::Capture;
use flujo::{TelemetryConfig, TokenUsage, init_telemetry_with, track_cost};

#[track_cost(model = "gpt-4o-mini")]
fn ask(input: u64) -> TokenUsage {
    TokenUsage::new(input, 40)
        .with_cache_read(input / 2)
        .with_reasoning(10)
}

const GENAI: [(&str, &str); 3] = [
    ("gen_ai.operation.name", "chat"),
    ("gen_ai.provider.name", "openai"),
    ("gen_ai.request.model", "gpt-4o-mini"),
];

fn with(extra: (&'static str, &'static str)) -> Vec<(&'static str, &'static str)> {
    let mut labels = GENAI.to_vec();
    labels.push(extra);
    labels
}

#[test]
fn v1_41_by_default_and_the_current_draft_when_asked() {
    let capture = Capture::start();

    let guard = init_telemetry_with(TelemetryConfig::builder()).unwrap();
    ask(1_000);
    drop(guard);
    let token_usage = |token_type| {
        capture.histogram_sum(
            "gen_ai.client.token.usage",
            &with(("gen_ai.token.type", token_type)),
        )
    };
    assert_eq!(
        (token_usage("input"), token_usage("output")),
        (1000.0, 40.0)
    );
    assert_eq!(
        capture.histogram_count("gen_ai.client.inference.usage.input_tokens", &GENAI),
        0
    );
    let span = &capture.spans_named("chat gpt-4o-mini")[0];
    assert!(span.attribute("gen_ai.usage.cost.amount").is_none());

    let guard = init_telemetry_with(
        TelemetryConfig::builder()
            .genai_conventions(GenAiConventions::LatestExperimental)
            .genai_compat(GenAiCompat::OTEL),
    )
    .unwrap();
    ask(2_000);
    drop(guard);
    let histogram = |name| capture.histogram_sum(name, &GENAI);
    assert_eq!(
        (
            histogram("gen_ai.client.inference.usage.input_tokens"),
            histogram("gen_ai.client.inference.usage.output_tokens")
        ),
        (2000.0, 40.0)
    );
    assert_eq!(
        token_usage("input"),
        1000.0,
        "v1.41's histogram got nothing more"
    );
    let detailed = |name| capture.counter(name, &with(("gen_ai.token.modality", "unknown")));
    assert_eq!(
        [
            "gen_ai.client.inference.usage.detailed.input_tokens",
            "gen_ai.client.inference.usage.detailed.output_tokens",
            "gen_ai.client.inference.usage.detailed.cache_read.input_tokens",
            "gen_ai.client.inference.usage.detailed.cache_write.input_tokens",
            "gen_ai.client.inference.usage.detailed.reasoning.output_tokens",
        ]
        .map(detailed),
        [2000, 40, 1000, 0, 10]
    );
    // The cost proposal's names, without Langfuse in the set (it would misread them).
    let span = capture
        .spans_named("chat gpt-4o-mini")
        .into_iter()
        .find(|span| {
            span.attribute("gen_ai.usage.input_tokens")
                .and_then(|v| v.as_i64())
                == Some(2000)
        })
        .unwrap();
    // 1,000 uncached * $0.15/M + 1,000 cached * $0.075/M + 40 * $0.60/M
    let amount = span.attribute("gen_ai.usage.cost.amount").unwrap();
    assert!(
        (amount.as_f64().unwrap() - 0.000249).abs() < 1e-12,
        "{amount:?}"
    );
    assert_eq!(span.attribute("gen_ai.usage.cost.currency").unwrap(), "USD");
}
