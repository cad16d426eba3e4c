//! What a step's error says about retrying it: [`RetryAdvice`], how the expansion reads it
//! without bounding the step's error type, `retry_if = path`, and what an HTTP failure says
//! (`retry-after-ms`, `Retry-After`, `x-should-retry`, its status).

use std::time::Duration;

use http::HeaderMap;

/// What a step's error says about retrying it: implement it for your error type so that the
/// retry loop of `#[pipeline_step(retries = ...)]` waits what the provider asked
/// (`Retry-After`) and does not retry what cannot succeed (a 400, a 401, a content-policy
/// refusal: each retry of a model call costs tokens). An error type that does not implement
/// it is retried as before, after the backoff's wait.
///
/// flujo implements it for the errors of the clients it integrates with, each behind the
/// client's feature: `reqwest::Error` (`reqwest`), `async_openai::error::OpenAIError`
/// (`async-openai-client`), `genai::Error` (`genai`), `ollama_rs::error::OllamaError`
/// (`ollama`) and `rig_core::error::ProviderError` (`rig`). They judge a failure as OpenAI's and
/// Anthropic's own SDKs do: the server's `x-should-retry` when it says, else a 408, 409, 429
/// or 5xx status, a timeout or a connection that failed is worth another attempt, and any
/// other 4xx, a body that does not decode or a request that cannot be built is not.
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
    /// the backoff's wait, with no jitter added, capped by the step's `max_backoff_ms` (60 s
    /// unless set) and its `retry_for_ms` deadline.
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
    pub(crate) retry_after: Option<Duration>,
    pub(crate) retryable: bool,
}

impl Advice {
    /// Retry after the backoff's wait: what an error without [`RetryAdvice`] gets.
    pub const DEFAULT: Advice = Advice {
        retry_after: None,
        retryable: true,
    };

    fn of(advice: &(impl RetryAdvice + ?Sized)) -> Advice {
        Advice {
            retry_after: advice.retry_after(),
            retryable: advice.is_retryable(),
        }
    }
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
        Advice::of(self.0)
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

/// `retry_if = path`: the user's function decides whether `error` is retried (for an error
/// type the user cannot implement [`RetryAdvice`] for); a wait the error asked for still
/// applies. A fn pointer, so that a function of another signature is a type error on the path.
pub fn retry_if<E: ?Sized>(advice: Advice, error: &E, retry_if: fn(&E) -> bool) -> Advice {
    Advice {
        retryable: retry_if(error),
        ..advice
    }
}

/// The server's own verdict on retrying (OpenAI, Anthropic): `true` or `false`.
const SHOULD_RETRY: &str = "x-should-retry";

/// Whether a request that failed with `status` can succeed on another attempt, as OpenAI's
/// and Anthropic's own SDKs judge it: the server's `x-should-retry: true|false` when it says,
/// else a 408, 409, 429 or 5xx status is worth another attempt and any other is not. With
/// [`retry_after`](crate::retry_after), what a [`RetryAdvice`] implementation of an error that keeps the failed
/// response's status and headers needs:
///
/// ```
/// use std::time::Duration;
///
/// #[derive(Debug, thiserror::Error)]
/// #[error("HTTP {status}")]
/// struct ApiError { status: http::StatusCode, headers: http::HeaderMap }
///
/// impl flujo::RetryAdvice for ApiError {
///     fn retry_after(&self) -> Option<Duration> {
///         flujo::retry_after(&self.headers)
///     }
///     fn is_retryable(&self) -> bool {
///         flujo::retryable_response(self.status, &self.headers)
///     }
/// }
/// ```
pub fn retryable_response(status: http::StatusCode, headers: &HeaderMap) -> bool {
    http_retryable(Some(status.as_u16()), Some(headers), false)
}

/// Whether an HTTP failure with `status` (none: the request got no answer, `transient` says
/// whether that may pass) can succeed on another attempt, the response's `headers` read when
/// the error kept them.
pub(crate) fn http_retryable(
    status: Option<u16>,
    headers: Option<&HeaderMap>,
    transient: bool,
) -> bool {
    let said = headers.and_then(|headers| match headers.get(SHOULD_RETRY)?.to_str().ok()? {
        "true" => Some(true),
        "false" => Some(false),
        _ => None,
    });
    said.unwrap_or(match status {
        Some(status) => matches!(status, 408 | 409 | 429 | 500..),
        None => transient,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::retry_after::retry_after;
    use crate::core::retry_after::tests::headers;

    #[test]
    fn http_failures_are_judged_as_the_providers_sdks_do() {
        for status in [408, 409, 429, 500, 502, 503, 529] {
            assert!(http_retryable(Some(status), None, false), "{status}");
        }
        for status in [400, 401, 403, 404, 413, 422] {
            assert!(!http_retryable(Some(status), None, true), "{status}");
        }
        assert!(http_retryable(None, None, true));
        assert!(!http_retryable(None, None, false));
        let told = headers(&[("x-should-retry", "false"), ("retry-after", "7")]);
        assert!(!http_retryable(Some(503), Some(&told), true));
        assert_eq!(retry_after(&told), Some(Duration::from_secs(7)));
        let told = headers(&[("x-should-retry", "true")]);
        assert!(http_retryable(Some(400), Some(&told), false));
    }
}
