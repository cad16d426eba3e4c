//! A refused model call is never retried, whatever refused it: the run's limits, the daily
//! limit, strict pricing.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering};

use flujo::{
    TelemetryConfig, TokenUsage, UsageLimitExceeded, UsageLimits, Usd, pipeline_step, track_cost,
};

static TURN: Mutex<()> = Mutex::new(());

static ATTEMPTS: AtomicU32 = AtomicU32::new(0);

#[track_cost(model = "gpt-4o-mini")]
fn priced(tokens: u64) -> Result<TokenUsage, UsageLimitExceeded> {
    Ok(TokenUsage::new(tokens, 10))
}

#[track_cost(model = "acme-unpriced-model", unpriced)]
fn unpriced() -> Result<TokenUsage, UsageLimitExceeded> {
    Ok(TokenUsage::new(10, 10))
}

#[pipeline_step(retries = 3, backoff_ms = 1)]
fn retried_priced(tokens: u64) -> Result<TokenUsage, UsageLimitExceeded> {
    ATTEMPTS.fetch_add(1, Ordering::SeqCst);
    priced(tokens)
}

#[pipeline_step(retries = 3, backoff_ms = 1)]
fn retried_unpriced() -> Result<TokenUsage, UsageLimitExceeded> {
    ATTEMPTS.fetch_add(1, Ordering::SeqCst);
    unpriced()
}

/// A step around a retried step: the refusal inside is not retried from outside either.
#[pipeline_step(retries = 2, backoff_ms = 1)]
fn outer(tokens: u64) -> Result<TokenUsage, UsageLimitExceeded> {
    retried_priced(tokens)
}

fn attempts_of(call: impl FnOnce() -> Result<TokenUsage, UsageLimitExceeded>) -> (u32, bool) {
    ATTEMPTS.store(0, Ordering::SeqCst);
    let refused = call().is_err();
    (ATTEMPTS.load(Ordering::SeqCst), refused)
}

#[test]
fn no_refusal_is_retried() {
    let _turn = TURN.lock().unwrap_or_else(|e| e.into_inner());

    // The run's own limit.
    let limits = UsageLimits::new().total_tokens_limit(100);
    let run_limit = limits.run(|| {
        priced(500).unwrap();
        attempts_of(|| retried_priced(10))
    });
    assert_eq!(run_limit, (1, true), "a run-limit refusal is not retried");

    // Strict pricing refuses the unpriced model.
    let guard =
        flujo::init_telemetry_with(TelemetryConfig::builder().strict_pricing(true)).unwrap();
    assert_eq!(
        attempts_of(retried_unpriced),
        (1, true),
        "a strict-pricing refusal is not retried"
    );
    drop(guard);

    // The daily limit.
    let guard = flujo::init_telemetry_with(
        TelemetryConfig::builder().daily_cost_limit_usd(Usd::from_nanos(1)),
    )
    .unwrap();
    // Spend past the limit (earlier calls today may already have).
    let _ = priced(1_000);
    assert_eq!(
        attempts_of(|| retried_priced(10)),
        (1, true),
        "a daily-limit refusal is not retried"
    );
    assert_eq!(
        attempts_of(|| outer(10)),
        (1, true),
        "nor retried by an enclosing step"
    );
    drop(guard);

    // An ordinary failure is still retried.
    static FAILURES: AtomicU32 = AtomicU32::new(0);
    #[pipeline_step(retries = 3, backoff_ms = 1)]
    fn flaky() -> Result<u32, String> {
        let n = FAILURES.fetch_add(1, Ordering::SeqCst);
        if n < 2 {
            Err(format!("failure {n}"))
        } else {
            Ok(n)
        }
    }
    assert_eq!(flaky(), Ok(2));
}
