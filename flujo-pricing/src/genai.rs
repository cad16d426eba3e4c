//! Prices in the data format of pydantic's `genai-prices` (MIT): providers, their models'
//! match rules, dated and time-of-day prices, long-context tiers and per-request fees, read
//! into exact integer prices and matched and priced as the `genai-prices` package does.
//!
//! flujo ships the data of a pinned version (`genai-prices/data.json`, written from the PyPI
//! wheel by `scripts/genai-prices-data.py`, with the package's MIT notice); a newer file in
//! the same format can be read at run time with [`Catalog::parse`].

use std::borrow::Cow;
use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::value::RawValue;
use time::{Date, OffsetDateTime, Time};

use crate::extract::{ExtractError, Extracted, Extractor, RawExtractor};
use crate::money::{PricingError, Usd, picos_to_usd};
use crate::rules::{Clause, RawClause, data_error};
pub use crate::unit_price::UnitPrice;
use crate::units::{RawUnit, Units};
use crate::usage::TokenUsage;

/// The data shipped with flujo: `genai-prices` at [`GENAI_PRICES_VERSION`].
pub const GENAI_PRICES_JSON: &str = include_str!("../genai-prices/data.json");

/// The `genai-prices` release the shipped data comes from.
pub const GENAI_PRICES_VERSION: &str = "0.2.3";

/// Prices the data states with more decimals than flujo's micro-dollars per million tokens
/// keep, and which are not float noise: repeating decimals (a twelfth of a dollar). Each is
/// rounded to the nearest micro-dollar per million tokens, which moves a million tokens' cost
/// by less than half a micro-dollar. A price of this kind that is not in the list is an error
/// when the data is read.
pub const ROUNDED_PRICES: &[&str] = &[
    "0.0833333333333333",
    "0.08333333333333334",
    "0.0416666666666667",
    "0.04166666666666665",
    "0.041666666666666664",
];

/// An error in the data: `line` 0 until [`at_line`] finds the line of the model it names.
/// A price as the data states it: an exact decimal, in whole micro-dollars per unit (per
/// million tokens, per thousand requests), and whether it is one of [`ROUNDED_PRICES`].
fn micros(text: &str, at: &dyn Fn() -> String) -> Result<(u64, bool), PricingError> {
    let invalid = |why: &str| data_error(format!("{}: price {text}: {why}", at()));
    let fraction = text.split_once('.').map_or("", |(_, fraction)| fraction);
    if !fraction.bytes().all(|b| b.is_ascii_digit()) {
        return Err(invalid("not a non-negative decimal number"));
    }
    let rest = &fraction[fraction.len().min(6)..];
    let value = crate::money::parse_decimal(&text[..text.len() - rest.len()], 6)
        .ok_or_else(|| invalid("not a non-negative decimal number of at most 10^13 dollars"))?;
    if rest.bytes().all(|b| b == b'0') {
        return Ok((value, false));
    }
    // Float noise (`0.18000000000000002`, `1.0399999999999998`) is within 10^-12 of a whole
    // micro-dollar; a real seventh decimal only stands in the documented list.
    let rest_value: f64 = format!("0.{rest}").parse().unwrap_or(0.0);
    let noise = !(1e-6..=1.0 - 1e-6).contains(&rest_value);
    let listed = ROUNDED_PRICES.contains(&text);
    if !noise && !listed {
        return Err(invalid(
            "more than 6 decimals, which flujo's micro-dollars per million tokens cannot \
             hold (and not float noise, nor in flujo_pricing::genai::ROUNDED_PRICES)",
        ));
    }
    Ok((value + u64::from(rest_value >= 0.5), listed))
}

/// The units of the data that flujo's usage reports, each with the data's price key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Unit {
    /// Input tokens (those not priced by a more specific unit).
    Input,
    /// Output tokens (reasoning included unless [`Unit::Reasoning`] prices them).
    Output,
    /// Input tokens read from the prompt cache (else they cost [`Unit::Input`]).
    CacheRead,
    /// Input tokens written to the prompt cache (else they cost [`Unit::Input`]).
    CacheWrite,
    /// Cache writes kept for an hour (else they cost [`Unit::CacheWrite`]).
    CacheWrite1h,
    /// Reasoning output tokens (else they cost [`Unit::Output`]).
    Reasoning,
    /// A fee per request (priced per thousand requests).
    Requests,
}

impl Unit {
    /// Every unit, in this order.
    pub const ALL: [Unit; 7] = [
        Unit::Input,
        Unit::Output,
        Unit::CacheRead,
        Unit::CacheWrite,
        Unit::CacheWrite1h,
        Unit::Reasoning,
        Unit::Requests,
    ];

    /// The data's price key, e.g. `input_mtok`.
    pub const fn key(self) -> &'static str {
        match self {
            Unit::Input => "input_mtok",
            Unit::Output => "output_mtok",
            Unit::CacheRead => "cache_read_mtok",
            Unit::CacheWrite => "cache_write_mtok",
            Unit::CacheWrite1h => "cache_write_1h_mtok",
            Unit::Reasoning => "output_reasoning_mtok",
            Unit::Requests => "requests_kcount",
        }
    }

    /// Its name for people: `input`, `cache read`, ...
    pub const fn label(self) -> &'static str {
        match self {
            Unit::Input => "input",
            Unit::Output => "output",
            Unit::CacheRead => "cache read",
            Unit::CacheWrite => "cache write",
            Unit::CacheWrite1h => "cache 1h",
            Unit::Reasoning => "reasoning",
            Unit::Requests => "requests",
        }
    }

    /// What one price of it is for: `M tokens`, or `1000 requests`.
    pub const fn per(self) -> &'static str {
        match self {
            Unit::Requests => "1000 requests",
            _ => "M tokens",
        }
    }

    fn of_key(key: &str) -> Option<Unit> {
        Unit::ALL.into_iter().find(|unit| unit.key() == key)
    }
}

/// The prices of a model at one time: those of the units a [`TokenUsage`] holds, and those
/// of the data's other units (audio and image tokens, web searches, pages, seconds, ...),
/// which only a usage read from a response body reports ([`Prices::costs_of`]).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Prices {
    /// By [`Unit`], in the order of [`Unit::ALL`].
    units: [Option<UnitPrice>; Unit::ALL.len()],
    /// The other units' prices, by price key (`input_audio_mtok`, `web_searches_kcount`).
    other: Vec<(String, UnitPrice)>,
}

impl Prices {
    /// The price of `unit`, when the data states one.
    pub fn get(&self, unit: Unit) -> Option<&UnitPrice> {
        self.units[unit as usize].as_ref()
    }

    /// These prices with `unit` at `price`.
    #[must_use]
    pub fn with(mut self, unit: Unit, price: UnitPrice) -> Prices {
        self.units[unit as usize] = Some(price);
        self
    }

    /// Whether one of these prices is in [`ROUNDED_PRICES`].
    pub fn rounded(&self) -> bool {
        self.priced_keys().any(|(_, price)| price.rounded)
    }

    /// The price of the unit `key` names (`input_mtok`, `web_searches_kcount`, ...).
    pub(crate) fn get_key(&self, key: &str) -> Option<&UnitPrice> {
        match Unit::of_key(key) {
            Some(unit) => self.get(unit),
            None => self
                .other
                .iter()
                .find(|(other, _)| other == key)
                .map(|(_, price)| price),
        }
    }

    /// These prices with the unit `key` names at `price`.
    pub(crate) fn with_key(mut self, key: &str, price: UnitPrice) -> Prices {
        if let Some(unit) = Unit::of_key(key) {
            return self.with(unit, price);
        }
        match self.other.iter_mut().find(|(other, _)| other == key) {
            Some((_, existing)) => *existing = price,
            None => self.other.push((key.to_owned(), price)),
        }
        self
    }

    /// Every price, by the data's price key (`input_mtok`, ..., `web_searches_kcount`).
    pub fn priced_keys(&self) -> impl Iterator<Item = (&str, &UnitPrice)> {
        Unit::ALL
            .into_iter()
            .filter_map(|unit| Some((unit.key(), self.get(unit)?)))
            .chain(self.other.iter().map(|(key, price)| (key.as_str(), price)))
    }

    /// The price keys of units a [`TokenUsage`] does not hold (`input_audio_mtok`,
    /// `web_searches_kcount`, ...): a call whose usage is a `TokenUsage` counts 0 of them.
    pub fn other_units(&self) -> impl Iterator<Item = &str> {
        self.other.iter().map(|(key, _)| key.as_str())
    }

    /// The cost of a usage read from a response body ([`crate::extract::Extracted::counts`]:
    /// each unit by its usage key, tokens or not), and the part for output units, priced by
    /// `genai-prices`' rule over every unit these prices have; `units` are the data's
    /// ([`Catalog::units`]). `Err` says why the usage cannot be priced (a count below the
    /// counts within it, or a priced unit left out while a part of it was reported).
    pub fn costs_of(
        &self,
        counts: &[(&str, crate::extract::Count)],
        units: &crate::units::Units,
    ) -> Result<(Usd, Usd), String> {
        crate::leaves::costs(self.priced_keys(), counts, units)
    }

    /// The exact cost of `usage`: each priced unit's count is what is left of it after its
    /// more specific priced units (`genai-prices`' rule), priced per million tokens at the
    /// tier the request's input reaches, plus the request fee.
    pub fn cost(&self, usage: &TokenUsage) -> Usd {
        picos_to_usd(self.picos(usage).0)
    }

    /// The part of [`Prices::cost`] that pays for output tokens (reasoning included).
    pub fn output_cost(&self, usage: &TokenUsage) -> Usd {
        picos_to_usd(self.picos(usage).1)
    }

    /// [`Prices::cost`] and [`Prices::output_cost`] of `usage`, computed once.
    pub fn costs(&self, usage: &TokenUsage) -> (Usd, Usd) {
        let (total, output) = self.picos(usage);
        (picos_to_usd(total), picos_to_usd(output))
    }

    /// Pico-dollars for the whole of `usage`, and for its output.
    fn picos(&self, usage: &TokenUsage) -> (u128, u128) {
        // Micro-dollars per million tokens times tokens: pico-dollars. A thousand requests at
        // micro-dollars: one request is micros * 1000 pico-dollars.
        let at = |unit: Unit, count: u64| {
            self.get(unit).map_or(0, |price| {
                u128::from(price.for_input(usage.input)) * u128::from(count)
            })
        };
        let priced = |unit: Unit, count: u64| if self.get(unit).is_some() { count } else { 0 };
        let cache_read = priced(Unit::CacheRead, usage.cache_read_input);
        // One-hour writes are part of the cache writes, as those are part of the input.
        let one_hour = priced(
            Unit::CacheWrite1h,
            usage.cache_write_1h_input.min(usage.cache_write_input),
        );
        let cache_write = priced(
            Unit::CacheWrite,
            usage.cache_write_input.saturating_sub(one_hour),
        );
        let reasoning = priced(Unit::Reasoning, usage.reasoning_output);
        let input = usage
            .input
            .saturating_sub(cache_read)
            .saturating_sub(cache_write)
            .saturating_sub(one_hour);
        let output = at(Unit::Output, usage.output.saturating_sub(reasoning))
            + at(Unit::Reasoning, reasoning);
        let total = at(Unit::Input, input)
            + at(Unit::CacheRead, cache_read)
            + at(Unit::CacheWrite, cache_write)
            + at(Unit::CacheWrite1h, one_hour)
            + output
            + at(Unit::Requests, 1) * 1_000;
        (total, output)
    }

    /// Whether these prices price a flujo call: they price one of its units, or they price
    /// nothing at all (the data's way to say a model is free, e.g. one included in a
    /// subscription). Prices only for units flujo's usage cannot report (audio hours,
    /// images) do not: such a call is unpriced, never a silent $0.
    pub fn prices_calls(&self) -> bool {
        self.units.iter().any(Option::is_some) || self.other.is_empty()
    }
}

/// When a model's prices apply.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Constraint {
    /// From this date (UTC) on.
    StartDate(Date),
    /// Every day between these times (UTC; the window may cross midnight).
    TimeOfDay {
        /// Start of the window.
        start: Time,
        /// End of the window (excluded).
        end: Time,
    },
}

impl Constraint {
    fn active(&self, at: OffsetDateTime) -> bool {
        let at = at.to_offset(time::UtcOffset::UTC);
        match self {
            Constraint::StartDate(date) => at.date() >= *date,
            Constraint::TimeOfDay { start, end } => {
                let now = at.time();
                if end < start {
                    now >= *start || now < *end
                } else {
                    *start <= now && now < *end
                }
            }
        }
    }
}

/// A model of the data: its id, match rule and prices.
#[derive(Debug)]
pub struct Model {
    /// The data's id, e.g. `gpt-4o-mini`.
    pub id: String,
    rule: Clause,
    /// Prices, each with its constraint (`None`: always); the last active one applies, the
    /// first when none is.
    prices: Vec<(Option<Constraint>, Prices)>,
    /// Prices a request context selects (batch processing, a service tier), each replacing
    /// the prices it names.
    variants: Vec<Variant>,
}

/// Prices selected by exact request-context values (`processing = batch`,
/// `service_tier = flex`), in force under their constraint.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Variant {
    when: Vec<(String, String)>,
    constraint: Option<Constraint>,
    prices: Prices,
}

impl Variant {
    /// `prices` for requests whose context has every pair of `when`.
    pub(crate) fn new(when: Vec<(String, String)>, prices: Prices) -> Variant {
        Variant {
            when,
            constraint: None,
            prices,
        }
    }
}

/// `standard` with each price the first variant matching `context` at `at` names: how
/// `genai-prices` resolves variants, for the data's models and override rows alike.
pub(crate) fn with_variants<'a>(
    standard: &'a Prices,
    variants: &[Variant],
    at: OffsetDateTime,
    context: &[(&str, &str)],
) -> Cow<'a, Prices> {
    let mut resolved = Cow::Borrowed(standard);
    if context.is_empty() {
        return resolved;
    }
    let mut replaced = [false; Unit::ALL.len()];
    let mut replaced_other: Vec<String> = Vec::new();
    for variant in variants {
        let applies = variant.constraint.as_ref().is_none_or(|c| c.active(at))
            && variant
                .when
                .iter()
                .all(|(key, value)| context.iter().any(|(k, v)| k == key && v == value));
        if !applies {
            continue;
        }
        // The first variant to name a price sets it.
        for unit in Unit::ALL {
            if let Some(price) = variant.prices.get(unit)
                && !replaced[unit as usize]
            {
                resolved.to_mut().units[unit as usize] = Some(price.clone());
                replaced[unit as usize] = true;
            }
        }
        for (key, price) in &variant.prices.other {
            if replaced_other.contains(key) {
                continue;
            }
            let other = &mut resolved.to_mut().other;
            match other.iter_mut().find(|(k, _)| k == key) {
                Some((_, existing)) => *existing = price.clone(),
                None => other.push((key.clone(), price.clone())),
            }
            replaced_other.push(key.clone());
        }
    }
    resolved
}

impl Model {
    /// The prices in force at `at` (a `SystemTime` or a `time::OffsetDateTime`).
    pub fn prices_at(&self, at: impl Into<OffsetDateTime>) -> &Prices {
        let at = at.into();
        self.prices
            .iter()
            .rev()
            .find(|(constraint, _)| constraint.as_ref().is_none_or(|c| c.active(at)))
            .or(self.prices.first())
            .map(|(_, prices)| prices)
            .unwrap_or(&NO_PRICES)
    }

    /// The prices in force at `at` for a request whose context is `context` (pairs such as
    /// `("service_tier", "flex")` or `("processing", "batch")`): each price the first variant
    /// that matches the context names replaces the standard one, as `genai-prices` resolves
    /// them. Without a matching variant, [`Model::prices_at`].
    pub fn prices_for(
        &self,
        at: impl Into<OffsetDateTime>,
        context: &[(&str, &str)],
    ) -> Cow<'_, Prices> {
        let at = at.into();
        let standard = self.prices_at(at);
        // The common case, decided before the call: through it, about 100 more instructions
        // per model call (the guard's model_call).
        if context.is_empty() {
            return Cow::Borrowed(standard);
        }
        with_variants(standard, &self.variants, at, context)
    }

    /// Whether `model` (lower case) is this model.
    pub fn matches(&self, model: &str) -> bool {
        self.rule.matches(model)
    }
}

static NO_PRICES: Prices = Prices {
    units: [const { None }; Unit::ALL.len()],
    other: Vec::new(),
};

/// A provider of the data.
#[derive(Debug)]
pub struct Provider {
    /// The data's id, e.g. `openai`, `aws`, `google`.
    pub id: String,
    /// Its name, e.g. `OpenAI`.
    pub name: String,
    model_rule: Option<Clause>,
    provider_rule: Option<Clause>,
    fallbacks: Vec<String>,
    /// How its APIs report usage, one extractor per API flavor, in the data's order.
    pub extractors: Vec<Extractor>,
    /// Its models, in the data's order (the first that matches a name is the model).
    pub models: Vec<Model>,
}

/// The whole data: providers in the data's order.
#[derive(Debug)]
pub struct Catalog {
    /// The `genai-prices` version the data states.
    pub version: String,
    /// The providers.
    pub providers: Vec<Provider>,
    /// The units usage is counted and priced in (data without them, such as an upstream
    /// `data.json`, uses the shipped data's).
    pub units: Units,
}

/// The shipped data's units, for data that does not state its own and for price files' rows:
/// read from the shipped data once per process.
pub(crate) fn shipped_units() -> &'static Units {
    #[derive(Deserialize)]
    struct OnlyUnits {
        units: BTreeMap<String, RawUnit>,
    }
    static UNITS: std::sync::LazyLock<Units> = std::sync::LazyLock::new(|| {
        // The shipped data is tested to read; were it not to, no unit is known and no usage
        // is read from bodies (said where a body is read), never a panic.
        serde_json::from_str::<OnlyUnits>(GENAI_PRICES_JSON)
            .map(|only| crate::units::build(only.units))
            .unwrap_or_default()
    });
    &UNITS
}

impl Catalog {
    /// The data shipped with flujo.
    pub fn shipped() -> Result<Catalog, PricingError> {
        Catalog::parse(GENAI_PRICES_JSON)
    }

    /// Reads a data file in `genai-prices`' JSON format (a newer release's `data.json`, say),
    /// within [`crate::MAX_PRICE_FILE_BYTES`]; an error names the file and what in it cannot
    /// be used.
    pub fn read_file(path: &std::path::Path) -> Result<Catalog, PricingError> {
        let text = crate::file::read_price_file(path)?;
        Catalog::parse(&text).map_err(|error| match error {
            PricingError::File { line, message, .. } => PricingError::File {
                file: path.display().to_string(),
                line,
                message,
            },
            other => other,
        })
    }

    /// No prices at all.
    pub fn empty() -> Catalog {
        Catalog {
            version: "empty".to_owned(),
            providers: Vec::new(),
            units: shipped_units().clone(),
        }
    }

    /// Reads data in `genai-prices`' JSON format; an error names the provider, model and
    /// price it cannot use.
    pub fn parse(text: &str) -> Result<Catalog, PricingError> {
        let raw: RawData = serde_json::from_str(text).map_err(|error| PricingError::File {
            file: "genai-prices data".to_owned(),
            line: error.line(),
            message: error.to_string(),
        })?;
        let units = raw
            .units
            .map_or_else(|| shipped_units().clone(), crate::units::build);
        let providers = raw
            .providers
            .into_iter()
            .map(|provider| provider.build(&units))
            .collect::<Result<_, _>>()
            .map_err(|error| at_line(error, text))?;
        Ok(Catalog {
            version: raw
                .genai_prices_version
                .unwrap_or_else(|| "unversioned".to_owned()),
            providers,
            units,
        })
    }

    /// The provider and model `model` names, as the `genai-prices` package finds them: with a
    /// `provider` (its id, or a name its rule matches, e.g. `bedrock`), in that provider;
    /// without, in the first provider whose model rule matches the name. A model is the
    /// provider's first that matches (then its fallback providers', then the name with a
    /// compact date `-20251211` written `-2025-12-11`).
    pub fn find(&self, model: &str, provider: Option<&str>) -> Option<(&Provider, &Model)> {
        let found = self.locate(model, provider)?;
        Some(self.at(found))
    }

    /// Where [`Catalog::find`] finds `model`: its provider (the one asked) and the model in
    /// the provider that holds it (the asked one, or a fallback of it).
    pub fn locate(&self, model: &str, provider: Option<&str>) -> Option<ModelIndex> {
        let model = model.trim().to_lowercase();
        let asked = match provider {
            Some(id) => self.provider_named(id)?,
            None => self.providers.iter().position(|p| {
                p.model_rule
                    .as_ref()
                    .is_some_and(|rule| rule.matches(&model))
            })?,
        };
        let (holder, index) = self.model_in(asked, &model, true).or_else(|| {
            let dashed = dashed_date(&model)?;
            self.model_in(asked, &dashed, true)
        })?;
        Some(ModelIndex {
            provider: asked,
            holder,
            model: index,
        })
    }

    /// A model named without its provider, as flujo looks it up: by `genai-prices`' own rule
    /// ([`Catalog::locate`] without a provider), else in the first provider that has a model
    /// of that name (a Bedrock id such as `us.anthropic.claude-sonnet-4-20250514-v1:0` is
    /// AWS's, though the name says `claude`), else the same for the name without its
    /// decorations ([`crate::name_candidates`]: router prefixes, `-latest`, ...).
    pub fn lookup(&self, model: &str) -> Option<ModelIndex> {
        crate::names::name_candidates(model)
            .iter()
            .find_map(|name| self.locate(name, None).or_else(|| self.any_provider(name)))
    }

    fn any_provider(&self, model: &str) -> Option<ModelIndex> {
        (0..self.providers.len()).find_map(|provider| {
            let (holder, model) = self.model_in(provider, model, false)?;
            Some(ModelIndex {
                provider,
                holder,
                model,
            })
        })
    }

    /// The prices of the model at `index` at `at` for a request of `context` (see
    /// [`Model::prices_for`]); a model found in a fallback provider has no variants of the
    /// provider asked, so the context selects nothing there (as in `genai-prices`).
    pub fn prices_for(
        &self,
        index: ModelIndex,
        at: impl Into<OffsetDateTime>,
        context: &[(&str, &str)],
    ) -> Cow<'_, Prices> {
        let (_, model) = self.at(index);
        if index.provider == index.holder {
            model.prices_for(at, context)
        } else {
            Cow::Borrowed(model.prices_at(at))
        }
    }

    /// The provider asked and the model at `index`.
    pub fn at(&self, index: ModelIndex) -> (&Provider, &Model) {
        (
            &self.providers[index.provider],
            &self.providers[index.holder].models[index.model],
        )
    }

    fn provider_named(&self, id: &str) -> Option<usize> {
        let id = id.trim();
        // The ids are lower case: most names are found without lowering them.
        if let Some(found) = self.providers.iter().position(|p| p.id == id) {
            return Some(found);
        }
        let id = id.to_lowercase();
        self.providers.iter().position(|p| p.id == id).or_else(|| {
            self.providers.iter().position(|p| {
                p.provider_rule
                    .as_ref()
                    .is_some_and(|rule| rule.matches(&id))
            })
        })
    }

    /// The provider holding `model` (`provider`, or one step only to a fallback of it) and
    /// the model's index there.
    fn model_in(&self, provider: usize, model: &str, fall_back: bool) -> Option<(usize, usize)> {
        let models = &self.providers[provider].models;
        if let Some(index) = models.iter().position(|m| m.matches(model)) {
            return Some((provider, index));
        }
        if !fall_back {
            return None;
        }
        self.providers[provider].fallbacks.iter().find_map(|id| {
            let fallback = self.providers.iter().position(|p| &p.id == id)?;
            self.model_in(fallback, model, false)
        })
    }

    /// The usage `body` (a provider's response, as JSON) reports, read by `provider`'s
    /// extractor for `flavor`; without a flavor, by the extractor that reads the most of it
    /// (the first in the data's order of those that read as much: xAI's `chat` reads the
    /// reasoning tokens of a chat completion that its `default` reads past). `provider` is a
    /// provider id of the data or a name its rule matches (`bedrock` is `aws`).
    ///
    /// ```
    /// use flujo_pricing::genai::Catalog;
    ///
    /// let catalog = Catalog::shipped().unwrap();
    /// let body = serde_json::json!({
    ///     "modelVersion": "gemini-2.5-flash",
    ///     "usageMetadata": {"promptTokenCount": 1200, "candidatesTokenCount": 300,
    ///                       "thoughtsTokenCount": 500, "cachedContentTokenCount": 1000}
    /// });
    /// let read = catalog.extract("google", None, &body).unwrap();
    /// assert_eq!(read.flavor, "default");
    /// assert_eq!(read.model, Some("gemini-2.5-flash"));
    /// let usage = read.token_usage();
    /// // Gemini's candidates exclude the thoughts, both billed as output.
    /// assert_eq!((usage.input, usage.output, usage.reasoning_output), (1200, 800, 500));
    /// assert_eq!(usage.cache_read_input, 1000);
    /// ```
    pub fn extract<'c, 'v>(
        &'c self,
        provider: &str,
        flavor: Option<&str>,
        body: &'v serde_json::Value,
    ) -> Result<Extracted<'c, 'v>, ExtractError> {
        let Some(index) = self.provider_named(provider) else {
            return Err(ExtractError(format!(
                "no provider `{provider}` in the price data"
            )));
        };
        let provider = &self.providers[index];
        let flavors = || {
            provider
                .extractors
                .iter()
                .map(|e| e.flavor.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        };
        if provider.extractors.is_empty() {
            return Err(ExtractError(format!(
                "the price data has no usage extractor for provider `{}`",
                provider.id
            )));
        }
        match flavor {
            Some(flavor) => match provider.extractors.iter().find(|e| e.flavor == flavor) {
                Some(extractor) => extractor.extract(body),
                None => Err(ExtractError(format!(
                    "provider `{}` has no API flavor `{flavor}`; it has: {}",
                    provider.id,
                    flavors()
                ))),
            },
            None => {
                let mut errors = Vec::new();
                let mut best: Option<Extracted<'c, 'v>> = None;
                for extractor in &provider.extractors {
                    match extractor.extract(body) {
                        Ok(read)
                            if best
                                .as_ref()
                                .is_none_or(|b| read.paths_read() > b.paths_read()) =>
                        {
                            best = Some(read);
                        }
                        Ok(_) => {}
                        Err(error) => errors.push(format!("{}: {error}", extractor.flavor)),
                    }
                }
                best.ok_or_else(|| {
                    ExtractError(format!(
                        "no API flavor of provider `{}` reads this body ({})",
                        provider.id,
                        errors.join("; ")
                    ))
                })
            }
        }
    }

    /// How many models the data prices.
    pub fn model_count(&self) -> usize {
        self.providers.iter().map(|p| p.models.len()).sum()
    }
}

/// `error` with the line of the model (else the provider) it names: the line where that id
/// first stands quoted in `text`.
fn at_line(error: PricingError, text: &str) -> PricingError {
    let PricingError::File {
        file,
        line: 0,
        message,
    } = error
    else {
        return error;
    };
    let named = |label: &str| {
        let start = message.find(label)? + label.len();
        let rest = &message[start..];
        Some(rest[..rest.find([',', ':']).unwrap_or(rest.len())].to_owned())
    };
    let line = named("model ")
        .or_else(|| named("provider "))
        .and_then(|id| text.find(&format!("\"{id}\"")))
        .map_or(1, |offset| text[..offset].matches('\n').count() + 1);
    PricingError::File {
        file,
        line,
        message,
    }
}

/// Where a model is in a [`Catalog`] (see [`Catalog::locate`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ModelIndex {
    provider: usize,
    holder: usize,
    model: usize,
}

/// `name-20251211` as `name-2025-12-11` (a valid date only), when it ends so.
fn dashed_date(model: &str) -> Option<String> {
    let (head, digits) = model.rsplit_once('-')?;
    if digits.len() != 8 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let (year, rest) = digits.split_at(4);
    let (month, day) = rest.split_at(2);
    let month_number: u8 = month.parse().ok()?;
    Date::from_calendar_date(
        year.parse().ok()?,
        time::Month::try_from(month_number).ok()?,
        day.parse().ok()?,
    )
    .ok()?;
    Some(format!("{head}-{year}-{month}-{day}"))
}

#[derive(Deserialize)]
struct RawData<'a> {
    genai_prices_version: Option<String>,
    units: Option<BTreeMap<String, RawUnit>>,
    #[serde(borrow)]
    providers: Vec<RawProvider<'a>>,
}

#[derive(Deserialize)]
struct RawProvider<'a> {
    id: String,
    name: String,
    model_match: Option<RawClause>,
    provider_match: Option<RawClause>,
    #[serde(default)]
    fallback_model_providers: Vec<String>,
    #[serde(default)]
    extractors: Vec<RawExtractor>,
    #[serde(borrow)]
    models: Vec<RawModel<'a>>,
}

#[derive(Deserialize)]
struct RawModel<'a> {
    id: String,
    #[serde(rename = "match")]
    rule: RawClause,
    #[serde(borrow)]
    prices: &'a RawValue,
    #[serde(borrow, default)]
    price_variants: Vec<RawVariant<'a>>,
}

#[derive(Deserialize)]
struct RawVariant<'a> {
    when: std::collections::BTreeMap<String, String>,
    constraint: Option<RawConstraint>,
    #[serde(borrow)]
    prices: std::collections::BTreeMap<Cow<'a, str>, &'a RawValue>,
}

#[derive(Deserialize)]
struct RawConditional<'a> {
    constraint: Option<RawConstraint>,
    #[serde(borrow)]
    prices: std::collections::BTreeMap<Cow<'a, str>, &'a RawValue>,
}

#[derive(Deserialize)]
struct RawConstraint {
    start_date: Option<String>,
    start_time: Option<String>,
    end_time: Option<String>,
}

#[derive(Deserialize)]
struct RawTiered<'a> {
    #[serde(borrow)]
    base: &'a RawValue,
    #[serde(borrow)]
    tiers: Vec<RawTier<'a>>,
}

#[derive(Deserialize)]
struct RawTier<'a> {
    start: u64,
    #[serde(borrow)]
    price: &'a RawValue,
}

impl RawProvider<'_> {
    fn build(self, units: &Units) -> Result<Provider, PricingError> {
        let provider = self.id.clone();
        let at = || format!("provider {provider}");
        let models = self
            .models
            .into_iter()
            .map(|model| model.build(&provider))
            .collect::<Result<_, _>>()?;
        let extractors = self
            .extractors
            .into_iter()
            .map(|raw| raw.build(&at, units).map_err(data_error))
            .collect::<Result<_, _>>()?;
        Ok(Provider {
            extractors,
            model_rule: self.model_match.map(|c| c.build(&at)).transpose()?,
            provider_rule: self.provider_match.map(|c| c.build(&at)).transpose()?,
            fallbacks: self.fallback_model_providers,
            id: self.id,
            name: self.name,
            models,
        })
    }
}

impl RawModel<'_> {
    fn build(self, provider: &str) -> Result<Model, PricingError> {
        let id = self.id;
        let at = || format!("provider {provider}, model {id}");
        let invalid = |message: String| data_error(format!("{}: {message}", at()));
        let text = self.prices.get();
        let conditionals: Vec<RawConditional> = if text.trim_start().starts_with('[') {
            serde_json::from_str(text).map_err(|e| invalid(e.to_string()))?
        } else {
            vec![RawConditional {
                constraint: None,
                prices: serde_json::from_str(text).map_err(|e| invalid(e.to_string()))?,
            }]
        };
        let prices = conditionals
            .into_iter()
            .map(|conditional| {
                let constraint = conditional
                    .constraint
                    .map(|c| c.build(&invalid))
                    .transpose()?;
                Ok((constraint, prices_of(&conditional.prices, &at)?))
            })
            .collect::<Result<_, PricingError>>()?;
        let variants = self
            .price_variants
            .into_iter()
            .map(|variant| {
                Ok(Variant {
                    when: variant.when.into_iter().collect(),
                    constraint: variant.constraint.map(|c| c.build(&invalid)).transpose()?,
                    prices: prices_of(&variant.prices, &at)?,
                })
            })
            .collect::<Result<_, PricingError>>()?;
        Ok(Model {
            rule: self.rule.build(&at)?,
            prices,
            variants,
            id,
        })
    }
}

impl RawConstraint {
    fn build(self, invalid: &dyn Fn(String) -> PricingError) -> Result<Constraint, PricingError> {
        let date_format = time::macros::format_description!("[year]-[month]-[day]");
        let time_format =
            time::macros::format_description!("[hour]:[minute]:[second][optional [+00:00]]");
        match (self.start_date, self.start_time, self.end_time) {
            (Some(date), None, None) => Date::parse(&date, date_format)
                .map(Constraint::StartDate)
                .map_err(|e| invalid(format!("start_date {date:?}: {e}"))),
            (None, Some(start), Some(end)) => {
                let parse = |t: &str| {
                    Time::parse(t, time_format)
                        .map_err(|e| invalid(format!("time {t:?} (UTC times only): {e}")))
                };
                Ok(Constraint::TimeOfDay {
                    start: parse(&start)?,
                    end: parse(&end)?,
                })
            }
            _ => Err(invalid(
                "a constraint is a start_date, or a start_time and an end_time".to_owned(),
            )),
        }
    }
}

fn prices_of(
    raw: &std::collections::BTreeMap<Cow<'_, str>, &RawValue>,
    at: &dyn Fn() -> String,
) -> Result<Prices, PricingError> {
    let mut prices = Prices::default();
    for (key, value) in raw {
        let price = unit_price(value, &|| format!("{}, {key}", at()))?;
        match Unit::of_key(key) {
            Some(unit) => prices.units[unit as usize] = Some(price),
            None => prices.other.push((key.to_string(), price)),
        }
    }
    Ok(prices)
}

fn unit_price(value: &RawValue, at: &dyn Fn() -> String) -> Result<UnitPrice, PricingError> {
    let text = value.get().trim();
    if !text.starts_with('{') {
        let (base, rounded) = micros(text, at)?;
        return Ok(UnitPrice {
            base,
            tiers: Vec::new(),
            rounded,
        });
    }
    let tiered: RawTiered =
        serde_json::from_str(text).map_err(|e| data_error(format!("{}: {e}", at())))?;
    let (base, mut rounded) = micros(tiered.base.get().trim(), at)?;
    let mut tiers = Vec::with_capacity(tiered.tiers.len());
    for tier in &tiered.tiers {
        let (price, tier_rounded) = micros(tier.price.get().trim(), at)?;
        rounded |= tier_rounded;
        tiers.push((tier.start, price));
    }
    tiers.sort_by_key(|(start, _)| *start);
    Ok(UnitPrice {
        base,
        tiers,
        rounded,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_shipped_price_converts_exactly_or_is_listed() {
        let catalog = Catalog::shipped().expect("the shipped data reads");
        assert_eq!(catalog.version, GENAI_PRICES_VERSION);
        assert!(catalog.model_count() > 2_000, "{}", catalog.model_count());
        // Each listed rounding is still needed by the data (none is stale).
        for listed in ROUNDED_PRICES {
            assert!(
                GENAI_PRICES_JSON.contains(&format!(": {listed}")),
                "{listed} is no longer in the data"
            );
        }
    }

    #[test]
    fn the_token_units_are_units_of_the_shipped_data() {
        let catalog = Catalog::shipped().unwrap();
        for unit in crate::extract::TOKEN_UNITS {
            assert!(catalog.units.by_usage_key(unit).is_some(), "{unit}");
        }
    }

    #[test]
    fn names_as_applications_write_them_resolve_in_the_data() {
        let catalog = Catalog::shipped().unwrap();
        for (name, provider, model) in [
            ("gpt-4o-2024-08-06", "openai", "gpt-4o"),
            ("gpt-4.1-latest", "openai", "gpt-4.1"),
            ("openai/gpt-4.1", "openrouter", "openai/gpt-4.1"),
            (
                "claude-3-5-sonnet@20241022",
                "anthropic",
                "claude-3-5-sonnet",
            ),
            (
                "us.anthropic.claude-sonnet-4-20250514-v1:0",
                "aws",
                "regional.anthropic.claude-sonnet-4-20250514-v1:0",
            ),
            ("mistral-large-latest", "mistral", "mistral-large"),
            ("deepseek-chat", "deepseek", "deepseek-chat"),
        ] {
            let found = catalog.lookup(name).map(|index| catalog.at(index));
            let found = found.map(|(p, m)| (p.id.as_str(), m.id.as_str()));
            assert_eq!(found, Some((provider, model)), "{name}");
        }
        assert!(catalog.lookup("acme-unreleased-9000").is_none());
    }

    #[test]
    fn conversions_are_exact_noise_is_dropped_and_seventh_decimals_refused() {
        let at = || "test".to_owned();
        assert_eq!(micros("2.5", &at).unwrap(), (2_500_000, false));
        assert_eq!(micros("0.0375", &at).unwrap(), (37_500, false));
        assert_eq!(
            micros("0.18000000000000002", &at).unwrap(),
            (180_000, false)
        );
        assert_eq!(
            micros("1.0399999999999998", &at).unwrap(),
            (1_040_000, false)
        );
        assert_eq!(micros("0.0833333333333333", &at).unwrap(), (83_333, true));
        let error = micros("0.1234567", &at).unwrap_err().to_string();
        assert!(error.contains("more than 6 decimals"), "{error}");
        assert!(micros("-1", &at).is_err());
        assert!(micros("1e-3", &at).is_err());
    }

    #[test]
    fn a_model_without_prices_is_free_and_one_with_only_other_units_unpriced() {
        let catalog = Catalog::parse(
            r#"{"providers": [{"id": "p", "name": "P", "models": [
                {"id": "free", "match": {"equals": "free"}, "prices": {}},
                {"id": "audio", "match": {"equals": "audio"}, "prices": {"audio_hours": 0.36}},
                {"id": "fee", "match": {"equals": "fee"},
                 "prices": {"input_mtok": 1, "requests_kcount": 5}}]}]}"#,
        )
        .unwrap();
        let prices = |model: &str| {
            let (_, found) = catalog.find(model, Some("p")).unwrap();
            found.prices_at(std::time::SystemTime::now()).clone()
        };
        let usage = TokenUsage::new(1_000_000, 0);
        assert!(prices("free").prices_calls());
        assert_eq!(prices("free").cost(&usage), Usd::ZERO);
        assert!(!prices("audio").prices_calls(), "never a silent $0");
        // $1 for the tokens and $5 per thousand requests: half a cent for this one.
        assert_eq!(prices("fee").cost(&usage), Usd::from_nanos(1_005_000_000));
    }

    #[test]
    fn tiers_reprice_the_whole_request_above_their_start() {
        let price = UnitPrice {
            base: 3_000_000,
            tiers: vec![(200_000, 6_000_000)],
            rounded: false,
        };
        assert_eq!(price.for_input(200_000), 3_000_000);
        assert_eq!(price.for_input(200_001), 6_000_000);
    }

    #[test]
    fn time_windows_may_cross_midnight() {
        let window = Constraint::TimeOfDay {
            start: Time::from_hms(16, 30, 0).unwrap(),
            end: Time::from_hms(0, 30, 0).unwrap(),
        };
        let at = |h, m| {
            Date::from_calendar_date(2026, time::Month::January, 2)
                .unwrap()
                .with_hms(h, m, 0)
                .unwrap()
                .assume_utc()
        };
        assert!(window.active(at(23, 0)));
        assert!(window.active(at(0, 10)));
        assert!(!window.active(at(0, 30)));
        assert!(!window.active(at(12, 0)));
    }

    #[test]
    fn compact_dates_are_dashed_when_they_are_dates() {
        assert_eq!(
            dashed_date("gpt-5.2-20251211").as_deref(),
            Some("gpt-5.2-2025-12-11")
        );
        assert_eq!(dashed_date("gpt-5.2-20251311"), None);
        assert_eq!(dashed_date("gpt-4o"), None);
    }
}
