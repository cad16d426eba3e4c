//! flujo prices the shipped `genai-prices` data as the `genai-prices` Python package of the
//! same version does: every model, a grid of usages (small, large, cache reads and writes,
//! reasoning, at and across every tier start), on the days around every dated price and around
//! every time-of-day window, and with every price variant's request context; to the nano-dollar. `scripts/genai-prices-grid.py` prices the
//! grid with the package (installed into `.backends/genai-prices/` by `scripts/test.sh`,
//! which sets `FLUJO_TEST_GENAI_PRICES_PYTHON`).

use std::process::Command;

use flujo_pricing::genai::{Catalog, GENAI_PRICES_VERSION};
use flujo_pricing::{TokenUsage, Usd};

#[path = "support/package.rs"]
mod package;

fn grid() -> Vec<serde_json::Value> {
    package::run("genai-prices-grid.py", String::new())
}

fn count(usage: &serde_json::Value, key: &str) -> u64 {
    usage.get(key).and_then(|v| v.as_u64()).unwrap_or(0)
}

#[test]
fn flujo_and_the_python_package_agree_on_every_model() {
    let catalog = Catalog::shipped().expect("the shipped data reads");
    let rows = grid();
    assert!(rows.len() > 20_000, "{} rows", rows.len());
    let (mut agreed, mut explained, mut unexplained) = (0, Vec::new(), Vec::new());
    for row in &rows {
        let provider = row["provider"].as_str().unwrap();
        let model = row["model"].as_str().unwrap();
        let usage = &row["usage"];
        let at = package::at(row);
        let tokens = TokenUsage::new(count(usage, "input_tokens"), count(usage, "output_tokens"))
            .with_cache_read(count(usage, "cache_read_tokens"))
            .with_cache_write(count(usage, "cache_write_tokens"))
            .with_cache_write_1h(count(usage, "cache_write_1h_tokens"))
            .with_reasoning(count(usage, "output_reasoning_tokens"));
        let context: Vec<(&str, &str)> = row
            .get("context")
            .and_then(|c| c.as_object())
            .map(|c| {
                c.iter()
                    .map(|(k, v)| (k.as_str(), v.as_str().unwrap_or_default()))
                    .collect()
            })
            .unwrap_or_default();
        let found = catalog.locate(model, Some(provider));
        let prices = found.map(|index| catalog.prices_for(index, at, &context));
        let ours = found.map(|index| {
            let id = catalog.at(index).1.id.as_str();
            (id, catalog.prices_for(index, at, &context).cost(&tokens))
        });
        let theirs = row["nanos"]
            .as_u64()
            .map(|nanos| (row["found"].as_str().unwrap(), Usd::from_nanos(nanos)));
        // A price rounded to the micro-dollar per million tokens moves the cost by at most
        // half a pico-dollar per token (plus the nano-dollar rounding of each side).
        let within_rounding = match (ours, theirs) {
            (Some((a, ours)), Some((b, theirs))) => {
                let tokens = tokens.input + tokens.output;
                a == b && ours.nanos().abs_diff(theirs.nanos()) <= tokens / 2_000 + 1
            }
            _ => false,
        };
        if ours == theirs {
            agreed += 1;
        } else if within_rounding && prices.as_ref().is_some_and(|p| p.rounded()) {
            explained.push((row.clone(), ours));
        } else {
            unexplained.push(format!(
                "{provider}/{model} at {} with {usage}: flujo {ours:?}, genai-prices {theirs:?} {}",
                row["at"],
                row.get("error").map(|e| e.to_string()).unwrap_or_default()
            ));
        }
    }
    println!(
        "{agreed} rows agree; {} differ by the documented rounding of a repeating price",
        explained.len()
    );
    for (row, ours) in explained.iter().take(5) {
        println!("  e.g. {row} -> flujo {ours:?}");
    }
    assert!(
        unexplained.is_empty(),
        "{} of {} rows disagree without a reason:\n{}",
        unexplained.len(),
        rows.len(),
        unexplained
            .iter()
            .take(40)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
}

#[test]
fn the_shipped_data_is_what_the_pinned_package_holds() {
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../scripts/genai-prices-data.py"
    );
    let out = std::env::temp_dir().join(format!("flujo-genai-prices-{}.json", std::process::id()));
    let status = Command::new(package::python())
        .arg(script)
        .arg(&out)
        .status()
        .expect("the data script runs");
    assert!(status.success());
    let written = std::fs::read_to_string(&out).expect("the script wrote the data");
    let _ = std::fs::remove_file(&out);
    assert!(
        written == flujo_pricing::genai::GENAI_PRICES_JSON,
        "flujo-pricing/genai-prices/data.json differs from what genai-prices {GENAI_PRICES_VERSION} \
         holds: regenerate it with `scripts/genai-prices-data.py`"
    );
}
