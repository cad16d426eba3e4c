//! Label values that come from the application at run time (model names) are bounded: the
//! first [`MAX_MODEL_LABELS`] distinct names label metrics as they are; later ones are
//! folded into `model="other"` and counted, so that a router passing provider ids through,
//! or a typo in a loop, cannot grow the series (and the exposition, and the memory) without
//! end. Spans and cost records keep every name.

use crate::core::names::Metric;
use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{LazyLock, RwLock};

/// Distinct model names that label metrics, at most.
pub(crate) const MAX_MODEL_LABELS: usize = 500;

/// The model label of calls whose model came after [`MAX_MODEL_LABELS`] others.
pub(crate) const FOLDED: &str = "other";

static MODELS: LazyLock<RwLock<HashSet<Box<str>>>> = LazyLock::new(RwLock::default);

/// The label value of `model`: itself, or [`FOLDED`] once [`MAX_MODEL_LABELS`] other names
/// label metrics.
pub(crate) fn model(model: &str) -> &str {
    let known = MODELS
        .read()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .contains(model);
    if known {
        return model;
    }
    let mut models = MODELS
        .write()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if models.contains(model) {
        return model;
    }
    if models.len() < MAX_MODEL_LABELS {
        models.insert(model.into());
        return model;
    }
    drop(models);
    static SAID: AtomicBool = AtomicBool::new(false);
    if !SAID.swap(true, Ordering::Relaxed) {
        tracing::warn!(target: "flujo", model, max = MAX_MODEL_LABELS,
            "more than {MAX_MODEL_LABELS} distinct model names have labelled flujo's metrics: \
             calls of further models are counted under model=\"other\" (each such call counted \
             in flujo_labels_folded_total{{label=\"model\"}}); spans and cost records keep \
             every name. Said once");
    }
    FOLDED
}

/// Counts a model call whose model was folded into [`FOLDED`].
pub(crate) fn count_folded() {
    static FOLDED_CALLS: LazyLock<metrics::Counter> =
        LazyLock::new(|| metrics::counter!(Metric::LabelsFolded.name(), "label" => "model"));
    FOLDED_CALLS.increment(1);
}
