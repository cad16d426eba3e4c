//! `flujo rules alerts|recording`: the Prometheus rules for flujo's metrics, with the user's
//! thresholds. `deploy/prometheus/` holds their output with the defaults (a test keeps them
//! equal).

use std::fmt::Write as _;

use clap::{Args, Subcommand};
use flujo_runtime::export::Metric;

#[derive(Subcommand)]
pub enum RulesCommand {
    /// Alert rules (deploy/prometheus/flujo-alerts.yml), with your thresholds.
    Alerts(Thresholds),
    /// Recording rules (deploy/prometheus/flujo-recording.yml), which the alerts and the
    /// dashboard read.
    Recording,
}

/// What the alerts fire on. Every default is documented in the README's "Operations".
#[derive(Args, Clone, Debug, PartialEq)]
pub struct Thresholds {
    /// Fleet spend per day (USD) that the current burn rate must not project past.
    #[arg(long, default_value_t = 100.0, value_parser = non_negative)]
    pub daily_budget_usd: f64,
    /// Spend per day (USD) of one pipeline that its burn rate must not project past.
    #[arg(long, default_value_t = 25.0, value_parser = non_negative)]
    pub pipeline_daily_budget_usd: f64,
    /// How many times its own average of the last day a model's cost or token rate may reach
    /// before it is a spike.
    #[arg(long, default_value_t = 3.0, value_parser = non_negative)]
    pub spike_factor: f64,
    /// The least spend per hour (USD) of a model that a spike alert considers (below it,
    /// noise).
    #[arg(long, default_value_t = 0.5, value_parser = non_negative)]
    pub spike_min_usd_per_hour: f64,
    /// Share of a step's calls that may fail.
    #[arg(long, default_value_t = 0.05, value_parser = non_negative)]
    pub step_error_ratio: f64,
    /// p95 duration of a step, in seconds.
    #[arg(long, default_value_t = 30.0, value_parser = non_negative)]
    pub step_p95_seconds: f64,
    /// p95 duration of a model call, in seconds.
    #[arg(long, default_value_t = 20.0, value_parser = non_negative)]
    pub model_p95_seconds: f64,
    /// Retries per call of a step.
    #[arg(long, default_value_t = 0.25, value_parser = non_negative)]
    pub retry_ratio: f64,
    /// Retries per call of a step that waited a wait its provider asked for (a rate limit).
    #[arg(long, default_value_t = 0.1, value_parser = non_negative)]
    pub rate_limited_ratio: f64,
    /// Share of a step's calls that end in its fallback.
    #[arg(long, default_value_t = 0.1, value_parser = non_negative)]
    pub fallback_ratio: f64,
    /// The jobs (a regular expression) whose scrape targets are flujo applications.
    #[arg(long, default_value = ".+")]
    pub job_regex: String,
}

fn non_negative(text: &str) -> Result<f64, String> {
    match text.trim().parse::<f64>() {
        Ok(value) if value.is_finite() && value >= 0.0 => Ok(value),
        _ => Err(format!("{text:?} is not a non-negative number")),
    }
}

impl Default for Thresholds {
    fn default() -> Thresholds {
        Thresholds {
            daily_budget_usd: 100.0,
            pipeline_daily_budget_usd: 25.0,
            spike_factor: 3.0,
            spike_min_usd_per_hour: 0.5,
            step_error_ratio: 0.05,
            step_p95_seconds: 30.0,
            model_p95_seconds: 20.0,
            retry_ratio: 0.25,
            rate_limited_ratio: 0.1,
            fallback_ratio: 0.1,
            job_regex: ".+".to_owned(),
        }
    }
}

pub fn run(command: RulesCommand) -> String {
    match command {
        RulesCommand::Alerts(thresholds) => alerts(&thresholds),
        RulesCommand::Recording => recording(),
    }
}

/// `text` with each `$Name` (a [`Metric`] variant, as its `Debug` spells it) replaced by the
/// metric's name as Prometheus shows it: the rules never spell a metric name of their own.
fn with_metric_names(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        let end = after
            .find(|c: char| !c.is_ascii_alphanumeric())
            .unwrap_or(after.len());
        let metric = Metric::ALL
            .iter()
            .find(|metric| format!("{metric:?}") == after[..end]);
        match metric {
            Some(metric) => out.push_str(&metric.prometheus_name()),
            None => out.push_str(&rest[at..at + 1 + end]),
        }
        rest = &after[end..];
    }
    out.push_str(rest);
    out
}

/// One recording rule: a name and what it records.
struct Recorded {
    record: &'static str,
    expr: &'static str,
}

const RECORDED: &[Recorded] = &[
    Recorded {
        record: "flujo:cost_usd:rate5m",
        expr: "sum by (job, pipeline, step, model) (rate($CostUsd[5m]))",
    },
    Recorded {
        record: "flujo:model_cost_usd:rate5m",
        expr: "sum by (job, model) (rate($CostUsd[5m]))",
    },
    Recorded {
        record: "flujo:model_tokens:rate5m",
        expr: "sum by (job, model) (rate($Tokens{token_type=~\"input|output\"}[5m]))",
    },
    Recorded {
        record: "flujo:cost_usd_per_day",
        expr: "sum by (job) (increase($CostUsd[1d]))",
    },
    Recorded {
        record: "flujo:pipeline_cost_usd_per_day",
        expr: "sum by (job, pipeline) (increase($CostUsd[1d]))",
    },
    Recorded {
        record: "flujo:cost_per_request_usd:rate5m",
        expr: "sum by (job, model) (rate($CostUsd[5m])) / sum by (job, model) \
               (rate($ModelRequests{status=\"ok\"}[5m]))",
    },
    Recorded {
        record: "flujo:cost_per_run_usd:rate5m",
        expr: "sum by (job, pipeline) (rate($CostUsd[5m])) / sum by (job, pipeline) \
               (rate($PipelineRuns[5m]))",
    },
    Recorded {
        record: "flujo:step_calls:rate5m",
        expr: "sum by (job, step) (rate($StepCalls[5m]))",
    },
    Recorded {
        record: "flujo:step_error_ratio:rate5m",
        expr: "sum by (job, step) (rate($StepCalls{status=\"error\"}[5m])) / sum by \
               (job, step) (rate($StepCalls[5m]))",
    },
    Recorded {
        record: "flujo:step_duration_seconds:p95_5m",
        expr: "histogram_quantile(0.95, sum by (job, step, le) \
               (rate($StepDuration_bucket[5m])))",
    },
    Recorded {
        record: "flujo:model_duration_seconds:p95_5m",
        expr: "histogram_quantile(0.95, sum by (job, gen_ai_request_model, le) \
               (rate($GenAiOperationDuration_bucket[5m])))",
    },
];

/// The recording rules, as YAML.
pub fn recording() -> String {
    let mut yaml = String::from(
        "# Recording rules for flujo's metrics: the expensive expressions, evaluated once for\n\
         # the alerts (flujo-alerts.yml) and the dashboard. Generated by `flujo rules recording`.\n\
         groups:\n  - name: flujo-recording\n    rules:\n",
    );
    for rule in RECORDED {
        let _ = writeln!(
            yaml,
            "      - record: {}\n        expr: {}",
            rule.record,
            block(rule.expr, 10)
        );
    }
    with_metric_names(&yaml)
}

/// One alert rule.
struct Alert {
    name: &'static str,
    expr: String,
    for_: &'static str,
    severity: &'static str,
    summary: &'static str,
    description: &'static str,
    runbook: &'static str,
}

/// A number as PromQL and YAML write it.
fn number(value: f64) -> String {
    let text = format!("{value}");
    if text.contains('e') {
        format!("{value:.12}")
    } else {
        text
    }
}

/// A model's rate (the recording rule `rate`) far above its own average of the last day,
/// for a model that spends enough to matter.
fn spike(
    name: &'static str,
    rate: &str,
    t: &Thresholds,
    summary: &'static str,
    description: &'static str,
    runbook: &'static str,
) -> Alert {
    Alert {
        name,
        expr: format!(
            "{rate} > {factor} * avg_over_time({rate}[1d])\n\
             and flujo:model_cost_usd:rate5m * 3600 > {floor}",
            factor = number(t.spike_factor),
            floor = number(t.spike_min_usd_per_hour)
        ),
        for_: "10m",
        severity: "warning",
        summary,
        description,
        runbook,
    }
}

fn alert_rules(t: &Thresholds) -> Vec<Alert> {
    let job = &t.job_regex;
    vec![
        Alert {
            name: "FlujoSpendBurnRateHigh",
            expr: format!(
                "sum by (job) (rate($CostUsd[1h])) * 86400 > {budget}\n\
                 and sum by (job) (rate($CostUsd[5m])) * 86400 > {budget}",
                budget = number(t.daily_budget_usd)
            ),
            for_: "5m",
            severity: "critical",
            summary: "{{ $labels.job }} is spending faster than its daily budget",
            description: "At the pace of the last hour (and still of the last 5 minutes) the fleet's model calls would cost more than the daily budget.",
            runbook: "Find what spends on the dashboard's cost by model, step and pipeline panels; check for a retry loop (retries panel) or a model change. Cap it at once with FLUJO_DAILY_COST_LIMIT_USD (with a PostgreSQL ledger the limit is the fleet's).",
        },
        Alert {
            name: "FlujoPipelineSpendBurnRateHigh",
            expr: format!(
                "sum by (job, pipeline) (rate($CostUsd[1h])) * 86400 > {budget}\n\
                 and sum by (job, pipeline) (rate($CostUsd[5m])) * 86400 > {budget}",
                budget = number(t.pipeline_daily_budget_usd)
            ),
            for_: "5m",
            severity: "warning",
            summary: "Pipeline {{ $labels.pipeline }} of {{ $labels.job }} is spending faster than its daily budget",
            description: "One pipeline's model calls, at the pace of the last hour, would cost more than its daily budget.",
            runbook: "Open the dashboard filtered to this pipeline: cost per run and cost by step show which step grew. Per-run limits (UsageLimits) bound a single run.",
        },
        spike(
            "FlujoModelCostSpike",
            "flujo:model_cost_usd:rate5m",
            t,
            "Cost of {{ $labels.model }} in {{ $labels.job }} is far above its own last day",
            "A model's spend rate left its own baseline (its average over the last day).",
            "Compare tokens by type for the model (a prompt that grew, a cache that stopped hitting) and requests per second (traffic, a retry storm).",
        ),
        spike(
            "FlujoModelTokenSpike",
            "flujo:model_tokens:rate5m",
            t,
            "Tokens of {{ $labels.model }} in {{ $labels.job }} are far above their own last day",
            "A model's input and output tokens per second left their own baseline.",
            "Look at the tokens panel by type: input growing points at prompts or context, output at generation settings; cache reads falling at a cache that stopped hitting.",
        ),
        Alert {
            name: "FlujoStepErrorRatioHigh",
            expr: format!(
                "flujo:step_error_ratio:rate5m > {}",
                number(t.step_error_ratio)
            ),
            for_: "10m",
            severity: "warning",
            summary: "Step {{ $labels.step }} of {{ $labels.job }} fails too often",
            description: "The share of a step's calls that end in an error is above the threshold.",
            runbook: "The step's error spans carry error.type and the message; the logs have one ERROR line per failure. Retries and fallbacks hide transient failures: a high ratio is after them.",
        },
        Alert {
            name: "FlujoStepLatencyHigh",
            expr: format!(
                "flujo:step_duration_seconds:p95_5m > {}",
                number(t.step_p95_seconds)
            ),
            for_: "10m",
            severity: "warning",
            summary: "Step {{ $labels.step }} of {{ $labels.job }} is slow (p95)",
            description: "The 95th percentile duration of a step is above the threshold.",
            runbook: "Check the model latency and time to first chunk panels (a slow provider), retries (each attempt adds its backoff), and the step's child spans in traces.",
        },
        Alert {
            name: "FlujoModelLatencyHigh",
            expr: format!(
                "flujo:model_duration_seconds:p95_5m > {}",
                number(t.model_p95_seconds)
            ),
            for_: "10m",
            severity: "warning",
            summary: "Calls to {{ $labels.gen_ai_request_model }} from {{ $labels.job }} are slow (p95)",
            description: "The 95th percentile duration of a model's calls is above the threshold.",
            runbook: "Check the provider's status page; compare output tokens per call (longer answers take longer); a timeout_ms and a fallback to a faster model bound it.",
        },
        Alert {
            name: "FlujoRetriesSurging",
            expr: format!(
                "sum by (job, step) (rate($StepRetries[5m])) / flujo:step_calls:rate5m > {}",
                number(t.retry_ratio)
            ),
            for_: "10m",
            severity: "warning",
            summary: "Step {{ $labels.step }} of {{ $labels.job }} retries too often",
            description: "Retries per call of a step are above the threshold: a provider rate-limiting or failing.",
            runbook: "The reason label says why (retry_after: the provider asked for a wait; timeout; invalid: the validator rejected the answer; error), the flujo.retry span events which error; a rate limit wants fewer concurrent runs, an error that cannot succeed wants a RetryAdvice or retry_if that stops retrying it.",
        },
        Alert {
            name: "FlujoRateLimited",
            // `retry_after`: the reason of a retry whose wait the error asked for
            // (`flujo.retry.reason`).
            expr: format!(
                "sum by (job, step) (rate($StepRetries{{reason=\"retry_after\"}}[5m])) / flujo:step_calls:rate5m > {}",
                number(t.rate_limited_ratio)
            ),
            for_: "10m",
            severity: "warning",
            summary: "Step {{ $labels.step }} of {{ $labels.job }} is rate-limited by its provider",
            description: "Calls of a step wait, more often than the threshold, a wait their provider asked for (Retry-After).",
            runbook: "Each of these retries waited what the provider asked (flujo.retry.delay_ms): request a higher rate limit, lower concurrency or spread the load; retry_for_ms bounds how long a request may spend waiting.",
        },
        Alert {
            name: "FlujoFallbacksSurging",
            expr: format!(
                "sum by (job, step) (rate($StepFallbacks[5m])) / flujo:step_calls:rate5m > {}",
                number(t.fallback_ratio)
            ),
            for_: "10m",
            severity: "warning",
            summary: "Step {{ $labels.step }} of {{ $labels.job }} ends in its fallback too often",
            description: "A step's primary path fails (or times out) often enough that its fallback serves a large share of calls.",
            runbook: "The flujo.fallback span events carry the primary's error; timeouts are in $StepTimeouts.",
        },
        Alert {
            name: "FlujoBudgetRefusals",
            expr: "sum by (job, limit) (increase($BudgetExceeded[10m])) > 0".to_owned(),
            for_: "0m",
            severity: "warning",
            summary: "Model calls refused by the {{ $labels.limit }} limit",
            description: "A usage limit refused model calls in the last 10 minutes: users got errors instead of answers.",
            runbook: "daily_cost or monthly_cost: the budget is spent (raise FLUJO_DAILY_COST_LIMIT_USD or wait for UTC midnight); total_cost or total_tokens: runs hit their UsageLimits; ledger_unreachable: the PostgreSQL ledger cannot be read and FLUJO_COST_LEDGER_UNREACHABLE=closed; unpriced_model: strict pricing and a model without a price.",
        },
        Alert {
            name: "FlujoUnpricedModelCalls",
            expr: "sum by (job, model) (increase($UnpricedCalls[30m])) > 0".to_owned(),
            for_: "0m",
            severity: "warning",
            summary: "Calls to {{ $labels.model }} have no price",
            description: "Their cost is unknown (never counted as $0): reports and budgets miss it.",
            runbook: "Run `flujo prices lookup <model>`; add the model to your price file (FLUJO_PRICING_FILE) or update flujo's genai-prices data.",
        },
        Alert {
            name: "FlujoTelemetrySpansDropped",
            expr: "sum by (job, reason) (rate($SpansDropped[5m])) > 0".to_owned(),
            for_: "5m",
            severity: "warning",
            summary: "{{ $labels.job }} drops spans ({{ $labels.reason }})",
            description: "Spans are dropped before they reach the collector.",
            runbook: "queue_full or export_queue_full: the collector is slower than the application (raise OTEL_BSP_MAX_QUEUE_SIZE, or fix the collector); export_failed: see the export errors alert; late: calls that ended after shutdown.",
        },
        Alert {
            name: "FlujoCostRecordsDropped",
            expr: "sum by (job, reason) (increase($CostRecordsDropped[10m])) > 0".to_owned(),
            for_: "0m",
            severity: "critical",
            summary: "{{ $labels.job }} drops cost records ({{ $labels.reason }})",
            description: "Cost records did not reach the durable ledger: reports miss them (budgets and metrics counted them).",
            runbook: "ledger_unreachable: the PostgreSQL ledger is down and its buffer is full (FLUJO_COST_LEDGER_BUFFER); ledger_unwritable: the SQLite file's disk is full or read-only; see the ledger's ERROR lines.",
        },
        Alert {
            name: "FlujoExportErrors",
            expr: "sum by (job) (rate($ExportErrors[5m])) > 0".to_owned(),
            for_: "10m",
            severity: "warning",
            summary: "{{ $labels.job }} fails to export telemetry",
            description: "OTLP exports fail (refused, unreachable, or rejected by the collector).",
            runbook: "Check OTEL_EXPORTER_OTLP_ENDPOINT and that the collector listens; the WARN lines name the error.",
        },
        Alert {
            name: "FlujoExporterStalled",
            expr: "sum by (job) (increase($ExportStalls[10m])) > 0\n\
                   or (sum by (job) (rate($StepCalls[5m])) > 0\n\
                   and sum by (job) (rate($SpansExported[5m])) == 0)"
                .to_owned(),
            for_: "5m",
            severity: "warning",
            summary: "{{ $labels.job }}'s exporter is stalled",
            description: "The collector stopped answering, or steps run while no span is exported.",
            runbook: "The collector accepts connections but does not answer (overloaded, paused): check its health and memory; spans wait in the queue until it is full.",
        },
        Alert {
            name: "FlujoCostLedgerUnhealthy",
            expr: "sum by (job) (increase($LedgerWriteErrors[10m])) > 0\n\
                   or sum by (job) (increase($BudgetUnverified[10m])) > 0"
                .to_owned(),
            for_: "5m",
            severity: "warning",
            summary: "{{ $labels.job }} cannot write its cost ledger, or read the fleet's spending",
            description: "Writes to the durable ledger fail (retried; records wait in the buffer), or calls were admitted without the fleet's spending (fail open).",
            runbook: "Check the ledger's database or disk; the ledger logs one ERROR per outage and one INFO when it writes again.",
        },
        Alert {
            name: "FlujoTargetDown",
            expr: format!(
                "up{{job=~\"{job}\"}} == 0\n\
                 and on (job, instance) count by (job, instance) (last_over_time($StepCalls[1d]))"
            ),
            for_: "5m",
            severity: "critical",
            summary: "{{ $labels.instance }} of {{ $labels.job }} is down",
            description: "Prometheus cannot scrape a target that exported flujo metrics in the last day.",
            runbook: "Is the process up, and PROMETHEUS_EXPORT_ENABLED set with its port reachable from Prometheus?",
        },
    ]
}

/// `text` as a YAML value: one line as it is, several as a block at `indent`.
fn block(text: &str, indent: usize) -> String {
    if !text.contains('\n') && !text.contains(": ") && !text.starts_with(['{', '[', '"', '\'']) {
        return text.to_owned();
    }
    let pad = " ".repeat(indent);
    let mut out = String::from("|-\n");
    for (i, line) in text.lines().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        out.push_str(&pad);
        out.push_str(line.trim_start());
    }
    out
}

/// A double-quoted YAML string.
fn quoted(text: &str) -> String {
    format!("\"{}\"", text.replace('\\', "\\\\").replace('"', "\\\""))
}

/// The alert rules with `thresholds`, as YAML.
pub fn alerts(thresholds: &Thresholds) -> String {
    let mut yaml = String::from(
        "# Alert rules for flujo's metrics (load with flujo-recording.yml, which they read).\n\
         # Generated by `flujo rules alerts`; pass your thresholds to it (`--help` lists them).\n\
         groups:\n  - name: flujo-alerts\n    rules:\n",
    );
    for alert in alert_rules(thresholds) {
        let _ = write!(
            yaml,
            "      - alert: {}\n        expr: {}\n",
            alert.name,
            block(&alert.expr, 10)
        );
        if alert.for_ != "0m" {
            let _ = writeln!(yaml, "        for: {}", alert.for_);
        }
        let _ = write!(
            yaml,
            "        labels:\n          severity: {}\n        annotations:\n          \
             summary: {}\n          description: {}\n          runbook: {}\n",
            alert.severity,
            quoted(alert.summary),
            quoted(alert.description),
            quoted(alert.runbook),
        );
    }
    with_metric_names(&yaml)
}
