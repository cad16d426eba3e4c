//! Token usage of one model call, as the OpenTelemetry GenAI conventions count it.

use std::ops::{Add, AddAssign};

/// The most tokens of each kind flujo accepts from one call: 10^9, about a hundred times the
/// largest context window. A count above it is a bug in how usage was read (a wrapped
/// subtraction, a sum of a whole day): such a call is recorded with its counts clamped here
/// and is not priced.
pub const MAX_TOKENS_PER_CALL: u64 = 1_000_000_000;

/// Tokens one model call used.
///
/// Counted as the OpenTelemetry GenAI conventions define them, so that nothing is counted
/// twice: `cache_read_input` and `cache_write_input` are **part of** `input`,
/// `cache_write_1h_input` is **part of** `cache_write_input`, and `reasoning_output` is
/// **part of** `output`. OpenAI and Gemini report usage this way.
/// Anthropic reports input *excluding* cached tokens: build its usage with
/// [`TokenUsage::anthropic`].
///
/// ```
/// use flujo::TokenUsage;
///
/// let usage = TokenUsage::new(1200, 300).with_cache_read(1000).with_reasoning(120);
/// assert_eq!(usage.uncached_input(), 200);
/// assert_eq!(usage.total(), 1500);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct TokenUsage {
    /// Input (prompt) tokens, including cached ones.
    pub input: u64,
    /// Output (completion) tokens, including reasoning tokens.
    pub output: u64,
    /// Input tokens read from the provider's prompt cache (part of `input`).
    pub cache_read_input: u64,
    /// Input tokens written to the provider's prompt cache (part of `input`).
    pub cache_write_input: u64,
    /// Of the cache writes, those kept for an hour (Anthropic's
    /// `cache_creation.ephemeral_1h_input_tokens`; part of `cache_write_input`), which cost
    /// more than the default 5-minute writes where a price says so.
    pub cache_write_1h_input: u64,
    /// Output tokens spent on reasoning (part of `output`).
    pub reasoning_output: u64,
}

impl TokenUsage {
    /// `input` prompt tokens and `output` completion tokens, nothing cached.
    pub const fn new(input: u64, output: u64) -> TokenUsage {
        TokenUsage {
            input,
            output,
            cache_read_input: 0,
            cache_write_input: 0,
            cache_write_1h_input: 0,
            reasoning_output: 0,
        }
    }

    /// Usage as Anthropic's API reports it: `input_tokens` there excludes the cache reads
    /// and writes, which are added here to make `input` the full prompt.
    pub const fn anthropic(
        input_tokens: u64,
        cache_read_input_tokens: u64,
        cache_creation_input_tokens: u64,
        output_tokens: u64,
    ) -> TokenUsage {
        TokenUsage {
            // Saturating, as every other sum of token counts.
            input: input_tokens
                .saturating_add(cache_read_input_tokens)
                .saturating_add(cache_creation_input_tokens),
            output: output_tokens,
            cache_read_input: cache_read_input_tokens,
            cache_write_input: cache_creation_input_tokens,
            cache_write_1h_input: 0,
            reasoning_output: 0,
        }
    }

    /// With `tokens` of the input read from the prompt cache.
    #[must_use]
    pub const fn with_cache_read(mut self, tokens: u64) -> TokenUsage {
        self.cache_read_input = tokens;
        self
    }

    /// With `tokens` of the input written to the prompt cache.
    #[must_use]
    pub const fn with_cache_write(mut self, tokens: u64) -> TokenUsage {
        self.cache_write_input = tokens;
        self
    }

    /// With `tokens` of the cache writes kept for an hour (they stay counted in
    /// `cache_write_input`).
    #[must_use]
    pub const fn with_cache_write_1h(mut self, tokens: u64) -> TokenUsage {
        self.cache_write_1h_input = tokens;
        self
    }

    /// With `tokens` of the output spent on reasoning.
    #[must_use]
    pub const fn with_reasoning(mut self, tokens: u64) -> TokenUsage {
        self.reasoning_output = tokens;
        self
    }

    /// Input tokens billed at the plain input price.
    pub const fn uncached_input(&self) -> u64 {
        self.input
            .saturating_sub(self.cache_read_input)
            .saturating_sub(self.cache_write_input)
    }

    /// Input plus output tokens.
    pub const fn total(&self) -> u64 {
        self.input.saturating_add(self.output)
    }

    /// Whether every count is at most [`MAX_TOKENS_PER_CALL`].
    pub const fn is_within_bounds(&self) -> bool {
        self.input <= MAX_TOKENS_PER_CALL
            && self.output <= MAX_TOKENS_PER_CALL
            && self.cache_read_input <= MAX_TOKENS_PER_CALL
            && self.cache_write_input <= MAX_TOKENS_PER_CALL
            && self.cache_write_1h_input <= MAX_TOKENS_PER_CALL
            && self.reasoning_output <= MAX_TOKENS_PER_CALL
    }

    /// Every count capped at [`MAX_TOKENS_PER_CALL`].
    #[must_use]
    pub const fn clamped(self) -> TokenUsage {
        const fn cap(n: u64) -> u64 {
            if n > MAX_TOKENS_PER_CALL {
                MAX_TOKENS_PER_CALL
            } else {
                n
            }
        }
        TokenUsage {
            input: cap(self.input),
            output: cap(self.output),
            cache_read_input: cap(self.cache_read_input),
            cache_write_input: cap(self.cache_write_input),
            cache_write_1h_input: cap(self.cache_write_1h_input),
            reasoning_output: cap(self.reasoning_output),
        }
    }
}

impl Add for TokenUsage {
    type Output = TokenUsage;
    fn add(self, other: TokenUsage) -> TokenUsage {
        TokenUsage {
            input: self.input.saturating_add(other.input),
            output: self.output.saturating_add(other.output),
            cache_read_input: self.cache_read_input.saturating_add(other.cache_read_input),
            cache_write_input: self
                .cache_write_input
                .saturating_add(other.cache_write_input),
            cache_write_1h_input: self
                .cache_write_1h_input
                .saturating_add(other.cache_write_1h_input),
            reasoning_output: self.reasoning_output.saturating_add(other.reasoning_output),
        }
    }
}

impl AddAssign for TokenUsage {
    fn add_assign(&mut self, other: TokenUsage) {
        *self = *self + other;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn anthropic_usage_saturates_like_every_other_sum() {
        const HUGE: TokenUsage = TokenUsage::anthropic(u64::MAX, u64::MAX, 1, 5);
        assert_eq!(HUGE.input, u64::MAX);
        assert_eq!(HUGE.cache_read_input, u64::MAX);
        assert_eq!(TokenUsage::anthropic(10, 20, 30, 5).input, 60);
    }
}
