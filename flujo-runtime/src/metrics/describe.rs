//! Names, units and HELP texts of every metric flujo records.

use metrics::Unit;

/// The cost counter. Its value is kept exactly, in nano-dollars; exporters show it in USD
/// (Prometheus through `render_usd_counters`, OTLP as a float counter).
pub(crate) const COST_USD_TOTAL: &str = "flujo_cost_usd_total";

/// The current draft's token counters (`gen_ai_latest_experimental`): input, output, then the
/// cache reads, cache writes and reasoning tokens that are parts of them.
pub(crate) const GEN_AI_DETAILED_TOKEN_COUNTERS: [&str; 5] = [
    "gen_ai.client.inference.usage.detailed.input_tokens",
    "gen_ai.client.inference.usage.detailed.output_tokens",
    "gen_ai.client.inference.usage.detailed.cache_read.input_tokens",
    "gen_ai.client.inference.usage.detailed.cache_write.input_tokens",
    "gen_ai.client.inference.usage.detailed.reasoning.output_tokens",
];

/// USD per unit of a counter kept in nano-dollars.
#[cfg(feature = "otlp")]
pub(crate) const USD_PER_NANO: f64 = 1e-9;

pub(crate) fn describe_metrics() {
    metrics::describe_counter!(
        "flujo_step_calls_total",
        Unit::Count,
        "Calls of #[pipeline_step] functions, by step and final status (ok, error, cancelled)"
    );
    metrics::describe_histogram!(
        "flujo_step_duration_seconds",
        Unit::Seconds,
        "Wall-clock duration of step calls including retries, by step and final status"
    );
    metrics::describe_counter!(
        "flujo_step_retries_total",
        Unit::Count,
        "Retries of failed step attempts, by step"
    );
    metrics::describe_counter!(
        "flujo_step_timeouts_total",
        Unit::Count,
        "Step attempts that ran past their timeout_ms and were cancelled, by step"
    );
    metrics::describe_counter!(
        "flujo_step_fallbacks_total",
        Unit::Count,
        "Steps whose attempts failed (or timed out) and that ran their fallback, by step"
    );
    metrics::describe_counter!(
        "flujo_model_requests_total",
        Unit::Count,
        "Calls of #[track_cost] functions, by model, provider and status (ok, error, cancelled)"
    );
    metrics::describe_counter!(
        "flujo_tokens_total",
        Unit::Count,
        "Tokens used by model calls, by model, provider and token_type (input, output, \
         cache_read_input, cache_write_input, reasoning_output; cached are part of input, \
         reasoning part of output)"
    );
    metrics::describe_counter!(
        COST_USD_TOTAL,
        "Cost of priced model calls in USD (exact to the nano-dollar), by model, provider, \
         pipeline and step"
    );
    metrics::describe_counter!(
        "flujo_unpriced_calls_total",
        Unit::Count,
        "Model calls whose model has no price (their cost is unknown, not zero), by model"
    );
    metrics::describe_counter!(
        "flujo_budget_exceeded_total",
        Unit::Count,
        "Model calls refused by a usage limit, by limit (total_cost, total_tokens, daily_cost, \
         monthly_cost, ledger_unreachable, unpriced_model)"
    );
    metrics::describe_counter!(
        "flujo_budget_unverified_total",
        Unit::Count,
        "Model calls admitted while a shared ledger's fleet spending could not be read (fail \
         open), by limit (daily_cost, monthly_cost)"
    );
    metrics::describe_histogram!(
        "gen_ai.client.token.usage",
        Unit::Count,
        "Tokens used per model call, by gen_ai.token.type (input, output)"
    );
    for (name, what) in [
        ("gen_ai.client.inference.usage.input_tokens", "Input"),
        ("gen_ai.client.inference.usage.output_tokens", "Output"),
    ] {
        metrics::describe_histogram!(
            name,
            Unit::Count,
            format!("{what} tokens per model call (the conventions' current draft)")
        );
    }
    for name in GEN_AI_DETAILED_TOKEN_COUNTERS {
        metrics::describe_counter!(
            name,
            Unit::Count,
            "Tokens used, by gen_ai.token.modality (the conventions' current draft)"
        );
    }
    for (name, what) in [
        (
            "gen_ai.execute_tool.duration",
            "tool executions (kind = \"tool\" steps)",
        ),
        (
            "gen_ai.invoke_agent.duration",
            "agent invocations (kind = \"agent\" steps)",
        ),
        ("gen_ai.workflow.duration", "workflows (pipeline runs)"),
    ] {
        metrics::describe_histogram!(
            name,
            Unit::Seconds,
            format!("Duration of {what}, with error.type when they did not succeed")
        );
    }
    metrics::describe_histogram!(
        "gen_ai.client.operation.duration",
        Unit::Seconds,
        "Duration of model calls"
    );
    metrics::describe_histogram!(
        "gen_ai.client.operation.time_to_first_chunk",
        Unit::Seconds,
        "Time from the start of a streamed model call to its first chunk"
    );
    metrics::describe_histogram!(
        "gen_ai.client.operation.time_per_output_chunk",
        Unit::Seconds,
        "Time between consecutive chunks of a streamed model call, one value per chunk after \
         the first"
    );
    metrics::describe_counter!(
        "flujo_model_usage_missing_total",
        Unit::Count,
        "Streamed model calls whose chunks reported no usage (unpriced, not $0), by model"
    );
    metrics::describe_counter!(
        "flujo_pipeline_runs_total",
        Unit::Count,
        "Runs of pipelines, by pipeline and status (ok, error, cancelled)"
    );
    metrics::describe_histogram!(
        "flujo_pipeline_duration_seconds",
        Unit::Seconds,
        "Wall-clock duration of pipeline runs, by pipeline and status"
    );
    metrics::describe_counter!(
        "flujo_hook_panics_total",
        Unit::Count,
        "Hook calls that panicked (the run continued), by hook and phase"
    );
    metrics::describe_counter!(
        "flujo_checklist_items_total",
        Unit::Count,
        "Checklist items evaluated, by checklist and result (pass, fail)"
    );
    metrics::describe_histogram!(
        "flujo_score",
        "Quality scores recorded with flujo::quality::record_score, by name"
    );
    metrics::describe_counter!(
        "flujo_validations_total",
        Unit::Count,
        "Validations of step outputs, by step, validator and result (pass, fail)"
    );
    metrics::describe_counter!(
        "flujo_telemetry_spans_dropped_total",
        Unit::Count,
        "Spans dropped before export, by reason (queue_full, late, export_queue_full, \
         export_failed, too_large, shutdown)"
    );
    metrics::describe_counter!(
        "flujo_telemetry_spans_truncated_total",
        Unit::Count,
        "Spans over MAX_EXPORTED_SPAN_BYTES whose longest text values were cut so that they \
         could be exported"
    );
    metrics::describe_counter!(
        "flujo_cost_records_dropped_total",
        Unit::Count,
        "Cost records not delivered to the ledger, by reason (late: the call ended after its \
         telemetry session shut down; ledger_unwritable: a SQLite ledger could not write and its \
         buffer was full; ledger_unreachable: a PostgreSQL ledger could not be reached and its \
         buffer was full; ledger_queue_full: the buffer was full while the ledger wrote; \
         shutdown: not committed when the shutdown's timeout ended)"
    );
    metrics::describe_counter!(
        "flujo_cost_ledger_write_errors_total",
        Unit::Count,
        "Failed writes of a batch of cost records to the durable ledger (each is retried)"
    );
    metrics::describe_counter!(
        "flujo_telemetry_spans_exported_total",
        Unit::Count,
        "Spans an exporter delivered"
    );
    metrics::describe_counter!(
        "flujo_telemetry_spans_unconfirmed_total",
        Unit::Count,
        "Spans sent whose requests the collector never answered, even when sent again: it may \
         have kept them"
    );
    metrics::describe_counter!(
        "flujo_telemetry_export_stalls_total",
        Unit::Count,
        "Times the OTLP collector stopped answering (an export outlasted its timeout); each is \
         also one WARN line, and its end one INFO line"
    );
    metrics::describe_counter!(
        "flujo_telemetry_export_errors_total",
        Unit::Count,
        "Export requests that failed after the exporter's retries"
    );
}
