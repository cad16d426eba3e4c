use flujo::{pipeline, pipeline_step};

#[derive(Debug)]
struct EnrichError;

impl std::fmt::Display for EnrichError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("enrich failed")
    }
}

impl std::error::Error for EnrichError {}

#[pipeline_step]
fn enrich(text: String) -> Result<String, EnrichError> {
    Ok(text)
}

#[pipeline_step]
async fn summarise(text: String) -> String {
    text
}

#[pipeline_step]
fn publish(text: String) -> usize {
    text.len()
}

pipeline! {
    pipeline forgotten_question_mark(text: String) -> usize {
        enrich >> summarise.await >> publish
    }
}

pipeline! {
    pipeline forgotten_await(text: String) -> usize {
        enrich? >> summarise >> publish
    }
}

fn main() {}
