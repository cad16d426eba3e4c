//! Every declaration, by group: what the docs table and the unknown-variable check list (kept
//! apart from `mod.rs`, which re-exports the table, so that neither imports the other).

use super::declare::Declared;
use super::{
    exporters, genai, ledger, lifecycle, logfire, logs, otlp, pricing, propagation, resource,
    sampling, spans,
};

/// Every declaration, by group, in the order of the docs table.
pub(super) const GROUPS: &[(&str, &[&dyn Declared])] = &[
    ("Service (the resource)", resource::DECLARED),
    ("Sampling", sampling::DECLARED),
    ("Exporters", exporters::DECLARED),
    ("OTLP transport, per signal", otlp::DECLARED),
    ("The span queue and span limits", spans::DECLARED),
    ("Propagation", propagation::DECLARED),
    ("Logfire", logfire::DECLARED),
    ("Logs", logs::DECLARED),
    ("GenAI attributes", genai::DECLARED),
    ("Prices", pricing::DECLARED),
    ("Cost ledger and budgets", ledger::DECLARED),
    ("Lifecycle", lifecycle::DECLARED),
];
