//! Which span is current: a thread-local for synchronous code, carried by [`WithSpan`]
//! across `.await` points and executor threads; and the W3C `traceparent` form of a span.

use std::cell::Cell;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use crate::core::ids::{SpanId, TraceId};
#[cfg(feature = "opentelemetry")]
use crate::core::otel_current;
use crate::core::site::CallSite;
use crate::core::state::{self, Shard};
use crate::core::trace_state;

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
    /// Received from another process (`from_traceparent`): a span started under it has a
    /// remote parent (OTLP's `parent_span_is_remote`).
    remote: bool,
    /// The trace's W3C `tracestate`, by its id in [`trace_state`]'s table (0: none).
    state: u32,
    /// The innermost `#[pipeline_step]` of this span (itself, or the step a model call runs
    /// in): cost records name it.
    step: Option<&'static CallSite>,
}

/// Per-thread state of the hot path, in one thread-local without a destructor (the cheapest
/// kind to access), so that starting a span costs one thread-local access: the current
/// context, the id generator, and the shard that counts this thread's calls in flight.
struct ThreadContext {
    current: Cell<SpanContext>,
    rng: Cell<u64>,
    /// Leased on the first call; given back by [`ShardLease`] when the thread exits.
    shard: Cell<Option<&'static Shard>>,
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

    /// This thread's shard, leasing one on the first call.
    fn shard(&self) -> Option<&'static Shard> {
        if let Some(shard) = self.shard.get() {
            return Some(shard);
        }
        let shard = LEASE
            .try_with(|lease| {
                let shard = state::lease_shard();
                lease.set(Some(shard));
                shard
            })
            .ok()?;
        self.shard.set(Some(shard));
        Some(shard)
    }
}

/// Gives this thread's shard back when the thread exits (a thread-local with a destructor,
/// touched once per thread, never on the hot path).
struct ShardLease(Cell<Option<&'static Shard>>);

impl ShardLease {
    fn set(&self, shard: Option<&'static Shard>) {
        self.0.set(shard);
    }
}

impl Drop for ShardLease {
    fn drop(&mut self) {
        if let Some(shard) = self.0.take() {
            // Calls made later in this thread's exit count in the shared counters.
            let _ = THREAD.try_with(|thread| thread.shard.set(None));
            state::return_shard(shard);
        }
    }
}

thread_local! {
    static THREAD: ThreadContext = const {
        ThreadContext {
            current: Cell::new(SpanContext::NONE),
            rng: Cell::new(0),
            shard: Cell::new(None),
        }
    };
    static LEASE: ShardLease = const { ShardLease(Cell::new(None)) };
}

/// Counts a call of `session` that has ended and handed over its record (the start was
/// counted by [`SpanContext::start_child`]).
#[inline]
pub(crate) fn count_call_end(session: u16) {
    let counted = THREAD
        .try_with(|thread| thread.shard().map(|shard| shard.count_end(session)))
        .ok()
        .flatten();
    if counted.is_none() {
        state::count_exiting(session, true);
    }
}

impl SpanContext {
    /// No span: work started here begins a new trace.
    pub const NONE: SpanContext = SpanContext {
        trace_id: [0, 0],
        span_id: 0,
        sampled: false,
        remote: false,
        state: 0,
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
    /// # Ok::<(), flujo::context::TraceparentError>(())
    /// ```
    pub fn from_traceparent(header: &str) -> Result<SpanContext, TraceparentError> {
        let invalid = |reason: &'static str| TraceparentError::new(header, reason);
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
            remote: true,
            state: 0,
            step: None,
        })
    }

    /// This remote context with the W3C `tracestate` header that came with its `traceparent`:
    /// every span of the trace here keeps it, exports it, and [`SpanContext::tracestate`]
    /// gives it back for an outgoing call. A `tracestate` that is not W3C-shaped (or longer
    /// than 512 bytes) is dropped, as W3C asks; the trace goes on without it.
    ///
    /// ```
    /// use flujo::SpanContext;
    ///
    /// let remote = SpanContext::from_traceparent(
    ///     "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
    /// )?
    /// .with_tracestate("congo=t61rcWkgMzE");
    /// assert_eq!(remote.tracestate().as_deref(), Some("congo=t61rcWkgMzE"));
    /// # Ok::<(), flujo::context::TraceparentError>(())
    /// ```
    #[must_use]
    pub fn with_tracestate(self, header: &str) -> SpanContext {
        let header = header.trim();
        if !trace_state::is_valid(header) {
            return self;
        }
        let carried = trace_state::carried(self.state);
        self.with_carried(trace_state::intern(trace_state::Carried {
            tracestate: Some(header.into()),
            ..carried
        }))
    }

    /// This context with other carried headers (see [`trace_state`]).
    pub(crate) fn with_carried(self, state: u32) -> SpanContext {
        SpanContext { state, ..self }
    }

    /// The trace's W3C `tracestate`, to send with [`SpanContext::traceparent`]; `None` when
    /// the trace came without one (or it was forgotten: 4,096 distinct values are kept at
    /// once, the oldest forgotten first).
    pub fn tracestate(&self) -> Option<String> {
        trace_state::lookup(self.state).map(|state| state.to_string())
    }

    /// The id of the trace's `tracestate` (0: none): what a record carries, so that the
    /// recording thread never takes the table's lock; the export worker looks it up.
    pub(crate) fn trace_state_id(&self) -> u32 {
        self.state
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

    /// Wraps `future` so that this context is current whenever it is polled, and while it
    /// is dropped (a cancelled future's destructors run inside its span).
    pub fn instrument<F: Future>(self, future: F) -> WithSpan<F> {
        WithSpan {
            context: self,
            future: Some(future),
        }
    }

    /// Starts a span under the current context (a new trace when there is none): returns
    /// the parent and the new span's context, which becomes current if `make_current`.
    /// `step` names the step the new span is (`None`: it runs in its parent's step). Counts
    /// the call as in flight in `session` (see [`count_call_end`]).
    #[inline]
    pub(crate) fn start_child(
        make_current: bool,
        step: Option<&'static CallSite>,
        session: u16,
    ) -> (SpanContext, SpanContext) {
        THREAD
            .try_with(|thread| {
                match thread.shard() {
                    Some(shard) => shard.count_start(session),
                    None => state::count_exiting(session, false),
                }
                let parent = match thread.current.get() {
                    #[cfg(feature = "opentelemetry")]
                    SpanContext {
                        trace_id: [0, 0], ..
                    } => otel_current::current_span()
                        .map_or(SpanContext::NONE, |span| SpanContext::from(&span)),
                    parent => parent,
                };
                let span_id = thread.nonzero_u64();
                let child = if parent.trace_id == [0, 0] {
                    let trace_id =
                        (u128::from(thread.nonzero_u64()) << 64) | u128::from(thread.next_u64());
                    SpanContext {
                        trace_id: split(trace_id),
                        span_id,
                        sampled: state::sample_root(trace_id),
                        remote: false,
                        // Baggage that came without a trace stays with the new one.
                        state: parent.state,
                        step,
                    }
                } else {
                    SpanContext {
                        span_id,
                        step: step.or(parent.step),
                        remote: false,
                        ..parent
                    }
                };
                if make_current {
                    thread.current.set(child);
                }
                (parent, child)
            })
            // Thread-locals are gone only while the thread exits: record nothing then (but
            // count the call, whose end is counted too).
            .unwrap_or_else(|_| {
                state::count_exiting(session, false);
                (SpanContext::NONE, SpanContext::NONE)
            })
    }

    /// A span of a trace that began outside flujo (the application's OpenTelemetry span).
    #[cfg(feature = "opentelemetry")]
    pub(crate) fn joining(
        trace_id: u128,
        span_id: u64,
        sampled: bool,
        remote: bool,
        state: u32,
    ) -> SpanContext {
        SpanContext {
            trace_id: split(trace_id),
            span_id,
            sampled,
            remote,
            state,
            step: None,
        }
    }

    pub(crate) fn raw_trace_id(&self) -> u128 {
        (u128::from(self.trace_id[0]) << 64) | u128::from(self.trace_id[1])
    }

    pub(crate) fn raw_span_id(&self) -> u64 {
        self.span_id
    }

    /// Whether this span lives in another process (it came from a `traceparent`).
    pub(crate) fn is_remote(&self) -> bool {
        self.remote
    }

    /// The innermost step this context runs in.
    pub(crate) fn step(&self) -> Option<&'static str> {
        self.step.map(|site| site.name)
    }

    /// A new span under this one: same trace, sampling and step, a fresh span id.
    pub(crate) fn child(&self) -> SpanContext {
        let span_id = THREAD
            .try_with(ThreadContext::nonzero_u64)
            .unwrap_or_else(|_| fastrand::u64(1..));
        SpanContext {
            span_id,
            remote: false,
            ..*self
        }
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
        ContextScope::restoring(previous, self)
    }
}

/// Restores the previous context when dropped, including during unwinding.
pub(crate) struct ContextScope {
    previous: SpanContext,
    /// The entered context is also the current OpenTelemetry context.
    #[cfg(feature = "opentelemetry")]
    otel_active: bool,
}

impl ContextScope {
    /// The scope of `entered`, made current in place of `previous` (by
    /// [`SpanContext::start_child`] or [`SpanContext::enter`]).
    #[inline]
    pub(crate) fn restoring(previous: SpanContext, entered: SpanContext) -> ContextScope {
        #[cfg(not(feature = "opentelemetry"))]
        let _ = entered;
        ContextScope {
            previous,
            #[cfg(feature = "opentelemetry")]
            otel_active: otel_current::activation()
                && entered.trace_id().is_some()
                && otel_current::activate(entered.into()),
        }
    }
}

impl Drop for ContextScope {
    fn drop(&mut self) {
        #[cfg(feature = "opentelemetry")]
        if self.otel_active {
            otel_current::deactivate();
        }
        let _ = THREAD.try_with(|thread| thread.current.set(self.previous));
    }
}

fn split(trace_id: u128) -> [u64; 2] {
    [(trace_id >> 64) as u64, trace_id as u64]
}

// Copied on every step call.
const _: () = assert!(std::mem::size_of::<SpanContext>() <= 40);

/// A `traceparent` header that could not be parsed.
#[derive(Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid traceparent {value:?}: {reason}")]
pub struct TraceparentError {
    /// The header, cut to its first [`TraceparentError::SHOWN_CHARS`] characters (an
    /// attacker's 10 MB header does not become a 10 MB error message).
    pub value: String,
    /// What is wrong with it.
    pub reason: &'static str,
}

impl TraceparentError {
    /// The most characters of the header an error repeats (a valid header has 55).
    pub const SHOWN_CHARS: usize = 64;

    fn new(header: &str, reason: &'static str) -> TraceparentError {
        let value = match header.char_indices().nth(Self::SHOWN_CHARS) {
            Some((cut, _)) => format!("{}... ({} bytes)", &header[..cut], header.len()),
            None => header.to_owned(),
        };
        TraceparentError { value, reason }
    }
}

impl fmt::Debug for TraceparentError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

pin_project_lite::pin_project! {
    /// A future that runs with a [`SpanContext`] current; see [`SpanContext::instrument`].
    pub struct WithSpan<F> {
        context: SpanContext,
        // `None` only once dropped: dropping it in place, inside the context, is what makes
        // a cancelled future's destructors run in its span (as `tracing::Instrumented` does).
        #[pin]
        future: Option<F>,
    }

    impl<F> PinnedDrop for WithSpan<F> {
        fn drop(this: Pin<&mut Self>) {
            let mut this = this.project();
            let _scope = this.context.enter();
            this.future.set(None);
        }
    }
}

impl<F: Future> Future for WithSpan<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.project();
        let _scope = this.context.enter();
        match this.future.as_pin_mut() {
            Some(future) => future.poll(cx),
            // Only `drop` empties it.
            None => Poll::Pending,
        }
    }
}
