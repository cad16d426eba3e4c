//! Every metric flujo records, declared once: its name, kind, unit and description. The
//! recorder, the exporters, the CLI's Prometheus rules and the guide's metrics table (kept
//! equal to this one by a test) read it; what Prometheus shows derives from it in
//! [`Metric::prometheus_name`].

/// What a metric is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum MetricKind {
    /// A monotonic count.
    Counter,
    /// A distribution over fixed buckets.
    Histogram,
}

macro_rules! metrics_table {
    ($($(#[$doc:meta])* $variant:ident: $kind:ident, $name:literal, $unit:expr, $help:literal;)*) => {
        /// A metric flujo records. Its name as recorded (and pushed over OTLP) is
        /// [`Metric::name`]; Prometheus shows [`Metric::prometheus_name`].
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        #[non_exhaustive]
        pub enum Metric {
            $($(#[$doc])* $variant,)*
        }

        impl Metric {
            /// Every metric, in the order of the guide's table.
            pub const ALL: &'static [Metric] = &[$(Metric::$variant,)*];

            /// The name it is recorded under (and pushed over OTLP).
            pub const fn name(self) -> &'static str {
                match self {
                    $(Metric::$variant => $name,)*
                }
            }

            /// A counter or a histogram.
            pub const fn kind(self) -> MetricKind {
                match self {
                    $(Metric::$variant => MetricKind::$kind,)*
                }
            }

            /// Its unit in UCUM (`s`, `{token}`, `USD`...), when it has one.
            pub const fn unit(self) -> Option<&'static str> {
                match self {
                    $(Metric::$variant => $unit,)*
                }
            }

            /// What it counts or measures, and its labels.
            pub const fn description(self) -> &'static str {
                match self {
                    $(Metric::$variant => $help,)*
                }
            }
        }
    };
}

const SECONDS: Option<&str> = Some("s");
const COUNT: Option<&str> = Some("1");
const TOKENS: Option<&str> = Some("{token}");

metrics_table! {
    /// Step calls.
    StepCalls: Counter, "flujo_step_calls_total", COUNT,
        "Calls of `#[pipeline_step]` functions, by step and final status (ok, error, cancelled)";
    /// Step durations.
    StepDuration: Histogram, "flujo_step_duration_seconds", SECONDS,
        "Wall-clock duration of step calls including retries, by step and final status";
    /// Step retries.
    StepRetries: Counter, "flujo_step_retries_total", COUNT,
        "Retries of failed step attempts, by step and reason (retry_after: the error asked for its wait, a rate limit or an overload; timeout; invalid: the validator rejected the value; error)";
    /// Step timeouts.
    StepTimeouts: Counter, "flujo_step_timeouts_total", COUNT,
        "Step attempts that ran past their timeout_ms and were cancelled, by step";
    /// Step fallbacks.
    StepFallbacks: Counter, "flujo_step_fallbacks_total", COUNT,
        "Steps whose attempts failed (or timed out) and that ran their fallback, by step";
    /// Model calls.
    ModelRequests: Counter, "flujo_model_requests_total", COUNT,
        "Calls of `#[track_cost]` functions, by model, provider and status (ok, error, cancelled)";
    /// Tokens.
    Tokens: Counter, "flujo_tokens_total", TOKENS,
        "Tokens used by model calls, by model, provider and token_type (input, output, cache_read_input, cache_write_input, reasoning_output; cached are part of input, reasoning part of output)";
    /// Cost.
    CostUsd: Counter, "flujo_cost_usd_total", Some("USD"),
        "Cost of priced model calls in USD (exact to the nano-dollar), by model, provider, pipeline and step";
    /// Unpriced calls.
    UnpricedCalls: Counter, "flujo_unpriced_calls_total", COUNT,
        "Model calls left unpriced: their model has no price, or their usage cannot be priced (their cost is unknown, not zero), by model";
    /// Refused calls.
    BudgetExceeded: Counter, "flujo_budget_exceeded_total", COUNT,
        "Model calls refused by a usage limit, by limit (total_cost, total_tokens, daily_cost, monthly_cost, ledger_unreachable, unpriced_model)";
    /// Calls admitted without the fleet's spending.
    BudgetUnverified: Counter, "flujo_budget_unverified_total", COUNT,
        "Model calls admitted while a shared ledger's fleet spending could not be read (fail open), by limit (daily_cost, monthly_cost)";
    /// Streams without usage.
    ModelUsageMissing: Counter, "flujo_model_usage_missing_total", COUNT,
        "Model calls whose response or stream reported no usage (unpriced, not $0), by model";
    /// Usage past the bound.
    TokenUsageOutOfBounds: Counter, "flujo_token_usage_out_of_bounds_total", COUNT,
        "Model calls whose reported usage had a count above MAX_TOKENS_PER_CALL (their usage is not read: unpriced), by model";
    /// Model names folded into `other`.
    LabelsFolded: Counter, "flujo_labels_folded_total", COUNT,
        "Calls whose label value was folded into `other` because the label had too many distinct values, by label";
    /// GenAI token histogram.
    GenAiTokenUsage: Histogram, "gen_ai.client.token.usage", TOKENS,
        "Tokens used per model call, by gen_ai.token.type (input, output)";
    /// The current draft's input tokens.
    GenAiInputTokens: Histogram, "gen_ai.client.inference.usage.input_tokens", TOKENS,
        "Input tokens per model call (the conventions' current draft)";
    /// The current draft's output tokens.
    GenAiOutputTokens: Histogram, "gen_ai.client.inference.usage.output_tokens", TOKENS,
        "Output tokens per model call (the conventions' current draft)";
    /// Detailed input tokens.
    GenAiDetailedInputTokens: Counter, "gen_ai.client.inference.usage.detailed.input_tokens", TOKENS,
        "Input tokens used, by gen_ai.token.modality (the conventions' current draft)";
    /// Detailed output tokens.
    GenAiDetailedOutputTokens: Counter, "gen_ai.client.inference.usage.detailed.output_tokens", TOKENS,
        "Output tokens used, by gen_ai.token.modality (the conventions' current draft)";
    /// Detailed cache reads.
    GenAiDetailedCacheReadTokens: Counter, "gen_ai.client.inference.usage.detailed.cache_read.input_tokens", TOKENS,
        "Input tokens read from the prompt cache, by gen_ai.token.modality (the conventions' current draft)";
    /// Detailed cache writes.
    GenAiDetailedCacheWriteTokens: Counter, "gen_ai.client.inference.usage.detailed.cache_write.input_tokens", TOKENS,
        "Input tokens written to the prompt cache, by gen_ai.token.modality (the conventions' current draft)";
    /// Detailed reasoning tokens.
    GenAiDetailedReasoningTokens: Counter, "gen_ai.client.inference.usage.detailed.reasoning.output_tokens", TOKENS,
        "Output tokens spent on reasoning, by gen_ai.token.modality (the conventions' current draft)";
    /// Model call durations.
    GenAiOperationDuration: Histogram, "gen_ai.client.operation.duration", SECONDS,
        "Duration of model calls";
    /// Time to the first chunk.
    GenAiTimeToFirstChunk: Histogram, "gen_ai.client.operation.time_to_first_chunk", SECONDS,
        "Time from the start of a streamed model call to its first chunk";
    /// Time between chunks.
    GenAiTimePerOutputChunk: Histogram, "gen_ai.client.operation.time_per_output_chunk", SECONDS,
        "Time between consecutive chunks of a streamed model call, one value per chunk after the first";
    /// Tool durations.
    GenAiExecuteToolDuration: Histogram, "gen_ai.execute_tool.duration", SECONDS,
        "Duration of tool executions (kind = \"tool\" steps), with error.type when they did not succeed";
    /// Agent durations.
    GenAiInvokeAgentDuration: Histogram, "gen_ai.invoke_agent.duration", SECONDS,
        "Duration of agent invocations (kind = \"agent\" steps), with error.type when they did not succeed";
    /// Workflow durations.
    GenAiWorkflowDuration: Histogram, "gen_ai.workflow.duration", SECONDS,
        "Duration of workflows (pipeline runs), with error.type when they did not succeed";
    /// Pipeline runs.
    PipelineRuns: Counter, "flujo_pipeline_runs_total", COUNT,
        "Runs of pipelines, by pipeline and status (ok, error, cancelled)";
    /// Pipeline durations.
    PipelineDuration: Histogram, "flujo_pipeline_duration_seconds", SECONDS,
        "Wall-clock duration of pipeline runs, by pipeline and status";
    /// Hook panics.
    HookPanics: Counter, "flujo_hook_panics_total", COUNT,
        "Hook calls that panicked (the run continued), by hook and phase";
    /// Checklist items.
    ChecklistItems: Counter, "flujo_checklist_items_total", COUNT,
        "Checklist items evaluated, by checklist and result (pass, fail)";
    /// Quality scores.
    Score: Histogram, "flujo_score", None,
        "Quality scores recorded with flujo::quality::record_score, by name";
    /// Validations.
    Validations: Counter, "flujo_validations_total", COUNT,
        "Validations of step outputs, by step, validator and result (pass, fail)";
    /// Spans dropped.
    SpansDropped: Counter, "flujo_telemetry_spans_dropped_total", COUNT,
        "Spans dropped before export, by reason (queue_full, late, export_queue_full, export_failed, too_large, shutdown)";
    /// Spans cut to fit.
    SpansTruncated: Counter, "flujo_telemetry_spans_truncated_total", COUNT,
        "Spans over 2 MiB whose longest text values were cut so that they could be exported";
    /// Spans delivered.
    SpansExported: Counter, "flujo_telemetry_spans_exported_total", COUNT,
        "Spans an exporter delivered";
    /// Spans sent, never confirmed.
    SpansUnconfirmed: Counter, "flujo_telemetry_spans_unconfirmed_total", COUNT,
        "Spans sent whose requests the collector never answered, even when sent again: it may have kept them";
    /// Collector stalls.
    ExportStalls: Counter, "flujo_telemetry_export_stalls_total", COUNT,
        "Times the OTLP collector stopped answering (an export outlasted its timeout); each is also one WARN line, and its end one INFO line";
    /// Failed exports.
    ExportErrors: Counter, "flujo_telemetry_export_errors_total", COUNT,
        "Export requests that failed after the exporter's retries";
    /// Cost records not delivered.
    CostRecordsDropped: Counter, "flujo_cost_records_dropped_total", COUNT,
        "Cost records not delivered to the ledger, by reason (late: the call ended after its telemetry session shut down; ledger_unwritable: a SQLite ledger could not write and its buffer was full; ledger_unreachable: a PostgreSQL ledger could not be reached and its buffer was full; ledger_queue_full: the buffer was full while the ledger wrote; shutdown: not committed when the shutdown's timeout ended)";
    /// Failed ledger writes.
    LedgerWriteErrors: Counter, "flujo_cost_ledger_write_errors_total", COUNT,
        "Failed writes of a batch of cost records to the durable ledger (each is retried)";
}

impl Metric {
    /// The name Prometheus shows (what `metrics-exporter-prometheus` makes of
    /// [`Metric::name`] with its recommended naming): dots become underscores, a histogram in
    /// seconds ends in `_seconds` and a counter in `_total`. A histogram's series add
    /// `_bucket`, `_sum` and `_count` to it.
    pub fn prometheus_name(self) -> String {
        let mut name = self.name().replace('.', "_");
        if self.kind() == MetricKind::Histogram
            && self.unit() == SECONDS
            && !name.ends_with("_seconds")
        {
            name.push_str("_seconds");
        }
        if self.kind() == MetricKind::Counter && !name.ends_with("_total") {
            name.push_str("_total");
        }
        name
    }
}

/// Every span attribute and span event flujo writes, declared once: a constant per name (its
/// doc is what the guide's attribute table says of it) and [`ATTRIBUTES`] for the table.
macro_rules! attributes_table {
    ($($name:ident = $key:literal, $what:literal;)*) => {
        $(
            #[doc = $what]
            pub(crate) const $name: &str = $key;
        )*

        /// Every attribute and event name with what it says, in the order of the guide's table.
        #[cfg(test)]
        pub(crate) const ATTRIBUTES: &[(&str, &str)] = &[$(($key, $what),)*];
    };
}

attributes_table! {
    FLUJO_STEP_NAME = "flujo.step.name", "the step's name (`#[pipeline_step]`), on its span";
    FLUJO_STEP_ATTEMPTS = "flujo.step.attempts", "attempts the step made (1 without retries)";
    FLUJO_STEP_CANCELLED = "flujo.step.cancelled", "the step's future was dropped before it finished";
    FLUJO_RETRY = "flujo.retry", "span event: a failed attempt that is retried";
    FLUJO_RETRY_ATTEMPT = "flujo.retry.attempt", "on `flujo.retry`: the attempt that failed";
    FLUJO_RETRY_REASON = "flujo.retry.reason", "on `flujo.retry`: why the attempt is retried (`retry_after`: the error asked for its wait, a rate limit or an overload; `timeout`; `invalid`: the validator rejected the value; `error`)";
    FLUJO_RETRY_DELAY_MS = "flujo.retry.delay_ms", "on `flujo.retry`: the wait before the next attempt";
    FLUJO_RETRY_HINTED = "flujo.retry.retry_after", "on `flujo.retry`: whether the error's `retry_after` set the wait (not the backoff)";
    FLUJO_RETRY_ERROR = "flujo.retry.error", "on `flujo.retry`: the attempt's error";
    FLUJO_RETRY_STOPPED_BY = "flujo.retry.stopped_by", "why a step with `retries` failed or fell back (`attempts`: all were made; `deadline`: `retry_for_ms` ran out; `not_retryable`: the error said another attempt cannot succeed; `refused`: a budget refused a model call)";
    FLUJO_FALLBACK = "flujo.fallback", "span event: the step ran its fallback";
    FLUJO_FALLBACK_ERROR = "flujo.fallback.error", "on `flujo.fallback`: the primary's error";
    FLUJO_REQUEST_ID = "flujo.request_id", "the run's request id, on its root span";
    FLUJO_PIPELINE_NAME = "flujo.pipeline.name", "the pipeline, on the run's root span";
    FLUJO_PIPELINE_VERSION = "flujo.pipeline.version", "`#[pipeline(version = ...)]`";
    FLUJO_PIPELINE_DESCRIPTION = "flujo.pipeline.description", "the pipeline's doc comment";
    FLUJO_COST_UNPRICED = "flujo.cost.unpriced", "the model call's model has no price (its cost is unknown, not zero)";
    FLUJO_COST_PRICE_VERSION = "flujo.cost.price_version", "the prices the call was priced with (`prices_version`)";
    FLUJO_USAGE_MISSING = "flujo.usage.missing", "a model call whose response (or stream) reported no usage";
    FLUJO_STREAM_CHUNKS = "flujo.stream.chunks", "chunks a streamed call yielded";
    FLUJO_CONTENT_TRUNCATED = "flujo.content.truncated", "captured content was cut at `max_content_bytes`";
    FLUJO_SPAN_TRUNCATED_BYTES = "flujo.span.truncated_bytes", "bytes cut from an exported span over 2 MiB";
    GEN_AI_OPERATION_NAME = "gen_ai.operation.name", "chat, embeddings, execute_tool, invoke_agent, invoke_workflow, ...";
    GEN_AI_PROVIDER_NAME = "gen_ai.provider.name", "the model's provider (`openai`, `gcp.gemini`, ...)";
    GEN_AI_REQUEST_MODEL = "gen_ai.request.model", "the model the call asked for";
    GEN_AI_RESPONSE_MODEL = "gen_ai.response.model", "the model that answered";
    GEN_AI_RESPONSE_ID = "gen_ai.response.id", "the provider's id of the response";
    GEN_AI_RESPONSE_FINISH_REASONS = "gen_ai.response.finish_reasons", "why the model stopped";
    GEN_AI_REQUEST_STREAM = "gen_ai.request.stream", "the call was streamed";
    GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK = "gen_ai.response.time_to_first_chunk", "seconds to a streamed call's first chunk";
    GEN_AI_USAGE_INPUT_TOKENS = "gen_ai.usage.input_tokens", "input tokens, cached ones included";
    GEN_AI_USAGE_OUTPUT_TOKENS = "gen_ai.usage.output_tokens", "output tokens, reasoning included";
    GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS = "gen_ai.usage.cache_read.input_tokens", "input tokens read from the prompt cache";
    GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS = "gen_ai.usage.cache_creation.input_tokens", "input tokens written to the prompt cache";
    GEN_AI_USAGE_REASONING_OUTPUT_TOKENS = "gen_ai.usage.reasoning.output_tokens", "output tokens spent on reasoning";
    GEN_AI_USAGE_COST = "gen_ai.usage.cost", "the call's cost in USD (Logfire's name)";
    GEN_AI_USAGE_COST_AMOUNT = "gen_ai.usage.cost.amount", "the call's cost (the current draft's name)";
    GEN_AI_USAGE_COST_CURRENCY = "gen_ai.usage.cost.currency", "`USD`";
    GEN_AI_TOKEN_TYPE = "gen_ai.token.type", "metric label: input or output";
    GEN_AI_TOKEN_MODALITY = "gen_ai.token.modality", "metric label: the tokens' modality";
    GEN_AI_CONVERSATION_ID = "gen_ai.conversation.id", "the run's conversation (`RunOptions::conversation_id`)";
    GEN_AI_INPUT_MESSAGES = "gen_ai.input.messages", "captured input messages (opt-in)";
    GEN_AI_OUTPUT_MESSAGES = "gen_ai.output.messages", "captured output messages (opt-in)";
    GEN_AI_SYSTEM_INSTRUCTIONS = "gen_ai.system_instructions", "captured system instructions (opt-in)";
    GEN_AI_TOOL_NAME = "gen_ai.tool.name", "a `kind = \"tool\"` step's tool";
    GEN_AI_TOOL_TYPE = "gen_ai.tool.type", "`function`";
    GEN_AI_AGENT_NAME = "gen_ai.agent.name", "a `kind = \"agent\"` step's agent";
    GEN_AI_WORKFLOW_NAME = "gen_ai.workflow.name", "the pipeline a run runs";
    GEN_AI_EVALUATION_NAME = "gen_ai.evaluation.name", "a quality score or checklist's name";
    GEN_AI_EVALUATION_SCORE_VALUE = "gen_ai.evaluation.score.value", "a quality score";
    GEN_AI_EVALUATION_SCORE_LABEL = "gen_ai.evaluation.score.label", "a quality score's label";
    GEN_AI_EVALUATION_RESULT = "gen_ai.evaluation.result", "span event: an evaluation's result";
    GEN_AI_EVALUATION_EXPLANATION = "gen_ai.evaluation.explanation", "an evaluation's explanation";
    ERROR_TYPE = "error.type", "the error's type, when the call failed";
    CODE_FUNCTION_NAME = "code.function.name", "the instrumented function, `module::function`";
    SESSION_ID = "session.id", "the conversation, as Langfuse and OpenInference group traces";
    OPENINFERENCE_SPAN_KIND = "openinference.span.kind", "CHAIN, LLM, TOOL, AGENT";
    OPENINFERENCE_PROJECT_NAME = "openinference.project.name", "resource: the Phoenix project";
    LLM_MODEL_NAME = "llm.model_name", "the model";
    LLM_PROVIDER = "llm.provider", "the provider, in OpenInference's spelling";
    LLM_TOKEN_COUNT_PROMPT = "llm.token_count.prompt", "input tokens";
    LLM_TOKEN_COUNT_COMPLETION = "llm.token_count.completion", "output tokens";
    LLM_TOKEN_COUNT_TOTAL = "llm.token_count.total", "input plus output tokens";
    LLM_TOKEN_COUNT_PROMPT_CACHE_READ = "llm.token_count.prompt_details.cache_read", "input tokens read from the cache";
    LLM_TOKEN_COUNT_PROMPT_CACHE_WRITE = "llm.token_count.prompt_details.cache_write", "input tokens written to the cache";
    LLM_TOKEN_COUNT_COMPLETION_REASONING = "llm.token_count.completion_details.reasoning", "reasoning tokens";
    LLM_COST_PROMPT = "llm.cost.prompt", "the cost of the input";
    LLM_COST_COMPLETION = "llm.cost.completion", "the cost of the output";
    LLM_COST_TOTAL = "llm.cost.total", "the call's cost";
    TOOL_NAME = "tool.name", "a tool step's tool (OpenInference)";
    AGENT_NAME = "agent.name", "an agent step's agent (OpenInference)";
}

/// The guide's table of every metric (`docs/guide/operations.md`), from [`Metric::ALL`].
#[cfg(test)]
fn metrics_table() -> String {
    let mut table = String::from(
        "\n| name (OTLP) | Prometheus | kind | unit | what it counts or measures |\n|---|---|---|---|---|\n",
    );
    for &metric in Metric::ALL {
        let kind = match metric.kind() {
            MetricKind::Counter => "counter",
            MetricKind::Histogram => "histogram",
        };
        table.push_str(&format!(
            "| `{}` | `{}` | {kind} | {} | {} |\n",
            metric.name(),
            metric.prometheus_name(),
            metric
                .unit()
                .map_or_else(String::new, |unit| format!("`{unit}`")),
            metric.description().replace('|', "\\|"),
        ));
    }
    table
}

/// The guide's table of every span attribute and event (`docs/guide/export.md`).
#[cfg(test)]
fn attributes_table() -> String {
    let mut table = String::from("\n| name | what it says |\n|---|---|\n");
    for (key, what) in ATTRIBUTES {
        table.push_str(&format!("| `{key}` | {} |\n", what.replace('|', "\\|")));
    }
    table
}

/// A generated table of a guide page (between `<!-- marker:begin -->` and `<!-- marker:end -->`)
/// is `generated`; with the variable `update` set, the test writes it instead of failing.
#[cfg(test)]
pub(crate) fn keep_equal(page: &str, marker: &str, generated: &str, update: &str) {
    let path = format!("{}/../docs/guide/{page}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap();
    let (begin, end) = (
        format!("<!-- {marker}:begin -->"),
        format!("<!-- {marker}:end -->"),
    );
    let (before, rest) = text
        .split_once(&begin)
        .expect("the guide has the begin marker");
    let (current, after) = rest.split_once(&end).expect("the guide has the end marker");
    if current != generated {
        if std::env::var_os(update).is_some() {
            std::fs::write(&path, format!("{before}{begin}{generated}{end}{after}")).unwrap();
        } else {
            panic!(
                "docs/guide/{page}'s {marker} table differs from its declarations: run \
                 `{update}=1 cargo test -p flujo-runtime --lib table` and review the diff"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_guides_attribute_table_is_the_declarations() {
        keep_equal(
            "export.md",
            "attributes",
            &attributes_table(),
            "UPDATE_ATTRIBUTES_TABLE",
        );
    }

    #[test]
    fn every_attribute_has_one_name() {
        let mut keys: Vec<&str> = ATTRIBUTES.iter().map(|(key, _)| *key).collect();
        keys.sort_unstable();
        let before = keys.len();
        keys.dedup();
        assert_eq!(keys.len(), before);
    }

    #[test]
    fn the_guides_metrics_table_is_the_declarations() {
        keep_equal(
            "operations.md",
            "metrics",
            &metrics_table(),
            "UPDATE_METRICS_TABLE",
        );
    }

    #[test]
    fn every_metric_has_one_name() {
        let mut names: Vec<&str> = Metric::ALL.iter().map(|m| m.name()).collect();
        names.sort_unstable();
        let before = names.len();
        names.dedup();
        assert_eq!(names.len(), before);
    }
}
