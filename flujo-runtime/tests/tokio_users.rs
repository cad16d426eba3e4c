//! With feature `tokio`, flujo's blocking waits step aside for a runtime's other tasks, and
//! `Flujo::run` drives steps that need tokio's reactor.
#![cfg(feature = "tokio")]

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

use flujo::{Flujo, pipeline, pipeline_step};

static FAILURES: AtomicU32 = AtomicU32::new(0);

/// A sync step that fails twice, waiting 100 ms before each retry.
#[pipeline_step(retries = 2, backoff = "fixed", backoff_ms = 100)]
fn flaky_sync() -> Result<u32, String> {
    match FAILURES.fetch_add(1, Ordering::SeqCst) {
        n if n < 2 => Err(format!("failure {n}")),
        n => Ok(n),
    }
}

#[test]
fn a_sync_steps_backoff_does_not_stall_the_other_tasks_of_its_tokio_worker() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_time()
        .build()
        .unwrap();
    let ticks = Arc::new(AtomicU64::new(0));
    let counted = Arc::clone(&ticks);
    runtime.spawn(async move {
        loop {
            tokio::time::sleep(Duration::from_millis(5)).await;
            counted.fetch_add(1, Ordering::Relaxed);
        }
    });
    let observed = Arc::clone(&ticks);
    let during = runtime.block_on(async move {
        // On the runtime's only worker.
        tokio::spawn(async move {
            let ticks = observed;
            let before = ticks.load(Ordering::Relaxed);
            assert_eq!(flaky_sync(), Ok(2));
            ticks.load(Ordering::Relaxed) - before
        })
        .await
        .unwrap()
    });
    println!("the other task ticked {during} times during 200 ms of backoff");
    assert!(
        during >= 10,
        "the worker's other task was stalled: {during} ticks"
    );
}

#[pipeline_step]
async fn needs_the_reactor(ms: u64) -> u64 {
    tokio::time::sleep(Duration::from_millis(ms)).await;
    ms
}

pipeline! {
    pipeline timed(ms: u64) -> u64 {
        needs_the_reactor.await
    }
}

#[test]
fn flujo_run_drives_steps_that_need_tokios_reactor() {
    // No runtime here: `Flujo::run` brings one.
    let result = Flujo::new(timed::new()).run(5);
    assert_eq!(result.output.unwrap(), 5);
    // Inside a multi-thread runtime's task it runs as a blocking section of that runtime.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let inside = runtime.block_on(async {
        tokio::spawn(async { Flujo::new(timed::new()).run(3).output.unwrap() })
            .await
            .unwrap()
    });
    assert_eq!(inside, 3);
}
