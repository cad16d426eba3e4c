//! `crate = path` for crates that re-export flujo under another path.
mod facade {
    pub use flujo as telemetry;
}

#[flujo::pipeline_step(crate = facade::telemetry)]
fn call() -> u32 {
    1
}

fn main() {
    assert_eq!(call(), 1);
}
