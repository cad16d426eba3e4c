//! Logfire export (feature `logfire`): spans and logs over OTLP/HTTP to Logfire, with the
//! write token in the `authorization` header: the OTLP exporters of `sinks::otlp`, pointed at
//! `{base}/v1/traces` and `{base}/v1/logs`.

use std::time::Duration;

use crate::config::secret::Secret;
use crate::config::settings::{LogfireSettings, OtlpProtocol, OtlpSignal};

/// Logfire's regional endpoints, chosen from the token (`pylf_v1_<region>_...`).
fn base_url(settings: &LogfireSettings, token: &Secret) -> String {
    if let Some(url) = &settings.base_url {
        return url.trim_end_matches('/').to_owned();
    }
    let region = token.expose().split('_').nth(2).unwrap_or("us");
    match region {
        "eu" => "https://logfire-eu.pydantic.dev",
        _ => "https://logfire-us.pydantic.dev",
    }
    .to_owned()
}

/// Where one signal goes to Logfire (`path`: `/v1/traces`, `/v1/logs`), whatever the OTLP
/// settings say: Logfire's endpoint, OTLP/HTTP, its token, each request within `timeout`.
pub(crate) fn signal(
    settings: &LogfireSettings,
    token: &Secret,
    path: &str,
    timeout: Duration,
) -> OtlpSignal {
    OtlpSignal::new(
        format!("{}{path}", base_url(settings, token)),
        OtlpProtocol::HttpProtobuf,
        vec![("authorization".to_owned(), token.clone())],
        timeout,
    )
}
