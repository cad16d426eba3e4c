//! What the hot path asks of OpenTelemetry (feature `opentelemetry`): the application's
//! current span, and making a running step the current OpenTelemetry context (activation).
//! Imports nothing of flujo: `context` calls it, and the conversions of `otel` build on both.

use std::cell::RefCell;
use std::sync::atomic::{AtomicBool, Ordering};

use opentelemetry::trace::{SpanContext as OtelSpanContext, TraceContextExt as _};
use opentelemetry::{Context, ContextGuard};

static ACTIVATION: AtomicBool = AtomicBool::new(false);

/// Switches activation (the `otel_context_activation` setting).
pub(crate) fn set_activation(on: bool) {
    ACTIVATION.store(on, Ordering::Relaxed);
}

/// Whether a running step is made the current OpenTelemetry context.
#[inline]
pub(crate) fn activation() -> bool {
    ACTIVATION.load(Ordering::Relaxed)
}

thread_local! {
    /// The guards of the OpenTelemetry contexts flujo made current on this thread, innermost
    /// last. Kept here rather than in the scopes that made them: a guard is `!Send`, and a
    /// scope lives in a step's call, which an `async` step's future carries across threads.
    static GUARDS: RefCell<Vec<ContextGuard>> = const { RefCell::new(Vec::new()) };
}

/// The application's current OpenTelemetry span, when a valid one is current.
#[inline]
pub(crate) fn current_span() -> Option<OtelSpanContext> {
    Context::map_current(|cx| {
        if !cx.has_active_span() {
            return None;
        }
        let span = cx.span();
        let current = span.span_context();
        current.is_valid().then(|| current.clone())
    })
}

/// The current context with `span` as its span.
pub(crate) fn with_span(span: OtelSpanContext) -> Context {
    Context::map_current(|cx| cx.with_remote_span_context(span))
}

/// Makes `span` the current OpenTelemetry span until [`deactivate`]; `false` (nothing to
/// undo) when the thread is exiting.
#[inline(never)]
pub(crate) fn activate(span: OtelSpanContext) -> bool {
    let guard = with_span(span).attach();
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
