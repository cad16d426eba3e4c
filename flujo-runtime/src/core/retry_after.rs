//! How long an HTTP response asks its client to wait: read by a step's retries (through
//! `RetryAdvice`) and by the OTLP exporter alike.

use std::time::{Duration, SystemTime};

use http::HeaderMap;

/// How long an HTTP response asks its client to wait before another request: OpenAI's
/// `retry-after-ms` (milliseconds) when present, else `Retry-After` in seconds or as an HTTP
/// date (RFC 9110, section 10.2.3; a date in the past is no wait). `None` when neither is
/// there or readable. For a [`RetryAdvice`](crate::RetryAdvice) implementation of an error that keeps the
/// response's headers:
///
/// ```
/// use std::time::Duration;
///
/// let mut headers = http::HeaderMap::new();
/// headers.insert("retry-after", http::HeaderValue::from_static("2"));
/// assert_eq!(flujo::retry_after(&headers), Some(Duration::from_secs(2)));
/// headers.insert("retry-after-ms", http::HeaderValue::from_static("1500"));
/// assert_eq!(flujo::retry_after(&headers), Some(Duration::from_millis(1_500)));
/// ```
pub fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let text = |name: &str| headers.get(name)?.to_str().ok().map(str::trim);
    if let Some(ms) = text(RETRY_AFTER_MS).and_then(|ms| at_most(ms, MOST_SECONDS * 1_000.0)) {
        return Some(Duration::from_secs_f64(ms / 1_000.0));
    }
    let value = text(http::header::RETRY_AFTER.as_str())?;
    match at_most(value, MOST_SECONDS) {
        Some(seconds) => Some(Duration::from_secs_f64(seconds)),
        None => {
            let at = httpdate::parse_http_date(value).ok()?;
            Some(
                at.duration_since(SystemTime::now())
                    .unwrap_or(Duration::ZERO),
            )
        }
    }
}

/// OpenAI's wait in milliseconds, more precise than `Retry-After`.
const RETRY_AFTER_MS: &str = "retry-after-ms";
/// A wait above a day is no hint but a misreading (a timestamp sent as seconds).
const MOST_SECONDS: f64 = 86_400.0;

/// A wait between 0 and `most`, in the header's unit.
fn at_most(text: &str, most: f64) -> Option<f64> {
    let value: f64 = text.parse().ok()?;
    // NaN and infinities fail the comparisons.
    (value >= 0.0 && value <= most).then_some(value)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use http::HeaderValue;

    /// A header map of `pairs`.
    pub(crate) fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        pairs
            .iter()
            .map(|(name, value)| {
                (
                    http::HeaderName::from_static(name),
                    HeaderValue::from_static(value),
                )
            })
            .collect()
    }

    #[test]
    fn retry_after_reads_seconds_milliseconds_and_dates() {
        assert_eq!(retry_after(&headers(&[])), None);
        assert_eq!(
            retry_after(&headers(&[("retry-after", "1")])),
            Some(Duration::from_secs(1))
        );
        assert_eq!(
            retry_after(&headers(&[("retry-after", " 0.5 ")])),
            Some(Duration::from_millis(500))
        );
        assert_eq!(
            retry_after(&headers(&[("retry-after", "3"), ("retry-after-ms", "250")])),
            Some(Duration::from_millis(250))
        );
        assert_eq!(
            retry_after(&headers(&[(
                "retry-after",
                "Wed, 21 Oct 2015 07:28:00 GMT"
            )])),
            Some(Duration::ZERO),
            "a date in the past is no wait"
        );
        let in_a_minute = httpdate::fmt_http_date(SystemTime::now() + Duration::from_secs(60));
        let mut future = HeaderMap::new();
        future.insert("retry-after", HeaderValue::from_str(&in_a_minute).unwrap());
        let wait = retry_after(&future).unwrap();
        assert!(
            wait > Duration::from_secs(55) && wait <= Duration::from_secs(60),
            "{wait:?}"
        );
    }

    #[test]
    fn unreadable_waits_are_no_hint() {
        for bad in ["-1", "soon", "NaN", "inf", "1e12", ""] {
            let mut map = HeaderMap::new();
            map.insert("retry-after", HeaderValue::from_str(bad).unwrap());
            assert_eq!(retry_after(&map), None, "{bad:?}");
        }
        let mut ms = HeaderMap::new();
        ms.insert("retry-after-ms", HeaderValue::from_static("later"));
        ms.insert("retry-after", HeaderValue::from_static("2"));
        assert_eq!(retry_after(&ms), Some(Duration::from_secs(2)));
    }
}
