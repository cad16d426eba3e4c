//! Streamed model calls: a `#[track_cost]` function that returns a stream of chunks is a
//! model call that lasts until the stream ends. [`TrackedStream`] times its chunks, merges the
//! usage the chunks report (`chunk.rs`), charges the run as tokens arrive, and ends the call
//! when the stream finishes, fails or is dropped.

use crate::core::names::Metric;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use flujo_pricing::extract::{Count, token_unit_counts};
use futures_core::Stream;
use pin_project_lite::pin_project;

use super::chunk::{ChunkUsage, StreamChunk};
use super::model_call::ModelCall;
use super::usage::{UsageReport, capped_reasons};
use crate::core::attribute::capped_copy;
use crate::core::clock;
use crate::core::record::{ResponseDetails, StreamTiming};
use crate::step::call::StepError;

pin_project! {
    /// The stream a streamed `#[track_cost]` function returns: the provider's stream, with
    /// its model call open until the stream ends (or is dropped). Items pass through
    /// unchanged.
    pub struct TrackedStream<S> {
        #[pin]
        inner: S,
        call: StreamCall,
    }
}

/// The open model call of a stream and what its chunks said so far.
struct StreamCall {
    model_call: ModelCall,
    usage: ChunkUsage,
    /// The units beyond tokens the last JSON event that counted them said (each says the
    /// call's total so far).
    other_units: Vec<(String, Count)>,
    response: ResponseDetails,
    /// How the request was served, as the first chunk with usage says it.
    price_context: Vec<(&'static str, String)>,
    /// Raw clock readings: the call's start, the last chunk's arrival.
    started: u64,
    last_chunk: u64,
    time_to_first_chunk: Option<Duration>,
    chunks: u32,
    /// `gen_ai.client.operation.time_per_output_chunk`, fetched with the first chunk.
    per_chunk: Option<metrics::Histogram>,
    ended: bool,
}

/// Wraps the stream a `#[track_cost]` function returns: the call `model_call` started lasts
/// until the stream ends.
pub fn track_stream<S>(model_call: ModelCall, stream: S) -> TrackedStream<S> {
    TrackedStream {
        inner: stream,
        call: StreamCall {
            started: model_call.started_at(),
            model_call,
            usage: ChunkUsage::none(),
            other_units: Vec::new(),
            response: ResponseDetails::default(),
            price_context: Vec::new(),
            last_chunk: 0,
            time_to_first_chunk: None,
            chunks: 0,
            per_chunk: None,
            ended: false,
        },
    }
}

/// Wraps the `Ok` stream of a `#[track_cost]` function returning `Result<impl Stream, E>`;
/// an `Err` (the request failed before streaming) ends the call as failed.
pub fn track_stream_result<S, E: StepError>(
    mut model_call: ModelCall,
    result: Result<S, E>,
) -> Result<TrackedStream<S>, E> {
    match result {
        Ok(stream) => Ok(track_stream(model_call, stream)),
        Err(error) => {
            model_call.fail(&error);
            Err(error)
        }
    }
}

impl<S, C, E> Stream for TrackedStream<S>
where
    S: Stream<Item = Result<C, E>>,
    C: StreamChunk,
    E: StepError,
{
    type Item = Result<C, E>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.project();
        let item = std::task::ready!(this.inner.poll_next(cx));
        let call = this.call;
        if !call.ended {
            match &item {
                Some(Ok(chunk)) => call.chunk(chunk),
                Some(Err(error)) => call.fail(error),
                None => call.finish(),
            }
        }
        Poll::Ready(item)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.inner.size_hint()
    }
}

impl StreamCall {
    fn chunk<C: StreamChunk>(&mut self, chunk: &C) {
        let now = clock::now();
        if self.chunks == 0 {
            let ttfc = clock::elapsed(self.started, now);
            self.time_to_first_chunk = Some(ttfc);
            let labels = self.model_call.metric_labels();
            metrics::histogram!(Metric::GenAiTimeToFirstChunk.name(), labels.clone())
                .record(ttfc.as_secs_f64());
            self.per_chunk = Some(metrics::histogram!(
                Metric::GenAiTimePerOutputChunk.name(),
                labels
            ));
        } else if let Some(per_chunk) = &self.per_chunk {
            per_chunk.record(clock::elapsed(self.last_chunk, now).as_secs_f64());
        }
        self.last_chunk = now;
        self.chunks = self.chunks.saturating_add(1);
        let usage = match chunk.json_chunk() {
            Some(event) => {
                let read = super::json::chunk_usage(event, &self.model_call.site());
                if !read.other_units.is_empty() {
                    self.other_units = read.other_units;
                }
                read.usage
            }
            None => chunk.chunk_usage(),
        };
        if !usage.is_none() {
            // Asked of the chunks that report usage only: the others pay nothing for it.
            if self.price_context.is_empty() {
                self.price_context = chunk
                    .price_context()
                    .into_iter()
                    .map(|(key, value)| (key, capped_copy(&value)))
                    .collect();
            }
            self.usage = self.usage.merged(usage);
            if let Some(total) = self.usage.total() {
                self.model_call.charge_progress(&total);
            }
        }
        self.read_response(chunk);
    }

    /// The response details the first chunks to say them say (cut to the attribute bound).
    #[inline]
    fn read_response<C: StreamChunk>(&mut self, chunk: &C) {
        let response = &mut self.response;
        if response.model.is_none() {
            response.model = chunk.response_model().map(capped_copy);
        }
        if response.id.is_none() {
            response.id = chunk.response_id().map(capped_copy);
        }
        let reasons = chunk.finish_reasons();
        if !reasons.is_empty() {
            response.finish_reasons = capped_reasons(&reasons);
        }
    }

    /// What the stream said, for the call's record.
    fn report(&mut self) -> (UsageReport, StreamTiming) {
        self.ended = true;
        let usage = self.usage.total();
        // Priced from units when the events counted some beyond tokens: the tokens summed
        // over the events, and those units as the last event said them.
        let units = match &usage {
            Some(tokens) if !self.other_units.is_empty() => token_unit_counts(tokens)
                .into_iter()
                .map(|(unit, count)| (unit.to_owned(), count))
                .chain(std::mem::take(&mut self.other_units))
                .collect(),
            _ => Vec::new(),
        };
        let report = UsageReport {
            usage,
            units,
            response: std::mem::take(&mut self.response),
            output: None,
            price_context: std::mem::take(&mut self.price_context),
        };
        let timing = StreamTiming {
            time_to_first_chunk: self.time_to_first_chunk,
            chunks: self.chunks,
        };
        (report, timing)
    }

    fn finish(&mut self) {
        let (report, timing) = self.report();
        self.model_call.end_stream(report, timing, None::<&str>);
    }

    fn fail<E: StepError>(&mut self, error: &E) {
        let (report, timing) = self.report();
        self.model_call.end_stream(report, timing, Some(error));
    }
}

impl Drop for StreamCall {
    /// A stream dropped before its end (the reader stopped, a client disconnected) is a
    /// cancelled call, priced for the usage its chunks reported so far.
    fn drop(&mut self) {
        if !self.ended {
            let (report, timing) = self.report();
            self.model_call.cancel_stream(report, timing);
        }
    }
}
