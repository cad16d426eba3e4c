//! Per-thread rings cost a large thread pool little memory: they start small and grow only
//! for threads that record a lot.

use std::sync::{Arc, Barrier};

use flujo::pipeline_step;
use flujo::testing::Capture;

#[pipeline_step]
fn one_step(i: usize) -> usize {
    i
}

#[test]
fn a_pool_of_512_threads_that_each_record_a_span_costs_a_few_mib_of_rings() {
    const THREADS: usize = 512;
    let capture = Capture::start();
    let before = flujo::__private::allocated_ring_slots();
    let recorded = Arc::new(Barrier::new(THREADS + 1));
    let measured = Arc::new(Barrier::new(THREADS + 1));
    let threads: Vec<_> = (0..THREADS)
        .map(|i| {
            let (recorded, measured) = (Arc::clone(&recorded), Arc::clone(&measured));
            std::thread::Builder::new()
                .stack_size(64 * 1024)
                .spawn(move || {
                    one_step(i);
                    recorded.wait();
                    // Alive (and its ring registered) until the main thread has measured.
                    measured.wait();
                })
                .unwrap()
        })
        .collect();
    recorded.wait();
    let slots = flujo::__private::allocated_ring_slots().saturating_sub(before);
    measured.wait();
    for thread in threads {
        thread.join().unwrap();
    }
    let mib = (slots * 112) as f64 / (1024.0 * 1024.0);
    println!("{THREADS} threads with one span each: {slots} ring slots, {mib:.1} MiB");
    assert!(
        slots <= THREADS * 256,
        "{slots} slots ({mib:.1} MiB): rings must start small"
    );
    assert_eq!(
        capture.spans_named("one_step").len(),
        THREADS,
        "every span arrived"
    );
}
