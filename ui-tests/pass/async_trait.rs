//! `#[async_trait]` methods: the boxed future is what gets instrumented.
use flujo::pipeline_step;

#[async_trait::async_trait]
trait Model: Send + Sync {
    async fn complete(&self, prompt: &str) -> Result<String, String>;
    async fn reset(&mut self);
    async fn embed(&self, text: String, dims: usize) -> Result<Vec<f32>, String>;
}

struct Stub {
    calls: u32,
}

#[async_trait::async_trait]
impl Model for Stub {
    #[pipeline_step(name = "stub.complete", retries = 2, backoff_ms = 0, fields(model = "stub"))]
    async fn complete(&self, prompt: &str) -> Result<String, String> {
        if prompt.is_empty() {
            return Err("empty".into());
        }
        Ok(prompt.to_uppercase())
    }

    #[pipeline_step]
    async fn reset(&mut self) {
        self.calls = 0;
    }

    #[pipeline_step(retries = 1)]
    async fn embed(&self, text: String, dims: usize) -> Result<Vec<f32>, String> {
        Ok(vec![text.len() as f32; dims])
    }
}

fn main() {
    let mut stub = Stub { calls: 3 };
    futures::executor::block_on(async {
        assert_eq!(stub.complete("hi").await.unwrap(), "HI");
        stub.reset().await;
        assert_eq!(stub.embed("ab".into(), 2).await.unwrap(), vec![2.0, 2.0]);
    });
    assert_eq!(stub.calls, 0);
}
