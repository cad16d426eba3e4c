//! flujo inside the application's own OpenTelemetry setup (feature `opentelemetry`): the
//! conversions of [`SpanContext`]; the hot path's part is `otel_current`.
//!
//! - A root span (a step or a run started outside any flujo span) started while an
//!   OpenTelemetry span is current (`opentelemetry::Context::current()`, which
//!   `tracing-opentelemetry` sets for the entered `tracing` span) joins that span's trace as
//!   its child, and follows its sampling decision.
//! - While a step runs, its context is the current `opentelemetry::Context` (activation), so
//!   OpenTelemetry instrumentation called from the step (an HTTP client that injects the
//!   current context, the logs appender, `tracing-opentelemetry` spans) sees the step.
//! - [`SpanContext`] converts to and from OpenTelemetry's span context and `Context`.

use opentelemetry::Context;
use opentelemetry::propagation::Injector;
use opentelemetry::trace::{
    SpanContext as OtelSpanContext, SpanId, TraceContextExt as _, TraceFlags, TraceId, TraceState,
};

use super::context::SpanContext;
use super::otel_current;
use super::trace_state;

impl SpanContext {
    /// This span as an OpenTelemetry [`Context`] (the current one, with this span as its
    /// span): the parent to give an OpenTelemetry span started by hand, or the context to
    /// inject into an outgoing request with the application's propagator. Needs feature
    /// `opentelemetry`.
    ///
    /// ```
    /// use opentelemetry::trace::TraceContextExt as _;
    ///
    /// let remote = flujo::SpanContext::from_traceparent(
    ///     "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
    /// )?;
    /// let cx = remote.otel_context();
    /// assert_eq!(cx.span().span_context().span_id().to_string(), "00f067aa0ba902b7");
    /// # Ok::<(), flujo::context::TraceparentError>(())
    /// ```
    pub fn otel_context(&self) -> Context {
        otel_current::with_span(OtelSpanContext::from(*self))
    }

    /// Writes this span's trace headers into `carrier` with the application's global text-map
    /// propagator (`opentelemetry::global::set_text_map_propagator`: with
    /// `TraceContextPropagator`, W3C `traceparent` and `tracestate`). OpenTelemetry's default
    /// propagator writes nothing: set one, or send [`SpanContext::traceparent`] yourself.
    /// Needs feature `opentelemetry`.
    pub fn inject(&self, carrier: &mut dyn Injector) {
        let cx = self.otel_context();
        opentelemetry::global::get_text_map_propagator(|propagator| {
            propagator.inject_context(&cx, carrier);
        });
    }
}

impl From<SpanContext> for OtelSpanContext {
    /// The same trace, span, sampled flag and `tracestate`; [`SpanContext::NONE`] becomes
    /// OpenTelemetry's invalid (empty) span context.
    fn from(context: SpanContext) -> OtelSpanContext {
        let (Some(trace_id), Some(span_id)) = (context.trace_id(), context.span_id()) else {
            return OtelSpanContext::NONE;
        };
        let flags = if context.is_sampled() {
            TraceFlags::SAMPLED
        } else {
            TraceFlags::default()
        };
        let state = trace_state::lookup(context.trace_state_id())
            .and_then(|state| state.parse::<TraceState>().ok())
            .unwrap_or_default();
        OtelSpanContext::new(
            TraceId::from(trace_id.0),
            SpanId::from(span_id.0),
            flags,
            context.is_remote(),
            state,
        )
    }
}

impl From<&OtelSpanContext> for SpanContext {
    /// An OpenTelemetry span as a parent of flujo spans (with its sampled flag, and its
    /// `tracestate` when it has one); an invalid one is [`SpanContext::NONE`].
    fn from(span: &OtelSpanContext) -> SpanContext {
        if !span.is_valid() {
            return SpanContext::NONE;
        }
        let state = if *span.trace_state() == TraceState::NONE {
            0
        } else {
            trace_state::intern(trace_state::Carried {
                tracestate: Some(span.trace_state().header().into()),
                baggage: None,
            })
        };
        SpanContext::joining(
            u128::from_be_bytes(span.trace_id().to_bytes()),
            u64::from_be_bytes(span.span_id().to_bytes()),
            span.is_sampled(),
            span.is_remote(),
            state,
        )
    }
}

impl From<&Context> for SpanContext {
    /// The span of an OpenTelemetry [`Context`] (for instance one a propagator extracted from
    /// incoming headers), to run steps under with [`SpanContext::in_scope`].
    fn from(cx: &Context) -> SpanContext {
        SpanContext::from(cx.span().span_context())
    }
}
