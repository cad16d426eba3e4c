//! Which span is current: a thread-local for synchronous code, carried by a future wrapper
//! across `.await` points and executor threads.

use std::cell::Cell;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use std::sync::Arc;

use crate::config::TelemetryError;
use crate::run::{self, RunScope};
use crate::span::StepMeta;
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
    /// High and low words: two `u64`s rather than a `u128` keep the context 8-byte aligned
    /// and 40 bytes, which the hot path copies on every step call.
    trace_id: [u64; 2],
    span_id: u64,
    sampled: bool,
    /// The innermost `#[pipeline_step]` of this span (itself, or the step a model call runs
    /// in): cost records name it.
    step: Option<&'static StepMeta>,
}

/// Per-thread state of the hot path, in one thread-local so that starting a span costs one
/// thread-local access: the current context and the id generator.
struct ThreadContext {
    current: Cell<SpanContext>,
    rng: Cell<u64>,
}

impl ThreadContext {
    /// wyrand: fast, good enough for ids (not for secrets), seeded per thread.
    fn next_u64(&self) -> u64 {
        let mut state = self.rng.get();
        if state == 0 {
            state = fastrand::u64(1..);
        }
        state = state.wrapping_add(0xa076_1d64_78bd_642f);
        self.rng.set(state);
        let product = u128::from(state) * u128::from(state ^ 0xe703_7ed1_a0b4_28db);
        ((product >> 64) as u64) ^ (product as u64)
    }

    fn nonzero_u64(&self) -> u64 {
        loop {
            let value = self.next_u64();
            if value != 0 {
                return value;
            }
        }
    }
}

thread_local! {
    static THREAD: ThreadContext = const {
        ThreadContext {
            current: Cell::new(SpanContext::NONE),
            rng: Cell::new(0),
        }
    };
}

impl SpanContext {
    /// No span: work started here begins a new trace.
    pub const NONE: SpanContext = SpanContext {
        trace_id: [0, 0],
        span_id: 0,
        sampled: false,
        step: None,
    };

    /// The context of the step or pipeline running on this thread (or in this future).
    pub fn current() -> SpanContext {
        THREAD
            .try_with(|thread| thread.current.get())
            .unwrap_or(SpanContext::NONE)
    }

    /// The trace id, `None` outside any span.
    pub fn trace_id(&self) -> Option<TraceId> {
        let trace_id = self.raw_trace_id();
        (trace_id != 0).then_some(TraceId(trace_id))
    }

    /// The span id, `None` outside any span.
    pub fn span_id(&self) -> Option<SpanId> {
        (self.span_id != 0).then_some(SpanId(self.span_id))
    }

    /// Whether spans of this trace are recorded (head sampling, decided at the root).
    pub fn is_sampled(&self) -> bool {
        self.sampled
    }

    /// Continues a trace started elsewhere, from a W3C `traceparent` header
    /// (`00-<32 hex trace id>-<16 hex span id>-<2 hex flags>`). Steps run in
    /// [`SpanContext::in_scope`] of the result join that trace as children of the remote span,
    /// and follow its sampling decision (the `sampled` flag), whatever the local rate.
    ///
    /// ```
    /// use flujo::SpanContext;
    ///
    /// let remote = SpanContext::from_traceparent(
    ///     "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
    /// )?;
    /// assert!(remote.is_sampled());
    /// assert_eq!(remote.traceparent().unwrap(), "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
    /// # Ok::<(), flujo::TelemetryError>(())
    /// ```
    pub fn from_traceparent(header: &str) -> Result<SpanContext, TelemetryError> {
        let invalid = |reason: &'static str| TelemetryError::InvalidTraceparent {
            value: header.to_owned(),
            reason,
        };
        let mut parts = header.trim().split('-');
        let (Some(version), Some(trace_id), Some(span_id), Some(flags)) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(invalid("expected version-traceid-spanid-flags"));
        };
        fn hex(field: &str, len: usize) -> Option<&str> {
            (field.len() == len
                && field
                    .bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)))
            .then_some(field)
        }
        let version =
            hex(version, 2).ok_or(invalid("the version is not 2 lowercase hex digits"))?;
        // Version 00 has exactly four fields; later versions may append more.
        if version == "ff" || (version == "00" && parts.next().is_some()) {
            return Err(invalid(
                "unsupported version or extra fields for version 00",
            ));
        }
        let trace_id = hex(trace_id, 32)
            .and_then(|t| u128::from_str_radix(t, 16).ok())
            .filter(|t| *t != 0)
            .ok_or(invalid(
                "the trace id is not 32 lowercase hex digits, or is all zeros",
            ))?;
        let span_id = hex(span_id, 16)
            .and_then(|s| u64::from_str_radix(s, 16).ok())
            .filter(|s| *s != 0)
            .ok_or(invalid(
                "the span id is not 16 lowercase hex digits, or is all zeros",
            ))?;
        let flags = hex(flags, 2)
            .and_then(|f| u8::from_str_radix(f, 16).ok())
            .ok_or(invalid("the flags are not 2 lowercase hex digits"))?;
        Ok(SpanContext {
            trace_id: split(trace_id),
            span_id,
            sampled: flags & 1 == 1,
            step: None,
        })
    }

    /// This context as a W3C `traceparent` header, to continue the trace in another service;
    /// `None` outside any span.
    pub fn traceparent(&self) -> Option<String> {
        (self.raw_trace_id() != 0 && self.span_id != 0).then(|| {
            format!(
                "00-{:032x}-{:016x}-{:02x}",
                self.raw_trace_id(),
                self.span_id,
                u8::from(self.sampled)
            )
        })
    }

    /// Runs `f` with this context current, then restores the previous one.
    pub fn in_scope<R>(self, f: impl FnOnce() -> R) -> R {
        let _scope = self.enter();
        f()
    }

    /// Wraps `future` so that this context is current whenever it is polled.
    pub fn instrument<F: Future>(self, future: F) -> WithContext<F> {
        WithContext::with_run(self, None, future)
    }

    /// Starts a span under the current context (a new trace when there is none): returns
    /// the parent and the new span's context, which becomes current if `make_current`.
    /// `step` names the step the new span is (`None`: it runs in its parent's step).
    #[inline]
    pub(crate) fn start_child(
        make_current: bool,
        step: Option<&'static StepMeta>,
    ) -> (SpanContext, SpanContext) {
        THREAD
            .try_with(|thread| {
                let parent = thread.current.get();
                let span_id = thread.nonzero_u64();
                let child = if parent.trace_id == [0, 0] {
                    let trace_id =
                        (u128::from(thread.nonzero_u64()) << 64) | u128::from(thread.next_u64());
                    SpanContext {
                        trace_id: split(trace_id),
                        span_id,
                        sampled: telemetry::sample_root(trace_id),
                        step,
                    }
                } else {
                    SpanContext {
                        span_id,
                        step: step.or(parent.step),
                        ..parent
                    }
                };
                if make_current {
                    thread.current.set(child);
                }
                (parent, child)
            })
            // Thread-locals are gone only while the thread exits: record nothing then.
            .unwrap_or((SpanContext::NONE, SpanContext::NONE))
    }

    pub(crate) fn raw_trace_id(&self) -> u128 {
        (u128::from(self.trace_id[0]) << 64) | u128::from(self.trace_id[1])
    }

    pub(crate) fn raw_span_id(&self) -> u64 {
        self.span_id
    }

    /// The innermost step this context runs in.
    pub(crate) fn step(&self) -> Option<&'static str> {
        self.step.map(|step| step.name)
    }

    /// A new span under this one: same trace, sampling and step, a fresh span id.
    pub(crate) fn child(&self) -> SpanContext {
        let span_id = THREAD
            .try_with(ThreadContext::nonzero_u64)
            .unwrap_or_else(|_| fastrand::u64(1..));
        SpanContext { span_id, ..*self }
    }

    /// Makes this context current and returns the one it replaced.
    pub(crate) fn make_current(self) -> SpanContext {
        THREAD
            .try_with(|thread| thread.current.replace(self))
            .unwrap_or(SpanContext::NONE)
    }

    /// Makes this context current until the returned scope is dropped.
    pub(crate) fn enter(self) -> ContextScope {
        let previous = THREAD
            .try_with(|thread| thread.current.replace(self))
            .unwrap_or(SpanContext::NONE);
        ContextScope { previous }
    }
}

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
/// task also keeps the run it was spawned in (its usage limits, see [`crate::UsageLimits`]).
pub trait StepFutureExt: Future + Sized {
    /// Wraps this future so that the step and the run current now are current whenever it
    /// is polled.
    fn in_current_step(self) -> WithContext<Self> {
        WithContext::with_run(SpanContext::current(), run::current(), self)
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
            run: run::current(),
        }
    }

    /// The span part of it.
    pub fn span_context(&self) -> SpanContext {
        self.span
    }

    /// Runs `f` with this step and run current, then restores what was current.
    pub fn in_scope<R>(&self, f: impl FnOnce() -> R) -> R {
        let mut run = self.run.clone();
        let _run = run::RunSwap::enter(&mut run);
        self.span.in_scope(f)
    }

    /// Wraps `future` so that this step and run are current whenever it is polled.
    pub fn instrument<F: Future>(&self, future: F) -> WithContext<F> {
        WithContext::with_run(self.span, self.run.clone(), future)
    }
}

/// Restores the previous context when dropped, including during unwinding.
pub(crate) struct ContextScope {
    previous: SpanContext,
}

impl ContextScope {
    /// The scope of a context made current by [`SpanContext::start_child`].
    pub(crate) fn restoring(previous: SpanContext) -> ContextScope {
        ContextScope { previous }
    }
}

impl Drop for ContextScope {
    fn drop(&mut self) {
        let _ = THREAD.try_with(|thread| thread.current.set(self.previous));
    }
}

pin_project_lite::pin_project! {
    /// A future that runs with a [`SpanContext`] current; see [`SpanContext::instrument`].
    pub struct WithContext<F> {
        context: SpanContext,
        // Moved into the thread's current run for each poll and back out after it.
        run: Option<Arc<RunScope>>,
        #[pin]
        future: F,
    }
}

fn split(trace_id: u128) -> [u64; 2] {
    [(trace_id >> 64) as u64, trace_id as u64]
}

// Copied on every step call.
const _: () = assert!(std::mem::size_of::<SpanContext>() <= 40);

impl<F> WithContext<F> {
    pub(crate) fn with_run(context: SpanContext, run: Option<Arc<RunScope>>, future: F) -> Self {
        WithContext {
            context,
            run,
            future,
        }
    }
}

impl<F: Future> Future for WithContext<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.project();
        let _scope = this.context.enter();
        if this.run.is_none() {
            return this.future.poll(cx);
        }
        let _run = run::RunSwap::enter(this.run);
        this.future.poll(cx)
    }
}
