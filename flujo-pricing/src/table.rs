//! The price table: rows read from TOML (built in, from a file, or given in code), looked up
//! by model name and call date.

use std::collections::HashMap;
use std::path::Path;

use serde::Deserialize;
use time::Date;
use toml::Spanned;

use crate::money::{PerMillionTokens, PricingError, Usd, picos_to_usd};
use crate::names::{infer_provider, name_candidates};
use crate::usage::TokenUsage;

/// The built-in table's source: USD per million tokens for current OpenAI, Anthropic,
/// Google, Mistral, DeepSeek and xAI models, each row dated.
pub const BUILTIN_PRICES_TOML: &str = include_str!("../prices.toml");

/// Prices that replace a row's prices for a request whose input exceeds a threshold
/// (long-context pricing).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PriceTier {
    /// The tier applies when a request's input tokens are above this.
    pub above_input_tokens: u64,
    /// The prices in this tier.
    pub rates: Rates,
}

/// Per-token-class prices.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rates {
    /// Uncached input tokens.
    pub input: PerMillionTokens,
    /// Input tokens read from the prompt cache.
    pub cached_input: PerMillionTokens,
    /// Input tokens written to the prompt cache.
    pub cache_write: PerMillionTokens,
    /// Output tokens (reasoning included).
    pub output: PerMillionTokens,
}

impl Rates {
    /// Input and output prices; cache reads and writes cost the input price.
    pub fn new(input: PerMillionTokens, output: PerMillionTokens) -> Rates {
        Rates {
            input,
            cached_input: input,
            cache_write: input,
            output,
        }
    }

    fn cost(&self, usage: &TokenUsage) -> Usd {
        let picos = self.input.picos_for(usage.uncached_input())
            + self.cached_input.picos_for(usage.cache_read_input)
            + self.cache_write.picos_for(usage.cache_write_input)
            + self.output.picos_for(usage.output);
        picos_to_usd(picos)
    }

    fn output_cost(&self, usage: &TokenUsage) -> Usd {
        picos_to_usd(self.output.picos_for(usage.output))
    }
}

/// One row: a model's prices from a date on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ModelPrice {
    /// The model name the row is for (lower case).
    pub model: String,
    /// `gen_ai.provider.name` of the model, when known.
    pub provider: Option<String>,
    /// The date these prices took effect (UTC).
    pub effective: Date,
    /// The prices.
    pub rates: Rates,
    /// Long-context tiers, by ascending threshold.
    pub tiers: Vec<PriceTier>,
    /// Other names of the same model.
    pub aliases: Vec<String>,
}

impl ModelPrice {
    /// A row for `model` with input and output prices in USD per million tokens, in effect
    /// from the earliest date; refine it with the `with_*` methods.
    ///
    /// ```
    /// use flujo::cost::ModelPrice;
    ///
    /// let price = ModelPrice::new("acme-llm", 3.0, 15.0)?.with_cached_input(0.3)?;
    /// assert_eq!(price.rates.cached_input.micros(), 300_000);
    /// # Ok::<(), flujo::cost::PricingError>(())
    /// ```
    pub fn new(model: &str, input: f64, output: f64) -> Result<ModelPrice, PricingError> {
        Ok(ModelPrice {
            model: model.trim().to_ascii_lowercase(),
            provider: None,
            effective: Date::MIN,
            rates: Rates::new(
                PerMillionTokens::usd(input)?,
                PerMillionTokens::usd(output)?,
            ),
            tiers: Vec::new(),
            aliases: Vec::new(),
        })
    }

    /// With the price of cached input tokens (USD per million).
    pub fn with_cached_input(mut self, usd: f64) -> Result<ModelPrice, PricingError> {
        self.rates.cached_input = PerMillionTokens::usd(usd)?;
        Ok(self)
    }

    /// With the price of cache-write input tokens (USD per million).
    pub fn with_cache_write(mut self, usd: f64) -> Result<ModelPrice, PricingError> {
        self.rates.cache_write = PerMillionTokens::usd(usd)?;
        Ok(self)
    }

    /// With the provider (`gen_ai.provider.name`, e.g. `openai`).
    #[must_use]
    pub fn with_provider(mut self, provider: &str) -> ModelPrice {
        self.provider = Some(provider.to_owned());
        self
    }

    /// In effect from `date` on.
    #[must_use]
    pub fn effective_from(mut self, date: Date) -> ModelPrice {
        self.effective = date;
        self
    }

    /// The rates for a request with `input_tokens` of input.
    pub fn rates_for(&self, input_tokens: u64) -> &Rates {
        self.tiers
            .iter()
            .rev()
            .find(|tier| input_tokens > tier.above_input_tokens)
            .map_or(&self.rates, |tier| &tier.rates)
    }

    /// The exact cost of `usage` at these prices.
    pub fn cost(&self, usage: &TokenUsage) -> Usd {
        self.rates_for(usage.input).cost(usage)
    }

    /// The part of [`ModelPrice::cost`] that pays for the output tokens (reasoning included);
    /// the rest, `cost - output_cost`, pays for the input. Never more than the whole.
    ///
    /// ```
    /// use flujo::cost::ModelPrice;
    /// use flujo::{TokenUsage, Usd};
    ///
    /// let price = ModelPrice::new("acme-llm", 2.5, 10.0)?;
    /// let usage = TokenUsage::new(2_000, 800);
    /// assert_eq!(price.cost(&usage), Usd::parse("0.013")?);
    /// assert_eq!(price.output_cost(&usage), Usd::parse("0.008")?);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn output_cost(&self, usage: &TokenUsage) -> Usd {
        self.rates_for(usage.input).output_cost(usage)
    }
}

/// A priced lookup: the row used and the cost.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Priced<'a> {
    /// The row that priced the call.
    pub price: &'a ModelPrice,
    /// The cost.
    pub cost: Usd,
}

/// The largest price file read (16 MiB: the built-in table is a few KiB).
pub const MAX_PRICE_FILE_BYTES: u64 = 16 << 20;
/// The longest `version` a price file may declare (it is stored with every cost record).
pub const MAX_VERSION_CHARS: usize = 64;

/// The 1-based line where `key = ...` first stands in `text` (1 if nowhere).
fn key_line(text: &str, key: &str) -> usize {
    text.lines()
        .position(|line| line.trim_start().starts_with(key))
        .map_or(1, |index| index + 1)
}

/// The text of the price file at `path` (TOML, or `genai-prices` JSON), read within
/// [`MAX_PRICE_FILE_BYTES`]: a device, a FIFO or a directory is refused before reading (it
/// would be read forever, or block), and so is a file too large.
pub(crate) fn read_price_file(path: &Path) -> Result<String, PricingError> {
    let refuse = |reason: String| PricingError::Read {
        file: path.display().to_string(),
        reason,
    };
    let metadata = std::fs::metadata(path).map_err(|error| refuse(error.to_string()))?;
    if !metadata.is_file() {
        return Err(refuse(
            "not a regular file (a device, FIFO or directory): name a price file".to_owned(),
        ));
    }
    if metadata.len() > MAX_PRICE_FILE_BYTES {
        return Err(refuse(format!(
            "{} bytes; a price file is at most {} MiB",
            metadata.len(),
            MAX_PRICE_FILE_BYTES >> 20
        )));
    }
    let mut text = String::new();
    std::io::Read::read_to_string(
        &mut std::io::Read::take(
            std::fs::File::open(path).map_err(|error| refuse(error.to_string()))?,
            MAX_PRICE_FILE_BYTES + 1,
        ),
        &mut text,
    )
    .map_err(|error| refuse(error.to_string()))?;
    if text.len() as u64 > MAX_PRICE_FILE_BYTES {
        return Err(refuse(format!(
            "it grew past {} MiB while read",
            MAX_PRICE_FILE_BYTES >> 20
        )));
    }
    Ok(text)
}

/// Model prices by name and date. Start from [`PriceTable::builtin`], then layer a file
/// ([`PriceTable::merge_file`]) or rows from code ([`PriceTable::insert`]) over it: a later
/// row for the same model and effective date replaces the earlier one.
///
/// ```
/// use flujo::TokenUsage;
/// use flujo::cost::PriceTable;
///
/// let table = PriceTable::builtin();
/// let day = time::Date::from_calendar_date(2025, time::Month::March, 1).unwrap();
/// let usage = TokenUsage::new(1_000_000, 100_000).with_cache_read(400_000);
/// let priced = table.price("gpt-4o-2024-08-06", &usage, day).unwrap();
/// // 600k uncached at $2.50/M + 400k cached at $1.25/M + 100k output at $10/M
/// assert_eq!(priced.cost.to_string(), "$3.00");
/// assert!(table.price("my-own-model", &usage, day).is_none());
/// ```
#[derive(Clone, Debug)]
pub struct PriceTable {
    /// Rows by name (and alias), each list sorted by effective date.
    rows: HashMap<String, Vec<ModelPrice>>,
    version: String,
}

impl PriceTable {
    /// The built-in table.
    pub fn builtin() -> PriceTable {
        let mut table = PriceTable {
            rows: HashMap::new(),
            version: String::new(),
        };
        // The built-in file is tested; a failure here is a bug in flujo, reported as an
        // empty table rather than a panic in the user's program.
        let version = table
            .merge_toml(BUILTIN_PRICES_TOML, "<built-in>")
            .unwrap_or_default();
        table.version = format!("builtin-{version}");
        table
    }

    /// An empty table (every model unpriced until rows are added).
    pub fn empty() -> PriceTable {
        PriceTable {
            rows: HashMap::new(),
            version: "empty".to_owned(),
        }
    }

    /// Identifies the prices in force: the built-in version plus every layer added, e.g.
    /// `builtin-2025-11-24+prices.toml@2026-01-01+code`. Stored with each cost record.
    pub fn version(&self) -> &str {
        &self.version
    }

    /// Adds (or replaces) one row. A row without a date ([`ModelPrice::effective_from`] not
    /// called) replaces every earlier row of the model: it is the model's price from the
    /// beginning of time.
    pub fn insert(&mut self, price: ModelPrice) {
        if !self.version.ends_with("+code") {
            self.version.push_str("+code");
        }
        self.override_undated(std::slice::from_ref(&price));
        self.add_row(price);
    }

    /// For every model that `layer` prices without a date, forgets the rows of the layers
    /// below (a dated built-in row would otherwise still win on its dates).
    fn override_undated(&mut self, layer: &[ModelPrice]) {
        for price in layer.iter().filter(|price| price.effective == Date::MIN) {
            for name in std::iter::once(&price.model).chain(&price.aliases) {
                self.rows.remove(name);
            }
        }
    }

    fn add_row(&mut self, price: ModelPrice) {
        for name in std::iter::once(&price.model).chain(&price.aliases) {
            let rows = self.rows.entry(name.clone()).or_default();
            rows.retain(|row| row.effective != price.effective);
            rows.push(price.clone());
            rows.sort_by_key(|row| row.effective);
        }
    }

    /// Layers the rows of the TOML price file at `path` over this table.
    pub fn merge_file(&mut self, path: &Path) -> Result<(), PricingError> {
        let file = path.display().to_string();
        let text = read_price_file(path)?;
        let name = path
            .file_name()
            .map_or_else(|| file.clone(), |n| n.to_string_lossy().into_owned());
        let version = self.merge_toml(&text, &file)?;
        self.version.push_str(&format!("+{name}@{version}"));
        Ok(())
    }

    /// Layers the rows of a TOML price table (the built-in table's format) over this one;
    /// returns the file's `version` (or `unversioned`). `file` names it in errors.
    pub fn merge_toml(&mut self, text: &str, file: &str) -> Result<String, PricingError> {
        let parsed: FileRows = toml::from_str(text).map_err(|error| {
            let line = error.span().map_or(1, |span| line_of(text, span.start));
            let message = error.message().trim();
            // serde names unknown and missing fields itself; a wrong value only its type.
            let message = match key_on_line(text, line) {
                Some(key) if !message.contains(&format!("`{key}`")) => {
                    format!("field `{key}`: {message}")
                }
                _ => message.to_owned(),
            };
            PricingError::File {
                file: file.to_owned(),
                line,
                message,
            }
        })?;
        let mut rows = Vec::with_capacity(parsed.model.len());
        for row in parsed.model {
            rows.push(row.into_price(text, file)?);
        }
        let version = parsed.version.unwrap_or_else(|| "unversioned".to_owned());
        // Every cost record carries the version: it stays short.
        if version.chars().count() > MAX_VERSION_CHARS {
            return Err(PricingError::File {
                file: file.to_owned(),
                line: key_line(text, "version"),
                message: format!(
                    "field `version` has {} characters: at most {MAX_VERSION_CHARS}",
                    version.chars().count()
                ),
            });
        }
        self.override_undated(&rows);
        for row in rows {
            self.add_row(row);
        }
        Ok(version)
    }

    /// The row for `model` in force on `date`, trying the exact name first, then the name
    /// without its date, version or routing decorations.
    pub fn lookup(&self, model: &str, date: Date) -> Option<&ModelPrice> {
        name_candidates(model).iter().find_map(|name| {
            self.rows
                .get(name)?
                .iter()
                .rev()
                .find(|row| row.effective <= date)
        })
    }

    /// Every model name (and alias) the table has rows for, in no particular order.
    pub fn models(&self) -> impl Iterator<Item = &str> {
        self.rows.keys().map(String::as_str)
    }

    /// Whether any row matches `model` (on any date).
    pub fn knows(&self, model: &str) -> bool {
        name_candidates(model)
            .iter()
            .any(|name| self.rows.contains_key(name))
    }

    /// The cost of `usage` on `model` on `date`; `None` when the model has no price then.
    pub fn price(&self, model: &str, usage: &TokenUsage, date: Date) -> Option<Priced<'_>> {
        let price = self.lookup(model, date)?;
        Some(Priced {
            price,
            cost: price.cost(usage),
        })
    }

    /// The provider of `model`: its row's, else inferred from the name.
    pub fn provider_of(&self, model: &str) -> Option<String> {
        self.lookup(model, Date::MAX)
            .and_then(|row| row.provider.clone())
            .or_else(|| infer_provider(model).map(str::to_owned))
    }
}

fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].matches('\n').count() + 1
}

/// The key of a `key = value` line.
fn key_on_line(text: &str, line: usize) -> Option<&str> {
    let (key, _) = text.lines().nth(line - 1)?.split_once('=')?;
    let key = key.trim();
    (!key.is_empty() && !key.starts_with('[')).then_some(key)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileRows {
    version: Option<String>,
    #[serde(default)]
    model: Vec<FileRow>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileRow {
    name: Spanned<String>,
    provider: Option<String>,
    effective: Option<Spanned<toml::value::Datetime>>,
    input: Spanned<f64>,
    output: Spanned<f64>,
    cached_input: Option<Spanned<f64>>,
    cache_write: Option<Spanned<f64>>,
    #[serde(default)]
    tier: Vec<FileTier>,
    #[serde(default)]
    aliases: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileTier {
    above_input_tokens: u64,
    input: Spanned<f64>,
    output: Spanned<f64>,
    cached_input: Option<Spanned<f64>>,
    cache_write: Option<Spanned<f64>>,
}

/// The four prices of a row or tier, as written (serde's `flatten` would lose their spans).
struct FileRates<'a> {
    input: &'a Spanned<f64>,
    output: &'a Spanned<f64>,
    cached_input: &'a Option<Spanned<f64>>,
    cache_write: &'a Option<Spanned<f64>>,
}

impl FileRates<'_> {
    fn rates(&self, text: &str, file: &str) -> Result<Rates, PricingError> {
        let price = |field: &str, value: &Spanned<f64>| {
            PerMillionTokens::usd(*value.get_ref()).map_err(|_| PricingError::File {
                file: file.to_owned(),
                line: line_of(text, value.span().start),
                message: format!(
                    "field `{field}` = {} is not a price: expected a non-negative number of \
                     USD per million tokens with at most 6 decimal places",
                    value.get_ref()
                ),
            })
        };
        let input = price("input", self.input)?;
        let or_input = |field, value: &Option<Spanned<f64>>| {
            value.as_ref().map_or(Ok(input), |v| price(field, v))
        };
        Ok(Rates {
            input,
            cached_input: or_input("cached_input", self.cached_input)?,
            cache_write: or_input("cache_write", self.cache_write)?,
            output: price("output", self.output)?,
        })
    }
}

impl FileRow {
    fn into_price(self, text: &str, file: &str) -> Result<ModelPrice, PricingError> {
        let error = |offset: usize, message: String| PricingError::File {
            file: file.to_owned(),
            line: line_of(text, offset),
            message,
        };
        let model = self.name.get_ref().trim().to_ascii_lowercase();
        if model.is_empty() {
            return Err(error(
                self.name.span().start,
                "field `name` is empty: give the model's name".to_owned(),
            ));
        }
        let effective = match &self.effective {
            None => Date::MIN,
            Some(value) => to_date(value.get_ref()).ok_or_else(|| {
                error(
                    value.span().start,
                    format!(
                        "field `effective` = {} is not a date: write a TOML date, e.g. \
                         effective = 2025-01-31",
                        value.get_ref()
                    ),
                )
            })?,
        };
        let mut tiers = Vec::with_capacity(self.tier.len());
        for tier in &self.tier {
            let rates = FileRates {
                input: &tier.input,
                output: &tier.output,
                cached_input: &tier.cached_input,
                cache_write: &tier.cache_write,
            };
            tiers.push(PriceTier {
                above_input_tokens: tier.above_input_tokens,
                rates: rates.rates(text, file)?,
            });
        }
        tiers.sort_by_key(|tier| tier.above_input_tokens);
        Ok(ModelPrice {
            model,
            provider: self.provider,
            effective,
            rates: FileRates {
                input: &self.input,
                output: &self.output,
                cached_input: &self.cached_input,
                cache_write: &self.cache_write,
            }
            .rates(text, file)?,
            tiers,
            aliases: self
                .aliases
                .iter()
                .map(|alias| alias.trim().to_ascii_lowercase())
                .collect(),
        })
    }
}

fn to_date(value: &toml::value::Datetime) -> Option<Date> {
    if value.time.is_some() || value.offset.is_some() {
        return None;
    }
    let date = value.date?;
    let month = time::Month::try_from(date.month).ok()?;
    Date::from_calendar_date(i32::from(date.year), month, date.day).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_undated_row_over_a_dated_built_in_row_prices_every_date() {
        let day = Date::from_calendar_date(2026, time::Month::June, 1).unwrap();
        let usage = TokenUsage::new(1_000_000, 0);
        let builtin = PriceTable::builtin();
        assert_ne!(
            builtin.price("gpt-4o", &usage, day).unwrap().cost,
            Usd::from_nanos(7_000_000_000)
        );
        let mut table = builtin.clone();
        table
            .merge_toml(
                "[[model]]\nname = \"gpt-4o\"\ninput = 7\noutput = 8\n",
                "mine.toml",
            )
            .unwrap();
        assert_eq!(
            table.price("gpt-4o", &usage, day).unwrap().cost,
            Usd::from_nanos(7_000_000_000)
        );
        let early = Date::from_calendar_date(2020, time::Month::January, 1).unwrap();
        assert_eq!(
            table.price("gpt-4o", &usage, early).unwrap().cost,
            Usd::from_nanos(7_000_000_000)
        );
        // The same from code.
        let mut coded = builtin.clone();
        coded.insert(ModelPrice::new("gpt-4o", 7.0, 8.0).unwrap());
        assert_eq!(
            coded.price("gpt-4o", &usage, day).unwrap().cost,
            Usd::from_nanos(7_000_000_000)
        );
        // A dated row still layers in at its date only.
        let mut dated = builtin.clone();
        dated.insert(
            ModelPrice::new("gpt-4o", 7.0, 8.0)
                .unwrap()
                .effective_from(day),
        );
        assert_eq!(
            dated.price("gpt-4o", &usage, day).unwrap().cost,
            Usd::from_nanos(7_000_000_000)
        );
        assert_eq!(
            dated.price("gpt-4o", &usage, early).map(|p| p.cost),
            builtin.price("gpt-4o", &usage, early).map(|p| p.cost)
        );
    }

    fn temp(name: &str) -> std::path::PathBuf {
        std::env::temp_dir().join(format!("flujo-pricing-{}-{name}", std::process::id()))
    }

    #[test]
    fn a_price_file_that_is_not_a_bounded_regular_file_is_refused_without_reading_it_all() {
        let mut table = PriceTable::builtin();
        // A device that never ends, and a FIFO nobody writes to: refused at once.
        let error = table
            .merge_file(Path::new("/dev/zero"))
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("/dev/zero") && error.contains("not a regular file"),
            "{error}"
        );
        let fifo = temp("prices.fifo");
        let _ = std::fs::remove_file(&fifo);
        let made = std::process::Command::new("mkfifo").arg(&fifo).status();
        if made.is_ok_and(|status| status.success()) {
            let error = table.merge_file(&fifo).unwrap_err().to_string();
            assert!(error.contains("not a regular file"), "{error}");
            std::fs::remove_file(&fifo).unwrap();
        }
        // Larger than the documented maximum.
        let big = temp("big.toml");
        let file = std::fs::File::create(&big).unwrap();
        file.set_len(MAX_PRICE_FILE_BYTES + 1).unwrap();
        let error = table.merge_file(&big).unwrap_err().to_string();
        assert!(
            error.contains("at most") && error.contains("MiB"),
            "{error}"
        );
        std::fs::remove_file(&big).unwrap();
    }

    #[test]
    fn a_price_files_version_is_short() {
        let mut table = PriceTable::builtin();
        let long = format!("version = \"{}\"\n", "v".repeat(100_000));
        let error = table
            .merge_toml(&long, "long.toml")
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("version") && error.contains("at most 64"),
            "{error}"
        );
        assert!(
            table
                .merge_toml("version = \"2026-12-01\"\n", "ok.toml")
                .is_ok()
        );
    }
    use time::Month;

    fn day(y: i32, m: Month, d: u8) -> Date {
        Date::from_calendar_date(y, m, d).unwrap()
    }

    #[test]
    fn builtin_table_parses_with_every_provider() {
        let mut table = PriceTable::empty();
        table
            .merge_toml(BUILTIN_PRICES_TOML, "<built-in>")
            .expect("the built-in table is valid");
        for model in [
            "gpt-4o",
            "claude-sonnet-4-5",
            "gemini-2.5-pro",
            "mistral-large",
            "deepseek-chat",
            "grok-4",
        ] {
            assert!(table.knows(model), "{model}");
        }
        assert!(PriceTable::builtin().version().starts_with("builtin-20"));
    }

    #[test]
    fn dated_rows_price_by_call_date() {
        let table = PriceTable::builtin();
        let usage = TokenUsage::new(1_000_000, 1_000_000);
        let before = table.price("o3", &usage, day(2025, Month::May, 1)).unwrap();
        let after = table
            .price("o3", &usage, day(2025, Month::July, 1))
            .unwrap();
        assert_eq!(before.cost, Usd::parse("50").unwrap());
        assert_eq!(after.cost, Usd::parse("10").unwrap());
        assert!(
            table
                .price("o3", &usage, day(2025, Month::January, 1))
                .is_none()
        );
    }

    #[test]
    fn cache_reads_and_writes_are_priced_separately_and_not_twice() {
        let table = PriceTable::builtin();
        // Anthropic: 1000 uncached + 10_000 read + 2_000 written, 500 out.
        let usage = TokenUsage::anthropic(1_000, 10_000, 2_000, 500);
        let priced = table
            .price(
                "claude-3-5-sonnet-20241022",
                &usage,
                day(2025, Month::March, 1),
            )
            .unwrap();
        // 1000*3 + 10000*0.3 + 2000*3.75 + 500*15 micro-dollars = 21_000 µ$ = 0.021 $
        assert_eq!(priced.cost, Usd::from_nanos(21_000_000));
    }

    #[test]
    fn tiers_apply_above_their_threshold() {
        let table = PriceTable::builtin();
        let on = day(2025, Month::August, 1);
        let short = table
            .price("gemini-2.5-pro", &TokenUsage::new(200_000, 0), on)
            .unwrap();
        let long = table
            .price("gemini-2.5-pro", &TokenUsage::new(200_001, 0), on)
            .unwrap();
        assert_eq!(short.cost, Usd::from_nanos(250_000_000));
        assert_eq!(long.cost, Usd::from_nanos(500_002_500));
    }

    #[test]
    fn fractional_nanos_round_once_per_call() {
        let table = PriceTable::builtin();
        // gemini-1.5-flash cached input: $0.01875/M = 18.75 nano-dollars per token.
        let usage = TokenUsage::new(2, 0).with_cache_read(2);
        let priced = table
            .price("gemini-1.5-flash", &usage, day(2025, Month::January, 2))
            .unwrap();
        assert_eq!(priced.cost, Usd::from_nanos(38));
    }

    #[test]
    fn file_rows_override_and_extend() {
        let mut table = PriceTable::builtin();
        table
            .merge_toml(
                "version = \"acme-1\"\n[[model]]\nname = \"gpt-4o\"\neffective = 2030-01-01\ninput = 1\noutput = 2\n\
                 [[model]]\nname = \"acme-llm\"\nprovider = \"acme\"\ninput = 0.5\noutput = 1.5\naliases = [\"acme\"]\n",
                "acme.toml",
            )
            .unwrap();
        let usage = TokenUsage::new(1_000_000, 0);
        assert_eq!(
            table
                .price("gpt-4o", &usage, day(2031, Month::January, 1))
                .unwrap()
                .cost,
            Usd::parse("1").unwrap()
        );
        assert_eq!(
            table
                .price("gpt-4o", &usage, day(2029, Month::January, 1))
                .unwrap()
                .cost,
            Usd::parse("2.5").unwrap()
        );
        assert_eq!(
            table
                .price("acme", &usage, day(2029, Month::January, 1))
                .unwrap()
                .cost,
            Usd::parse("0.5").unwrap()
        );
        assert_eq!(table.provider_of("acme-llm").as_deref(), Some("acme"));
    }

    #[test]
    fn malformed_files_name_the_line_and_field() {
        let mut table = PriceTable::empty();
        let cases = [
            (
                "[[model]]\nname = \"x\"\ninput = 1\noutptu = 2\n",
                4,
                "outptu",
            ),
            ("[[model]]\nname = \"x\"\ninput = 1\n", 1, "output"),
            (
                "[[model]]\nname = \"x\"\ninput = -1\noutput = 2\n",
                3,
                "input",
            ),
            (
                "[[model]]\nname = \"x\"\ninput = 1\noutput = 2\neffective = \"soon\"\n",
                5,
                "effective",
            ),
            (
                "[[model]]\nname = \"x\"\ninput = 1\noutput = 2\n[[model.tier]]\nabove_input_tokens = 10\ninput = 1\noutput = 0.00000001\n",
                8,
                "output",
            ),
        ];
        for (text, line, field) in cases {
            let error = table.merge_toml(text, "prices.toml").unwrap_err();
            let PricingError::File {
                file,
                line: got,
                message,
            } = &error
            else {
                panic!("{error}");
            };
            assert_eq!(file, "prices.toml");
            assert_eq!(*got, line, "{error}");
            assert!(message.contains(field), "{error}");
        }
    }
}
