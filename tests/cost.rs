//! `#[track_cost]` through the public API: span attributes, metrics, exact totals, cached
//! token pricing, unknown models, budgets, and the span structure with `#[pipeline_step]`.

use flujo::cost::{Limit, ModelPrice, ReportsUsage};
use flujo::export::{AttributeValue, SpanKind, SpanStatus};
use flujo::testing::{Capture, StubModel};
use flujo::{TokenUsage, UsageLimitExceeded, UsageLimits, Usd, pipeline_step, track_cost};

#[derive(Debug, Clone)]
struct Reply {
    usage: TokenUsage,
    model: Option<&'static str>,
}

impl ReportsUsage for Reply {
    fn token_usage(&self) -> Option<TokenUsage> {
        Some(self.usage)
    }
    fn response_model(&self) -> Option<&str> {
        self.model
    }
    fn response_id(&self) -> Option<&str> {
        self.model.map(|_| "chatcmpl-123")
    }
    fn finish_reasons(&self) -> Vec<std::borrow::Cow<'_, str>> {
        vec!["stop".into(), "length".into()]
    }
}

#[derive(Debug, thiserror::Error)]
enum CallError {
    #[error("provider said no")]
    Provider,
    #[error(transparent)]
    Budget(#[from] UsageLimitExceeded),
}

#[track_cost(model = "gpt-4o-2024-08-06", provider = "openai")]
fn openai_call(usage: TokenUsage) -> Result<Reply, CallError> {
    Ok(Reply {
        usage,
        model: Some("gpt-4o-2024-08-06"),
    })
}

fn int(span: &flujo::export::FinishedSpan, key: &str) -> i64 {
    span.attribute(key)
        .and_then(|v| v.as_i64())
        .unwrap_or_else(|| panic!("{key} missing or not an integer on {}", span.name))
}

#[test]
fn model_call_span_has_the_genai_attributes_as_integers() {
    let capture = Capture::start();
    let usage = TokenUsage::new(12_000, 800)
        .with_cache_read(10_000)
        .with_reasoning(300);
    openai_call(usage).unwrap();
    let spans = capture.spans_named("chat gpt-4o-2024-08-06");
    assert_eq!(spans.len(), 1, "{}", capture.span_tree());
    let span = &spans[0];
    let text = |key| match span.attribute(key) {
        Some(AttributeValue::String(s)) => s.into_owned(),
        other => panic!("{key}: {other:?}"),
    };
    assert_eq!(span.kind(), SpanKind::Client, "an inference request");
    assert_eq!(text("gen_ai.operation.name"), "chat");
    assert_eq!(text("gen_ai.provider.name"), "openai");
    assert!(
        span.attribute("gen_ai.system").is_none(),
        "deprecated since v1.37"
    );
    assert_eq!(text("gen_ai.request.model"), "gpt-4o-2024-08-06");
    assert_eq!(text("gen_ai.response.model"), "gpt-4o-2024-08-06");
    assert_eq!(text("gen_ai.response.id"), "chatcmpl-123");
    let reasons = span.attribute("gen_ai.response.finish_reasons").unwrap();
    assert_eq!(reasons.as_str_array().unwrap(), ["stop", "length"]);
    assert_eq!(int(span, "gen_ai.usage.input_tokens"), 12_000);
    assert_eq!(int(span, "gen_ai.usage.output_tokens"), 800);
    assert_eq!(int(span, "gen_ai.usage.cache_read.input_tokens"), 10_000);
    assert!(
        span.attribute("gen_ai.usage.cache_creation.input_tokens")
            .is_none(),
        "no cache write: no claim of one"
    );
    assert_eq!(int(span, "gen_ai.usage.reasoning.output_tokens"), 300);
    // Langfuse reads every other `gen_ai.usage.*` number as a usage count.
    for misread in ["gen_ai.usage.cost.amount", "gen_ai.usage.cost.currency"] {
        assert!(span.attribute(misread).is_none(), "{misread}");
    }
    // 2_000 uncached * $2.50/M + 10_000 cached * $1.25/M + 800 * $10/M = $0.0255
    let float = |key| {
        span.attribute(key)
            .and_then(|v| v.as_f64())
            .unwrap_or_else(|| panic!("{key} missing or not a float"))
    };
    for total in ["operation.cost", "gen_ai.usage.cost", "llm.cost.total"] {
        assert!((float(total) - 0.0255).abs() < 1e-12, "{total}");
    }
    assert!((float("llm.cost.completion") - 0.008).abs() < 1e-12);
    assert!((float("llm.cost.prompt") - 0.0175).abs() < 1e-12);
    assert_eq!(text("openinference.span.kind"), "LLM");
    assert_eq!(text("llm.model_name"), "gpt-4o-2024-08-06");
    assert_eq!(text("llm.provider"), "openai");
    assert_eq!(int(span, "llm.token_count.prompt"), 12_000);
    assert_eq!(int(span, "llm.token_count.completion"), 800);
    assert_eq!(int(span, "llm.token_count.total"), 12_800);
    assert_eq!(
        int(span, "llm.token_count.prompt_details.cache_read"),
        10_000
    );
    assert_eq!(
        int(span, "llm.token_count.completion_details.reasoning"),
        300
    );
    assert_eq!(span.status, SpanStatus::Ok);
}

#[test]
fn cached_tokens_are_priced_at_the_cache_price_and_counted_once() {
    let capture = Capture::start();
    openai_call(TokenUsage::new(1_000_000, 0).with_cache_read(1_000_000)).unwrap();
    openai_call(TokenUsage::new(1_000_000, 0)).unwrap();
    let records = capture.cost_records();
    let costs: Vec<Usd> = records.iter().map(|r| r.cost.unwrap()).collect();
    assert_eq!(
        costs,
        [Usd::parse("1.25").unwrap(), Usd::parse("2.50").unwrap()]
    );
    let labels = [("model", "gpt-4o-2024-08-06"), ("provider", "openai")];
    let tokens = |token_type| {
        let mut with_type = labels.to_vec();
        with_type.push(("token_type", token_type));
        capture.counter("flujo_tokens_total", &with_type)
    };
    assert_eq!(tokens("input"), 2_000_000);
    assert_eq!(tokens("cache_read_input"), 1_000_000);
    assert_eq!(tokens("output"), 0);
}

#[test]
fn totals_are_the_exact_sum_of_the_records() {
    let capture = Capture::start();
    // $0.15/M input: 7 tokens cost 1.05 micro-dollars; a float sum of 1000 of them drifts.
    for _ in 0..1000 {
        cheap_call().unwrap();
    }
    let report = capture.cost_report();
    let sum: Usd = capture.cost_records().iter().filter_map(|r| r.cost).sum();
    assert_eq!(report.total_cost, sum);
    assert_eq!(report.total_cost, Usd::from_nanos(1_050_000));
    assert_eq!(
        report.cost_by_model["gpt-4o-mini"],
        Usd::from_nanos(1_050_000)
    );
    assert_eq!(report.requests, 1000);
    assert_eq!(
        capture.cost_usd(&[
            ("model", "gpt-4o-mini"),
            ("provider", "openai"),
            ("pipeline", ""),
            ("step", "")
        ]),
        Usd::from_nanos(1_050_000)
    );
    assert_eq!(
        capture.counter(
            "flujo_model_requests_total",
            &[
                ("model", "gpt-4o-mini"),
                ("provider", "openai"),
                ("status", "ok")
            ]
        ),
        1000
    );
    assert_eq!(
        capture.histogram_count(
            "gen_ai.client.token.usage",
            &[
                ("gen_ai.operation.name", "chat"),
                ("gen_ai.provider.name", "openai"),
                ("gen_ai.request.model", "gpt-4o-mini"),
                ("gen_ai.token.type", "input"),
            ]
        ),
        1000
    );
}

#[track_cost(model = "gpt-4o-mini")]
fn cheap_call() -> Result<TokenUsage, CallError> {
    Ok(TokenUsage::new(7, 0))
}

#[track_cost(model = "acme-unreleased-9000", provider = "acme", unpriced)]
fn unknown_model_call() -> Result<TokenUsage, CallError> {
    Ok(TokenUsage::new(100, 10))
}

#[test]
fn an_unknown_model_is_unpriced_never_free() {
    let capture = Capture::start();
    unknown_model_call().unwrap();
    unknown_model_call().unwrap();
    let records = capture.cost_records();
    assert_eq!(records.len(), 2);
    assert!(records.iter().all(|r| r.cost.is_none()));
    let report = capture.cost_report();
    assert_eq!(report.unpriced_requests["acme-unreleased-9000"], 2);
    assert!(!report.cost_by_model.contains_key("acme-unreleased-9000"));
    assert_eq!(
        capture.counter(
            "flujo_unpriced_calls_total",
            &[("model", "acme-unreleased-9000")]
        ),
        2
    );
    let span = &capture.spans_named("chat acme-unreleased-9000")[0];
    assert_eq!(
        span.attribute("flujo.cost.unpriced")
            .and_then(|v| v.as_bool()),
        Some(true)
    );
    for cost in ["gen_ai.usage.cost", "operation.cost", "llm.cost.total"] {
        assert!(
            span.attribute(cost).is_none(),
            "{cost}: unpriced, never free"
        );
    }
}

/// A count no call can use (a wrapped subtraction in how usage is read) is recorded clamped,
/// never priced, counted: it can neither poison sums nor charge an absurd amount.
#[test]
fn token_counts_beyond_what_a_call_can_use_are_clamped_and_not_priced() {
    let capture = Capture::start();
    let absurd = TokenUsage::new(u64::MAX, 10).with_cache_read(u64::MAX - 5);
    openai_call(absurd).unwrap();
    openai_call(TokenUsage::new(1_000, 10)).unwrap();
    let records = capture.cost_records();
    assert_eq!(records.len(), 2);
    assert_eq!(records[0].usage.input, flujo::cost::MAX_TOKENS_PER_CALL);
    assert_eq!(
        records[0].usage.cache_read_input,
        flujo::cost::MAX_TOKENS_PER_CALL
    );
    assert_eq!(records[0].usage.output, 10);
    assert_eq!(records[0].cost, None, "not priced");
    assert!(
        records[1].cost.is_some(),
        "the next call is priced as usual"
    );
    assert_eq!(
        capture.counter(
            "flujo_token_usage_out_of_bounds_total",
            &[("model", "gpt-4o-2024-08-06")]
        ),
        1
    );
    let report = capture.cost_report();
    assert_eq!(
        report.tokens_by_model["gpt-4o-2024-08-06"].input,
        flujo::cost::MAX_TOKENS_PER_CALL + 1_000
    );
}

/// Prices are bounded too: a price above the highest flujo accepts is an error naming it.
#[test]
fn a_price_above_the_bound_is_an_error() {
    let too_high = flujo::cost::MAX_USD_PER_MILLION_TOKENS as f64 + 1.0;
    let error = flujo::cost::PerMillionTokens::usd(too_high).unwrap_err();
    assert!(error.to_string().contains("from 0 to 100000"), "{error}");
    assert!(flujo::cost::PerMillionTokens::usd(600.0).is_ok());
}

struct Client {
    model: String,
}

impl Client {
    #[track_cost(model = self.model.as_str(), operation = "embeddings", usage = embedding_usage)]
    fn embed(&self, texts: &[&str]) -> Vec<Vec<f32>> {
        texts.iter().map(|t| vec![t.len() as f32]).collect()
    }
}

fn embedding_usage(vectors: &[Vec<f32>]) -> TokenUsage {
    TokenUsage::new(vectors.len() as u64 * 1_000_000, 0)
}

#[test]
fn runtime_model_names_and_usage_functions_work_on_methods() {
    let capture = Capture::start();
    flujo::cost::set_model_price(
        ModelPrice::new(
            "acme-embed",
            flujo::cost::PerMillionTokens::parse("0.02").unwrap(),
            flujo::cost::PerMillionTokens::ZERO,
        )
        .with_provider("acme"),
    );
    let client = Client {
        model: "acme-embed".to_owned(),
    };
    assert_eq!(client.embed(&["a", "bc"]).len(), 2);
    let span = &capture.spans_named("embeddings acme-embed")[0];
    assert_eq!(int(span, "gen_ai.usage.input_tokens"), 2_000_000);
    let record = &capture.cost_records()[0];
    assert_eq!(record.provider, "acme");
    assert_eq!(record.operation, "embeddings");
    assert_eq!(record.cost, Some(Usd::parse("0.04").unwrap()));
    assert!(
        record.price_version.ends_with("+code"),
        "{}",
        record.price_version
    );
}

#[pipeline_step(name = "answer")]
#[track_cost(model = "claude-sonnet-4-5")]
fn step_then_cost(
    model: &StubModel,
    question: &str,
) -> Result<flujo::testing::StubCompletion, CallError> {
    model.chat(question).map_err(|_| CallError::Provider)
}

#[track_cost(model = "claude-sonnet-4-5")]
#[pipeline_step(name = "answer-reversed")]
fn cost_then_step(
    model: &StubModel,
    question: &str,
) -> Result<flujo::testing::StubCompletion, CallError> {
    model.chat(question).map_err(|_| CallError::Provider)
}

#[test]
fn with_pipeline_step_the_model_call_is_a_child_of_the_step_in_either_order() {
    let capture = Capture::start();
    let model = StubModel::new("claude-sonnet-4-5");
    step_then_cost(&model, "why is the sky blue").unwrap();
    cost_then_step(&model, "why is the sea blue").unwrap();
    for step in ["answer", "answer-reversed"] {
        let step_span = &capture.spans_named(step)[0];
        let calls: Vec<_> = capture
            .spans_named("chat claude-sonnet-4-5")
            .into_iter()
            .filter(|span| span.parent_span_id == Some(step_span.span_id))
            .collect();
        assert_eq!(calls.len(), 1, "{}", capture.span_tree());
        assert!(step_span.attribute("gen_ai.request.model").is_none());
    }
    let records = capture.cost_records();
    let steps: Vec<_> = records.iter().map(|r| r.step.as_deref()).collect();
    assert_eq!(steps, [Some("answer"), Some("answer-reversed")]);
    // The first call wrote the cached prefix, the second read it.
    assert_eq!(records[0].usage.cache_write_input, 1024);
    assert_eq!(records[1].usage.cache_read_input, 1024);
    assert!(records[1].cost < records[0].cost);
}

#[pipeline_step(retries = 2, backoff = "fixed", backoff_ms = 1)]
#[track_cost(model = "gpt-4o-mini")]
fn flaky(model: &StubModel) -> Result<flujo::testing::StubCompletion, CallError> {
    model.chat("hello there").map_err(|_| CallError::Provider)
}

#[test]
fn every_attempt_of_a_retried_step_is_its_own_model_call() {
    let capture = Capture::start();
    let model = StubModel::new("gpt-4o-mini").failing_first(2);
    flaky(&model).unwrap();
    let calls = capture.spans_named("chat gpt-4o-mini");
    assert_eq!(calls.len(), 3);
    assert_eq!(calls.iter().filter(|s| s.status.is_error()).count(), 2);
    assert_eq!(
        capture.counter(
            "flujo_model_requests_total",
            &[
                ("model", "gpt-4o-mini"),
                ("provider", "openai"),
                ("status", "error")
            ]
        ),
        2
    );
    assert_eq!(
        capture.cost_records().len(),
        1,
        "failed attempts report no usage"
    );
}

#[test]
fn usage_limits_refuse_calls_once_reached() {
    let capture = Capture::start();
    let limits = UsageLimits::new().total_tokens_limit(1_500);
    let outcomes: Vec<_> = limits.run(|| {
        (0..3)
            .map(|_| openai_call(TokenUsage::new(700, 100)))
            .collect()
    });
    assert!(outcomes[0].is_ok() && outcomes[1].is_ok());
    match &outcomes[2] {
        Err(CallError::Budget(UsageLimitExceeded {
            limit:
                Limit::TotalTokens {
                    limit: 1_500,
                    used: 1_600,
                },
        })) => {}
        other => panic!("{other:?}"),
    }
    assert_eq!(
        capture.counter("flujo_budget_exceeded_total", &[("limit", "total_tokens")]),
        1
    );
    // Outside the run there is no limit.
    assert!(openai_call(TokenUsage::new(700, 100)).is_ok());

    let cost_limit = UsageLimits::new().total_cost_usd_limit(Usd::parse("0.01").unwrap());
    let refused = cost_limit.run(|| {
        // $0.0025 + 1000 output * $10/M = $0.0125 > $0.01
        openai_call(TokenUsage::new(1_000, 1_000)).unwrap();
        openai_call(TokenUsage::new(1, 1)).unwrap_err()
    });
    assert!(
        refused.to_string().contains("total_cost_usd_limit"),
        "{refused}"
    );
}

#[pipeline_step(retries = 3, backoff = "fixed", backoff_ms = 1)]
fn budgeted_step() -> Result<Reply, CallError> {
    openai_call(TokenUsage::new(2_000, 0))
}

#[test]
fn a_refused_call_is_not_retried() {
    let capture = Capture::start();
    let limits = UsageLimits::new().total_tokens_limit(1_000);
    limits.run(|| {
        budgeted_step().unwrap();
        assert!(matches!(budgeted_step(), Err(CallError::Budget(_))));
    });
    let spans = capture.spans_named("budgeted_step");
    assert_eq!(int(&spans[1], "flujo.step.attempts"), 1);
}

#[track_cost(model = "gpt-4o-mini")]
async fn async_call(
    model: &StubModel,
    prompt: &str,
) -> Result<flujo::testing::StubCompletion, CallError> {
    model
        .chat_async(prompt)
        .await
        .map_err(|_| CallError::Provider)
}

#[test]
fn async_calls_share_their_run_budget_across_spawned_tasks() {
    use flujo::StepFutureExt;
    let capture = Capture::start();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_time()
        .build()
        .unwrap();
    let limits = UsageLimits::new().total_tokens_limit(5_000);
    let model = std::sync::Arc::new(StubModel::new("gpt-4o-mini"));
    let results = runtime.block_on(limits.run_async(async move {
        let mut results = Vec::new();
        for i in 0..6 {
            let model = model.clone();
            let task = tokio::spawn(
                async move { async_call(&model, &format!("question {i}")).await.is_ok() }
                    .in_current_step(),
            );
            results.push(task.await.unwrap());
        }
        results
    }));
    // Each call uses 1,211 tokens: after four (4,844) the fifth still starts under 5,000;
    // after it (6,055) the run is refused.
    assert_eq!(results, [true, true, true, true, true, false]);
    assert_eq!(capture.cost_records().len(), 5);
}

#[track_cost(model = "acme-ledger-model", provider = "acme", unpriced)]
fn ledger_call(priced: bool) -> Result<TokenUsage, CallError> {
    let _ = priced;
    Ok(TokenUsage::new(1_000, 10))
}

#[test]
fn the_in_memory_ledger_reports_every_call_exactly() {
    let _capture = Capture::start();
    flujo::cost::set_model_price(ModelPrice::new(
        "acme-ledger-model",
        flujo::cost::PerMillionTokens::parse("0.3").unwrap(),
        flujo::cost::PerMillionTokens::parse("1.2").unwrap(),
    ));
    for _ in 0..2_500 {
        ledger_call(true).unwrap();
    }
    let today = flujo::cost::utc_today();
    let report = flujo::cost::get_cost_report(today, today).unwrap();
    // 2_500 * (1_000 * $0.30/M + 10 * $1.20/M) = 2_500 * 312 µ$ = $0.78
    assert_eq!(
        report.cost_by_model["acme-ledger-model"],
        Usd::parse("0.78").unwrap()
    );
    assert_eq!(
        report.groups(flujo::cost::GroupBy::Model)["acme-ledger-model"].requests,
        2_500
    );
    assert_eq!(report.start_date, Some(today));
    let recent = flujo::cost::recent_cost_records();
    assert!(
        recent
            .iter()
            .filter(|r| r.model == "acme-ledger-model")
            .count()
            >= 2_500
    );
}

#[track_cost(model = "gpt-4o-mini")]
async fn slow_model(delay: std::time::Duration) -> Result<TokenUsage, CallError> {
    tokio::time::sleep(delay).await;
    Ok(TokenUsage::new(10, 10))
}

#[track_cost(model = "gpt-4o-mini")]
fn panicking_model() -> Result<TokenUsage, CallError> {
    panic!("a provider client that panics")
}

#[test]
fn a_cancelled_or_panicking_model_call_is_still_a_model_call() {
    let capture = Capture::start();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    let timed_out = runtime.block_on(async {
        tokio::time::timeout(
            std::time::Duration::from_millis(10),
            slow_model(std::time::Duration::from_secs(5)),
        )
        .await
        .is_err()
    });
    assert!(timed_out);
    assert!(std::panic::catch_unwind(panicking_model).is_err());
    let spans = capture.spans_named("chat gpt-4o-mini");
    assert_eq!(spans.len(), 2, "{}", capture.span_tree());
    for span in &spans {
        assert_eq!(
            span.attribute("gen_ai.request.model").unwrap(),
            "gpt-4o-mini"
        );
        assert_eq!(span.attribute("gen_ai.operation.name").unwrap(), "chat");
    }
    assert!(spans.iter().any(|span| span.status == SpanStatus::Unset));
    assert!(spans.iter().any(|span| span.status.is_error()));
    let requests = |status| {
        capture.counter(
            "flujo_model_requests_total",
            &[
                ("model", "gpt-4o-mini"),
                ("provider", "openai"),
                ("status", status),
            ],
        )
    };
    assert_eq!(requests("cancelled"), 1);
    assert_eq!(requests("error"), 1);
    assert!(
        capture.spans_named("chat").is_empty(),
        "no step-like span named after the operation"
    );
    assert_eq!(
        capture.counter(
            "flujo_step_calls_total",
            &[("step", "chat"), ("status", "cancelled")]
        ),
        0
    );
}

#[track_cost(model = "gpt-4o-mini")]
async fn costly_call() -> Result<TokenUsage, UsageLimitExceeded> {
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    // 100,000 input tokens at $0.15/M: $0.015 a call.
    Ok(TokenUsage::new(100_000, 0))
}

#[test]
fn concurrent_calls_in_one_run_reserve_before_calling_and_overshoot_by_at_most_one_call() {
    let _capture = Capture::start();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_time()
        .build()
        .unwrap();
    // $0.10 allows six calls and a bit; 40 calls start at once, in waves of 10.
    let limit = Usd::parse("0.10").unwrap();
    let one_call = Usd::parse("0.015").unwrap();
    let limits = UsageLimits::new().total_cost_usd_limit(limit);
    let (done, refused) = runtime.block_on(limits.run_async(async {
        let (mut done, mut refused) = (0u32, 0u32);
        // The first call teaches the run the size of a call.
        costly_call().await.unwrap();
        done += 1;
        for _ in 0..4 {
            let calls: Vec<_> = (0..10)
                .map(|_| tokio::spawn(flujo::StepFutureExt::in_current_step(costly_call())))
                .collect();
            for call in calls {
                match call.await.unwrap() {
                    Ok(_) => done += 1,
                    Err(_) => refused += 1,
                }
            }
        }
        (done, refused)
    }));
    let spent = Usd::from_nanos(u64::from(done) * one_call.nanos());
    println!("{done} calls made, {refused} refused, {spent} spent of {limit}");
    assert!(refused > 0, "the limit refused calls");
    assert!(
        spent <= limit + one_call,
        "spent {spent}: a run exceeds its limit by at most one call"
    );
}

#[track_cost(
    model = "gpt-4o-2024-08-06",
    fields(
        gen_ai.request.temperature = temperature,
        gen_ai.request.max_tokens = max_tokens,
        gen_ai.request.stop_sequences = stop,
        "gen_ai.conversation.id" = %conversation,
    )
)]
fn call_with_request_fields(
    temperature: f64,
    max_tokens: u32,
    stop: &[&str],
    conversation: &str,
) -> TokenUsage {
    TokenUsage::new(u64::from(max_tokens), stop.len() as u64)
}

/// `#[track_cost(fields(...))]` puts the request's parameters on the model call's span,
/// typed as the conventions type them.
#[test]
fn track_cost_fields_are_attributes_of_the_model_call() {
    let capture = Capture::start();
    call_with_request_fields(0.25, 512, &["\n\n", "END"], "conv-42");
    let span = &capture.spans_named("chat gpt-4o-2024-08-06")[0];
    let attribute = |key| {
        span.attribute(key)
            .unwrap_or_else(|| panic!("{key} missing"))
    };
    assert_eq!(attribute("gen_ai.request.temperature").as_f64(), Some(0.25));
    assert_eq!(attribute("gen_ai.request.max_tokens").as_i64(), Some(512));
    assert_eq!(
        attribute("gen_ai.request.stop_sequences")
            .as_str_array()
            .unwrap(),
        ["\n\n", "END"]
    );
    assert_eq!(attribute("gen_ai.conversation.id"), "conv-42");
}

/// The same model name through two providers of the price data.
#[track_cost(model = "gpt-4o")]
fn gpt_4o_from_openai(usage: TokenUsage) -> Result<TokenUsage, CallError> {
    Ok(usage)
}

#[track_cost(model = "gpt-4o", provider = "github-copilot")]
fn gpt_4o_through_copilot(usage: TokenUsage) -> Result<TokenUsage, CallError> {
    Ok(usage)
}

#[track_cost(
    model = "anthropic.claude-3-haiku-20240307-v1:0",
    provider = "aws.bedrock"
)]
fn haiku_on_bedrock(usage: TokenUsage) -> Result<TokenUsage, CallError> {
    Ok(usage)
}

/// What the shipped data says `model` costs at `provider` now.
fn data_price(model: &str, provider: Option<&str>, usage: &TokenUsage) -> Usd {
    let catalog = flujo_pricing::genai::Catalog::shipped().unwrap();
    let index = match provider {
        Some(provider) => catalog.locate(model, Some(provider)),
        None => catalog.lookup(model),
    }
    .expect("the data has the model");
    catalog
        .at(index)
        .1
        .prices_at(std::time::SystemTime::now())
        .cost(usage)
}

#[test]
fn the_call_sites_provider_chooses_the_price_in_the_data() {
    let capture = Capture::start();
    let usage = TokenUsage::new(1_000_000, 100_000);
    gpt_4o_from_openai(usage).unwrap();
    gpt_4o_through_copilot(usage).unwrap();
    haiku_on_bedrock(usage).unwrap();
    let records = capture.cost_records();
    let cost_of = |provider: &str| {
        records
            .iter()
            .find(|r| r.provider == provider)
            .unwrap_or_else(|| panic!("a record of {provider}: {records:?}"))
            .cost
    };
    let openai = data_price("gpt-4o", None, &usage);
    assert_eq!(cost_of("openai"), Some(openai));
    assert_eq!(openai, Usd::parse("3.5").unwrap(), "$2.50/M in, $10/M out");
    // Included in the subscription: priced at $0 exactly, not unpriced.
    assert_eq!(cost_of("github-copilot"), Some(Usd::ZERO));
    assert_eq!(
        cost_of("aws.bedrock"),
        Some(data_price(
            "anthropic.claude-3-haiku-20240307-v1:0",
            Some("aws"),
            &usage
        ))
    );
    assert!(
        records
            .iter()
            .all(|r| r.price_version == flujo::prices_version())
    );
    assert!(flujo::prices_version().starts_with("genai-prices-0.2.3"));
}

/// A model call of `provider` (a literal, as the attribute takes it) for any model.
macro_rules! provider_call {
    ($name:ident, $provider:literal) => {
        #[track_cost(model = model, provider = $provider)]
        fn $name(model: &str) -> TokenUsage {
            let _ = model;
            TokenUsage::new(10, 1)
        }
    };
}

provider_call!(gemini_call, "gcp.gemini");
provider_call!(vertex_call, "gcp.vertex_ai");
provider_call!(mistral_call, "mistral_ai");
provider_call!(xai_call, "x_ai");
provider_call!(bedrock_call, "aws.bedrock");
provider_call!(azure_openai_call, "azure.ai.openai");
provider_call!(azure_inference_call, "azure.ai.inference");
provider_call!(openai_named_call, "openai");
provider_call!(anthropic_call, "anthropic");
provider_call!(deepseek_call, "deepseek");
provider_call!(acme_call, "acme");

#[track_cost(model = name)]
fn inferred_call_of(name: &str) -> TokenUsage {
    let _ = name;
    TokenUsage::new(10, 1)
}

/// OpenInference readers (Arize Phoenix) know providers by their own names: `llm.provider`
/// carries them, `gen_ai.provider.name` the OpenTelemetry ones.
#[test]
fn llm_provider_is_spelled_as_openinference_reads_it() {
    let capture = Capture::start();
    // A call of each provider, its model, and the provider's two spellings.
    type Case = (
        fn(&str) -> TokenUsage,
        &'static str,
        &'static str,
        &'static str,
    );
    let calls: [Case; 11] = [
        (gemini_call, "gemini-2.5-flash", "gcp.gemini", "google"),
        (vertex_call, "gemini-2.5-flash", "gcp.vertex_ai", "google"),
        (
            mistral_call,
            "mistral-large-latest",
            "mistral_ai",
            "mistralai",
        ),
        (xai_call, "grok-4", "x_ai", "xai"),
        (
            bedrock_call,
            "anthropic.claude-3-haiku-20240307-v1:0",
            "aws.bedrock",
            "aws",
        ),
        (azure_openai_call, "gpt-4o", "azure.ai.openai", "azure"),
        (
            azure_inference_call,
            "gpt-4o",
            "azure.ai.inference",
            "azure",
        ),
        (openai_named_call, "gpt-4o", "openai", "openai"),
        (anthropic_call, "claude-haiku-4-5", "anthropic", "anthropic"),
        (deepseek_call, "deepseek-chat", "deepseek", "deepseek"),
        (acme_call, "acme-1", "acme", "acme"),
    ];
    for (call, model, provider, openinference) in calls {
        call(model);
        let spans = capture.finished_spans();
        let span = spans.last().unwrap();
        let text = |key| {
            span.attribute(key)
                .and_then(|v| v.as_str().map(str::to_owned))
        };
        assert_eq!(text("gen_ai.provider.name").as_deref(), Some(provider));
        assert_eq!(
            text("llm.provider").as_deref(),
            Some(openinference),
            "{provider}"
        );
    }
    // Inferred from the model's name too.
    inferred_call_of("gemini-2.5-flash");
    let spans = capture.finished_spans();
    let span = spans.last().unwrap();
    assert_eq!(
        span.attribute("llm.provider")
            .and_then(|v| v.as_str().map(str::to_owned))
            .as_deref(),
        Some("google")
    );
}

/// A response that says how it was served (OpenAI's `service_tier`).
struct Served {
    usage: TokenUsage,
    tier: &'static str,
}

impl ReportsUsage for Served {
    fn token_usage(&self) -> Option<TokenUsage> {
        Some(self.usage)
    }
    fn price_context(&self) -> Vec<(&'static str, std::borrow::Cow<'_, str>)> {
        vec![("service_tier", self.tier.into())]
    }
}

#[track_cost(model = "acme-override-model", provider = "acme", unpriced)]
fn served_call(usage: TokenUsage, tier: &'static str) -> Served {
    Served { usage, tier }
}

/// An override row prices what the data can (one-hour cache writes, reasoning priced apart,
/// a tier, a request-context variant) through the model-call path, exactly.
#[test]
fn an_override_row_prices_every_unit_tier_and_variant_of_a_call_exactly() {
    let capture = Capture::start();
    let usd = |text| flujo::cost::PerMillionTokens::parse(text).unwrap();
    use flujo::cost::PriceUnit;
    flujo::cost::set_model_price(
        ModelPrice::new("acme-override-model", usd("3"), usd("15"))
            .with_price(PriceUnit::CacheRead, usd("0.3"))
            .with_price(PriceUnit::CacheWrite, usd("3.75"))
            .with_price(PriceUnit::CacheWrite1h, usd("6"))
            .with_price(PriceUnit::Reasoning, usd("20"))
            .with_tier(PriceUnit::Input, 200_000, usd("6"))
            .with_variant(&[("service_tier", "flex")], PriceUnit::Output, usd("7.5")),
    );
    let usage = TokenUsage::new(10_000, 2_000)
        .with_cache_read(4_000)
        .with_cache_write(3_000)
        .with_cache_write_1h(1_000)
        .with_reasoning(500);
    served_call(usage, "default");
    served_call(usage, "flex");
    served_call(TokenUsage::new(300_000, 0), "default");
    let costs: Vec<Option<Usd>> = capture.cost_records().iter().map(|r| r.cost).collect();
    // 3000 uncached * $3 + 4000 read * $0.30 + 2000 written * $3.75 + 1000 one-hour * $6 +
    // 1500 output * $15 + 500 reasoning * $20 (per million).
    assert_eq!(costs[0], Some(Usd::parse("0.0562").unwrap()));
    // Flex: the output at $7.50.
    assert_eq!(costs[1], Some(Usd::parse("0.04495").unwrap()));
    // Above 200,000 input tokens, input at $6.
    assert_eq!(costs[2], Some(Usd::parse("1.8").unwrap()));
}
