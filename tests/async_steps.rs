//! `#[pipeline_step]` on async code: parent links across `.await` and tokio worker threads.

use std::fmt;
use std::future::Future;
use std::time::Duration;

use flujo::export::{AttributeValue, SpanStatus};
use flujo::pipeline_step;
use flujo::testing::Capture;

#[derive(Debug, Clone, PartialEq)]
struct ModelError(&'static str);

impl fmt::Display for ModelError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

#[pipeline_step]
async fn retrieve(query: String) -> Vec<String> {
    tokio::time::sleep(Duration::from_millis(1)).await;
    tokio::task::yield_now().await;
    vec![format!("doc about {query}")]
}

#[pipeline_step(fields(request))]
async fn answer(request: u32) -> Result<String, ModelError> {
    let docs = retrieve(format!("q{request}")).await;
    tokio::task::yield_now().await;
    let summary = summarise(docs.clone()).await?;
    Ok(summary)
}

/// A hand-written `impl Future` whose body is an `async move` block.
#[pipeline_step]
fn summarise(docs: Vec<String>) -> impl Future<Output = Result<String, ModelError>> {
    async move {
        tokio::task::yield_now().await;
        docs.first().cloned().ok_or(ModelError("no documents"))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn parents_survive_awaits_and_worker_threads_under_concurrency() {
    let capture = Capture::start();
    let tasks: Vec<_> = (0..50).map(|i| tokio::spawn(answer(i))).collect();
    for (i, task) in tasks.into_iter().enumerate() {
        assert_eq!(task.await.unwrap().unwrap(), format!("doc about q{i}"));
    }

    let spans = capture.finished_spans();
    let answers: Vec<_> = spans.iter().filter(|s| s.name == "answer").collect();
    assert_eq!(answers.len(), 50);
    for root in answers {
        assert_eq!(root.parent_span_id, None);
        let request = root.attribute("request").and_then(|v| v.as_i64()).unwrap();
        let children: Vec<_> = spans
            .iter()
            .filter(|s| s.parent_span_id == Some(root.span_id))
            .collect();
        let mut names: Vec<_> = children.iter().map(|s| s.name.as_ref()).collect();
        names.sort();
        assert_eq!(
            names,
            ["retrieve", "summarise"],
            "children of answer #{request}"
        );
        assert!(children.iter().all(|c| c.trace_id == root.trace_id));
    }
    let traces: std::collections::HashSet<_> = spans.iter().map(|s| s.trace_id).collect();
    assert_eq!(traces.len(), 50, "every concurrent run is its own trace");
    assert_eq!(
        capture.counter(
            "flujo_step_calls_total",
            &[("step", "retrieve"), ("status", "ok")]
        ),
        50
    );
}

static ATTEMPTS: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);

#[pipeline_step(retries = 2, backoff = "exponential", backoff_ms = 2, jitter = "none")]
async fn flaky(prompt: String) -> Result<String, ModelError> {
    if ATTEMPTS.fetch_add(1, std::sync::atomic::Ordering::SeqCst) == 0 {
        return Err(ModelError("overloaded"));
    }
    Ok(retrieve(prompt).await.remove(0))
}

#[tokio::test]
async fn async_retries_wait_without_blocking_and_children_nest_under_the_retrying_step() {
    let capture = Capture::start();
    ATTEMPTS.store(0, std::sync::atomic::Ordering::SeqCst);
    assert_eq!(flaky("x".into()).await.unwrap(), "doc about x");
    let span = &capture.spans_named("flaky")[0];
    assert_eq!(span.status, SpanStatus::Ok);
    assert_eq!(
        span.attribute("flujo.step.attempts"),
        Some(AttributeValue::Int(2))
    );
    assert!(
        span.duration() >= Duration::from_millis(2),
        "the backoff was waited"
    );
    let child = &capture.spans_named("retrieve")[0];
    assert_eq!(child.parent_span_id, Some(span.span_id));
    assert_eq!(
        capture.counter(
            "flujo_step_retries_total",
            &[("step", "flaky"), ("reason", "error")]
        ),
        1
    );
}

#[async_trait::async_trait]
trait Model: Send + Sync {
    async fn complete(&self, prompt: &str) -> Result<String, ModelError>;
    async fn embed(&self, text: String) -> Result<Vec<f32>, ModelError>;
}

struct Stub {
    name: &'static str,
}

#[async_trait::async_trait]
impl Model for Stub {
    #[pipeline_step(name = "stub.complete", fields(model = self.name))]
    async fn complete(&self, prompt: &str) -> Result<String, ModelError> {
        let docs = retrieve(prompt.to_owned()).await;
        if prompt.is_empty() {
            return Err(ModelError("empty prompt"));
        }
        Ok(docs.join(","))
    }

    #[pipeline_step(retries = 1, backoff_ms = 1)]
    async fn embed(&self, text: String) -> Result<Vec<f32>, ModelError> {
        Ok(vec![text.len() as f32])
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn async_trait_methods_are_instrumented_as_futures() {
    let capture = Capture::start();
    let model: Box<dyn Model> = Box::new(Stub { name: "stub-1" });
    assert_eq!(model.complete("hello").await.unwrap(), "doc about hello");
    assert!(model.complete("").await.is_err());
    assert_eq!(model.embed("abc".into()).await.unwrap(), vec![3.0]);

    let completes = capture.spans_named("stub.complete");
    assert_eq!(completes.len(), 2);
    assert_eq!(completes[0].attribute("model").unwrap(), "stub-1");
    assert_eq!(
        completes[0].attribute("code.function.name").unwrap(),
        "async_steps::complete"
    );
    assert!(completes[1].status.is_error());
    let retrieves = capture.spans_named("retrieve");
    assert_eq!(retrieves[0].parent_span_id, Some(completes[0].span_id));
    assert_eq!(capture.spans_named("embed").len(), 1);
}

#[pipeline_step]
async fn never_finishes() {
    std::future::pending::<()>().await;
}

#[tokio::test]
async fn a_future_dropped_before_completion_is_recorded_as_cancelled() {
    let capture = Capture::start();
    let timed_out = tokio::time::timeout(Duration::from_millis(5), never_finishes()).await;
    assert!(timed_out.is_err());
    let span = &capture.spans_named("never_finishes")[0];
    assert_eq!(span.status, SpanStatus::Unset);
    assert_eq!(
        span.attribute("flujo.step.cancelled"),
        Some(AttributeValue::Bool(true))
    );
    assert_eq!(
        capture.counter(
            "flujo_step_calls_total",
            &[("step", "never_finishes"), ("status", "cancelled")]
        ),
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn futures_join_branches_share_the_parent() {
    let capture = Capture::start();
    #[pipeline_step]
    async fn both() -> usize {
        let (a, b) = futures::join!(retrieve("a".into()), retrieve("b".into()));
        a.len() + b.len()
    }
    assert_eq!(both().await, 2);
    let parent = &capture.spans_named("both")[0];
    let children = capture.spans_named("retrieve");
    assert_eq!(children.len(), 2);
    assert!(
        children
            .iter()
            .all(|c| c.parent_span_id == Some(parent.span_id))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spawned_tasks_blocking_work_and_select_branches_keep_their_parent() {
    use flujo::StepFutureExt;

    let capture = Capture::start();
    #[pipeline_step]
    async fn orchestrate() -> usize {
        // A spawned task keeps the step as parent when asked to...
        let kept = tokio::spawn(retrieve("spawned".into()).in_current_step());
        // ...blocking work through an explicit context...
        let context = flujo::SpanContext::current();
        let blocking = tokio::task::spawn_blocking(move || {
            context.in_scope(|| futures::executor::block_on(retrieve("blocking".into())))
        });
        // ...and both branches of a select! share it.
        let raced = tokio::select! {
            docs = retrieve("left".into()) => docs,
            docs = async {
                tokio::time::sleep(Duration::from_millis(50)).await;
                retrieve("right".into()).await
            } => docs,
        };
        kept.await.unwrap().len() + blocking.await.unwrap().len() + raced.len()
    }
    #[pipeline_step]
    async fn detached() -> usize {
        // Without the extension a spawned task starts a trace of its own.
        tokio::spawn(retrieve("detached".into()))
            .await
            .unwrap()
            .len()
    }

    assert_eq!(orchestrate().await, 3);
    assert_eq!(detached().await, 1);

    let spans = capture.finished_spans();
    let parent = spans.iter().find(|s| s.name == "orchestrate").unwrap();
    let children: Vec<_> = spans
        .iter()
        .filter(|s| s.name == "retrieve" && s.parent_span_id == Some(parent.span_id))
        .collect();
    assert_eq!(
        children.len(),
        3,
        "spawned, blocking and the winning select! branch"
    );
    assert!(children.iter().all(|c| c.trace_id == parent.trace_id));
    // The losing select! branch never started its step: it was dropped before its first poll.
    let detached_parent = spans.iter().find(|s| s.name == "detached").unwrap();
    let orphan: Vec<_> = spans
        .iter()
        .filter(|s| s.name == "retrieve" && s.trace_id != parent.trace_id)
        .collect();
    assert_eq!(orphan.len(), 1);
    assert_eq!(orphan[0].parent_span_id, None);
    assert_ne!(orphan[0].trace_id, detached_parent.trace_id);
}

#[pipeline_step]
async fn leaf(x: u64) -> u64 {
    tokio::time::sleep(Duration::from_millis(20)).await;
    x + 1
}

/// A plain `async` block (not `async move`): borrows `x`, as the user wrote it.
#[pipeline_step]
fn borrowing_block(x: &u64) -> impl Future<Output = u64> + '_ {
    async { leaf(*x).await }
}

/// `async move { .. }.boxed()`, as with `futures::FutureExt`.
#[pipeline_step]
fn boxed_method(x: u64) -> futures::future::BoxFuture<'static, Result<u64, ModelError>> {
    use futures::FutureExt;
    async move { Ok(leaf(x).await) }.boxed()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_async_blocks_and_boxed_futures_are_instrumented_as_futures() {
    let capture = Capture::start();
    let x = 1;
    assert_eq!(borrowing_block(&x).await, 2);
    assert_eq!(boxed_method(5).await.unwrap(), 6);
    for name in ["borrowing_block", "boxed_method"] {
        let outer = &capture.spans_named(name)[0];
        assert!(
            outer.duration() >= Duration::from_millis(15),
            "{name} timed the future, not its construction: {:?}",
            outer.duration()
        );
        let children: Vec<_> = capture
            .spans_named("leaf")
            .into_iter()
            .filter(|leaf| leaf.parent_span_id == Some(outer.span_id))
            .collect();
        assert_eq!(children.len(), 1, "the awaited step is {name}'s child");
    }
    // A Result inside the boxed future is seen as the step's result.
    assert_eq!(
        capture.counter(
            "flujo_step_calls_total",
            &[("step", "boxed_method"), ("status", "ok")]
        ),
        1
    );
}
