//! Metrics: flujo's `metrics` recorder with fixed-bucket histograms (read by tests and the
//! exporters), the names and descriptions, and step metrics as an observer of drained
//! records.

pub(crate) mod describe;
pub(crate) mod histogram;
pub(crate) mod labels;
pub(crate) mod recorder;
pub(crate) mod step;
