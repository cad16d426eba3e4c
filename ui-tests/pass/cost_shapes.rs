//! `#[track_cost]` on every function shape `#[pipeline_step]` supports, alone and together.

use std::future::Future;

use flujo::cost::ReportsUsage;
use flujo::{TokenUsage, UsageLimitExceeded, pipeline_step, track_cost};

#[derive(Debug)]
struct Reply(u64);

impl ReportsUsage for Reply {
    fn token_usage(&self) -> Option<TokenUsage> {
        Some(TokenUsage::new(self.0, 1))
    }
}

#[derive(Debug)]
enum ClientError {
    Budget(UsageLimitExceeded),
}

impl std::fmt::Display for ClientError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ClientError::Budget(refusal) => refusal.fmt(f),
        }
    }
}

impl From<UsageLimitExceeded> for ClientError {
    fn from(refusal: UsageLimitExceeded) -> Self {
        ClientError::Budget(refusal)
    }
}

struct Client {
    model: String,
}

#[async_trait::async_trait]
trait Chat {
    async fn chat(&self, prompt: &str) -> Result<Reply, ClientError>;
}

#[async_trait::async_trait]
impl Chat for Client {
    #[track_cost(model = self.model.as_str(), provider = "openai")]
    async fn chat(&self, prompt: &str) -> Result<Reply, ClientError> {
        Ok(Reply(prompt.len() as u64))
    }
}

impl Client {
    #[track_cost(model = &self.model)]
    async fn ask(&self, prompt: &str) -> Result<Reply, ClientError> {
        if prompt.is_empty() {
            return Ok(Reply(0));
        }
        Ok(Reply(prompt.len() as u64))
    }

    #[track_cost(model = "gpt-4o", operation = "text_completion")]
    fn complete(&mut self, prompt: String) -> impl Future<Output = Result<Reply, ClientError>> {
        async move { Ok(Reply(prompt.len() as u64)) }
    }
}

#[pipeline_step(name = "embed", retries = 1, backoff_ms = 1)]
#[track_cost(model = "text-embedding-3-small", operation = "embeddings", usage = usage_of)]
fn embed<T: AsRef<str>>(texts: &[T]) -> Result<Vec<usize>, anyhow::Error> {
    Ok(texts.iter().map(|t| t.as_ref().len()).collect())
}

fn usage_of(lengths: &[usize]) -> Option<TokenUsage> {
    Some(TokenUsage::new(lengths.iter().sum::<usize>() as u64, 0))
}

#[track_cost(model = "gemini-2.5-flash", operation = "generate_content")]
fn infallible() -> Option<Reply> {
    Some(Reply(3))
}

mod facade {
    pub use flujo;
}

#[track_cost(model = "claude-haiku-4-5", crate = facade::flujo)]
fn through_a_facade() -> TokenUsage {
    TokenUsage::anthropic(1, 2, 3, 4)
}

fn main() {
    let mut client = Client { model: "gpt-4o-mini".to_owned() };
    futures::executor::block_on(async {
        client.chat("hi").await.unwrap();
        client.ask("hi").await.unwrap();
        client.complete("hi".to_owned()).await.unwrap();
    });
    assert_eq!(embed(&["ab", "c"]).unwrap(), [2, 1]);
    assert!(infallible().is_some());
    assert_eq!(through_a_facade().input, 6);
}
