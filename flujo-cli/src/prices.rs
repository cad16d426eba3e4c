//! `flujo prices list | lookup MODEL | check FILE`: the `genai-prices` data flujo prices calls
//! with (the shipped data, or a newer `data.json` given with `--data`).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use clap::Subcommand;
use flujo_pricing::genai::{Catalog, Prices, Unit, UnitPrice};

#[derive(Subcommand)]
pub(crate) enum PricesCommand {
    /// Every priced model, a line each: provider and model id.
    List {
        /// Only this provider's models (its id, e.g. `openai`, `aws`, `google`).
        #[arg(long)]
        provider: Option<String>,
        /// A `genai-prices` data file instead of the shipped data.
        #[arg(long)]
        data: Option<PathBuf>,
    },
    /// The prices flujo uses now for a model, named as an application names it.
    Lookup {
        /// The model, e.g. `gpt-4o-mini`, `us.anthropic.claude-sonnet-4-20250514-v1:0`.
        model: String,
        /// Look in this provider only (its id or a name its rule matches, e.g. `bedrock`).
        #[arg(long)]
        provider: Option<String>,
        /// A `genai-prices` data file instead of the shipped data.
        #[arg(long)]
        data: Option<PathBuf>,
    },
    /// Reads a `genai-prices` data file as flujo would at init, and says what is wrong.
    Check {
        /// The data file (`data.json` of a `genai-prices` release).
        file: PathBuf,
    },
}

/// Runs the command: its output, or the error to print.
pub(crate) fn run(command: PricesCommand) -> Result<String, String> {
    let catalog = |data: Option<&Path>| match data {
        Some(file) => Catalog::read_file(file).map_err(|error| error.to_string()),
        None => Catalog::shipped().map_err(|error| error.to_string()),
    };
    let mut out = String::new();
    match command {
        PricesCommand::List { provider, data } => {
            let catalog = catalog(data.as_deref())?;
            for listed in &catalog.providers {
                if provider.as_deref().is_some_and(|id| id != listed.id) {
                    continue;
                }
                for model in &listed.models {
                    let _ = writeln!(out, "{}\t{}", listed.id, model.id);
                }
            }
            if out.is_empty() {
                return Err(format!(
                    "no models{}",
                    provider
                        .map(|p| format!(" for provider {p:?}"))
                        .unwrap_or_default()
                ));
            }
        }
        PricesCommand::Lookup {
            model,
            provider,
            data,
        } => {
            let catalog = catalog(data.as_deref())?;
            let found = match &provider {
                Some(provider) => catalog.locate(&model, Some(provider)),
                None => catalog.lookup(&model),
            };
            let Some(index) = found else {
                return Err(format!(
                    "no price for {model:?} in genai-prices {}: its calls are unpriced (not $0); \
                     add it to a TOML price file (FLUJO_PRICING_FILE)",
                    catalog.version
                ));
            };
            let (provider, found) = catalog.at(index);
            let now = time::OffsetDateTime::now_utc();
            let _ = writeln!(
                out,
                "{model}: {} {} (genai-prices {})",
                provider.id, found.id, catalog.version
            );
            describe(&mut out, found.prices_at(now));
        }
        PricesCommand::Check { file } => {
            let catalog = Catalog::read_file(&file).map_err(|error| error.to_string())?;
            let _ = writeln!(
                out,
                "{}: genai-prices {}, {} providers, {} models: flujo can use it (FLUJO_GENAI_PRICES_DATA)",
                file.display(),
                catalog.version,
                catalog.providers.len(),
                catalog.model_count()
            );
        }
    }
    Ok(out)
}

fn describe(out: &mut String, prices: &Prices) {
    for unit in Unit::ALL {
        if let Some(price) = prices.get(unit) {
            let _ = writeln!(out, "  {:<12} {}", unit.label(), per(price, unit.per()));
        }
    }
    let others: Vec<&str> = prices.other_units().collect();
    if !others.is_empty() {
        let _ = writeln!(
            out,
            "  charged only when a response body reports them: {}",
            others.join(", ")
        );
    }
}

fn per(price: &UnitPrice, unit: &str) -> String {
    let mut text = format!("{}/{unit}", dollars(price.base));
    for (start, tier) in &price.tiers {
        let _ = write!(
            text,
            ", {}/{unit} above {start} input tokens",
            dollars(*tier)
        );
    }
    text
}

/// Micro-dollars as `$1.25`.
fn dollars(micros: u64) -> String {
    let text = format!("{}.{:06}", micros / 1_000_000, micros % 1_000_000);
    format!("${}", text.trim_end_matches('0').trim_end_matches('.'))
}
