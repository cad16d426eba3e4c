//! `RetryAdvice` for the errors of the clients flujo integrates with (features `reqwest`,
//! `async-openai-client`, `genai`, `ollama`, `rig`): each client's own error, as the client
//! makes it from a real loopback provider's answer where the client can be pointed at one.

use std::time::Duration;

use flujo::RetryAdvice;

#[path = "../../tests/support/stub_provider.rs"]
mod stub_provider;
use stub_provider::StubProvider;

/// A port nothing listens on: a connection to it is refused.
fn closed_port() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    base
}

fn headers(pairs: &[(&'static str, &'static str)]) -> http::HeaderMap {
    pairs
        .iter()
        .map(|(name, value)| {
            (
                http::HeaderName::from_static(name),
                http::HeaderValue::from_static(value),
            )
        })
        .collect()
}

#[tokio::test]
async fn reqwest_errors_are_judged_by_their_status_or_their_transport() {
    let provider = StubProvider::start(vec![
        ("503 Service Unavailable", "", "{}"),
        ("401 Unauthorized", "", "{}"),
    ]);
    let client = reqwest::Client::new();
    let mut verdicts = Vec::new();
    for _ in 0..2 {
        let error = client
            .get(&provider.base)
            .send()
            .await
            .unwrap()
            .error_for_status()
            .unwrap_err();
        verdicts.push(error.is_retryable());
    }
    assert_eq!(verdicts, [true, false], "503 is retried, 401 is not");
    let refused = client.get(closed_port()).send().await.unwrap_err();
    assert!(refused.is_retryable(), "a refused connection may come up");
    assert_eq!(refused.retry_after(), None);
}

fn chat_request() -> async_openai::types::chat::CreateChatCompletionRequest {
    serde_json::from_value(serde_json::json!({
        "model": "gpt-4o-mini",
        "messages": [{"role": "user", "content": "hi"}]
    }))
    .unwrap()
}

#[tokio::test]
async fn async_openai_errors_keep_apart_a_rate_limit_and_an_exhausted_quota() {
    // async-openai's client retries a rate limit, a 5xx and a refused connection 3 times
    // itself (after the `Retry-After` it was sent, 0 s here): what reaches the step is what
    // is left after those.
    let rate_limited = (
        "429 Too Many Requests",
        "retry-after: 0\r\n",
        r#"{"error":{"message":"Rate limit reached","type":"requests","param":null,"code":"rate_limit_exceeded"}}"#,
    );
    let server_error = (
        "500 Internal Server Error",
        "retry-after: 0\r\n",
        r#"{"error":{"message":"server error","type":"server_error","param":null,"code":null}}"#,
    );
    let mut responses = vec![rate_limited; 4];
    responses.push((
        "429 Too Many Requests",
        "",
        r#"{"error":{"message":"You exceeded your current quota","type":"insufficient_quota","param":null,"code":"insufficient_quota"}}"#,
    ));
    responses.push((
        "400 Bad Request",
        "",
        r#"{"error":{"message":"maximum context length","type":"invalid_request_error","param":"messages","code":"context_length_exceeded"}}"#,
    ));
    responses.extend([server_error; 4]);
    let provider = StubProvider::start(responses);
    let config = async_openai::config::OpenAIConfig::new()
        .with_api_base(format!("{}/v1", provider.base))
        .with_api_key("sk-test");
    let client = async_openai::Client::with_config(config);
    let mut verdicts = Vec::new();
    for _ in 0..4 {
        let error = client.chat().create(chat_request()).await.unwrap_err();
        assert!(
            matches!(error, async_openai::error::OpenAIError::ApiError(_)),
            "{error:?}"
        );
        verdicts.push(error.is_retryable());
    }
    assert_eq!(verdicts, [true, false, false, true]);
    assert_eq!(provider.arrivals().len(), 10);

    let unreachable = async_openai::Client::with_config(
        async_openai::config::OpenAIConfig::new()
            .with_api_base(closed_port())
            .with_api_key("sk-test"),
    );
    let refused = unreachable.chat().create(chat_request()).await.unwrap_err();
    assert!(refused.is_retryable(), "{refused:?}");
    let invalid = async_openai::error::OpenAIError::InvalidArgument("no model".into());
    assert!(!invalid.is_retryable());
}

#[test]
fn genai_errors_carry_the_providers_status_and_headers() {
    let rate_limited = genai::Error::HttpError {
        status: http::StatusCode::TOO_MANY_REQUESTS,
        canonical_reason: "Too Many Requests".into(),
        body: String::new(),
        headers: Box::new(headers(&[("retry-after-ms", "1500")])),
    };
    assert!(rate_limited.is_retryable());
    assert_eq!(
        rate_limited.retry_after(),
        Some(Duration::from_millis(1_500))
    );
    let overloaded_but_told_not_to = genai::Error::HttpError {
        status: http::StatusCode::SERVICE_UNAVAILABLE,
        canonical_reason: "Service Unavailable".into(),
        body: String::new(),
        headers: Box::new(headers(&[("x-should-retry", "false")])),
    };
    assert!(!overloaded_but_told_not_to.is_retryable());
    let bad_request = genai::Error::HttpError {
        status: http::StatusCode::BAD_REQUEST,
        canonical_reason: "Bad Request".into(),
        body: String::new(),
        headers: Box::default(),
    };
    assert!(!bad_request.is_retryable());
    assert_eq!(bad_request.retry_after(), None);
}

#[tokio::test]
async fn ollama_errors_retry_an_unreachable_or_busy_server_not_a_broken_answer() {
    use ollama_rs::Ollama;
    use ollama_rs::generation::completion::request::GenerationRequest;

    let provider = StubProvider::start(vec![
        (
            "503 Service Unavailable",
            "",
            r#"{"error":"server busy, please try again. maximum pending requests exceeded"}"#,
        ),
        ("200 OK", "", "not json"),
    ]);
    let (host, port) = provider.base.rsplit_once(':').unwrap();
    let ollama = Ollama::builder()
        .host(host)
        .port(port.parse().unwrap())
        .build();
    let ask = || ollama.generate(GenerationRequest::new("llama3.2".into(), "hi"));
    let busy = ask().await.unwrap_err();
    assert!(busy.is_retryable(), "{busy:?}");
    let broken = ask().await.unwrap_err();
    assert!(!broken.is_retryable(), "{broken:?}");

    let closed = closed_port();
    let (host, port) = closed.rsplit_once(':').unwrap();
    let refused = Ollama::builder()
        .host(host)
        .port(port.parse().unwrap())
        .build()
        .generate(GenerationRequest::new("llama3.2".into(), "hi"))
        .await
        .unwrap_err();
    assert!(refused.is_retryable(), "{refused:?}");
}

#[test]
fn rig_errors_keep_rigs_own_judgement_and_the_replys_headers() {
    use rig_core::error::ProviderError;

    let rate_limited =
        ProviderError::from_http_response(http::StatusCode::TOO_MANY_REQUESTS, "slow down")
            .with_response_headers(Some(headers(&[("retry-after", "2")])));
    assert!(rate_limited.is_retryable());
    assert_eq!(
        RetryAdvice::retry_after(&rate_limited),
        Some(Duration::from_secs(2))
    );
    let unauthorized = ProviderError::from_http_response(http::StatusCode::UNAUTHORIZED, "no");
    assert!(!RetryAdvice::is_retryable(&unauthorized));
}
