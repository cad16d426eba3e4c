//! flujo inside the application's own OpenTelemetry setup (feature `opentelemetry`).
//!
//! - A root span (a step or a run started outside any flujo span) started while an
//!   OpenTelemetry span is current (`opentelemetry::Context::current()`, which
//!   `tracing-opentelemetry` sets for the entered `tracing` span) joins that span's trace as
//!   its child, and follows its sampling decision.
//! - While a step runs, its context is the current `opentelemetry::Context` (activation), so
//!   OpenTelemetry instrumentation called from the step (an HTTP client that injects the
//!   current context, the logs appender, `tracing-opentelemetry` spans) sees the step.
//! - [`SpanContext`] converts to and from OpenTelemetry's span context and `Context`.

use std::cell::RefCell;
use std::sync::atomic::{AtomicBool, Ordering};

use opentelemetry::propagation::Injector;
use opentelemetry::trace::{
    SpanContext as OtelSpanContext, SpanId, TraceContextExt as _, TraceFlags, TraceId, TraceState,
};
use opentelemetry::{Context, ContextGuard};

use super::context::SpanContext;
use super::trace_state;

/// Whether a step's context is made the current OpenTelemetry context while it runs.
static ACTIVATION: AtomicBool = AtomicBool::new(false);

/// Switches activation (the `otel_context_activation` setting).
pub(crate) fn set_activation(on: bool) {
    ACTIVATION.store(on, Ordering::Relaxed);
}

thread_local! {
    /// The guards of the OpenTelemetry contexts flujo made current on this thread, innermost
    /// last. Kept here rather than in the scopes that made them: a guard is `!Send`, and a
    /// scope lives in a step's call, which an `async` step's future carries across threads.
    static GUARDS: RefCell<Vec<ContextGuard>> = const { RefCell::new(Vec::new()) };
}

/// The application's current OpenTelemetry span, as the parent of a flujo root span; `None`
/// when no valid span is current.
#[inline]
pub(crate) fn current_parent() -> Option<SpanContext> {
    Context::map_current(|cx| {
        if !cx.has_active_span() {
            return None;
        }
        let span = cx.span();
        let parent = span.span_context();
        parent.is_valid().then(|| SpanContext::from(parent))
    })
}

/// Makes `context` the current OpenTelemetry context until [`deactivate`] is called; `false`
/// (nothing to undo) when activation is off or `context` is no span.
#[inline]
pub(crate) fn activate(context: SpanContext) -> bool {
    ACTIVATION.load(Ordering::Relaxed) && context.trace_id().is_some() && attach(context)
}

#[inline(never)]
fn attach(context: SpanContext) -> bool {
    let guard = context.otel_context().attach();
    GUARDS
        .try_with(|guards| guards.borrow_mut().push(guard))
        .is_ok()
}

/// Restores the OpenTelemetry context that the matching [`activate`] replaced.
#[inline(never)]
pub(crate) fn deactivate() {
    let guard = GUARDS
        .try_with(|guards| guards.borrow_mut().pop())
        .ok()
        .flatten();
    drop(guard);
}

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
        let span = OtelSpanContext::from(*self);
        Context::map_current(|cx| cx.with_remote_span_context(span))
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
            trace_state::intern(&span.trace_state().header())
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
