//! Attempt policy of `#[pipeline_step(retries = .., timeout_ms = .., fallback = ..)]`: how often,
//! how patiently, how long each attempt may take, what each attempt gets, and what runs after
//! the last.

use std::cell::Cell;
use std::hash::{BuildHasher, Hasher};
use std::time::Duration;

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

/// What a step's error says about retrying it: implement it for your error type so that the
/// retry loop of `#[pipeline_step(retries = ...)]` waits what the provider asked
/// (`Retry-After`) and does not retry what cannot succeed (a 400, a 401, a content-policy
/// refusal: each retry of a model call costs tokens). An error type that does not implement
/// it is retried as before, after the backoff's wait.
///
/// ```
/// use std::time::Duration;
///
/// #[derive(Debug, thiserror::Error)]
/// #[error("HTTP {status}")]
/// struct ApiError { status: u16, retry_after: Option<Duration> }
///
/// impl flujo::RetryAdvice for ApiError {
///     fn retry_after(&self) -> Option<Duration> {
///         self.retry_after
///     }
///     fn is_retryable(&self) -> bool {
///         self.status == 429 || self.status >= 500
///     }
/// }
/// ```
pub trait RetryAdvice {
    /// How long the provider asked to wait before the next attempt, when it said: it replaces
    /// the backoff's wait (at most 60 s; no jitter is added to it).
    fn retry_after(&self) -> Option<Duration> {
        None
    }

    /// Whether another attempt can succeed; `false` ends the attempts at once (the step's
    /// fallback, if any, still runs).
    fn is_retryable(&self) -> bool {
        true
    }
}

/// What an attempt's error said about retrying it, read where its type is known (the
/// expansion), so that an error without [`RetryAdvice`] gets the default.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Advice {
    retry_after: Option<Duration>,
    retryable: bool,
}

impl Advice {
    /// Retry after the backoff's wait: what an error without [`RetryAdvice`] gets.
    pub const DEFAULT: Advice = Advice {
        retry_after: None,
        retryable: true,
    };
}

/// An attempt's error, for the expansion's `(&&Advise(error)).advice()`: the method resolves
/// to [`ViaRetryAdvice`] when the error implements [`RetryAdvice`], else to
/// [`WithoutRetryAdvice`] (autoref specialisation: no trait bound on the step's error).
pub struct Advise<'a, E: ?Sized>(pub &'a E);

/// The advice of an error that implements [`RetryAdvice`].
pub trait ViaRetryAdvice {
    /// The error's advice.
    fn advice(&self) -> Advice;
}

impl<E: RetryAdvice + ?Sized> ViaRetryAdvice for &Advise<'_, E> {
    fn advice(&self) -> Advice {
        Advice {
            retry_after: self.0.retry_after(),
            retryable: self.0.is_retryable(),
        }
    }
}

/// The advice of an error that does not implement [`RetryAdvice`]: the default.
pub trait WithoutRetryAdvice {
    /// [`Advice::DEFAULT`].
    fn advice(&self) -> Advice;
}

impl<E: ?Sized> WithoutRetryAdvice for Advise<'_, E> {
    fn advice(&self) -> Advice {
        Advice::DEFAULT
    }
}

/// Longest wait between two attempts, whatever the backoff says.
const MAX_RETRY_DELAY: Duration = Duration::from_secs(60);

/// How a step runs its attempts: how often and how patiently it re-runs its body after an
/// `Err`, how long each attempt may take, and whether a fallback runs after the last.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    retries: u32,
    backoff: Backoff,
    delay_ms: u64,
    jitter: Jitter,
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
    /// `delay_ms * 2^(n-1)` (exponential), at most 60 s, spread by full jitter when the
    /// backoff is exponential ([`RetryPolicy::with_jitter`] says otherwise).
    pub const fn new(retries: u32, backoff: Backoff, delay_ms: u64) -> RetryPolicy {
        RetryPolicy {
            retries,
            backoff,
            delay_ms,
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
    pub(crate) fn wait_before(&self, retry: u32, advice: Advice) -> Option<Duration> {
        if !advice.retryable {
            return None;
        }
        Some(match advice.retry_after {
            Some(asked) => asked.min(MAX_RETRY_DELAY),
            None => self.delay_before(retry),
        })
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
        let cap = Duration::from_millis(ms).min(MAX_RETRY_DELAY);
        match self.jitter {
            Jitter::None => cap,
            Jitter::Full => spread(cap),
            Jitter::Equal => cap / 2 + spread(cap - cap / 2),
        }
    }
}

/// A wait drawn uniformly between 0 and `most`, to the microsecond.
fn spread(most: Duration) -> Duration {
    // 60 s at most: the product fits a u128 with room to spare.
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
        assert_eq!(policy.delay_before(39), MAX_RETRY_DELAY);
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
    fn a_fixed_backoff_has_no_jitter_unless_asked() {
        let fixed = RetryPolicy::new(3, Backoff::Fixed, 25);
        assert!((0..100).all(|_| fixed.delay_before(2) == Duration::from_millis(25)));
        let spread = fixed.with_jitter(Jitter::Full);
        assert!((0..100).any(|_| spread.delay_before(2) != Duration::from_millis(25)));
    }
}
