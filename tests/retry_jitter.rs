//! Jitter spreads the retries of callers that fail together: 50 threads whose first attempt
//! fails at once retry over the whole backoff window with full jitter, and together without.

use std::sync::{Arc, Barrier, Mutex};
use std::time::{Duration, Instant};

use flujo::pipeline_step;

#[derive(Debug, thiserror::Error)]
#[error("429 Too Many Requests")]
struct RateLimited;

/// Fails its first attempt (a rate limit hit by the whole fleet), records when each attempt
/// began.
fn attempt(attempts: &Mutex<Vec<Instant>>) -> Result<(), RateLimited> {
    let mut attempts = attempts.lock().unwrap();
    attempts.push(Instant::now());
    if attempts.len() == 1 {
        Err(RateLimited)
    } else {
        Ok(())
    }
}

#[pipeline_step(retries = 1, backoff = "exponential", backoff_ms = 300)]
fn jittered(attempts: &Mutex<Vec<Instant>>) -> Result<(), RateLimited> {
    attempt(attempts)
}

#[pipeline_step(
    retries = 1,
    backoff = "exponential",
    backoff_ms = 300,
    jitter = "none"
)]
fn in_lockstep(attempts: &Mutex<Vec<Instant>>) -> Result<(), RateLimited> {
    attempt(attempts)
}

/// How far apart the retries of 50 callers that failed together landed.
fn spread_of_retries(step: fn(&Mutex<Vec<Instant>>) -> Result<(), RateLimited>) -> Duration {
    let barrier = Arc::new(Barrier::new(50));
    let handles: Vec<_> = (0..50)
        .map(|_| {
            let barrier = Arc::clone(&barrier);
            std::thread::spawn(move || {
                let attempts = Mutex::new(Vec::new());
                barrier.wait();
                step(&attempts).expect("the retry succeeds");
                let attempts = attempts.into_inner().unwrap();
                assert_eq!(attempts.len(), 2);
                attempts[1]
            })
        })
        .collect();
    let retries: Vec<Instant> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    let first = retries.iter().min().unwrap();
    let last = retries.iter().max().unwrap();
    *last - *first
}

#[test]
fn full_jitter_spreads_a_fleets_retries_over_the_backoff_window() {
    let lockstep = spread_of_retries(in_lockstep);
    let jittered = spread_of_retries(jittered);
    // 50 draws uniform on [0, 300 ms]: their range is under 150 ms with a chance of about
    // 50 * 2^-49; the fleet without jitter retries within its threads' start skew.
    assert!(
        jittered > Duration::from_millis(150),
        "jittered retries spread over {jittered:?}"
    );
    assert!(
        jittered > lockstep * 3,
        "jittered {jittered:?} vs in lockstep {lockstep:?}"
    );
}
