//! The pipeline run the benchmarks and the instruction-count guard measure: three steps that
//! do next to nothing, one of them returning `Result`.

use std::hint::black_box;

use flujo::{pipeline, pipeline_step};

#[pipeline_step]
fn first(x: u64) -> u64 {
    black_box(x) + 1
}

#[pipeline_step]
fn second(x: u64) -> Result<u64, std::num::TryFromIntError> {
    Ok(black_box(x) * 2)
}

#[pipeline_step]
fn third(x: u64) -> u64 {
    black_box(x) ^ 0x5A
}

pipeline! {
    pub pipeline three_steps(x: u64) -> u64 {
        first >> second? >> third
    }
}
