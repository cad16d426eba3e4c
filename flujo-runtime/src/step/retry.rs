//! Attempt policy of `#[pipeline_step(retries = .., timeout_ms = .., fallback = ..)]`: how often,
//! how patiently, how long each attempt may take, what each attempt gets, and what runs after
//! the last.

use std::cell::Cell;
use std::hash::{BuildHasher, Hasher};
use std::time::Duration;

use super::advice::Advice;

/// How a step waits between attempts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backoff {
    /// The same delay before every retry.
    Fixed,
    /// The delay doubles with every retry.
    Exponential,
}

/// How a retry's wait is spread, so that many callers failing together (a rate limit hit by a
/// fleet) do not retry together: AWS's "full" and "equal" jitter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Jitter {
    /// The computed wait, as is (the default of a fixed backoff).
    None,
    /// A wait drawn uniformly between 0 and the computed one (the default of an exponential
    /// backoff).
    Full,
    /// Half the computed wait, plus a draw between 0 and the other half.
    Equal,
}

/// Longest wait between two attempts unless the step's `max_backoff_ms` says otherwise.
const MAX_RETRY_DELAY_MS: u64 = 60_000;

/// Why a failed attempt is retried: the `reason` of `flujo.retry` and of
/// `flujo_step_retries_total`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum RetryReason {
    /// The error asked for its wait (`RetryAdvice::retry_after`): a rate limit, an overload.
    RetryAfter,
    /// The attempt ran past the step's `timeout_ms`.
    Timeout,
    /// The attempt's value failed the step's validator.
    Invalid,
    /// Any other error, retried after the backoff's wait.
    Error,
}

impl RetryReason {
    pub(crate) const fn name(self) -> &'static str {
        match self {
            RetryReason::RetryAfter => "retry_after",
            RetryReason::Timeout => "timeout",
            RetryReason::Invalid => "invalid",
            RetryReason::Error => "error",
        }
    }
}

/// Why a step with retries stopped retrying and failed (or ran its fallback):
/// `flujo.retry.stopped_by`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum StopReason {
    /// Every attempt of `retries` failed.
    Attempts,
    /// `retry_for_ms` ran out.
    Deadline,
    /// The error said another attempt cannot succeed (`RetryAdvice`, `retry_if`).
    NotRetryable,
    /// A model call was refused by a budget or the run's limits: it would be refused again.
    Refused,
}

impl StopReason {
    pub(crate) const fn name(self) -> &'static str {
        match self {
            StopReason::Attempts => "attempts",
            StopReason::Deadline => "deadline",
            StopReason::NotRetryable => "not_retryable",
            StopReason::Refused => "refused",
        }
    }
}

/// The wait before the next attempt, and whether the error's own hint set it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Wait {
    pub(crate) delay: Duration,
    pub(crate) hinted: bool,
}

/// How a step runs its attempts: how often and how patiently it re-runs its body after an
/// `Err`, how long each attempt may take, and whether a fallback runs after the last.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    retries: u32,
    backoff: Backoff,
    delay_ms: u64,
    /// `max_backoff_ms`: the longest wait, computed or asked for.
    max_delay_ms: u64,
    jitter: Jitter,
    /// `retry_for_ms` across attempts and waits (0: none).
    deadline_ms: u64,
    /// `timeout_ms` of each attempt (0: none).
    timeout_ms: u64,
    /// Declared with a `fallback`: the last failure hands over to it instead of ending the
    /// call.
    fallback: bool,
    /// The step returns a streamed model call: a successful call ends with its stream.
    streams: bool,
}

impl RetryPolicy {
    /// One attempt, no retries.
    pub const NONE: RetryPolicy = RetryPolicy::new(0, Backoff::Fixed, 0);

    /// Up to `retries` more attempts; the n-th retry waits `delay_ms` (fixed) or
    /// `delay_ms * 2^(n-1)` (exponential), at most 60 s ([`RetryPolicy::with_max_backoff_ms`]
    /// says otherwise), spread by full jitter when the backoff is exponential
    /// ([`RetryPolicy::with_jitter`] says otherwise).
    pub const fn new(retries: u32, backoff: Backoff, delay_ms: u64) -> RetryPolicy {
        RetryPolicy {
            retries,
            backoff,
            delay_ms,
            max_delay_ms: MAX_RETRY_DELAY_MS,
            deadline_ms: 0,
            jitter: match backoff {
                Backoff::Fixed => Jitter::None,
                Backoff::Exponential => Jitter::Full,
            },
            timeout_ms: 0,
            fallback: false,
            streams: false,
        }
    }

    /// The policy with its waits spread by `jitter`.
    pub const fn with_jitter(self, jitter: Jitter) -> RetryPolicy {
        RetryPolicy { jitter, ..self }
    }

    /// The policy with no wait longer than `max_delay_ms`, whether computed or asked for.
    pub const fn with_max_backoff_ms(self, max_delay_ms: u64) -> RetryPolicy {
        RetryPolicy {
            max_delay_ms,
            ..self
        }
    }

    /// The policy with no attempt begun, nor wait ending, later than `deadline_ms` after the
    /// call began.
    pub const fn with_deadline_ms(self, deadline_ms: u64) -> RetryPolicy {
        RetryPolicy {
            deadline_ms,
            ..self
        }
    }

    /// `retry_for_ms`, when the step has one.
    pub(crate) const fn deadline(&self) -> Option<Duration> {
        match self.deadline_ms {
            0 => None,
            ms => Some(Duration::from_millis(ms)),
        }
    }

    /// The policy with each attempt cancelled after `timeout_ms`.
    pub const fn with_timeout_ms(self, timeout_ms: u64) -> RetryPolicy {
        RetryPolicy { timeout_ms, ..self }
    }

    /// The policy with a fallback after the last failed attempt.
    pub const fn with_fallback(self) -> RetryPolicy {
        RetryPolicy {
            fallback: true,
            ..self
        }
    }

    /// The policy of a step whose value is a stream: its call lasts until the stream ends.
    pub const fn with_stream(self) -> RetryPolicy {
        RetryPolicy {
            streams: true,
            ..self
        }
    }

    /// Whether a successful call hands itself over to its stream.
    pub(crate) const fn streams(&self) -> bool {
        self.streams
    }

    /// Each attempt's timeout in milliseconds (0: none).
    pub(crate) const fn timeout_ms(&self) -> u64 {
        self.timeout_ms
    }

    /// Each attempt's timeout.
    pub(crate) const fn timeout(&self) -> Duration {
        Duration::from_millis(self.timeout_ms)
    }

    /// Whether a fallback runs after the last failed attempt.
    pub(crate) const fn has_fallback(&self) -> bool {
        self.fallback
    }

    /// How many retries after the first attempt.
    pub const fn retries(&self) -> u32 {
        self.retries
    }

    /// The wait before retry number `retry` (1-based) after an error that said `advice`: its
    /// `retry_after` (capped), else the backoff's; `None` when the error cannot be retried.
    pub(crate) fn wait_before(&self, retry: u32, advice: Advice) -> Option<Wait> {
        if !advice.retryable {
            return None;
        }
        Some(match advice.retry_after {
            Some(asked) => Wait {
                delay: asked.min(self.max_delay()),
                hinted: true,
            },
            None => Wait {
                delay: self.delay_before(retry),
                hinted: false,
            },
        })
    }

    fn max_delay(&self) -> Duration {
        Duration::from_millis(self.max_delay_ms)
    }

    /// The wait before retry number `retry` (1-based): the backoff's, capped, then spread by
    /// the jitter.
    pub fn delay_before(&self, retry: u32) -> Duration {
        let ms = match self.backoff {
            Backoff::Fixed => self.delay_ms,
            Backoff::Exponential => self.delay_ms.saturating_mul(
                1u64.checked_shl(retry.saturating_sub(1))
                    .unwrap_or(u64::MAX),
            ),
        };
        let cap = Duration::from_millis(ms).min(self.max_delay());
        match self.jitter {
            Jitter::None => cap,
            Jitter::Full => spread(cap),
            Jitter::Equal => cap / 2 + spread(cap - cap / 2),
        }
    }
}

/// A wait drawn uniformly between 0 and `most`, to the microsecond.
fn spread(most: Duration) -> Duration {
    // A `max_backoff_ms` of a day at most: the product fits a u128 with room to spare.
    let micros = most.as_micros() as u64;
    let draw = (u128::from(next_random()) * u128::from(micros + 1)) >> 64;
    Duration::from_micros(draw as u64)
}

thread_local! {
    /// Each thread's generator state: seeded once from the process's random hasher keys and
    /// the thread, then xorshift64* (no lock, no system call per retry).
    static STATE: Cell<u64> = Cell::new({
        let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
        std::hash::Hash::hash(&std::thread::current().id(), &mut hasher);
        hasher.finish() | 1
    });
}

/// The next number of this thread's generator.
fn next_random() -> u64 {
    STATE
        .try_with(|state| {
            let mut x = state.get();
            x ^= x >> 12;
            x ^= x << 25;
            x ^= x >> 27;
            state.set(x);
            x.wrapping_mul(0x2545_F491_4F6C_DD1D)
        })
        // The thread is exiting: a fixed draw (the middle) rather than none.
        .unwrap_or(u64::MAX / 2)
}

/// Asserts, with a readable error, that a by-value argument of a retrying step is `Clone`.
#[diagnostic::on_unimplemented(
    message = "`{Self}` must implement `Clone` to be passed by value to a step with `retries` or a `fallback`",
    label = "every attempt gets its own clone of this argument (a fallback gets the argument itself)",
    note = "take this argument by reference, derive or implement `Clone` for `{Self}`, or remove `retries` and `fallback`"
)]
pub trait RetryArgument {
    /// A fresh copy for the next attempt.
    fn clone_for_attempt(&self) -> Self;
}

impl<T: Clone> RetryArgument for T {
    fn clone_for_attempt(&self) -> Self {
        self.clone()
    }
}

/// Waits `delay` between attempts of a sync step. On a tokio worker (feature `tokio`) the
/// worker's other tasks move to another thread for the wait instead of stalling with it.
pub fn sleep_between_attempts(delay: Duration) {
    crate::core::blocking::blocking(|| std::thread::sleep(delay));
}

/// Waits `delay` between attempts of an async step without needing a particular runtime.
pub fn retry_delay(delay: Duration) -> futures_timer::Delay {
    futures_timer::Delay::new(delay)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exponential_backoff_doubles_and_is_capped() {
        let policy = RetryPolicy::new(40, Backoff::Exponential, 100).with_jitter(Jitter::None);
        assert_eq!(policy.delay_before(1), Duration::from_millis(100));
        assert_eq!(policy.delay_before(3), Duration::from_millis(400));
        assert_eq!(policy.delay_before(39), Duration::from_secs(60));
        let capped = policy.with_max_backoff_ms(250);
        assert_eq!(capped.delay_before(3), Duration::from_millis(250));
        let fixed = RetryPolicy::new(3, Backoff::Fixed, 25);
        assert_eq!(fixed.delay_before(3), Duration::from_millis(25));
    }

    #[test]
    fn full_jitter_spreads_waits_between_zero_and_the_backoff() {
        let policy = RetryPolicy::new(3, Backoff::Exponential, 1_000);
        let waits: Vec<Duration> = (0..2_000).map(|_| policy.delay_before(2)).collect();
        let cap = Duration::from_millis(2_000);
        assert!(waits.iter().all(|wait| *wait <= cap));
        let mean = waits.iter().sum::<Duration>() / 2_000;
        // Uniform on [0, 2 s]: a mean of 1 s, within a few percent over 2,000 draws.
        assert!(
            mean > Duration::from_millis(900) && mean < Duration::from_millis(1_100),
            "{mean:?}"
        );
        assert!(waits.iter().any(|wait| *wait < Duration::from_millis(200)));
        assert!(
            waits
                .iter()
                .any(|wait| *wait > Duration::from_millis(1_800))
        );
    }

    #[test]
    fn equal_jitter_keeps_half_the_backoff() {
        let policy = RetryPolicy::new(3, Backoff::Exponential, 1_000).with_jitter(Jitter::Equal);
        for _ in 0..1_000 {
            let wait = policy.delay_before(1);
            assert!(wait >= Duration::from_millis(500) && wait <= Duration::from_secs(1));
        }
    }

    #[test]
    fn a_wait_the_error_asks_for_replaces_the_backoff_within_the_cap() {
        let policy = RetryPolicy::new(3, Backoff::Fixed, 25).with_max_backoff_ms(1_000);
        let asked = |seconds| Advice {
            retry_after: Some(Duration::from_secs(seconds)),
            retryable: true,
        };
        let wait = policy.wait_before(1, asked(0)).unwrap();
        assert_eq!((wait.delay, wait.hinted), (Duration::ZERO, true));
        let wait = policy.wait_before(1, asked(120)).unwrap();
        assert_eq!(
            wait.delay,
            Duration::from_secs(1),
            "capped by max_backoff_ms"
        );
        let wait = policy.wait_before(1, Advice::DEFAULT).unwrap();
        assert_eq!(
            (wait.delay, wait.hinted),
            (Duration::from_millis(25), false)
        );
        let refused = Advice {
            retryable: false,
            ..asked(1)
        };
        assert_eq!(policy.wait_before(1, refused), None);
    }

    #[test]
    fn every_reason_is_named_where_the_guide_reads_it() {
        use crate::core::names::{ATTRIBUTES, FLUJO_RETRY_REASON, FLUJO_RETRY_STOPPED_BY, Metric};
        let described = |key: &str| {
            ATTRIBUTES
                .iter()
                .find(|(name, _)| *name == key)
                .map(|(_, what)| *what)
                .unwrap()
        };
        for reason in [
            RetryReason::RetryAfter,
            RetryReason::Timeout,
            RetryReason::Invalid,
            RetryReason::Error,
        ] {
            let name = reason.name();
            assert!(
                described(FLUJO_RETRY_REASON).contains(&format!("`{name}`")),
                "{name}"
            );
            assert!(Metric::StepRetries.description().contains(name), "{name}");
        }
        for stop in [
            StopReason::Attempts,
            StopReason::Deadline,
            StopReason::NotRetryable,
            StopReason::Refused,
        ] {
            let name = stop.name();
            assert!(
                described(FLUJO_RETRY_STOPPED_BY).contains(&format!("`{name}`")),
                "{name}"
            );
        }
    }

    #[test]
    fn a_fixed_backoff_has_no_jitter_unless_asked() {
        let fixed = RetryPolicy::new(3, Backoff::Fixed, 25);
        assert!((0..100).all(|_| fixed.delay_before(2) == Duration::from_millis(25)));
        let spread = fixed.with_jitter(Jitter::Full);
        assert!((0..100).any(|_| spread.delay_before(2) != Duration::from_millis(25)));
    }
}
