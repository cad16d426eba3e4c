//! Usage from a provider's response body, read as `genai-prices`' extractors read it.
//!
//! The data says, per provider and API flavor (`chat`, `responses`, `anthropic`, `default`,
//! `embeddings`, ...), where a response keeps its usage, which counts it holds and which usage
//! unit each one is (Anthropic's `cache_read_input_tokens` is both part of `input_tokens` and
//! `cache_read_tokens`; Gemini's `thoughtsTokenCount` is both output and reasoning). Reading
//! follows the package's `UsageExtractor.extract` step for step, so that a body reads the same
//! here as in `genai_prices.extract_usage` (a differential test keeps it so): a required count
//! that is missing or not a number, or any count that is negative or a boolean, makes the
//! flavor not apply; counts sent to the same unit add up.

use serde::Deserialize;
use serde_json::Value;

use crate::rules::{Clause, RawClause};
use crate::units::Units;
use crate::usage::TokenUsage;

/// How one API flavor of a provider reports usage.
#[derive(Debug)]
pub struct Extractor {
    /// The flavor: `default`, `chat`, `responses`, `anthropic`, `embeddings`, ...
    pub flavor: String,
    root: Vec<Step>,
    model: Vec<Step>,
    mappings: Vec<Mapping>,
}

/// One step of a path into a body: a key of an object, or the first item of an array whose
/// `field` matches a rule (Gemini's `promptTokensDetails` item with `modality = TEXT`).
#[derive(Debug)]
enum Step {
    Key(String),
    Item { field: String, rule: Clause },
}

#[derive(Debug)]
struct Mapping {
    path: Vec<Step>,
    /// The usage unit the count is (`input_tokens`, `cache_read_tokens`, `web_searches`, ...).
    unit: String,
    required: bool,
    /// An earlier mapping reads the same path (into another unit): it is counted once in
    /// [`Extracted::paths_read`].
    repeats: bool,
    /// The data knows the unit (a mapping to another is passed over, as the package does).
    known: bool,
}

/// A count a body reports: a whole number, or (for units such as audio seconds, or a
/// malformed token count) a fraction.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Count {
    /// A non-negative whole number.
    Whole(u64),
    /// A finite non-negative number with a fraction (or beyond `u64`).
    Fraction(f64),
}

impl Count {
    fn of(value: &Value) -> Option<Result<Count, ()>> {
        match value {
            Value::Number(number) => Some(if let Some(whole) = number.as_u64() {
                Ok(Count::Whole(whole))
            } else {
                match number.as_f64() {
                    Some(f) if f.is_finite() && f >= 0.0 => Ok(Count::Fraction(f)),
                    _ => Err(()),
                }
            }),
            // The package takes a boolean for a number (Python's `bool` is an `int`), then
            // refuses it as a usage value.
            Value::Bool(_) => Some(Err(())),
            _ => None,
        }
    }

    fn add(self, other: Count) -> Count {
        match (self, other) {
            (Count::Whole(a), Count::Whole(b)) => match a.checked_add(b) {
                Some(sum) => Count::Whole(sum),
                None => Count::Fraction(a as f64 + b as f64),
            },
            (a, b) => Count::Fraction(a.as_f64() + b.as_f64()),
        }
    }

    /// The count as a float.
    pub fn as_f64(self) -> f64 {
        match self {
            Count::Whole(n) => n as f64,
            Count::Fraction(f) => f,
        }
    }

    /// The count as whole tokens: a fraction is rounded down (and said by
    /// [`Extracted::has_fraction`]).
    pub fn whole(self) -> u64 {
        match self {
            Count::Whole(n) => n,
            // `as` saturates: a count beyond `u64` is `u64::MAX`, caught by the token bound.
            Count::Fraction(f) => f as u64,
        }
    }
}

/// What a body said about its call, read by one flavor.
#[derive(Debug, PartialEq)]
pub struct Extracted<'c, 'v> {
    /// The flavor that read it.
    pub flavor: &'c str,
    /// The model the response names, where the flavor says it is.
    pub model: Option<&'v str>,
    /// Each usage unit the body reports (`input_tokens`, `web_searches`, ...) with its count,
    /// in the order the data lists them.
    pub counts: Vec<(&'c str, Count)>,
    /// How many of the flavor's distinct paths held a count.
    found: usize,
}

/// The usage units [`TokenUsage`] holds, by their `genai-prices` names.
pub const TOKEN_UNITS: [&str; 6] = [
    "input_tokens",
    "output_tokens",
    "cache_read_tokens",
    "cache_write_tokens",
    "cache_write_1h_tokens",
    "output_reasoning_tokens",
];

/// `usage` as the counts of [`TOKEN_UNITS`], for a pricing that adds units beyond tokens to
/// it (a stream's tokens, summed over its events, and the web searches its last event says).
pub fn token_unit_counts(usage: &TokenUsage) -> [(&'static str, Count); 6] {
    let values = [
        usage.input,
        usage.output,
        usage.cache_read_input,
        usage.cache_write_input,
        usage.cache_write_1h_input,
        usage.reasoning_output,
    ];
    std::array::from_fn(|i| (TOKEN_UNITS[i], Count::Whole(values[i])))
}

impl Extracted<'_, '_> {
    /// How many of the flavor's distinct paths held a count: of two flavors that read a
    /// body, the one that reads more of it is its flavor.
    pub fn paths_read(&self) -> usize {
        self.found
    }

    /// The count of `unit` (`input_tokens`, `web_searches`, ...), if the body reports it.
    pub fn count(&self, unit: &str) -> Option<Count> {
        self.counts
            .iter()
            .find(|(name, _)| *name == unit)
            .map(|(_, count)| *count)
    }

    /// The token counts, as flujo counts them (the units it holds; a fraction rounded down).
    pub fn token_usage(&self) -> TokenUsage {
        let tokens = |unit| self.count(unit).map_or(0, Count::whole);
        TokenUsage::new(tokens("input_tokens"), tokens("output_tokens"))
            .with_cache_read(tokens("cache_read_tokens"))
            .with_cache_write(tokens("cache_write_tokens"))
            .with_cache_write_1h(tokens("cache_write_1h_tokens"))
            .with_reasoning(tokens("output_reasoning_tokens"))
    }

    /// Whether a token count had a fraction (it was rounded down).
    pub fn has_fraction(&self) -> bool {
        self.counts
            .iter()
            .any(|(unit, count)| TOKEN_UNITS.contains(unit) && matches!(count, Count::Fraction(_)))
    }

    /// The units the body reports beyond those [`TokenUsage`] holds, with a count above 0:
    /// audio and image tokens, web searches, pages, seconds.
    pub fn other_units(&self) -> impl Iterator<Item = (&str, Count)> + '_ {
        self.counts
            .iter()
            .filter(|(unit, count)| !TOKEN_UNITS.contains(unit) && count.as_f64() > 0.0)
            .map(|(unit, count)| (*unit, *count))
    }
}

/// Why a flavor does not read a body (the package's message, for a person).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExtractError(pub String);

impl std::fmt::Display for ExtractError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ExtractError {}

/// What a path found.
enum Found<'v> {
    Value(&'v Value),
    /// Not there (or not of the type asked for), and not required.
    Absent,
}

/// Why a flavor does not read a body: what, and where. Written out only when someone reads
/// it (a body read without a flavor named tries every flavor of its provider).
#[derive(Clone, Copy)]
pub(crate) struct Miss<'c> {
    what: &'static str,
    path: &'c [Step],
}

impl Miss<'_> {
    pub(crate) fn error(self) -> ExtractError {
        ExtractError(format!("{} at `{}`", self.what, dotted(self.path)))
    }
}

impl Extractor {
    /// Reads `body`, as the package's `UsageExtractor.extract` does.
    pub fn extract<'c, 'v>(&'c self, body: &'v Value) -> Result<Extracted<'c, 'v>, ExtractError> {
        self.read(body).map_err(Miss::error)
    }

    pub(crate) fn read<'c, 'v>(&'c self, body: &'v Value) -> Result<Extracted<'c, 'v>, Miss<'c>> {
        let model = match walk(&self.model, body, false, Value::is_string)? {
            Found::Value(value) => value.as_str(),
            Found::Absent => None,
        };
        let Found::Value(usage) = walk(&self.root, body, true, Value::is_object)? else {
            unreachable!("a required path is found or an error");
        };
        let mut counts: Vec<(&str, Count)> = Vec::new();
        let (mut supported, mut set, mut found) = (false, false, 0);
        for mapping in &self.mappings {
            if !mapping.known {
                continue;
            }
            supported = true;
            let is_number = |v: &Value| Count::of(v).is_some();
            let Found::Value(value) = walk(&mapping.path, usage, mapping.required, is_number)?
            else {
                continue;
            };
            let count = match Count::of(value) {
                Some(Ok(count)) => count,
                _ => {
                    return Err(Miss {
                        what: "Invalid usage value (expected a finite non-negative int, float, \
                               or Decimal)",
                        path: &mapping.path,
                    });
                }
            };
            set = true;
            found += usize::from(!mapping.repeats);
            match counts.iter_mut().find(|(unit, _)| *unit == mapping.unit) {
                Some((_, sum)) => *sum = sum.add(count),
                None => counts.push((&mapping.unit, count)),
            }
        }
        if supported && !set {
            return Err(Miss {
                what: "No usage information found",
                path: &self.root,
            });
        }
        Ok(Extracted {
            flavor: &self.flavor,
            model,
            counts,
            found,
        })
    }
}

/// The package's `_extract_path`: follows `path` from `data`; the last step is a key whose
/// value must pass `wanted`. A required path that is not there is an error naming where.
fn walk<'c, 'v>(
    path: &'c [Step],
    mut data: &'v Value,
    required: bool,
    wanted: impl Fn(&Value) -> bool,
) -> Result<Found<'v>, Miss<'c>> {
    let Some((Step::Key(last), steps)) = path.split_last() else {
        // Built paths end with a key (`RawPath::build`).
        return Err(Miss {
            what: "A path that does not end with a key",
            path,
        });
    };
    let missing = |at: usize, what: &'static str| {
        if required {
            Err(Miss {
                what,
                path: &path[..=at],
            })
        } else {
            Ok(Found::Absent)
        }
    };
    for (at, step) in steps.iter().enumerate() {
        match step {
            Step::Item { field, rule } => {
                let Some(items) = data.as_array() else {
                    return missing(at, "Expected a sequence");
                };
                let item = items.iter().find(|item| {
                    item.get(field)
                        .and_then(Value::as_str)
                        .is_some_and(|value| !value.is_empty() && rule.matches(value))
                });
                match item {
                    Some(item) => data = item,
                    None => return missing(at, "Unable to find item"),
                }
            }
            Step::Key(key) => {
                let Some(object) = data.as_object() else {
                    return missing(at, "Expected a dict");
                };
                match object.get(key) {
                    Some(value) => data = value,
                    None => return missing(at, "Missing value"),
                }
            }
        }
    }
    let last_at = path.len() - 1;
    if data.is_null() && !required {
        return Ok(Found::Absent);
    }
    let Some(object) = data.as_object() else {
        return missing(last_at, "Expected a dict");
    };
    match object.get(last) {
        None => missing(last_at, "Missing value"),
        Some(value) if wanted(value) => Ok(Found::Value(value)),
        Some(_) => missing(last_at, "Unexpected type"),
    }
}

fn dotted(path: &[Step]) -> String {
    path.iter()
        .map(|step| match step {
            Step::Key(key) => key.as_str(),
            Step::Item { field, .. } => field.as_str(),
        })
        .collect::<Vec<_>>()
        .join(".")
}

/// An extractor as the data writes it.
#[derive(Deserialize)]
pub(crate) struct RawExtractor {
    #[serde(default = "default_flavor")]
    api_flavor: String,
    root: RawPath,
    model_path: Option<RawPath>,
    mappings: Vec<RawMapping>,
}

fn default_flavor() -> String {
    "default".to_owned()
}

fn yes() -> bool {
    true
}

#[derive(Deserialize)]
#[serde(untagged)]
enum RawPath {
    Key(String),
    Steps(Vec<RawStep>),
}

#[derive(Deserialize)]
#[serde(untagged)]
enum RawStep {
    Key(String),
    Item {
        #[serde(rename = "type")]
        kind: String,
        field: String,
        #[serde(rename = "match")]
        rule: RawClause,
    },
}

#[derive(Deserialize)]
struct RawMapping {
    path: RawPath,
    dest: String,
    #[serde(default = "yes")]
    required: bool,
}

impl RawPath {
    fn build(self, at: &dyn Fn() -> String) -> Result<Vec<Step>, String> {
        let steps = match self {
            RawPath::Key(key) => vec![Step::Key(key)],
            RawPath::Steps(steps) => steps
                .into_iter()
                .map(|step| match step {
                    RawStep::Key(key) => Ok(Step::Key(key)),
                    RawStep::Item { kind, field, rule } if kind == "array-match" => {
                        Ok(Step::Item {
                            field,
                            rule: rule.build_exact(at).map_err(|e| e.to_string())?,
                        })
                    }
                    RawStep::Item { kind, .. } => Err(format!("unknown path step type {kind:?}")),
                })
                .collect::<Result<_, _>>()?,
        };
        match steps.last() {
            Some(Step::Key(_)) => Ok(steps),
            _ => Err("a path must end with a key".to_owned()),
        }
    }
}

impl RawExtractor {
    pub(crate) fn build(self, at: &dyn Fn() -> String, units: &Units) -> Result<Extractor, String> {
        let flavor = self.api_flavor;
        let at_flavor = || format!("{}, extractor {flavor}", at());
        let path = |raw: RawPath| {
            raw.build(&at_flavor)
                .map_err(|e| format!("{}: {e}", at_flavor()))
        };
        Ok(Extractor {
            root: path(self.root)?,
            model: match self.model_path {
                Some(raw) => path(raw)?,
                None => vec![Step::Key("model".to_owned())],
            },
            mappings: {
                let mut mappings: Vec<Mapping> = Vec::with_capacity(self.mappings.len());
                for m in self.mappings {
                    let steps = path(m.path)?;
                    let shown = format!("{steps:?}");
                    let repeats = mappings.iter().any(|e| format!("{:?}", e.path) == shown);
                    mappings.push(Mapping {
                        path: steps,
                        known: units.is_reported(&m.dest),
                        unit: m.dest,
                        required: m.required,
                        repeats,
                    });
                }
                mappings
            },
            flavor,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_counts_read_back_as_the_usage_they_came_from() {
        let usage = TokenUsage::new(18_346, 503)
            .with_cache_read(14_200)
            .with_cache_write(2_051)
            .with_cache_write_1h(2_000)
            .with_reasoning(120);
        let read = Extracted {
            flavor: "test",
            model: None,
            counts: token_unit_counts(&usage).to_vec(),
            found: TOKEN_UNITS.len(),
        };
        assert_eq!(read.token_usage(), usage);
        assert_eq!(read.other_units().count(), 0);
    }
}
