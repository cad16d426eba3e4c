//! `async fn`, with and without retries, awaiting other steps.
use flujo::pipeline_step;

#[pipeline_step]
async fn fetch(id: u32) -> String {
    format!("doc-{id}")
}

#[pipeline_step(retries = 1, backoff_ms = 0, fields(id))]
async fn fetch_all(id: u32, mut extra: Vec<u32>) -> Result<Vec<String>, String> {
    extra.push(id);
    let mut out = Vec::new();
    for i in extra {
        out.push(fetch(i).await);
    }
    if out.is_empty() {
        return Err("nothing".into());
    }
    Ok(out)
}

fn main() {
    let docs = futures::executor::block_on(fetch_all(1, vec![2])).unwrap();
    assert_eq!(docs, ["doc-2", "doc-1"]);
}
