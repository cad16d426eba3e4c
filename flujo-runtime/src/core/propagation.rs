//! Carrying a trace across process boundaries in headers, as `OTEL_PROPAGATORS` says: W3C
//! Trace Context (`traceparent`, `tracestate`) and W3C Baggage (`baggage`).

use std::sync::atomic::{AtomicU8, Ordering};

use crate::core::context::SpanContext;
use crate::core::trace_state::{self, Carried};

/// Which headers carry a trace in and out of this process (`OTEL_PROPAGATORS`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Propagators(u8);

const TRACE_CONTEXT: u8 = 1;
const BAGGAGE: u8 = 2;

impl Propagators {
    /// No header is read or written.
    pub const NONE: Propagators = Propagators(0);
    /// W3C Trace Context: `traceparent` and `tracestate`.
    pub const TRACE_CONTEXT: Propagators = Propagators(TRACE_CONTEXT);
    /// W3C Baggage: `baggage`.
    pub const BAGGAGE: Propagators = Propagators(BAGGAGE);
    /// What `OTEL_PROPAGATORS` accepts.
    pub const VALUES: &'static str = "a comma-separated list of tracecontext and baggage, or none";

    /// Reads an `OTEL_PROPAGATORS` list.
    pub fn parse(list: &str) -> Option<Propagators> {
        let mut propagators = Propagators::NONE;
        let names: Vec<String> = list
            .split(',')
            .map(|name| name.trim().to_ascii_lowercase())
            .filter(|name| !name.is_empty())
            .collect();
        for name in &names {
            propagators.0 |= match name.as_str() {
                "tracecontext" => TRACE_CONTEXT,
                "baggage" => BAGGAGE,
                "none" if names.len() == 1 => 0,
                _ => return None,
            };
        }
        (!names.is_empty()).then_some(propagators)
    }

    /// Both of these.
    #[must_use]
    pub const fn and(self, other: Propagators) -> Propagators {
        Propagators(self.0 | other.0)
    }

    /// Whether every header of `other` is among these.
    pub const fn contains(self, other: Propagators) -> bool {
        self.0 & other.0 == other.0
    }
}

impl Default for Propagators {
    /// The specification's default: `tracecontext,baggage`.
    fn default() -> Propagators {
        Propagators::TRACE_CONTEXT.and(Propagators::BAGGAGE)
    }
}

static CURRENT: AtomicU8 = AtomicU8::new(TRACE_CONTEXT | BAGGAGE);

/// Sets the propagators in force (at init).
pub(crate) fn set(propagators: Propagators) {
    CURRENT.store(propagators.0, Ordering::Relaxed);
}

fn current() -> Propagators {
    Propagators(CURRENT.load(Ordering::Relaxed))
}

impl SpanContext {
    /// Continues the trace of an incoming request from its headers, as the propagators in
    /// force (`OTEL_PROPAGATORS`, default `tracecontext,baggage`) read them: `traceparent`
    /// and `tracestate`, and `baggage`. `get` gives a header's value by its lowercase name.
    /// Headers that are absent or invalid are ignored, as W3C asks: a request without a valid
    /// `traceparent` starts a new trace here (which still carries its baggage).
    ///
    /// ```
    /// use flujo::SpanContext;
    ///
    /// let headers = [
    ///     ("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),
    ///     ("baggage", "tenant=acme,region=eu%2Dwest"),
    /// ];
    /// let get = |name: &str| headers.iter().find(|(n, _)| *n == name).map(|(_, v)| *v);
    /// let remote = SpanContext::extract(get);
    /// assert!(remote.is_sampled());
    /// assert_eq!(remote.baggage_entry("region").as_deref(), Some("eu-west"));
    /// ```
    pub fn extract<'a>(get: impl Fn(&str) -> Option<&'a str>) -> SpanContext {
        let propagators = current();
        let mut context = SpanContext::NONE;
        if propagators.contains(Propagators::TRACE_CONTEXT)
            && let Some(parent) = get("traceparent")
            && let Ok(remote) = SpanContext::from_traceparent(parent)
        {
            context = match get("tracestate") {
                Some(state) => remote.with_tracestate(state),
                None => remote,
            };
        }
        if propagators.contains(Propagators::BAGGAGE)
            && let Some(baggage) = get("baggage")
        {
            context = context.with_baggage(baggage);
        }
        context
    }

    /// [`SpanContext::extract`] from an `http::HeaderMap` (hyper, axum, reqwest, tonic).
    pub fn from_headers(headers: &http::HeaderMap) -> SpanContext {
        SpanContext::extract(|name| headers.get(name).and_then(|value| value.to_str().ok()))
    }

    /// Writes this context into an outgoing request's headers, as the propagators in force
    /// say: `traceparent` and `tracestate`, and `baggage`. `set` receives each header's
    /// lowercase name and value; nothing is written outside a span (but baggage is).
    pub fn inject_with(&self, mut set: impl FnMut(&'static str, String)) {
        let propagators = current();
        if propagators.contains(Propagators::TRACE_CONTEXT)
            && let Some(parent) = self.traceparent()
        {
            set("traceparent", parent);
            if let Some(state) = self.tracestate() {
                set("tracestate", state);
            }
        }
        if propagators.contains(Propagators::BAGGAGE)
            && let Some(baggage) = self.baggage()
        {
            set("baggage", baggage);
        }
    }

    /// [`SpanContext::inject_with`] into an `http::HeaderMap`.
    pub fn inject_headers(&self, headers: &mut http::HeaderMap) {
        self.inject_with(|name, value| {
            if let Ok(value) = http::HeaderValue::from_str(&value) {
                headers.insert(name, value);
            }
        });
    }

    /// This context with a W3C `baggage` header (from an incoming request, or made here):
    /// every span of the trace here keeps it, and [`SpanContext::inject_with`] sends it on. A
    /// `baggage` that is not W3C-shaped (or longer than 8192 bytes) is dropped, as W3C asks.
    #[must_use]
    pub fn with_baggage(self, header: &str) -> SpanContext {
        let header = header.trim();
        if !trace_state::is_valid_baggage(header) {
            return self;
        }
        let carried = trace_state::carried(self.trace_state_id());
        self.with_carried(trace_state::intern(Carried {
            baggage: Some(header.into()),
            ..carried
        }))
    }

    /// The trace's W3C `baggage` header, if it carries one.
    pub fn baggage(&self) -> Option<String> {
        trace_state::carried(self.trace_state_id())
            .baggage
            .map(|baggage| baggage.to_string())
    }

    /// The value of one baggage entry, decoded.
    pub fn baggage_entry(&self, key: &str) -> Option<String> {
        trace_state::carried(self.trace_state_id())
            .baggage
            .and_then(|baggage| trace_state::baggage_entry(&baggage, key))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn otel_propagators_lists_are_read_as_the_specification_writes_them() {
        assert_eq!(
            Propagators::parse("tracecontext,baggage"),
            Some(Propagators::default())
        );
        assert_eq!(
            Propagators::parse(" TraceContext "),
            Some(Propagators::TRACE_CONTEXT)
        );
        assert_eq!(Propagators::parse("none"), Some(Propagators::NONE));
        assert_eq!(Propagators::parse("b3"), None);
        assert_eq!(Propagators::parse("none,baggage"), None);
    }
}
