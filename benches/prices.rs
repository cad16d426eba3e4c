//! What the shipped `genai-prices` data costs to load: the time to read it (criterion), and
//! the memory it holds once read (resident set before and after, in a fresh process: the first
//! read is the one an application pays, at its first priced call).
//!
//! Run: `cargo bench -p flujo-benches --bench prices`. Bounds (issue: at most 20 ms and 20 MiB at init).

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use flujo_pricing::genai::Catalog;

#[path = "support/memory.rs"]
mod memory;

/// This process's resident memory, in bytes.
fn resident_bytes() -> u64 {
    memory::status_bytes("VmRSS")
}

fn load(c: &mut Criterion) {
    let before = resident_bytes();
    let started = std::time::Instant::now();
    let catalog = Catalog::shipped().expect("the shipped data reads");
    let first = started.elapsed();
    let held = resident_bytes().saturating_sub(before);
    println!(
        "first load: {:.1} ms, {:.1} MiB resident for {} models of {} providers",
        first.as_secs_f64() * 1e3,
        held as f64 / (1 << 20) as f64,
        catalog.model_count(),
        catalog.providers.len()
    );
    c.bench_function("genai_prices/load_shipped_data", |b| {
        b.iter(|| black_box(Catalog::shipped()))
    });
    c.bench_function("genai_prices/lookup_uncached", |b| {
        b.iter(|| {
            black_box(catalog.lookup(black_box("us.anthropic.claude-sonnet-4-20250514-v1:0")))
        })
    });
    drop(catalog);
}

criterion_group!(benches, load);
criterion_main!(benches);
