//! [`RetryAdvice`] for the errors of the HTTP and model clients flujo integrates with, each
//! behind the client's feature, judged as `advice::http_retryable` does: what the response's
//! status and headers say, else whether the request failed on its way (a timeout, a refused
//! connection).

use super::advice::RetryAdvice;

/// Whether sending or reading a request failed on its way (a timeout, a refused connection, a
/// body cut short), for a `reqwest::Error` of any release (the clients do not all use the same
/// reqwest).
#[cfg(any(
    feature = "reqwest",
    feature = "async-openai-client",
    feature = "genai",
    feature = "ollama"
))]
macro_rules! failed_on_its_way {
    ($error:expr) => {{
        let error = $error;
        error.is_timeout() || error.is_connect() || error.is_request() || error.is_body()
    }};
}

/// Whether a `reqwest::Error` may pass on another attempt: the status of a response that
/// failed, else whether it failed on its way.
#[cfg(any(
    feature = "reqwest",
    feature = "async-openai-client",
    feature = "ollama"
))]
macro_rules! reqwest_is_retryable {
    ($error:expr) => {{
        let error = $error;
        super::advice::http_retryable(
            error.status().map(|status| status.as_u16()),
            None,
            failed_on_its_way!(error),
        )
    }};
}

/// reqwest 0.13's error: a status from `error_for_status`, or a request that failed on its way.
/// (It keeps no headers: a `Retry-After` is read from the response, with
/// [`retry_after`](crate::core::retry_after::retry_after).)
#[cfg(feature = "reqwest")]
impl RetryAdvice for reqwest::Error {
    fn is_retryable(&self) -> bool {
        reqwest_is_retryable!(self)
    }
}

/// async-openai's error keeps the status but not the headers. Its client retries a rate limit,
/// a 5xx and a refused connection 3 times itself (after their `Retry-After`): what reaches the
/// step has outlasted those, and another attempt of the step waits its backoff. An exhausted
/// quota (a 429 of type `insufficient_quota`) stays exhausted, a stream cut short may complete
/// on another attempt, and a body that does not decode or an invalid argument will fail again.
#[cfg(feature = "async-openai-client")]
impl RetryAdvice for async_openai::error::OpenAIError {
    fn is_retryable(&self) -> bool {
        use async_openai::error::OpenAIError;
        match self {
            OpenAIError::Reqwest(error) => reqwest_is_retryable!(error),
            OpenAIError::ApiError(response) => {
                let error = &response.api_error;
                let quota = Some(INSUFFICIENT_QUOTA);
                error.r#type.as_deref() != quota
                    && error.code.as_deref() != quota
                    && super::advice::http_retryable(
                        Some(response.status_code.as_u16()),
                        None,
                        false,
                    )
            }
            OpenAIError::StreamError(_) => true,
            _ => false,
        }
    }
}

/// OpenAI's error type (and code) of a 429 that no wait cures: the account is out of credit.
#[cfg(feature = "async-openai-client")]
const INSUFFICIENT_QUOTA: &str = "insufficient_quota";

/// genai keeps the failed response's status and headers (`retry-after`, `retry-after-ms`,
/// `x-should-retry`); without a status, only a request that failed on its way is retried.
#[cfg(feature = "genai")]
impl RetryAdvice for genai::Error {
    fn retry_after(&self) -> Option<std::time::Duration> {
        self.headers()
            .and_then(crate::core::retry_after::retry_after)
    }

    fn is_retryable(&self) -> bool {
        use genai::Error;
        let transient = match self {
            Error::WebModelCall { webc_error, .. } | Error::WebAdapterCall { webc_error, .. } => {
                matches!(webc_error, genai::webc::Error::Reqwest(error) if failed_on_its_way!(error))
            }
            Error::WebStream { .. } => true,
            _ => false,
        };
        super::advice::http_retryable(
            self.status().map(|status| status.as_u16()),
            self.headers(),
            transient,
        )
    }
}

/// ollama-rs's error: its HTTP client's failures as reqwest says. A failed status reaches the
/// application as text only (`Other`): it is retried as an error without advice would be
/// (Ollama answers 503 while busy); a body that does not decode, a tool that failed or an
/// error Ollama reported in its answer will fail again.
#[cfg(feature = "ollama")]
impl RetryAdvice for ollama_rs::error::OllamaError {
    fn is_retryable(&self) -> bool {
        use ollama_rs::error::OllamaError;
        match self {
            OllamaError::ReqwestError(error) => reqwest_is_retryable!(error),
            OllamaError::Other(_) => true,
            _ => false,
        }
    }
}

/// rig classifies its own failures (`ProviderError::is_retryable`); the provider's reply keeps
/// its headers.
#[cfg(feature = "rig")]
impl RetryAdvice for rig_core::error::ProviderError {
    fn retry_after(&self) -> Option<std::time::Duration> {
        self.provider_response_headers()
            .and_then(crate::core::retry_after::retry_after)
    }

    fn is_retryable(&self) -> bool {
        rig_core::error::ProviderError::is_retryable(self)
    }
}
