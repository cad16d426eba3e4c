//! Streamed answers, a step timeout and a fallback to a cheaper model, offline.
//!
//! Run it with `cargo run --example streaming`: no network, no API key. The stub model
//! streams its answer word by word (OpenAI-style, usage in the last chunk); the example
//! prints the words as they arrive, then the call's time to first chunk, usage and exact
//! cost. Then a step whose big model is too slow for its `timeout_ms` falls back to a small
//! one: the WARN and ERROR lines show the timeout and the fallback.

use std::io::Write;
use std::time::Duration;

use flujo::testing::{Capture, StubChunk, StubError, StubModel, StubStreamUsage};
use flujo::{StepTimeout, UsageLimitExceeded, pipeline_step, track_cost};
use futures::{Stream, StreamExt};

#[derive(Debug, thiserror::Error)]
enum AskError {
    #[error(transparent)]
    Model(#[from] StubError),
    #[error(transparent)]
    Budget(#[from] UsageLimitExceeded),
    #[error(transparent)]
    Timeout(#[from] StepTimeout),
}

/// One streamed model call: it lasts until the stream ends, and is priced from the usage
/// its chunks report.
#[pipeline_step]
#[track_cost(model = "gpt-4o-mini")]
async fn stream_answer(
    model: &StubModel,
    question: &str,
) -> Result<impl Stream<Item = Result<StubChunk, StubError>> + use<>, AskError> {
    Ok(model.chat_stream(question, StubStreamUsage::LastChunk)?)
}

#[track_cost(model = "claude-sonnet-4-5")]
async fn ask_big(
    model: &StubModel,
    question: &str,
) -> Result<flujo::testing::StubCompletion, AskError> {
    Ok(model.chat_async(question).await?)
}

#[track_cost(model = "claude-haiku-4-5")]
async fn ask_small(
    model: &StubModel,
    question: &str,
) -> Result<flujo::testing::StubCompletion, AskError> {
    Ok(model.chat_async(question).await?)
}

/// Each attempt gets 200 ms; after that the step answers with the small model instead.
#[pipeline_step(timeout_ms = 200, fallback = summarise_small)]
async fn summarise(models: &Models, question: &str) -> Result<String, AskError> {
    Ok(ask_big(&models.big, question).await?.text)
}

#[pipeline_step]
async fn summarise_small(models: &Models, question: &str) -> Result<String, AskError> {
    Ok(ask_small(&models.small, question).await?.text)
}

struct Models {
    big: StubModel,
    small: StubModel,
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let _telemetry = flujo::init_telemetry()?;
    let capture = Capture::start();
    futures::executor::block_on(async {
        let model = StubModel::new("gpt-4o-mini").with_latency(Duration::from_millis(30));
        let mut stream =
            stream_answer(&model, "Explain in one sentence why streams need care").await?;
        print!("answer: ");
        while let Some(chunk) = stream.next().await {
            print!("{}", chunk?.text);
            std::io::stdout().flush()?;
        }
        println!();

        let models = Models {
            big: StubModel::new("claude-sonnet-4-5").with_latency(Duration::from_secs(5)),
            small: StubModel::new("claude-haiku-4-5").with_latency(Duration::from_millis(20)),
        };
        let summary = summarise(&models, "Summarise the meeting notes").await?;
        println!("summary (after the fallback): {summary}");
        Ok::<_, Box<dyn std::error::Error>>(())
    })?;

    let call = &capture.spans_named("chat gpt-4o-mini")[0];
    let first = call
        .attribute("gen_ai.response.time_to_first_chunk")
        .and_then(|v| v.as_f64())
        .unwrap_or_default();
    let record = capture
        .cost_records()
        .into_iter()
        .find(|r| r.model == "gpt-4o-mini")
        .expect("the streamed call's cost record");
    println!("\nstreamed call:");
    println!("  time to first chunk: {:.0} ms", first * 1000.0);
    println!(
        "  chunks: {}",
        call.attribute("flujo.stream.chunks")
            .and_then(|v| v.as_i64())
            .unwrap_or_default()
    );
    println!(
        "  usage: {} input ({} written to the prompt cache), {} output",
        record.usage.input, record.usage.cache_write_input, record.usage.output
    );
    match record.cost {
        Some(cost) => println!("  cost: {cost:.9}"),
        None => println!("  cost: unknown (unpriced)"),
    }
    println!(
        "  flujo_step_timeouts_total{{step=\"summarise\"}} = {}, flujo_step_fallbacks_total{{step=\"summarise\"}} = {}",
        capture.counter("flujo_step_timeouts_total", &[("step", "summarise")]),
        capture.counter("flujo_step_fallbacks_total", &[("step", "summarise")]),
    );
    println!("\nspan tree:");
    print!("{}", capture.span_tree());
    Ok(())
}
