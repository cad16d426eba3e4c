//! Carrying a step and its run to where the work runs: a spawned task
//! ([`StepFutureExt::in_current_step`]), a plain thread or blocking task ([`ContextHandle`]).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use super::limits::UsageLimits;
use super::scope::{RunScope, RunSwap, current};
use crate::core::context::SpanContext;

/// Keeps the current step as the parent of a future that runs elsewhere (a spawned task):
///
/// ```
/// use flujo::StepFutureExt;
///
/// # async fn child() {}
/// # async fn demo() {
/// // inside a step:
/// let handle = tokio::spawn(child().in_current_step());
/// # handle.await.unwrap();
/// # }
/// ```
///
/// Without it a spawned task starts outside any step, and its steps begin new traces. The
/// task also keeps the run it was spawned in (its usage limits, see [`UsageLimits`](crate::UsageLimits)).
pub trait StepFutureExt: Future + Sized {
    /// Wraps this future so that the step and the run current now are current whenever it
    /// is polled.
    fn in_current_step(self) -> WithContext<Self> {
        WithContext::new(SpanContext::current(), current(), self)
    }
}

impl<F: Future> StepFutureExt for F {}

/// The current step *and* run (its request id, pipeline and usage limits), to carry to a
/// plain thread or a blocking task, where neither follows by itself:
///
/// ```
/// let here = flujo::ContextHandle::current();
/// std::thread::spawn(move || here.in_scope(|| {
///     // steps here are children of the current step, in the current run
/// }))
/// .join()
/// .unwrap();
/// ```
#[derive(Clone, Debug, Default)]
pub struct ContextHandle {
    span: SpanContext,
    run: Option<Arc<RunScope>>,
}

impl ContextHandle {
    /// The step and run current here.
    pub fn current() -> ContextHandle {
        ContextHandle {
            span: SpanContext::current(),
            run: current(),
        }
    }

    /// The span part of it.
    pub fn span_context(&self) -> SpanContext {
        self.span
    }

    /// Runs `f` with this step and run current, then restores what was current.
    pub fn in_scope<R>(&self, f: impl FnOnce() -> R) -> R {
        let mut run = self.run.clone();
        let _run = RunSwap::enter(&mut run);
        self.span.in_scope(f)
    }

    /// Wraps `future` so that this step and run are current whenever it is polled.
    pub fn instrument<F: Future>(&self, future: F) -> WithContext<F> {
        WithContext::new(self.span, self.run.clone(), future)
    }
}

pin_project_lite::pin_project! {
    /// A future that runs with a step *and* a run current whenever it is polled, and while
    /// it is dropped (a cancelled future's destructors run inside its step and run); see
    /// [`StepFutureExt::in_current_step`].
    pub struct WithContext<F> {
        context: SpanContext,
        // Moved into the thread's current run for each poll and back out after it.
        run: Option<Arc<RunScope>>,
        // `None` only once dropped, in place and in context.
        #[pin]
        future: Option<F>,
    }

    impl<F> PinnedDrop for WithContext<F> {
        fn drop(this: Pin<&mut Self>) {
            let mut this = this.project();
            let _scope = this.context.enter();
            let _run = RunSwap::enter(this.run);
            this.future.set(None);
        }
    }
}

impl<F> WithContext<F> {
    pub(crate) fn new(context: SpanContext, run: Option<Arc<RunScope>>, future: F) -> Self {
        WithContext {
            context,
            run,
            future: Some(future),
        }
    }
}

impl<F: Future> Future for WithContext<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.project();
        let _scope = this.context.enter();
        let _run = RunSwap::enter(this.run);
        match this.future.as_pin_mut() {
            Some(future) => future.poll(cx),
            // Only `drop` empties it.
            None => Poll::Pending,
        }
    }
}

impl UsageLimits {
    /// Runs `f` as one run under these limits. Model calls made inside it, on this thread
    /// or in tasks spawned with [`StepFutureExt::in_current_step`](crate::StepFutureExt::in_current_step),
    /// count against them.
    pub fn run<R>(self, f: impl FnOnce() -> R) -> R {
        let mut scope = Some(self.scope());
        let _current = RunSwap::enter(&mut scope);
        f()
    }

    /// Runs `future` as one run under these limits (see [`UsageLimits::run`]). Steps inside
    /// it are children of the step current where this is called.
    pub fn run_async<F: Future>(self, future: F) -> WithContext<F> {
        WithContext::new(SpanContext::current(), Some(self.scope()), future)
    }

    fn scope(self) -> Arc<RunScope> {
        Arc::new(RunScope {
            budget: Some(self.budget()),
            ..RunScope::default()
        })
    }
}
