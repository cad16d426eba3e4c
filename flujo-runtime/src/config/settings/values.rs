//! How settings' values are written: the parsers declarations share.

use std::ops::RangeInclusive;
use std::time::Duration;

use flujo_pricing::Usd;

use super::super::secret::Secret;
use crate::core::percent::percent_decode;

pub(crate) const BOOL: &str = "one of true, false, 1, 0, yes, no, on, off";
pub(crate) const URL: &str = "an http:// or https:// URL with a host and a port from 1 to 65535, such as http://localhost:4317";

pub(crate) fn boolean(value: &str) -> Option<bool> {
    match value.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Some(true),
        "false" | "0" | "no" | "off" => Some(false),
        _ => None,
    }
}

pub(crate) fn text(value: &str) -> Option<String> {
    Some(value.trim().to_owned())
}

pub(crate) fn path(value: &str) -> Option<std::path::PathBuf> {
    Some(value.trim().into())
}

pub(crate) fn any<T>(_: &T) -> bool {
    true
}

/// Whole milliseconds within `range`.
pub(crate) fn millis(value: &str, range: RangeInclusive<u64>) -> Option<Duration> {
    let ms = value.trim().parse::<u64>().ok()?;
    range.contains(&ms).then(|| Duration::from_millis(ms))
}

/// A duration from code within `range` (milliseconds).
pub(crate) fn within_millis(duration: &Duration, range: RangeInclusive<u64>) -> bool {
    (Duration::from_millis(*range.start())..=Duration::from_millis(*range.end())).contains(duration)
}

/// A whole number within `range`.
pub(crate) fn count(value: &str, range: RangeInclusive<usize>) -> Option<usize> {
    value
        .trim()
        .parse::<usize>()
        .ok()
        .filter(|n| range.contains(n))
}

/// An `http(s)://` URL with a host and a valid port, trimmed.
pub(crate) fn url(value: &str) -> Option<String> {
    valid_url(value.trim()).then(|| value.trim().to_owned())
}

pub(crate) fn valid_url(endpoint: &str) -> bool {
    endpoint.parse::<http::Uri>().ok().is_some_and(|uri| {
        matches!(uri.scheme_str(), Some("http" | "https"))
            && uri.host().is_some_and(|host| !host.is_empty())
            && has_valid_port(&uri)
    })
}

/// No port, or one from 1 to 65535 (`http::Uri` forgets a port it cannot read, so that
/// `:99999` would otherwise connect to the scheme's default port).
fn has_valid_port(uri: &http::Uri) -> bool {
    let Some(authority) = uri.authority().map(http::uri::Authority::as_str) else {
        return true;
    };
    // After the host (an IPv6 host is in brackets) and any user info.
    let host_end = authority.rfind(']').unwrap_or(0);
    match authority[host_end..].rfind(':') {
        None => true,
        Some(colon) => authority[host_end + colon + 1..]
            .parse::<u16>()
            .is_ok_and(|port| port > 0),
    }
}

/// `key=value,key2=value2` with URL-encoded values, as the OpenTelemetry specification
/// writes headers and resource attributes.
pub(crate) fn pairs(value: &str) -> Option<Vec<(String, String)>> {
    value
        .split(',')
        .filter(|pair| !pair.trim().is_empty())
        .map(|pair| {
            let (key, value) = pair.split_once('=')?;
            let key = key.trim();
            if key.is_empty() {
                return None;
            }
            Some((key.to_owned(), percent_decode(value.trim())?))
        })
        .collect()
}

pub(crate) fn headers(value: &str) -> Option<Vec<(String, Secret)>> {
    Some(
        pairs(value)?
            .into_iter()
            .map(|(key, value)| (key, Secret::from(value)))
            .collect(),
    )
}

/// A comma-separated list of names, each one of `known`, lowercased; `none` only alone.
pub(crate) fn names(value: &str, known: &[&str]) -> Option<Vec<String>> {
    let names: Vec<String> = value
        .split(',')
        .map(|name| name.trim().to_ascii_lowercase())
        .filter(|name| !name.is_empty())
        .collect();
    let all_known = names.iter().all(|name| known.contains(&name.as_str()));
    let none_alone = names.len() == 1 || !names.iter().any(|name| name == "none");
    (all_known && none_alone && !names.is_empty()).then_some(names)
}

/// A money limit: an exact amount, or (for an amount above what `Usd` holds, about $18.4
/// billion) the largest one, which no spending reaches: a huge limit means "no limit", never
/// "refuse everything".
pub(crate) fn usd_limit(value: &str) -> Option<Usd> {
    let value = value.trim();
    Usd::parse(value).ok().or_else(|| {
        let mut parts = value.splitn(2, '.');
        let whole = parts.next().unwrap_or_default();
        let fraction = parts.next().unwrap_or_default();
        let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
        (!whole.is_empty() && digits(whole) && digits(fraction) && fraction.len() <= 9)
            .then_some(Usd::from_nanos(u64::MAX))
    })
}
