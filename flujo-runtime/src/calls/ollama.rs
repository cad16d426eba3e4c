//! [`ReportsUsage`] and [`StreamChunk`] for the `ollama-rs` crate's chat and generation
//! responses (feature `ollama`): `prompt_eval_count` is the input, `eval_count` the output
//! (thinking included), in the final response or stream item (`done`). A local model is free
//! only where the price data says so: a model it does not price is recorded with its tokens
//! and no cost (not $0), unless a price row (`set_model_price`, `FLUJO_PRICING_FILE`) says
//! what a local call costs you.

use std::borrow::Cow;

use flujo_pricing::TokenUsage;
use ollama_rs::generation::chat::ChatMessageResponse;
use ollama_rs::generation::completion::GenerationResponse;

use super::chunk::{ChunkUsage, StreamChunk};
use super::usage::ReportsUsage;

impl ReportsUsage for ChatMessageResponse {
    fn token_usage(&self) -> Option<TokenUsage> {
        let counts = self.final_data.as_ref()?;
        Some(TokenUsage::new(counts.prompt_eval_count, counts.eval_count))
    }

    fn response_model(&self) -> Option<&str> {
        Some(&self.model)
    }

    fn output_texts(&self) -> Vec<Cow<'_, str>> {
        vec![Cow::Borrowed(self.message.content.as_str())]
    }
}

/// The last item of `send_chat_messages_stream` (`done`) has the counts.
impl StreamChunk for ChatMessageResponse {
    fn chunk_usage(&self) -> ChunkUsage {
        ReportsUsage::token_usage(self).map_or(ChunkUsage::none(), ChunkUsage::totals)
    }

    fn response_model(&self) -> Option<&str> {
        Some(&self.model)
    }
}

impl ReportsUsage for GenerationResponse {
    fn token_usage(&self) -> Option<TokenUsage> {
        if self.prompt_eval_count.is_none() && self.eval_count.is_none() {
            return None;
        }
        Some(TokenUsage::new(
            self.prompt_eval_count.unwrap_or(0),
            self.eval_count.unwrap_or(0),
        ))
    }

    fn response_model(&self) -> Option<&str> {
        Some(&self.model)
    }

    fn output_texts(&self) -> Vec<Cow<'_, str>> {
        vec![Cow::Borrowed(self.response.as_str())]
    }
}
