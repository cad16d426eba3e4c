//! Which span is current: a thread-local for synchronous code, carried by a future wrapper
//! across `.await` points and executor threads.

use std::cell::Cell;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use crate::span::{SpanId, TraceId};
use crate::telemetry;

/// The identity of a span: the trace it belongs to, its id, and whether it is sampled.
///
/// Steps read the current context to find their parent. To keep parent links across a
/// boundary that flujo cannot see (a spawned task, a thread), take the context where the
/// work is created and re-enter it where it runs:
///
/// ```
/// use flujo::SpanContext;
///
/// let ctx = SpanContext::current();
/// std::thread::spawn(move || ctx.in_scope(|| {
///     // steps called here are children of the step that spawned the thread
/// }))
/// .join()
/// .unwrap();
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct SpanContext {
    trace_id: u128,
    span_id: u64,
    sampled: bool,
}

thread_local! {
    static CURRENT: Cell<SpanContext> = const { Cell::new(SpanContext::NONE) };
}

impl SpanContext {
    /// No span: work started here begins a new trace.
    pub const NONE: SpanContext = SpanContext {
        trace_id: 0,
        span_id: 0,
        sampled: false,
    };

    /// The context of the step or pipeline running on this thread (or in this future).
    pub fn current() -> SpanContext {
        CURRENT.try_with(Cell::get).unwrap_or(SpanContext::NONE)
    }

    /// The trace id, `None` outside any span.
    pub fn trace_id(&self) -> Option<TraceId> {
        (self.trace_id != 0).then_some(TraceId(self.trace_id))
    }

    /// The span id, `None` outside any span.
    pub fn span_id(&self) -> Option<SpanId> {
        (self.span_id != 0).then_some(SpanId(self.span_id))
    }

    /// Whether spans of this trace are recorded (head sampling, decided at the root).
    pub fn is_sampled(&self) -> bool {
        self.sampled
    }

    /// Runs `f` with this context current, then restores the previous one.
    pub fn in_scope<R>(self, f: impl FnOnce() -> R) -> R {
        let _scope = self.enter();
        f()
    }

    /// Wraps `future` so that this context is current whenever it is polled.
    pub fn instrument<F: Future>(self, future: F) -> WithContext<F> {
        WithContext {
            context: self,
            future,
        }
    }

    /// A new child of this context (or a new root when this is [`SpanContext::NONE`]).
    pub(crate) fn child(self) -> SpanContext {
        let span_id = nonzero_u64();
        if self.trace_id == 0 {
            let trace_id = (u128::from(nonzero_u64()) << 64) | u128::from(fastrand::u64(..));
            SpanContext {
                trace_id,
                span_id,
                sampled: telemetry::sample_root(trace_id),
            }
        } else {
            SpanContext { span_id, ..self }
        }
    }

    pub(crate) fn raw_trace_id(&self) -> u128 {
        self.trace_id
    }

    pub(crate) fn raw_span_id(&self) -> u64 {
        self.span_id
    }

    /// Makes this context current until the returned scope is dropped.
    pub(crate) fn enter(self) -> ContextScope {
        let previous = CURRENT
            .try_with(|current| current.replace(self))
            .unwrap_or(SpanContext::NONE);
        ContextScope { previous }
    }
}

fn nonzero_u64() -> u64 {
    fastrand::u64(1..)
}

/// Restores the previous context when dropped, including during unwinding.
pub(crate) struct ContextScope {
    previous: SpanContext,
}

impl Drop for ContextScope {
    fn drop(&mut self) {
        let _ = CURRENT.try_with(|current| current.set(self.previous));
    }
}

pin_project_lite::pin_project! {
    /// A future that runs with a [`SpanContext`] current; see [`SpanContext::instrument`].
    pub struct WithContext<F> {
        context: SpanContext,
        #[pin]
        future: F,
    }
}

impl<F: Future> Future for WithContext<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.project();
        let _scope = this.context.enter();
        this.future.poll(cx)
    }
}
