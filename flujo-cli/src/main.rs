//! `flujo cost --ledger PATH|URL --from DATE --to DATE [--group-by ...] [--format ...]`: the
//! cost of the model calls a flujo application recorded in its durable ledger
//! (`FLUJO_COST_LEDGER`: a SQLite file, or a PostgreSQL database shared by a fleet), grouped
//! by model, step, pipeline, day or month, or as a self-contained HTML page. `flujo prices`:
//! the price data flujo uses (list, look up a model, check a data file). `flujo rules`: the
//! Prometheus alert and recording rules for flujo's metrics, with your thresholds.

#![forbid(unsafe_code)]

use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use flujo_runtime::Usd;
use flujo_runtime::cost::{CostGroup, CostLedger, CostReport, GroupBy, ReportDate};

mod html;
mod prices;
mod rules;

#[derive(Parser)]
#[command(name = "flujo", version, about = "flujo's command-line tools")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Cost report over a date range (UTC days, inclusive) of a cost ledger.
    Cost {
        /// The cost ledger, as the application's FLUJO_COST_LEDGER names it: a SQLite file, or
        /// a postgres://user:password@host:port/database URL (the password is never printed).
        /// Default: FLUJO_COST_LEDGER.
        #[arg(long, env = "FLUJO_COST_LEDGER", hide_env_values = true)]
        ledger: PathBuf,
        /// First day, YYYY-MM-DD.
        #[arg(long)]
        from: String,
        /// Last day, YYYY-MM-DD (inclusive).
        #[arg(long)]
        to: String,
        /// How to group the calls.
        #[arg(long, value_enum, default_value_t = Group::Model)]
        group_by: Group,
        /// Output format.
        #[arg(long, value_enum, default_value_t = Format::Table)]
        format: Format,
        /// Decimals of the amounts in the table, 0 to 9 (default: cents from one cent up, two
        /// significant digits below, so a cheap call never reads $0.00). JSON and CSV always
        /// keep every nano-dollar.
        #[arg(long, value_parser = clap::value_parser!(u8).range(0..=9))]
        precision: Option<u8>,
        /// Write the report to this file instead of standard output.
        #[arg(short, long)]
        output: Option<PathBuf>,
    },
    /// Prometheus rules for flujo's metrics: alerts with your thresholds, and the recording
    /// rules they read (deploy/prometheus/ holds them with the defaults).
    Rules {
        #[command(subcommand)]
        command: rules::RulesCommand,
    },
    /// The price data flujo uses (genai-prices): list it, look up a model, check a data file.
    Prices {
        #[command(subcommand)]
        command: prices::PricesCommand,
    },
    /// Every setting an application using flujo reads: its `TelemetryConfig` field, its
    /// environment variables in precedence order, what it accepts and its default (a
    /// markdown table).
    Settings,
}

#[derive(Clone, Copy, ValueEnum)]
enum Group {
    Model,
    Step,
    Pipeline,
    Day,
    Month,
}

#[derive(Clone, Copy, ValueEnum)]
enum Format {
    Table,
    Json,
    Csv,
    /// One self-contained page (inline SVG charts, no network); `--group-by` does not apply.
    Html,
}

fn main() -> ExitCode {
    let (ledger, from, to, group_by, format, precision, output) = match Cli::parse().command {
        Command::Cost {
            ledger,
            from,
            to,
            group_by,
            format,
            precision,
            output,
        } => (ledger, from, to, group_by, format, precision, output),
        Command::Rules { command } => {
            print!("{}", rules::run(command));
            return ExitCode::SUCCESS;
        }
        Command::Settings => {
            print!("{}", flujo_runtime::__private::settings_table());
            return ExitCode::SUCCESS;
        }
        Command::Prices { command } => {
            return match prices::run(command) {
                Ok(out) => {
                    print!("{out}");
                    ExitCode::SUCCESS
                }
                Err(error) => {
                    eprintln!("flujo prices: {error}");
                    ExitCode::FAILURE
                }
            };
        }
    };
    // Errors name the flags as the user typed them.
    let report = from.as_str().report_date("--from").and_then(|from| {
        let to = to.as_str().report_date("--to")?;
        CostLedger::open(&ledger)?.report(from, to)
    });
    let text = report.map(|report| render(&report, group_by, format, precision));
    match text
        .map_err(|e| e.to_string())
        .and_then(|text| match &output {
            Some(path) => std::fs::write(path, text)
                .map_err(|e| format!("cannot write the report to {}: {e}", path.display())),
            None => {
                print!("{text}");
                Ok(())
            }
        }) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("flujo cost: {error}");
            ExitCode::FAILURE
        }
    }
}

fn group_by(group: Group) -> GroupBy {
    match group {
        Group::Model => GroupBy::Model,
        Group::Step => GroupBy::Step,
        Group::Pipeline => GroupBy::Pipeline,
        Group::Day => GroupBy::Day,
        Group::Month => GroupBy::Month,
    }
}

fn header(group: Group) -> &'static str {
    match group {
        Group::Model => "model",
        Group::Step => "step",
        Group::Pipeline => "pipeline",
        Group::Day => "day",
        Group::Month => "month",
    }
}

fn render(report: &CostReport, group: Group, format: Format, precision: Option<u8>) -> String {
    let rows = report.groups(group_by(group));
    let key = header(group);
    let mut out = String::new();
    match format {
        Format::Table => {
            let width = rows
                .keys()
                .map(String::len)
                .chain([key.len(), 5])
                .max()
                .unwrap_or(5);
            let _ = writeln!(
                out,
                "{key:<width$}  {:>8}  {:>12}  {:>12}  {:>12}  {:>12}",
                "requests", "input", "cached", "output", "cost"
            );
            for (name, row) in rows {
                let _ = writeln!(out, "{name:<width$}  {}", table_cells(row, precision));
            }
            let _ = writeln!(
                out,
                "{:<width$}  {}",
                "total",
                table_cells(&report.totals(), precision)
            );
            let unpriced: u64 = report.unpriced_requests.values().sum();
            if unpriced > 0 {
                let _ = writeln!(
                    out,
                    "{unpriced} {} had no price and {} not in the cost (models: {})",
                    if unpriced == 1 { "request" } else { "requests" },
                    if unpriced == 1 { "is" } else { "are" },
                    report
                        .unpriced_requests
                        .keys()
                        .cloned()
                        .collect::<Vec<_>>()
                        .join(", ")
                );
            }
        }
        Format::Csv => {
            let _ = writeln!(
                out,
                "{key},requests,unpriced_requests,input_tokens,cache_read_input_tokens,cache_write_input_tokens,output_tokens,reasoning_output_tokens,cost_usd"
            );
            for (name, row) in rows {
                let t = row.tokens;
                let _ = writeln!(
                    out,
                    "{},{},{},{},{},{},{},{},{}",
                    csv_field(name),
                    row.requests,
                    row.unpriced_requests,
                    t.input,
                    t.cache_read_input,
                    t.cache_write_input,
                    t.output,
                    t.reasoning_output,
                    exact(row).unwrap_or_default()
                );
            }
        }
        Format::Html => out = html::render(report),
        Format::Json => {
            let groups: Vec<serde_json::Value> = rows
                .iter()
                .map(|(name, row)| {
                    serde_json::json!({
                        key: name,
                        "requests": row.requests,
                        "unpriced_requests": row.unpriced_requests,
                        "input_tokens": row.tokens.input,
                        "cache_read_input_tokens": row.tokens.cache_read_input,
                        "cache_write_input_tokens": row.tokens.cache_write_input,
                        "output_tokens": row.tokens.output,
                        "reasoning_output_tokens": row.tokens.reasoning_output,
                        "cost_usd": exact(row),
                        "cost_nano_usd": row.known_cost().map(Usd::nanos),
                    })
                })
                .collect();
            let totals = report.totals();
            let document = serde_json::json!({
                "from": report.start_date.map(|d| d.to_string()),
                "to": report.end_date.map(|d| d.to_string()),
                "group_by": key,
                "total_cost_usd": exact(&totals),
                "total_cost_nano_usd": totals.known_cost().map(Usd::nanos),
                "requests": report.requests,
                "unpriced_requests": totals.unpriced_requests,
                "groups": groups,
            });
            let _ = writeln!(out, "{document:#}");
        }
    }
    out
}

fn table_cells(row: &CostGroup, precision: Option<u8>) -> String {
    let cost = row.cost_text(precision);
    format!(
        "{:>8}  {:>12}  {:>12}  {:>12}  {cost:>12}",
        row.requests, row.tokens.input, row.tokens.cache_read_input, row.tokens.output,
    )
}

/// The exact cost as a decimal string (machine formats keep every nano-dollar); `None` when no
/// call of the row was priced (unknown, not 0).
fn exact(row: &CostGroup) -> Option<String> {
    row.known_cost()
        .map(|cost| format!("{cost:.9}").trim_start_matches('$').to_owned())
}

fn csv_field(text: &str) -> String {
    if text.contains([',', '"', '\n']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_owned()
    }
}
