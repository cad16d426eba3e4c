//! Price rows over the `genai-prices` data: from a TOML price file (`FLUJO_PRICING_FILE`) or
//! from code (`set_model_price`). A row holds the data's price shape ([`Prices`]: every unit,
//! tiers, request-context variants), from a date on, and is priced by the same code as the
//! data.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use serde::Deserialize;
use time::{Date, OffsetDateTime};
use toml::{Spanned, Value};

use crate::file::read_price_file;
use crate::genai::{Prices, Unit, UnitPrice, Variant, with_variants};
use crate::money::{PerMillionTokens, PricingError, Usd};
use crate::names::{infer_provider, name_candidates};
use crate::usage::TokenUsage;

/// One row: a model's prices from a date on.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ModelPrice {
    /// The model name the row is for (lower case).
    pub model: String,
    /// `gen_ai.provider.name` of the model, when known.
    pub provider: Option<String>,
    /// The date these prices took effect (UTC).
    pub effective: Date,
    /// The prices, as the `genai-prices` data states a model's.
    pub prices: Prices,
    /// Prices a request context selects (`service_tier = flex`, `processing = batch`).
    variants: Vec<Variant>,
    /// Other names of the same model.
    pub aliases: Vec<String>,
}

impl ModelPrice {
    /// A row for `model` with input and output prices, in effect from the earliest date;
    /// refine it with the `with_*` methods.
    ///
    /// ```
    /// use flujo::cost::{ModelPrice, PerMillionTokens, PriceUnit};
    /// use flujo::{TokenUsage, Usd};
    ///
    /// let usd = |text| PerMillionTokens::parse(text).unwrap();
    /// let price = ModelPrice::new("acme-llm", usd("3"), usd("15"))
    ///     .with_price(PriceUnit::CacheRead, usd("0.30"))
    ///     .with_price(PriceUnit::Reasoning, usd("20"));
    /// let usage = TokenUsage::new(2_000, 1_000).with_cache_read(1_000).with_reasoning(500);
    /// // 1000 * $3/M + 1000 * $0.30/M + 500 * $15/M + 500 reasoning * $20/M
    /// assert_eq!(price.cost(&usage), Usd::parse("0.0208")?);
    /// # Ok::<(), flujo::cost::PricingError>(())
    /// ```
    pub fn new(model: &str, input: PerMillionTokens, output: PerMillionTokens) -> ModelPrice {
        ModelPrice {
            model: model.trim().to_ascii_lowercase(),
            provider: None,
            effective: Date::MIN,
            prices: Prices::default()
                .with(Unit::Input, UnitPrice::new(input.micros()))
                .with(Unit::Output, UnitPrice::new(output.micros())),
            variants: Vec::new(),
            aliases: Vec::new(),
        }
    }

    /// With `unit` at `price` (for [`Unit::Requests`], USD per thousand requests). A unit
    /// without a price is priced as the data does: cache reads and writes as input,
    /// one-hour cache writes as cache writes, reasoning as output.
    #[must_use]
    pub fn with_price(mut self, unit: Unit, price: PerMillionTokens) -> ModelPrice {
        self.set_price(unit.key(), price);
        self
    }

    /// Sets the price of the unit `key` names (a price key of the data), keeping its tiers.
    fn set_price(&mut self, key: &str, price: PerMillionTokens) {
        let tiers = self
            .prices
            .get_key(key)
            .map(|p| p.tiers.clone())
            .unwrap_or_default();
        let prices = std::mem::take(&mut self.prices);
        self.prices = prices.with_key(
            key,
            UnitPrice {
                tiers,
                ..UnitPrice::new(price.micros())
            },
        );
    }

    /// With the unit that the data's price key `price_key` names at `price` (in the key's
    /// unit: `_mtok` per million tokens, `_kcount` per thousand, `_hours` per hour): the
    /// units a [`TokenUsage`](crate::TokenUsage) does not hold, which a response read as JSON
    /// reports (web searches, audio and image tokens, pages, seconds). A key the data does not
    /// have is an error naming the nearest.
    ///
    /// ```
    /// use flujo::cost::{ModelPrice, PerMillionTokens};
    ///
    /// let usd = |text| PerMillionTokens::parse(text).unwrap();
    /// let price = ModelPrice::new("acme-search", usd("3"), usd("15"))
    ///     .with_unit_price("web_searches_kcount", usd("10"))?;
    /// let error = price.clone().with_unit_price("web_search_kcount", usd("10")).unwrap_err();
    /// assert!(error.to_string().contains("did you mean `web_searches_kcount`?"), "{error}");
    /// # Ok::<(), flujo::cost::PricingError>(())
    /// ```
    pub fn with_unit_price(
        mut self,
        price_key: &str,
        price: PerMillionTokens,
    ) -> Result<ModelPrice, PricingError> {
        known_price_key(price_key).map_err(|nearest| PricingError::UnknownPriceKey {
            key: price_key.to_owned(),
            nearest,
        })?;
        self.set_price(price_key, price);
        Ok(self)
    }

    /// With `unit` at `price` for requests whose input tokens are above
    /// `above_input_tokens` (long-context pricing). The unit needs a base price first.
    #[must_use]
    pub fn with_tier(
        mut self,
        unit: Unit,
        above_input_tokens: u64,
        price: PerMillionTokens,
    ) -> ModelPrice {
        self.set_tier(unit.key(), above_input_tokens, price);
        self
    }

    fn set_tier(&mut self, key: &str, above_input_tokens: u64, price: PerMillionTokens) {
        if let Some(base) = self.prices.get_key(key).cloned() {
            let prices = std::mem::take(&mut self.prices);
            self.prices = prices.with_key(key, base.with_tier(above_input_tokens, price.micros()));
        }
    }

    /// With `unit` at `price` for requests whose context has every pair of `when` (the
    /// first matching variant that names a unit sets it).
    #[must_use]
    pub fn with_variant(
        mut self,
        when: &[(&str, &str)],
        unit: Unit,
        price: PerMillionTokens,
    ) -> ModelPrice {
        self.add_variant(when, unit.key(), price);
        self
    }

    fn add_variant(&mut self, when: &[(&str, &str)], key: &str, price: PerMillionTokens) {
        let when: Vec<(String, String)> = when
            .iter()
            .map(|(key, value)| ((*key).to_owned(), (*value).to_owned()))
            .collect();
        self.variants.push(Variant::new(
            when,
            Prices::default().with_key(key, UnitPrice::new(price.micros())),
        ));
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

    /// The prices for a request served as `context` says (`("service_tier", "flex")`).
    pub fn prices_for(&self, at: OffsetDateTime, context: &[(&str, &str)]) -> Cow<'_, Prices> {
        with_variants(&self.prices, &self.variants, at, context)
    }

    /// The exact cost of `usage` at the standard prices.
    pub fn cost(&self, usage: &TokenUsage) -> Usd {
        self.prices.cost(usage)
    }

    /// The part of [`ModelPrice::cost`] that pays for the output tokens (reasoning included);
    /// the rest, `cost - output_cost`, pays for the input. Never more than the whole.
    pub fn output_cost(&self, usage: &TokenUsage) -> Usd {
        self.prices.output_cost(usage)
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

/// The longest `version` a price file may declare (it is stored with every cost record).
pub const MAX_VERSION_CHARS: usize = 64;

/// The 1-based line where `key = ...` first stands in `text` (1 if nowhere).
fn key_line(text: &str, key: &str) -> usize {
    text.lines()
        .position(|line| line.trim_start().starts_with(key))
        .map_or(1, |index| index + 1)
}

/// Model prices by name and date, layered over the `genai-prices` data: rows of a file
/// ([`PriceTable::merge_file`]) or of code ([`PriceTable::insert`]); a later row for the same
/// model and effective date replaces the earlier one.
///
/// ```
/// use flujo::TokenUsage;
/// use flujo_pricing::PriceTable;
///
/// let mut table = PriceTable::empty();
/// table.merge_toml(r#"
///     [[model]]
///     name = "acme-llm"
///     input = 2.50            # USD per million tokens, read exactly as written
///     output = "10"
///     cache_read = 1.25
/// "#, "prices.toml")?;
/// let day = time::Date::from_calendar_date(2026, time::Month::March, 1).unwrap();
/// let usage = TokenUsage::new(1_000_000, 100_000).with_cache_read(400_000);
/// let priced = table.price("acme-llm-2026-01-01", &usage, day).unwrap();
/// // 600k uncached at $2.50/M + 400k cached at $1.25/M + 100k output at $10/M
/// assert_eq!(priced.cost.to_string(), "$3.00");
/// assert!(table.price("my-own-model", &usage, day).is_none());
/// # Ok::<(), flujo::cost::PricingError>(())
/// ```
#[derive(Clone, Debug)]
pub struct PriceTable {
    /// Rows by name (and alias), each list sorted by effective date.
    rows: HashMap<String, Vec<ModelPrice>>,
    version: String,
}

impl PriceTable {
    /// An empty table (every model unpriced until rows are added).
    pub fn empty() -> PriceTable {
        PriceTable {
            rows: HashMap::new(),
            version: "empty".to_owned(),
        }
    }

    /// Identifies the layers in this table, e.g. `empty+prices.toml@2026-01-01+code`.
    /// Stored with each cost record.
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
    /// below (a dated row would otherwise still win on its dates).
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

    /// Layers the rows of a TOML price table over this one; returns the file's `version` (or
    /// `unversioned`). `file` names it in errors. The format: `[[model]]` rows with `name`,
    /// optional `provider`, `effective` (a date), `aliases`, and prices in USD per million
    /// tokens (`input`, `output`, `cache_read` (or `cached_input`), `cache_write`,
    /// `cache_write_1h`, `reasoning`; `requests` per thousand requests), each a number or a
    /// string read exactly as written; `[[model.tier]]` with `above_input_tokens` and the
    /// prices that change above it; `[[model.variant]]` with `when = { key = "value" }` and
    /// the prices a request context selects.
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
        let source = Source { text, file };
        let mut rows = Vec::with_capacity(parsed.model.len());
        for row in parsed.model {
            rows.push(row.into_price(&source)?);
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

/// The file being read, for errors that name a line.
struct Source<'a> {
    text: &'a str,
    file: &'a str,
}

impl Source<'_> {
    fn error(&self, offset: usize, message: String) -> PricingError {
        PricingError::File {
            file: self.file.to_owned(),
            line: line_of(self.text, offset),
            message,
        }
    }

    /// `key` of a row's `units` is a price key of the data that has no field of its own.
    fn check_unit(&self, key: &Spanned<String>) -> Result<(), PricingError> {
        let name = key.get_ref();
        if let Some((field, _)) = PRICE_FIELDS.iter().find(|(_, unit)| unit.key() == name) {
            return Err(self.error(
                key.span().start,
                format!("`units.{name}` has its own field: write `{field} = ...`"),
            ));
        }
        known_price_key(name).map_err(|nearest| {
            self.error(
                key.span().start,
                format!(
                    "`units.{name}` is not a price key of the genai-prices data (did you mean \
                     `{nearest}`? the keys are the data's: `input_audio_mtok`, \
                     `web_searches_kcount`, `audio_hours`, ...)"
                ),
            )
        })
    }

    /// A price as written: a TOML number read from its text (never through a float), or a
    /// string.
    fn price(&self, field: &str, value: &Spanned<Value>) -> Result<PerMillionTokens, PricingError> {
        let span = value.span();
        let written = match value.get_ref() {
            Value::String(text) => text.clone(),
            Value::Integer(_) | Value::Float(_) => self.text[span.clone()].replace('_', ""),
            _ => self.text[span.clone()].to_owned(),
        };
        PerMillionTokens::parse(&written).map_err(|_| {
            self.error(
                span.start,
                format!(
                    "field `{field}` = {written} is not a price: expected a non-negative decimal \
                     number of USD per million tokens (per thousand requests for `requests`) \
                     with at most 6 decimal places, e.g. 2.50"
                ),
            )
        })
    }
}

/// The price fields of a row, a tier and a variant, with the unit each prices, in the order of
/// their fields in [`priced_table!`].
const PRICE_FIELDS: [(&str, Unit); 8] = [
    ("input", Unit::Input),
    ("output", Unit::Output),
    ("cache_read", Unit::CacheRead),
    ("cached_input", Unit::CacheRead),
    ("cache_write", Unit::CacheWrite),
    ("cache_write_1h", Unit::CacheWrite1h),
    ("reasoning", Unit::Reasoning),
    ("requests", Unit::Requests),
];

/// `key` is a price key of the shipped data; else the data's key nearest to it.
fn known_price_key(key: &str) -> Result<(), String> {
    let units = crate::genai::shipped_units();
    if units.by_price_key(key).is_some() {
        return Ok(());
    }
    Err(units
        .iter()
        .map(|unit| unit.price_key.as_str())
        .min_by_key(|known| crate::edit_distance(key, known))
        .unwrap_or_default()
        .to_owned())
}

/// The price keys a row, a tier and a variant may hold, with the unit each prices.
macro_rules! priced_table {
    ($(#[$meta:meta])* struct $name:ident { $($(#[$field_meta:meta])* $field:ident: $ty:ty,)* }) => {
        $(#[$meta])*
        struct $name {
            $($(#[$field_meta])* $field: $ty,)*
            input: Option<Spanned<Value>>,
            output: Option<Spanned<Value>>,
            cache_read: Option<Spanned<Value>>,
            /// `cache_read`'s old name.
            cached_input: Option<Spanned<Value>>,
            cache_write: Option<Spanned<Value>>,
            cache_write_1h: Option<Spanned<Value>>,
            reasoning: Option<Spanned<Value>>,
            requests: Option<Spanned<Value>>,
            /// Any other unit of the data, by its price key (`web_searches_kcount = 10`,
            /// `input_audio_mtok = 40`): USD per the unit's own quantity.
            #[serde(default)]
            units: BTreeMap<Spanned<String>, Spanned<Value>>,
        }

        impl $name {
            /// Each price written, with its field and unit.
            fn written(&self) -> [(&'static str, Unit, &Option<Spanned<Value>>); 8] {
                let values = [
                    &self.input,
                    &self.output,
                    &self.cache_read,
                    &self.cached_input,
                    &self.cache_write,
                    &self.cache_write_1h,
                    &self.reasoning,
                    &self.requests,
                ];
                std::array::from_fn(|i| (PRICE_FIELDS[i].0, PRICE_FIELDS[i].1, values[i]))
            }

            /// The prices written, each applied with `apply` to its price key.
            fn each_price(
                &self,
                source: &Source<'_>,
                mut apply: impl FnMut(&str, PerMillionTokens),
            ) -> Result<(), PricingError> {
                for (field, unit, value) in self.written() {
                    if let Some(value) = value {
                        apply(unit.key(), source.price(field, value)?);
                    }
                }
                for (key, value) in &self.units {
                    source.check_unit(key)?;
                    apply(key.get_ref(), source.price(key.get_ref(), value)?);
                }
                Ok(())
            }
        }
    };
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileRows {
    version: Option<String>,
    #[serde(default)]
    model: Vec<FileRow>,
}

priced_table! {
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct FileRow {
        name: Spanned<String>,
        provider: Option<String>,
        effective: Option<Spanned<toml::value::Datetime>>,
        #[serde(default)]
        tier: Vec<FileTier>,
        #[serde(default)]
        variant: Vec<FileVariant>,
        #[serde(default)]
        aliases: Vec<String>,
    }
}

priced_table! {
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct FileTier {
        above_input_tokens: u64,
    }
}

priced_table! {
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct FileVariant {
        when: BTreeMap<String, String>,
    }
}

impl FileRow {
    fn into_price(self, source: &Source<'_>) -> Result<ModelPrice, PricingError> {
        let model = self.name.get_ref().trim().to_ascii_lowercase();
        if model.is_empty() {
            return Err(source.error(
                self.name.span().start,
                "field `name` is empty: give the model's name".to_owned(),
            ));
        }
        let (Some(input), Some(output)) = (&self.input, &self.output) else {
            let missing = if self.input.is_none() {
                "input"
            } else {
                "output"
            };
            return Err(source.error(
                self.name.span().start,
                format!(
                    "missing field `{missing}`: a row gives at least its input and output prices"
                ),
            ));
        };
        let effective = match &self.effective {
            None => Date::MIN,
            Some(value) => to_date(value.get_ref()).ok_or_else(|| {
                source.error(
                    value.span().start,
                    format!(
                        "field `effective` = {} is not a date: write a TOML date, e.g. \
                         effective = 2025-01-31",
                        value.get_ref()
                    ),
                )
            })?,
        };
        let mut price = ModelPrice::new(
            &model,
            source.price("input", input)?,
            source.price("output", output)?,
        );
        self.each_price(source, |unit, value| price.set_price(unit, value))?;
        for tier in &self.tier {
            tier.each_price(source, |unit, value| {
                price.set_tier(unit, tier.above_input_tokens, value);
            })?;
        }
        for variant in &self.variant {
            let when: Vec<(&str, &str)> = variant
                .when
                .iter()
                .map(|(key, value)| (key.as_str(), value.as_str()))
                .collect();
            variant.each_price(source, |unit, value| price.add_variant(&when, unit, value))?;
        }
        price.provider = self.provider;
        price.effective = effective;
        price.aliases = self
            .aliases
            .iter()
            .map(|alias| alias.trim().to_ascii_lowercase())
            .collect();
        Ok(price)
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
    use crate::file::MAX_PRICE_FILE_BYTES;
    use time::Month;

    fn day(y: i32, m: Month, d: u8) -> Date {
        Date::from_calendar_date(y, m, d).unwrap()
    }

    fn table(text: &str) -> PriceTable {
        let mut table = PriceTable::empty();
        table.merge_toml(text, "prices.toml").unwrap();
        table
    }

    fn usd(text: &str) -> Usd {
        Usd::parse(text).unwrap()
    }

    fn per_m(text: &str) -> PerMillionTokens {
        PerMillionTokens::parse(text).unwrap()
    }

    #[test]
    fn a_row_prices_any_unit_of_the_data_by_its_price_key() {
        use crate::extract::Count;
        let table = table(
            r#"
            [[model]]
            name = "acme-search"
            input = 2
            output = 8
            units = { web_searches_kcount = 10, input_audio_mtok = "40" }

            [[model.tier]]
            above_input_tokens = 1000000
            input = 4
            units = { input_audio_mtok = 80 }

            [[model.variant]]
            when = { processing = "batch" }
            units = { web_searches_kcount = 5 }
            "#,
        );
        let row = table.lookup("acme-search", Date::MIN).unwrap();
        let units = crate::genai::Catalog::shipped().unwrap().units;
        let counts = [
            ("input_tokens", Count::Whole(1_000_000)),
            ("input_audio_tokens", Count::Whole(100_000)),
            ("output_tokens", Count::Whole(0)),
            ("web_searches", Count::Whole(3)),
        ];
        let at = time::OffsetDateTime::UNIX_EPOCH;
        // 900k text at $2/M + 100k audio at $40/M + 3 searches at $10/k.
        let (cost, _) = row.prices_for(at, &[]).costs_of(&counts, &units).unwrap();
        assert_eq!(cost, usd("1.80") + usd("4") + usd("0.03"));
        let (batch, _) = row
            .prices_for(at, &[("processing", "batch")])
            .costs_of(&counts, &units)
            .unwrap();
        assert_eq!(batch, usd("1.80") + usd("4") + usd("0.015"));
        let long = [
            ("input_tokens", Count::Whole(1_200_000)),
            ("input_audio_tokens", Count::Whole(100_000)),
        ];
        let (cost, _) = row.prices_for(at, &[]).costs_of(&long, &units).unwrap();
        // Over the tier: 1.1M text at $4/M + 100k audio at $80/M.
        assert_eq!(cost, usd("4.40") + usd("8"));
    }

    #[test]
    fn a_unit_the_data_does_not_know_is_refused_with_its_line() {
        let mut table = PriceTable::empty();
        let error = table
            .merge_toml(
                "[[model]]\nname = \"m\"\ninput = 1\noutput = 2\nunits = { web_search_kcount = 1 }\n",
                "prices.toml",
            )
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("prices.toml") && error.contains("line 5"),
            "{error}"
        );
        assert!(
            error.contains("web_searches_kcount"),
            "names the nearest: {error}"
        );
        let error = table
            .merge_toml(
                "[[model]]\nname = \"m\"\ninput = 1\noutput = 2\nunits = { input_mtok = 1 }\n",
                "prices.toml",
            )
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("write `input = ...`"),
            "a unit with its own field: {error}"
        );
    }

    #[test]
    fn an_override_row_says_what_the_data_can_and_is_priced_exactly() {
        let rows = table(
            r#"
            [[model]]
            name = "acme-opus"
            input = 15
            output = 75
            cache_read = 1.5
            cache_write = 18.75
            cache_write_1h = 30
            reasoning = 90
            requests = 0.5
            [[model.tier]]
            above_input_tokens = 200000
            input = 30
            output = "112.50"
            "#,
        );
        let on = day(2026, Month::June, 1);
        // 10k input: 2k uncached, 3k read, 5k written (1k of them for an hour); 2k output,
        // 500 of it reasoning; one request.
        let usage = TokenUsage::new(10_000, 2_000)
            .with_cache_read(3_000)
            .with_cache_write(5_000)
            .with_cache_write_1h(1_000)
            .with_reasoning(500);
        let cost = rows.price("acme-opus", &usage, on).unwrap().cost;
        // 2000*15 + 3000*1.5 + 4000*18.75 + 1000*30 + 1500*75 + 500*90 micro-dollars, plus
        // $0.5 per thousand requests.
        let expected = 30_000 + 4_500 + 75_000 + 30_000 + 112_500 + 45_000 + 500;
        assert_eq!(cost, Usd::from_nanos(expected * 1_000));
        // Above the tier's threshold, its input and output prices apply to the whole request.
        let long = TokenUsage::new(200_001, 1_000);
        let cost = rows.price("acme-opus", &long, on).unwrap().cost;
        assert_eq!(
            cost,
            Usd::from_nanos((200_001 * 30 + 1_000 * 112_500 / 1_000 + 500) * 1_000)
        );
        // The same row made in code prices the same.
        let coded = ModelPrice::new("acme-opus", per_m("15"), per_m("75"))
            .with_price(Unit::CacheRead, per_m("1.5"))
            .with_price(Unit::CacheWrite, per_m("18.75"))
            .with_price(Unit::CacheWrite1h, per_m("30"))
            .with_price(Unit::Reasoning, per_m("90"))
            .with_price(Unit::Requests, per_m("0.5"))
            .with_tier(Unit::Input, 200_000, per_m("30"))
            .with_tier(Unit::Output, 200_000, per_m("112.5"));
        assert_eq!(&coded, rows.lookup("acme-opus", on).unwrap());
    }

    #[test]
    fn a_row_with_only_input_and_output_prices_cache_and_reasoning_as_the_data_does() {
        let rows = table("[[model]]\nname = \"acme\"\ninput = 2\noutput = 8\n");
        let usage = TokenUsage::new(1_000, 1_000)
            .with_cache_read(400)
            .with_reasoning(300);
        // Cache reads at the input price, reasoning at the output price.
        assert_eq!(
            rows.price("acme", &usage, day(2026, Month::June, 1))
                .unwrap()
                .cost,
            usd("0.01")
        );
    }

    #[test]
    fn prices_are_read_as_written_never_through_a_float() {
        // 0.1 + 0.2 is not 0.3 in binary; written prices stay decimal.
        let rows = table("[[model]]\nname = \"a\"\ninput = 0.1\noutput = 0.2\n");
        let usage = TokenUsage::new(1_000_000, 1_000_000);
        assert_eq!(rows.price("a", &usage, Date::MAX).unwrap().cost, usd("0.3"));
        let rows = table("[[model]]\nname = \"a\"\ninput = 1_000\noutput = \"0.000001\"\n");
        assert_eq!(
            rows.lookup("a", Date::MAX)
                .unwrap()
                .prices
                .get(Unit::Output)
                .unwrap()
                .base,
            1
        );
        let mut table = PriceTable::empty();
        let error = table
            .merge_toml(
                "[[model]]\nname = \"a\"\ninput = 1e-3\noutput = 1\n",
                "p.toml",
            )
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("line 3") && error.contains("`input`"),
            "{error}"
        );
    }

    #[test]
    fn a_variant_prices_what_a_request_context_selects() {
        let rows = table(
            r#"
            [[model]]
            name = "acme"
            input = 2
            output = 8
            [[model.variant]]
            when = { service_tier = "flex" }
            input = 1
            output = 4
            "#,
        );
        let row = rows.lookup("acme", Date::MAX).unwrap();
        let usage = TokenUsage::new(1_000_000, 0);
        let at = OffsetDateTime::UNIX_EPOCH;
        assert_eq!(row.prices_for(at, &[]).cost(&usage), usd("2"));
        assert_eq!(
            row.prices_for(at, &[("service_tier", "flex")]).cost(&usage),
            usd("1")
        );
        assert_eq!(
            row.prices_for(at, &[("service_tier", "priority")])
                .cost(&usage),
            usd("2")
        );
    }

    #[test]
    fn dated_rows_price_by_call_date_and_an_undated_one_replaces_them() {
        let mut rows = table(
            "[[model]]\nname = \"o3\"\neffective = 2025-04-16\ninput = 10\noutput = 40\n\
             [[model]]\nname = \"o3\"\neffective = 2025-06-10\ninput = 2\noutput = 8\n",
        );
        let usage = TokenUsage::new(1_000_000, 1_000_000);
        let cost = |rows: &PriceTable, on| rows.price("o3", &usage, on).map(|p| p.cost);
        assert_eq!(cost(&rows, day(2025, Month::May, 1)), Some(usd("50")));
        assert_eq!(cost(&rows, day(2025, Month::July, 1)), Some(usd("10")));
        assert_eq!(cost(&rows, day(2025, Month::January, 1)), None);
        rows.insert(ModelPrice::new("o3", per_m("1"), per_m("1")));
        assert_eq!(cost(&rows, day(2025, Month::January, 1)), Some(usd("2")));
        assert_eq!(cost(&rows, day(2025, Month::July, 1)), Some(usd("2")));
        assert!(rows.version().ends_with("+code"));
    }

    #[test]
    fn file_rows_have_a_provider_aliases_and_a_version() {
        let mut table = PriceTable::empty();
        let version = table
            .merge_toml(
                "version = \"acme-1\"\n[[model]]\nname = \"acme-llm\"\nprovider = \"acme\"\ninput = 0.5\noutput = 1.5\naliases = [\"Acme\"]\n",
                "acme.toml",
            )
            .unwrap();
        assert_eq!(version, "acme-1");
        let usage = TokenUsage::new(1_000_000, 0);
        assert_eq!(
            table.price("acme", &usage, Date::MAX).unwrap().cost,
            usd("0.5")
        );
        assert_eq!(table.provider_of("acme-llm").as_deref(), Some("acme"));
    }

    fn temp(name: &str) -> std::path::PathBuf {
        std::env::temp_dir().join(format!("flujo-pricing-{}-{name}", std::process::id()))
    }

    #[test]
    fn a_price_file_that_is_not_a_bounded_regular_file_is_refused_without_reading_it_all() {
        let mut table = PriceTable::empty();
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
        let mut table = PriceTable::empty();
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

    #[test]
    fn malformed_files_name_the_line_and_field() {
        let mut table = PriceTable::empty();
        let cases = [
            (
                "[[model]]\nname = \"x\"\ninput = 1\noutptu = 2\n",
                4,
                "outptu",
            ),
            ("[[model]]\nname = \"x\"\ninput = 1\n", 2, "output"),
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
            (
                "[[model]]\nname = \"x\"\ninput = 1\noutput = 2\n[[model.variant]]\nwhen = { tier = \"flex\" }\nreasoning = \"lots\"\n",
                7,
                "reasoning",
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
