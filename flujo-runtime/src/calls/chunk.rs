//! What one chunk of a streamed response says about its call: [`StreamChunk`], implemented by
//! the chunk types flujo reads (JSON events, the clients' chunk types, the stub model's), and
//! [`ChunkUsage`], how a chunk's usage adds to what the stream reported before.

use std::borrow::Cow;

use flujo_pricing::TokenUsage;

/// The usage one chunk of a stream reports. Providers report running totals (OpenAI's final
/// chunk has the whole call's usage; Anthropic's `message_start` has the input and
/// `message_delta` the output so far): a count a chunk reports replaces the count an earlier
/// chunk reported for the same kind, so nothing is counted twice. A provider that reports
/// per-chunk increments instead uses [`ChunkUsage::delta`], which adds up.
///
/// ```
/// use flujo::TokenUsage;
/// use flujo::cost::ChunkUsage;
///
/// // Anthropic: message_start, then message_delta with the output so far.
/// let start = ChunkUsage::anthropic(Some(2_000), Some(1_500), None, Some(1));
/// let delta = ChunkUsage::none().with_output(120);
/// assert_eq!(
///     start.merged(delta).total(),
///     Some(TokenUsage::new(3_500, 120).with_cache_read(1_500))
/// );
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ChunkUsage {
    /// The whole prompt, cached tokens included.
    input: Option<u64>,
    /// The prompt without its cache reads and writes (Anthropic's `input_tokens`).
    uncached_input: Option<u64>,
    output: Option<u64>,
    cache_read_input: Option<u64>,
    cache_write_input: Option<u64>,
    cache_write_1h_input: Option<u64>,
    reasoning_output: Option<u64>,
    /// Increments: added, never replaced.
    delta: Option<TokenUsage>,
}

impl ChunkUsage {
    /// A chunk that reports no usage (most chunks).
    pub const fn none() -> ChunkUsage {
        ChunkUsage {
            input: None,
            uncached_input: None,
            output: None,
            cache_read_input: None,
            cache_write_input: None,
            cache_write_1h_input: None,
            reasoning_output: None,
            delta: None,
        }
    }

    /// The call's usage so far, every kind of it (OpenAI's final usage chunk).
    pub const fn totals(usage: TokenUsage) -> ChunkUsage {
        ChunkUsage {
            input: Some(usage.input),
            uncached_input: None,
            output: Some(usage.output),
            cache_read_input: Some(usage.cache_read_input),
            cache_write_input: Some(usage.cache_write_input),
            cache_write_1h_input: Some(usage.cache_write_1h_input),
            reasoning_output: Some(usage.reasoning_output),
            delta: None,
        }
    }

    /// Usage as Anthropic's stream events report it: `input_tokens` without the cache reads
    /// (`cache_read_input_tokens`) and writes (`cache_creation_input_tokens`), and the output
    /// so far; a field the event leaves out is `None`.
    pub const fn anthropic(
        input_tokens: Option<u64>,
        cache_read_input_tokens: Option<u64>,
        cache_creation_input_tokens: Option<u64>,
        output_tokens: Option<u64>,
    ) -> ChunkUsage {
        ChunkUsage {
            uncached_input: input_tokens,
            cache_read_input: cache_read_input_tokens,
            cache_write_input: cache_creation_input_tokens,
            output: output_tokens,
            ..ChunkUsage::none()
        }
    }

    /// Tokens this chunk adds to the call (a provider that reports increments).
    pub const fn delta(usage: TokenUsage) -> ChunkUsage {
        ChunkUsage {
            delta: Some(usage),
            ..ChunkUsage::none()
        }
    }

    /// This usage with the output so far.
    #[must_use]
    pub const fn with_output(mut self, output: u64) -> ChunkUsage {
        self.output = Some(output);
        self
    }

    /// This usage with the cache writes kept for an hour (part of the cache writes:
    /// Anthropic's `cache_creation.ephemeral_1h_input_tokens`).
    #[must_use]
    pub const fn with_cache_write_1h(mut self, tokens: u64) -> ChunkUsage {
        self.cache_write_1h_input = Some(tokens);
        self
    }

    /// This usage with the whole prompt so far.
    #[must_use]
    pub const fn with_input(mut self, input: u64) -> ChunkUsage {
        self.input = Some(input);
        self
    }

    /// Whether the chunk reports any usage.
    pub const fn is_none(&self) -> bool {
        self.input.is_none()
            && self.uncached_input.is_none()
            && self.output.is_none()
            && self.cache_read_input.is_none()
            && self.cache_write_input.is_none()
            && self.cache_write_1h_input.is_none()
            && self.reasoning_output.is_none()
            && self.delta.is_none()
    }

    /// What the stream knows after `later` arrived: its counts replace these, its increments
    /// add to these.
    #[must_use]
    pub fn merged(self, later: ChunkUsage) -> ChunkUsage {
        ChunkUsage {
            input: later.input.or(self.input),
            uncached_input: later.uncached_input.or(self.uncached_input),
            output: later.output.or(self.output),
            cache_read_input: later.cache_read_input.or(self.cache_read_input),
            cache_write_input: later.cache_write_input.or(self.cache_write_input),
            cache_write_1h_input: later.cache_write_1h_input.or(self.cache_write_1h_input),
            reasoning_output: later.reasoning_output.or(self.reasoning_output),
            delta: match (self.delta, later.delta) {
                (Some(a), Some(b)) => Some(a + b),
                (a, b) => a.or(b),
            },
        }
    }

    /// The call's usage, when any was reported.
    pub fn total(&self) -> Option<TokenUsage> {
        if self.is_none() {
            return None;
        }
        let cache_read_input = self.cache_read_input.unwrap_or(0);
        let cache_write_input = self.cache_write_input.unwrap_or(0);
        let input = self.input.unwrap_or_else(|| {
            self.uncached_input
                .unwrap_or(0)
                .saturating_add(cache_read_input)
                .saturating_add(cache_write_input)
        });
        let reported = TokenUsage::new(input, self.output.unwrap_or(0))
            .with_cache_read(cache_read_input)
            .with_cache_write(cache_write_input)
            .with_cache_write_1h(self.cache_write_1h_input.unwrap_or(0))
            .with_reasoning(self.reasoning_output.unwrap_or(0));
        Some(match self.delta {
            Some(delta) => reported + delta,
            None => reported,
        })
    }
}

/// A chunk of a streamed model response: what it says about the call. Every method has a
/// default, so a chunk type that carries none of it is one line:
/// `impl StreamChunk for MyChunk {}` (the call is then recorded with `flujo.usage.missing`).
///
/// ```
/// use flujo::TokenUsage;
/// use flujo::cost::{ChunkUsage, StreamChunk};
///
/// struct Chunk { text: String, usage: Option<(u64, u64)> }
///
/// impl StreamChunk for Chunk {
///     fn chunk_usage(&self) -> ChunkUsage {
///         self.usage.map_or(ChunkUsage::none(), |(input, output)| {
///             ChunkUsage::totals(TokenUsage::new(input, output))
///         })
///     }
/// }
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a chunk flujo can read usage from",
    label = "the stream of a `#[track_cost]` function yields `Result<{Self}, E>`",
    note = "implement `flujo::cost::StreamChunk` for `{Self}` (its `chunk_usage` reads the usage the provider \
            reports in the chunk; an empty impl when it reports none)"
)]
pub trait StreamChunk {
    /// The usage this chunk reports; [`ChunkUsage::none`] for most chunks.
    fn chunk_usage(&self) -> ChunkUsage {
        ChunkUsage::none()
    }

    /// The model that answered (`gen_ai.response.model`), when the chunk says.
    fn response_model(&self) -> Option<&str> {
        None
    }

    /// The response's id (`gen_ai.response.id`), when the chunk says.
    fn response_id(&self) -> Option<&str> {
        None
    }

    /// Why the model stopped, one reason per choice that stopped in this chunk.
    fn finish_reasons(&self) -> Vec<Cow<'_, str>> {
        Vec::new()
    }

    /// How the provider served the request, when the chunk says (`("service_tier",
    /// "flex")`); asked of the chunks that report usage. The price data's variant for it
    /// prices the call, as
    /// [`ReportsUsage::price_context`](super::usage::ReportsUsage::price_context) does.
    fn price_context(&self) -> Vec<(&'static str, Cow<'_, str>)> {
        Vec::new()
    }

    /// The chunk as a JSON event, whose usage `#[track_cost]` reads with the call site's
    /// provider and API flavor (only `serde_json::Value` is one).
    #[doc(hidden)]
    fn json_chunk(&self) -> Option<&serde_json::Value> {
        None
    }
}
