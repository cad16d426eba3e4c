//! A `fn` returning `impl Future` whose body is an `async move` block.
use std::future::Future;

use flujo::pipeline_step;

#[pipeline_step]
fn fetch(id: u32) -> impl Future<Output = Result<String, String>> {
    let prefix = "doc";
    async move {
        if id == 0 {
            return Err("no id".to_owned());
        }
        Ok(format!("{prefix}-{id}"))
    }
}

#[pipeline_step(retries = 1, backoff_ms = 0)]
fn fetch_boxed(id: u32) -> std::pin::Pin<Box<dyn Future<Output = Result<u32, String>> + Send>> {
    Box::pin(async move { Ok(id + 1) })
}

fn main() {
    futures::executor::block_on(async {
        assert_eq!(fetch(1).await.unwrap(), "doc-1");
        assert!(fetch(0).await.is_err());
        assert_eq!(fetch_boxed(1).await.unwrap(), 2);
    });
}
