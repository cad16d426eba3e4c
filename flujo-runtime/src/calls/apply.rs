//! Finished model calls, as the worker applies them: `flujo_model_requests_total`, the
//! GenAI duration and token histograms, `flujo_tokens_total`, the exact cost counter,
//! unpriced calls, and the cost record into the ledger.

use crate::core::names::Metric;
use crate::core::names::{
    ERROR_TYPE, GEN_AI_OPERATION_NAME, GEN_AI_PROVIDER_NAME, GEN_AI_REQUEST_MODEL,
    GEN_AI_TOKEN_MODALITY, GEN_AI_TOKEN_TYPE,
};

/// The current draft's token counters (`gen_ai_latest_experimental`): input, output, then the
/// cache reads, cache writes and reasoning tokens that are parts of them.
const GEN_AI_DETAILED_TOKEN_COUNTERS: [Metric; 5] = [
    Metric::GenAiDetailedInputTokens,
    Metric::GenAiDetailedOutputTokens,
    Metric::GenAiDetailedCacheReadTokens,
    Metric::GenAiDetailedCacheWriteTokens,
    Metric::GenAiDetailedReasoningTokens,
];
use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, LazyLock, Mutex};

use crate::accounting::pricing::{self, utc_date};
use crate::collect::sink::Observer;
use crate::core::clock;
use crate::core::genai::{self, GenAiConventions};
use crate::core::ids::TraceId;
use crate::core::record::{ModelCallRecord, Outcome, STATUSES, SpanRecord};
use crate::ledger::{self, CostRecord, record};
use crate::metrics::labels;

/// The observer that applies finished model calls: the model metrics, then the cost record
/// into the ledger.
pub(crate) struct CostObserver;

impl Observer for CostObserver {
    fn observe(&self, records: &[SpanRecord]) {
        for record in records.iter().filter(|record| !record.observed) {
            if let Some(call) = record.model_call() {
                apply(record, call);
            }
        }
    }
}

fn apply(record: &SpanRecord, call: &ModelCallRecord) {
    let (metrics, folded) = CallMetrics::of(call);
    if folded {
        labels::count_folded();
    }
    metrics.requests[record.outcome.status_index()].increment(1);
    let duration = clock::elapsed(record.start, record.end).as_secs_f64();
    match &record.outcome {
        Outcome::Error(details) => {
            CallMetrics::failed_duration(call, details.error_type, folded).record(duration)
        }
        Outcome::Panicked => CallMetrics::failed_duration(call, "panic", folded).record(duration),
        _ => metrics.duration.record(duration),
    }
    let Some(usage) = call.usage else {
        return;
    };
    metrics.token_usage[0].record(usage.input as f64);
    metrics.token_usage[1].record(usage.output as f64);
    let tokens = [
        usage.input,
        usage.output,
        usage.cache_read_input,
        usage.cache_write_input,
        usage.reasoning_output,
    ];
    for (counter, tokens) in metrics.tokens.iter().zip(tokens) {
        counter.increment(tokens);
    }
    if let Some(detailed) = &metrics.detailed_tokens {
        for (counter, tokens) in detailed.iter().zip(tokens) {
            counter.increment(tokens);
        }
    }
    match call.cost {
        Some(cost) => metrics.cost.increment(cost.nanos()),
        None => {
            metrics.unpriced.increment(1);
            warn_unpriced_once(if folded { labels::FOLDED } else { &call.model }, call);
        }
    }
    ledger::accept(CostRecord {
        id: Some(record::record_id(record.trace_id, record.span_id)),
        timestamp: call.timestamp,
        request_id: call.request_id.as_deref().map(str::to_owned),
        trace_id: (record.trace_id != 0).then_some(TraceId(record.trace_id)),
        pipeline: call.pipeline.map(str::to_owned),
        step: call.step.map(str::to_owned),
        model: call.model.to_string(),
        provider: call.provider.to_owned(),
        operation: call.operation.as_str().to_owned(),
        usage,
        cost: call.cost,
        price_version: call.price_version.to_string(),
    });
}

/// The `flujo_tokens_total` token types, in the order [`CallMetrics::tokens`] keeps them.
const TOKEN_TYPES: [&str; 5] = [
    "input",
    "output",
    "cache_read_input",
    "cache_write_input",
    "reasoning_output",
];

/// The GenAI conventions' per-call token histograms: v1.41's one histogram by
/// `gen_ai.token.type`, or the current draft's one histogram each for input and output.
fn token_histograms(latest: bool) -> [(&'static str, Option<&'static str>); 2] {
    if latest {
        [
            (Metric::GenAiInputTokens.name(), None),
            (Metric::GenAiOutputTokens.name(), None),
        ]
    } else {
        [
            (Metric::GenAiTokenUsage.name(), Some("input")),
            (Metric::GenAiTokenUsage.name(), Some("output")),
        ]
    }
}

/// The metric handles of one (operation, model, provider, pipeline, step, conventions):
/// registered on its first call, then reused, so applying a call is a few atomic adds.
struct CallMetrics {
    requests: [metrics::Counter; 3],
    duration: metrics::Histogram,
    token_usage: [metrics::Histogram; 2],
    /// The current draft's token counters, when its names are asked for.
    detailed_tokens: Option<[metrics::Counter; 5]>,
    tokens: [metrics::Counter; 5],
    cost: metrics::Counter,
    unpriced: metrics::Counter,
}

/// (operation, model, provider, pipeline, step, the latest conventions); the model is the
/// call's in the per-thread `LAST`, its label (see [`labels::model`]) in the shared cache.
type CallKey = (
    &'static str,
    Cow<'static, str>,
    &'static str,
    &'static str,
    &'static str,
    bool,
);

/// Distinct label sets kept, at most; past that, handles are registered per call.
const CACHED_CALL_METRICS: usize = 4096;

impl CallMetrics {
    /// The handles of `call`'s labels, and whether its model was folded into
    /// [`labels::FOLDED`].
    fn of(call: &ModelCallRecord) -> (Arc<CallMetrics>, bool) {
        type Last = Option<(CallKey, Arc<CallMetrics>, bool)>;
        thread_local! {
            /// The last call's handles: a drained batch is mostly calls of one model and step,
            /// found here without the cache's lock and hash.
            static LAST: std::cell::RefCell<Last> = const { std::cell::RefCell::new(None) };
        }
        let latest = genai::conventions() == GenAiConventions::LatestExperimental;
        let same = |key: &CallKey| {
            key.0 == call.operation.as_str()
                && key.1 == call.model
                && key.2 == call.provider
                && key.3 == call.pipeline.unwrap_or("")
                && key.4 == call.step.unwrap_or("")
                && key.5 == latest
        };
        if let Ok(Some(found)) = LAST.try_with(|last| {
            last.borrow()
                .as_ref()
                .filter(|(key, ..)| same(key))
                .map(|(_, metrics, folded)| (Arc::clone(metrics), *folded))
        }) {
            return found;
        }
        let key = CallMetrics::key(call, latest);
        let label = labels::model(&call.model);
        let folded = label == labels::FOLDED && call.model != labels::FOLDED;
        let metrics = if folded {
            let mut labelled = key.clone();
            labelled.1 = Cow::Borrowed(labels::FOLDED);
            CallMetrics::cached(&labelled)
        } else {
            CallMetrics::cached(&key)
        };
        let _ =
            LAST.try_with(|last| *last.borrow_mut() = Some((key, Arc::clone(&metrics), folded)));
        (metrics, folded)
    }

    fn key(call: &ModelCallRecord, latest: bool) -> CallKey {
        (
            call.operation.as_str(),
            call.model.clone(),
            call.provider,
            call.pipeline.unwrap_or(""),
            call.step.unwrap_or(""),
            latest,
        )
    }

    fn cached(key: &CallKey) -> Arc<CallMetrics> {
        static CACHE: LazyLock<Mutex<HashMap<CallKey, Arc<CallMetrics>>>> =
            LazyLock::new(Mutex::default);
        let mut cache = CACHE.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(found) = cache.get(key) {
            return Arc::clone(found);
        }
        let metrics = Arc::new(CallMetrics::register(key));
        if cache.len() < CACHED_CALL_METRICS {
            cache.insert(key.clone(), Arc::clone(&metrics));
        }
        metrics
    }

    fn register(key: &CallKey) -> CallMetrics {
        let (operation, model, provider, pipeline, step, latest) = key.clone();
        let model = model.into_owned();
        let genai = |extra: Option<(&'static str, &'static str)>| {
            let mut labels = vec![
                metrics::Label::new(GEN_AI_OPERATION_NAME, operation),
                metrics::Label::new(GEN_AI_PROVIDER_NAME, provider),
                metrics::Label::new(GEN_AI_REQUEST_MODEL, model.clone()),
            ];
            labels.extend(extra.map(|(key, value)| metrics::Label::new(key, value)));
            labels
        };
        CallMetrics {
            requests: STATUSES.map(|status| {
                metrics::counter!(Metric::ModelRequests.name(),
                    "model" => model.clone(), "provider" => provider, "status" => status)
            }),
            duration: metrics::histogram!(Metric::GenAiOperationDuration.name(), genai(None)),
            token_usage: token_histograms(latest).map(|(name, token_type)| {
                metrics::histogram!(name, genai(token_type.map(|t| (GEN_AI_TOKEN_TYPE, t))))
            }),
            detailed_tokens: latest.then(|| {
                GEN_AI_DETAILED_TOKEN_COUNTERS.map(|metric| {
                    // flujo's usage types carry no modality breakdown.
                    metrics::counter!(
                        metric.name(),
                        genai(Some((GEN_AI_TOKEN_MODALITY, "unknown")))
                    )
                })
            }),
            tokens: TOKEN_TYPES.map(|token_type| {
                metrics::counter!(Metric::Tokens.name(),
                    "model" => model.clone(), "provider" => provider, "token_type" => token_type)
            }),
            cost: metrics::counter!(Metric::CostUsd.name(),
                "model" => model.clone(), "provider" => provider,
                "pipeline" => pipeline, "step" => step),
            unpriced: metrics::counter!(Metric::UnpricedCalls.name(), "model" => model.clone()),
        }
    }

    /// The duration of a failed call, labelled with its `error.type` (rare: not cached).
    fn failed_duration(
        call: &ModelCallRecord,
        error_type: &'static str,
        folded: bool,
    ) -> metrics::Histogram {
        let model = if folded { labels::FOLDED } else { &call.model };
        metrics::histogram!(
            Metric::GenAiOperationDuration.name(),
            GEN_AI_OPERATION_NAME => call.operation.as_str(),
            GEN_AI_PROVIDER_NAME => call.provider,
            GEN_AI_REQUEST_MODEL => model.to_owned(),
            ERROR_TYPE => error_type
        )
    }
}

/// Says once per model label that `call`'s model has no price; a call of a priced model left
/// unpriced (its usage was over the bound, said where it was read) is not one.
fn warn_unpriced_once(model: &str, call: &ModelCallRecord) {
    static WARNED: LazyLock<Mutex<HashSet<String>>> = LazyLock::new(Mutex::default);
    if WARNED
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .contains(model)
    {
        return;
    }
    let priced =
        pricing::resolve(&call.model, Some(call.provider), utc_date(call.timestamp)).is_priced();
    if priced {
        return;
    }
    let first = WARNED
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(model.to_owned());
    if first {
        tracing::warn!(
            target: "flujo",
            model,
            "model `{model}` has no price: its calls are recorded as unpriced (not $0). Add it \
             to a price file (FLUJO_PRICING_FILE) or with flujo::cost::set_model_price"
        );
    }
}
