//! flujo's examples, run from the repository's root: `cargo run --example quickstart` (also
//! `pipeline`, `streaming`, `rate_limits`, `opentelemetry --features opentelemetry`, `operations
//! --features prometheus,sqlite`, `clients --features clients`). The examples are this package's; it has no library of its own.

#![forbid(unsafe_code)]
