//! Test what your pipelines record: spans and metric values, in memory.
//!
//! ```
//! use flujo::pipeline_step;
//! use flujo::testing::Capture;
//!
//! #[pipeline_step]
//! fn shout(text: &str) -> String {
//!     text.to_uppercase()
//! }
//!
//! let capture = Capture::start();
//! assert_eq!(shout("hi"), "HI");
//!
//! let spans = capture.finished_spans();
//! assert_eq!(spans.len(), 1);
//! assert_eq!(spans[0].name, "shout");
//! assert_eq!(capture.counter("flujo_step_calls_total", &[("step", "shout"), ("status", "ok")]), 1);
//! ```
//!
//! A capture sees every span and metric recorded while it lives, on any thread, including
//! tokio worker threads. Captures are serialised: [`Capture::start`] waits until no other
//! capture is alive, so tests running in parallel in one process never see each other's
//! spans or counts. (Work that runs concurrently *without* a capture of its own can still
//! show up in one: give every test that runs steps its own capture.)

use std::borrow::Cow;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use flujo_pricing::{TokenUsage, Usd};

use crate::calls::chunk::{ChunkUsage, StreamChunk};
use crate::calls::usage::ReportsUsage;
use crate::collect::finished::FinishedSpan;
use crate::collect::sink::{self, SinkId, SpanExporter};
use crate::collect::{tree, worker};
use crate::core::names::Metric;
use crate::core::sync::lock;
use crate::ledger::report::CostReport;
use crate::ledger::{self, CostRecord};
use crate::metrics::recorder::{RECORDER, Snapshot};
use crate::runtime;

/// How long reading spans waits for the export worker before giving up.
const FLUSH_TIMEOUT: Duration = Duration::from_secs(10);

/// What a capture's sink keeps: the spans (unless it only counts) and how many there were.
#[derive(Default)]
struct Captured {
    spans: Mutex<Vec<FinishedSpan>>,
    seen: AtomicU64,
    keep: bool,
}

struct CaptureSink(Arc<Captured>);

impl SpanExporter for CaptureSink {
    fn export(&mut self, spans: &[FinishedSpan]) {
        self.0.seen.fetch_add(spans.len() as u64, Ordering::Relaxed);
        if self.0.keep {
            lock(&self.0.spans).extend_from_slice(spans);
        }
    }
}

/// Records spans and metric values in memory while it lives; see the [module docs](self).
pub struct Capture {
    sink: SinkId,
    captured: Arc<Captured>,
    baseline: Snapshot,
}

impl Capture {
    /// Starts capturing, switching recording on if telemetry was not initialised. Waits for
    /// another thread's live capture to end first.
    ///
    /// # Panics
    /// When this thread already has a live capture: waiting for it would never end.
    pub fn start() -> Capture {
        Capture::begin(true)
    }

    /// A capture that only counts: metric values and how many spans were exported
    /// ([`Capture::span_count`]), keeping neither spans nor cost records. For load tests, whose
    /// spans would not fit in memory.
    pub fn counting() -> Capture {
        Capture::begin(false)
    }

    fn begin(keep: bool) -> Capture {
        let captured = Arc::new(Captured {
            keep,
            ..Captured::default()
        });
        let sink_captured = Arc::clone(&captured);
        let sink = runtime::begin_capture(keep, || {
            sink::add_sink(Box::new(CaptureSink(sink_captured)))
        });
        Capture {
            sink,
            captured,
            baseline: RECORDER.store.snapshot(),
        }
    }

    /// How many spans were exported during the capture (kept or not).
    pub fn span_count(&self) -> u64 {
        worker::flush(FLUSH_TIMEOUT);
        self.captured.seen.load(Ordering::Relaxed)
    }

    /// Every span that finished since the capture started, in the order the export worker
    /// received them.
    pub fn finished_spans(&self) -> Vec<FinishedSpan> {
        worker::flush(FLUSH_TIMEOUT);
        lock(&self.captured.spans).clone()
    }

    /// The finished spans named `name`.
    pub fn spans_named(&self, name: &str) -> Vec<FinishedSpan> {
        let mut spans = self.finished_spans();
        spans.retain(|span| span.name == name);
        spans
    }

    /// How much counter `name` with exactly these labels grew during the capture.
    pub fn counter(&self, name: &str, labels: &[(&str, &str)]) -> u64 {
        worker::flush(FLUSH_TIMEOUT);
        let now = RECORDER.store.snapshot().counter(name, labels);
        now.saturating_sub(self.baseline.counter(name, labels))
    }

    /// How many values histogram `name` with exactly these labels received during the capture.
    pub fn histogram_count(&self, name: &str, labels: &[(&str, &str)]) -> u64 {
        worker::flush(FLUSH_TIMEOUT);
        let (now, _) = RECORDER.store.snapshot().histogram(name, labels);
        now.saturating_sub(self.baseline.histogram(name, labels).0)
    }

    /// The sum of the values histogram `name` with exactly these labels received during the
    /// capture.
    pub fn histogram_sum(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        worker::flush(FLUSH_TIMEOUT);
        let (_, now) = RECORDER.store.snapshot().histogram(name, labels);
        now - self.baseline.histogram(name, labels).1
    }

    /// The cost records of the model calls that ended during the capture, oldest first (none
    /// for a [`Capture::counting`]).
    pub fn cost_records(&self) -> Vec<CostRecord> {
        worker::flush(FLUSH_TIMEOUT);
        ledger::captured()
    }

    /// The cost report of the model calls that ended during the capture.
    pub fn cost_report(&self) -> CostReport {
        CostReport::from_records(&self.cost_records())
    }

    /// The exact USD total of the cost counter `flujo_cost_usd_total` with exactly these
    /// labels during the capture (the counter keeps nano-dollars).
    pub fn cost_usd(&self, labels: &[(&str, &str)]) -> Usd {
        Usd::from_nanos(self.counter(Metric::CostUsd.name(), labels))
    }

    /// The finished spans as an indented tree, children under their parents, with status
    /// and duration: handy for printing.
    pub fn span_tree(&self) -> String {
        tree::render_tree(self.finished_spans())
    }
}

impl Drop for Capture {
    fn drop(&mut self) {
        runtime::end_capture(self.sink);
    }
}

/// The error a [`StubModel`] returns while it is told to fail: an HTTP failure as a
/// provider's client reports it, with [`RetryAdvice`](crate::RetryAdvice) as a real client's
/// error has it (429 and 5xx are retried, after the `Retry-After` the stub was told to send).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct StubError {
    /// The model that failed.
    pub model: &'static str,
    /// Which call failed (1-based).
    pub call: u32,
    /// The HTTP status of the failure (429 unless [`StubModel::failing_with_status`]).
    pub status: u16,
    /// The `Retry-After` the failure carried ([`StubModel::with_retry_after`]).
    pub retry_after: Option<Duration>,
}

impl std::fmt::Display for StubError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.status {
            429 => write!(
                f,
                "{}: rate limited (429) on call {}",
                self.model, self.call
            ),
            status => write!(f, "{}: HTTP {status} on call {}", self.model, self.call),
        }
    }
}

impl crate::RetryAdvice for StubError {
    fn retry_after(&self) -> Option<Duration> {
        self.retry_after
    }

    fn is_retryable(&self) -> bool {
        crate::step::advice::http_retryable(Some(self.status), None, false)
    }
}

impl std::error::Error for StubError {}

/// A deterministic, offline stand-in for an LLM provider: the same prompt always gets the
/// same completion, it can be told to fail its first calls (to exercise retries), and it
/// takes a fixed latency. Examples and tests use it instead of a real API and key.
///
/// ```
/// use flujo::testing::StubModel;
///
/// let model = StubModel::new("stub-gpt").failing_first(1);
/// assert!(model.complete("hello").is_err());
/// assert_eq!(model.complete("hello").unwrap(), model.complete("hello").unwrap());
/// ```
#[derive(Debug)]
pub struct StubModel {
    name: &'static str,
    failures: u32,
    status: u16,
    retry_after: Option<Duration>,
    latency: Duration,
    calls: std::sync::atomic::AtomicU32,
}

impl StubModel {
    /// A stub named `name` that never fails and answers at once.
    pub fn new(name: &'static str) -> StubModel {
        StubModel {
            name,
            failures: 0,
            status: 429,
            retry_after: None,
            latency: Duration::ZERO,
            calls: std::sync::atomic::AtomicU32::new(0),
        }
    }

    /// Fails the first `calls` calls with a [`StubError`].
    #[must_use]
    pub fn failing_first(mut self, calls: u32) -> StubModel {
        self.failures = calls;
        self
    }

    /// Its failures answer `status` instead of 429 (a 400 or a 401 will fail again: a step's
    /// retries stop at once and its fallback runs).
    #[must_use]
    pub fn failing_with_status(mut self, status: u16) -> StubModel {
        self.status = status;
        self
    }

    /// Its failures ask the client to wait `retry_after` (a `Retry-After` header), which a
    /// step's retries wait instead of their backoff.
    #[must_use]
    pub fn with_retry_after(mut self, retry_after: Duration) -> StubModel {
        self.retry_after = Some(retry_after);
        self
    }

    /// Takes `latency` per call (a sleep, or a timer in [`StubModel::complete_async`]).
    #[must_use]
    pub fn with_latency(mut self, latency: Duration) -> StubModel {
        self.latency = latency;
        self
    }

    /// The model's name.
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// How many calls the stub received.
    pub fn calls(&self) -> u32 {
        self.calls.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Completes `prompt` after the configured latency.
    pub fn complete(&self, prompt: &str) -> Result<String, StubError> {
        std::thread::sleep(self.latency);
        self.respond(prompt)
    }

    /// Completes `prompt` after the configured latency, without blocking the executor.
    pub async fn complete_async(&self, prompt: &str) -> Result<String, StubError> {
        futures_timer::Delay::new(self.latency).await;
        self.respond(prompt)
    }

    /// Answers `prompt` like a chat API, with realistic usage: a 1,200-token system prompt
    /// the provider caches (the first call writes 1,024 tokens to the cache, later calls
    /// read them), the prompt's words, and an answer of a few dozen tokens.
    pub fn chat(&self, prompt: &str) -> Result<StubCompletion, StubError> {
        std::thread::sleep(self.latency);
        self.respond_with_usage(prompt)
    }

    /// [`StubModel::chat`] without blocking the executor.
    pub async fn chat_async(&self, prompt: &str) -> Result<StubCompletion, StubError> {
        futures_timer::Delay::new(self.latency).await;
        self.respond_with_usage(prompt)
    }

    /// [`StubModel::chat_async`] as a stream: one chunk per word of the answer, each after
    /// the configured latency (the first after twice that: the model "thinks"), usage
    /// reported as `usage` says.
    pub fn chat_stream(
        &self,
        prompt: &str,
        usage: StubStreamUsage,
    ) -> Result<StubStream, StubError> {
        let completion = self.respond_with_usage(prompt)?;
        let mut words: Vec<String> = completion
            .text
            .split_inclusive(' ')
            .map(str::to_owned)
            .collect();
        words.reverse();
        Ok(StubStream {
            words,
            usage: completion.usage,
            style: usage,
            model: completion.model,
            id: completion.id,
            latency: self.latency,
            delay: Some(futures_timer::Delay::new(self.latency * 2)),
            sent: 0,
            ended: false,
        })
    }

    fn respond_with_usage(&self, prompt: &str) -> Result<StubCompletion, StubError> {
        const SYSTEM_PROMPT_TOKENS: u64 = 1_200;
        const CACHED_PREFIX_TOKENS: u64 = 1_024;
        let text = self.respond(prompt)?;
        let first_call = self.calls() == self.failures + 1;
        let prompt_tokens = (prompt.split_whitespace().count() as u64 * 4).div_ceil(3);
        let usage = TokenUsage::new(
            SYSTEM_PROMPT_TOKENS + prompt_tokens,
            (text.split_whitespace().count() as u64 * 4).div_ceil(3),
        );
        let usage = if first_call {
            usage.with_cache_write(CACHED_PREFIX_TOKENS)
        } else {
            usage.with_cache_read(CACHED_PREFIX_TOKENS)
        };
        Ok(StubCompletion {
            text,
            usage,
            model: self.name,
            id: format!("stub-{}", self.calls()),
        })
    }

    fn respond(&self, prompt: &str) -> Result<String, StubError> {
        let call = self.calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
        if call <= self.failures {
            return Err(StubError {
                model: self.name,
                call,
                status: self.status,
                retry_after: self.retry_after,
            });
        }
        let words: Vec<&str> = prompt.split_whitespace().collect();
        let gist = words.iter().take(8).copied().collect::<Vec<_>>().join(" ");
        Ok(format!(
            "[{}] {} ({} words considered)",
            self.name,
            gist,
            words.len()
        ))
    }
}

/// A [`StubModel::chat`] answer: the text and the usage a provider would report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StubCompletion {
    /// The answer.
    pub text: String,
    /// Tokens used, cached ones included in the input.
    pub usage: TokenUsage,
    /// The model that answered.
    pub model: &'static str,
    /// The response's id, `stub-{n}` for the model's n-th call.
    pub id: String,
}

impl ReportsUsage for StubCompletion {
    fn token_usage(&self) -> Option<TokenUsage> {
        Some(self.usage)
    }

    fn response_model(&self) -> Option<&str> {
        Some(self.model)
    }

    fn response_id(&self) -> Option<&str> {
        Some(&self.id)
    }

    /// A stub always ends its answer itself.
    fn finish_reasons(&self) -> Vec<Cow<'_, str>> {
        vec![Cow::Borrowed("stop")]
    }

    fn output_texts(&self) -> Vec<Cow<'_, str>> {
        vec![Cow::Borrowed(&self.text)]
    }
}

/// How a [`StubModel::chat_stream`] reports its usage, as the providers' streams do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StubStreamUsage {
    /// OpenAI with `stream_options.include_usage`: one last chunk with the whole usage.
    LastChunk,
    /// Anthropic: the input (and cache) counts in the first chunk, the output so far in
    /// every later one.
    Split,
    /// No usage at all (OpenAI without `include_usage`).
    None,
}

/// One chunk of a [`StubStream`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StubChunk {
    /// The text of this chunk (empty in a usage-only chunk).
    pub text: String,
    /// The usage this chunk reports.
    pub usage: ChunkUsage,
    /// The model that answered.
    pub model: &'static str,
    /// The response's id.
    pub id: String,
}

impl StreamChunk for StubChunk {
    fn chunk_usage(&self) -> ChunkUsage {
        self.usage
    }

    fn response_model(&self) -> Option<&str> {
        Some(self.model)
    }

    fn response_id(&self) -> Option<&str> {
        Some(&self.id)
    }
}

/// The stream of [`StubModel::chat_stream`]: timed with `futures-timer`, so it needs no
/// particular runtime.
#[derive(Debug)]
pub struct StubStream {
    /// The words still to send, last first.
    words: Vec<String>,
    usage: TokenUsage,
    style: StubStreamUsage,
    model: &'static str,
    id: String,
    latency: Duration,
    delay: Option<futures_timer::Delay>,
    /// Words sent so far.
    sent: u64,
    /// The last chunk, with the usage, was sent (`StubStreamUsage::LastChunk`).
    ended: bool,
}

impl futures_core::Stream for StubStream {
    type Item = Result<StubChunk, StubError>;

    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        if let Some(delay) = &mut self.delay {
            std::task::ready!(std::pin::Pin::new(delay).poll(cx));
        }
        let this = &mut *self;
        this.delay = Some(futures_timer::Delay::new(this.latency));
        let chunk = |text: String, usage: ChunkUsage| StubChunk {
            text,
            usage,
            model: this.model,
            id: this.id.clone(),
        };
        let Some(word) = this.words.pop() else {
            if this.style == StubStreamUsage::LastChunk && !this.ended {
                this.ended = true;
                return std::task::Poll::Ready(Some(Ok(chunk(
                    String::new(),
                    ChunkUsage::totals(this.usage),
                ))));
            }
            return std::task::Poll::Ready(None);
        };
        this.sent += 1;
        let total_words = this.sent + this.words.len() as u64;
        let usage = match this.style {
            StubStreamUsage::Split => {
                // The output so far, in proportion to the words sent.
                let output = this.usage.output * this.sent / total_words;
                if this.sent == 1 {
                    ChunkUsage::anthropic(
                        Some(
                            this.usage.input
                                - this.usage.cache_read_input
                                - this.usage.cache_write_input,
                        ),
                        Some(this.usage.cache_read_input),
                        Some(this.usage.cache_write_input),
                        Some(output),
                    )
                } else {
                    ChunkUsage::none().with_output(output)
                }
            }
            StubStreamUsage::LastChunk | StubStreamUsage::None => ChunkUsage::none(),
        };
        std::task::Poll::Ready(Some(Ok(chunk(word, usage))))
    }
}
