//! A `#[pipeline_step]` that returns a streamed model call: the step's call lasts until the
//! stream ends, as its model call's does, so that the step's span covers the whole answer.

use std::pin::Pin;
use std::task::{Context, Poll};

use futures_core::Stream;
use pin_project_lite::pin_project;

use super::call::{StepCall, StepError};

pin_project! {
    /// The stream of a streaming step: items pass through; the step ends when the stream
    /// ends (failed by a chunk error), or as cancelled when it is dropped before.
    pub struct StepStream<S> {
        // Declared first, so dropped first: the model call inside ends before its step.
        #[pin]
        inner: S,
        step: StepCall,
    }
}

/// Hands `step` over to the stream of a step returning `Result<impl Stream, E>` (an `Err`
/// has ended the call already).
pub fn step_stream_result<S, E>(step: StepCall, result: Result<S, E>) -> Result<StepStream<S>, E> {
    result.map(|stream| step_stream(step, stream))
}

/// Hands `step` over to the stream it returned.
pub fn step_stream<S>(step: StepCall, stream: S) -> StepStream<S> {
    StepStream {
        inner: stream,
        step,
    }
}

impl<S, C, E> Stream for StepStream<S>
where
    S: Stream<Item = Result<C, E>>,
    E: StepError,
{
    type Item = Result<C, E>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.project();
        let item = std::task::ready!(this.inner.poll_next(cx));
        match &item {
            Some(Ok(_)) => {}
            Some(Err(error)) => this.step.end_with_stream(Some(error)),
            None => this.step.end_with_stream(None::<&str>),
        }
        Poll::Ready(item)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.inner.size_hint()
    }
}

/// A named stream type a tracked stream can be boxed into: `Pin<Box<dyn Stream<..> + Send>>`
/// and `Pin<Box<dyn Stream<..>>>` (what `BoxStream`, `LocalBoxStream` and aliases such as
/// async-openai's `ChatCompletionResponseStream` are).
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a boxed stream flujo can hand back",
    label = "flujo wraps the stream this function returns and boxes it into this type",
    note = "return the stream as `impl Stream<Item = Result<Chunk, E>>`, or as `Pin<Box<dyn Stream<Item = \
            Result<Chunk, E>> + Send>>` (`futures::stream::BoxStream`): a concrete stream type cannot be wrapped"
)]
pub trait BoxedStream<S> {
    /// `stream`, boxed into this type.
    fn boxed(stream: S) -> Self;
}

impl<'a, S, I> BoxedStream<S> for Pin<Box<dyn Stream<Item = I> + Send + 'a>>
where
    S: Stream<Item = I> + Send + 'a,
{
    fn boxed(stream: S) -> Self {
        Box::pin(stream)
    }
}

impl<'a, S, I> BoxedStream<S> for Pin<Box<dyn Stream<Item = I> + 'a>>
where
    S: Stream<Item = I> + 'a,
{
    fn boxed(stream: S) -> Self {
        Box::pin(stream)
    }
}
