//! flujo reads usage from response bodies as the `genai-prices` Python package of the shipped
//! data's version does (`genai_prices.extract_usage`), and prices what it read the same, to
//! the nano-dollar. The corpus: recorded bodies of the common APIs
//! (`tests/corpus/recorded.jsonl`), the part of each streaming API's last event that carries
//! the call's usage, as flujo's stream reader hands it to the extractors (Bedrock's
//! `metadata`, Cohere's `message-end` delta, Groq's `x_groq`, a Gemini chunk, the Responses
//! API's `response`, OpenAI-compatible final chunks: `tests/corpus/streams.jsonl`; the
//! streams themselves are read end to end in the `flujo` crate's `tests/json_usage.rs`), and a
//! body per extractor of the data, holding only what it
//! requires, every count it reads, and input across a tier (`tests/corpus/extractors.jsonl`,
//! written by `scripts/usage-corpus.py`). `scripts/genai-prices-extract.py` reads and prices
//! them with the package (installed into `.backends/genai-prices/` by `scripts/test.sh`,
//! which sets `FLUJO_TEST_GENAI_PRICES_PYTHON`).

use std::collections::BTreeSet;

use flujo_pricing::Usd;
use flujo_pricing::extract::Count;
use flujo_pricing::genai::Catalog;
use serde_json::Value;

#[path = "support/package.rs"]
mod package;

const CORPUS: [&str; 3] = [
    include_str!("corpus/recorded.jsonl"),
    include_str!("corpus/streams.jsonl"),
    include_str!("corpus/extractors.jsonl"),
];

fn rows() -> Vec<Value> {
    CORPUS
        .iter()
        .flat_map(|file| file.lines())
        .filter(|line| !line.trim().is_empty())
        .map(|line| serde_json::from_str(line).expect("a corpus row is JSON"))
        .collect()
}

/// What the package makes of each row.
fn theirs(rows: &[Value]) -> Vec<Value> {
    let input: String = rows.iter().map(|row| format!("{row}\n")).collect();
    package::run("genai-prices-extract.py", input)
}

/// The package's count as flujo's: an int, or a float or decimal written as a string.
fn their_count(value: &Value) -> Count {
    match value {
        Value::Number(n) => Count::Whole(n.as_u64().expect("a non-negative int")),
        Value::String(text) => Count::Fraction(text.parse().expect("a decimal")),
        other => panic!("a count: {other}"),
    }
}

#[test]
fn flujo_reads_and_prices_every_body_as_the_python_package_does() {
    let catalog = Catalog::shipped().expect("the shipped data reads");
    let rows = rows();
    let theirs = theirs(&rows);
    assert_eq!(rows.len(), theirs.len());
    let mut disagreements = Vec::new();
    let (mut read, mut priced, mut refused) = (0, 0, 0);
    for (row, theirs) in rows.iter().zip(&theirs) {
        let provider = row["provider"].as_str().unwrap();
        let flavor = row["flavor"].as_str().unwrap();
        let body = &row["body"];
        let at = package::at(row);
        let ours = catalog.extract(provider, Some(flavor), body);
        let mut differ = |what: String| {
            disagreements.push(format!("{provider}/{flavor} {body}: {what}"));
        };
        let their_error = theirs["extract_error"].as_str();
        // The package also looks the model up while reading; flujo reads first and looks the
        // model up when it prices.
        let model_unknown = their_error.is_some_and(|e| e.starts_with("LookupError"));
        let ours = match (ours, their_error) {
            (Err(_), Some(_)) => {
                refused += 1;
                continue;
            }
            (Ok(ours), Some(_)) if model_unknown => {
                let model = ours.model.unwrap_or_default();
                if catalog.locate(model, Some(provider)).is_some() {
                    differ(format!("flujo finds model {model}, the package does not"));
                }
                refused += 1;
                continue;
            }
            (Ok(ours), Some(error)) => {
                differ(format!(
                    "flujo reads {ours:?}, the package refuses: {error}"
                ));
                continue;
            }
            (Err(error), None) => {
                differ(format!(
                    "flujo refuses ({error}), the package reads {theirs}"
                ));
                continue;
            }
            (Ok(ours), None) => ours,
        };
        read += 1;
        let their_usage = theirs["usage"].as_object().expect("usage");
        let our_units: BTreeSet<&str> = ours.counts.iter().map(|(unit, _)| *unit).collect();
        let their_units: BTreeSet<&str> = their_usage.keys().map(String::as_str).collect();
        if our_units != their_units {
            differ(format!("units {our_units:?} vs {their_units:?}"));
            continue;
        }
        for (unit, value) in their_usage {
            let ours = ours.count(unit).expect("the same units");
            if ours != their_count(value) {
                differ(format!("{unit}: flujo {ours:?}, the package {value}"));
            }
        }
        // A stream's usage event names no model: the row gives the call's.
        let Some(model) = row["model"].as_str().or(ours.model) else {
            continue;
        };
        let Some(index) = catalog.locate(model, Some(provider)) else {
            differ(format!("flujo does not find model {model}"));
            continue;
        };
        let found = catalog.at(index).1.id.as_str();
        if theirs["model"].as_str() != Some(found) {
            differ(format!("model {found} vs {}", theirs["model"]));
            continue;
        }
        let prices = catalog.prices_for(index, at, &[]);
        let cost = prices.costs_of(&ours.counts, &catalog.units);
        let Some(nanos) = theirs["nanos"].as_u64() else {
            // The package refuses to price what it read (a priced unit left out while parts
            // of it were reported, say): so does flujo, never a guess.
            match cost {
                Err(_) => refused += 1,
                Ok(cost) => differ(format!(
                    "flujo prices {cost:?}, the package refuses: {}",
                    theirs["price_error"]
                )),
            }
            continue;
        };
        if cost.as_ref().map(|(total, _)| *total) == Ok(Usd::from_nanos(nanos)) {
            priced += 1;
        } else {
            differ(format!(
                "cost: flujo {cost:?}, the package {}",
                Usd::from_nanos(nanos)
            ));
        }
        // A usage of whole tokens only is priced the same by the `TokenUsage` path, which
        // typed responses take.
        if ours.other_units().next().is_none() && !ours.has_fraction() {
            let typed = prices.costs(&ours.token_usage());
            if Ok(typed) != cost {
                differ(format!("typed path {typed:?}, body path {cost:?}"));
            }
        }
    }
    println!(
        "{} bodies: {read} read alike, {priced} priced alike, {refused} refused by both",
        rows.len()
    );
    assert!(
        disagreements.is_empty(),
        "{} of {} bodies disagree:\n{}",
        disagreements.len(),
        rows.len(),
        disagreements.join("\n")
    );
}

/// Without a flavor named at the call site, the first flavor of the provider that reads a
/// body reads it: for each recorded body, the flavor it was recorded with.
#[test]
fn a_recorded_body_is_read_by_its_own_flavor_when_none_is_named() {
    let catalog = Catalog::shipped().expect("the shipped data reads");
    for line in CORPUS[0].lines().filter(|line| !line.trim().is_empty()) {
        let row: Value = serde_json::from_str(line).unwrap();
        let provider = row["provider"].as_str().unwrap();
        let read = catalog
            .extract(provider, None, &row["body"])
            .unwrap_or_else(|error| panic!("{provider}: {error}"));
        assert_eq!(read.flavor, row["flavor"], "{provider}: {}", row["body"]);
    }
}

#[test]
fn the_corpus_holds_a_body_for_every_extractor_of_the_data() {
    let catalog = Catalog::shipped().expect("the shipped data reads");
    let rows = rows();
    let covered: BTreeSet<(&str, &str)> = rows
        .iter()
        .map(|row| {
            (
                row["provider"].as_str().unwrap(),
                row["flavor"].as_str().unwrap(),
            )
        })
        .collect();
    let mut missing = Vec::new();
    let mut extractors = 0;
    for provider in &catalog.providers {
        for extractor in &provider.extractors {
            extractors += 1;
            if !covered.contains(&(provider.id.as_str(), extractor.flavor.as_str())) {
                missing.push(format!("{}/{}", provider.id, extractor.flavor));
            }
        }
    }
    assert!(extractors >= 98, "the data has {extractors} extractors");
    assert!(
        missing.is_empty(),
        "no body for: {missing:?} (run scripts/usage-corpus.py)"
    );
}
