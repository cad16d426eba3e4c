//! The prices in force (the shipped `genai-prices` data, then a TOML price file and rows set
//! in code on top) and the per-thread cache that resolves a model name to its price and
//! provider once per day, so that a model call costs a hash lookup rather than a name match
//! and a lock.

use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::fmt;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, Mutex, RwLock};
use std::time::SystemTime;

use time::OffsetDateTime;

use flujo_pricing::extract::{Count, Extracted};
use flujo_pricing::genai::{Catalog, ModelIndex, Prices};
use flujo_pricing::{Date, ModelPrice, PriceTable, PricingError, TokenUsage, Usd, infer_provider};

/// The prices in force and whether an unpriced model is refused.
pub(crate) struct Pricing {
    /// Rows of a price file and of code: they win over the catalog.
    pub(crate) table: PriceTable,
    /// The `genai-prices` data.
    pub(crate) catalog: Arc<Catalog>,
    pub(crate) version: Arc<str>,
    pub(crate) strict: bool,
}

/// The shipped `genai-prices` data, read once. It is tested; a failure to read it would be a
/// bug in flujo, met with no catalog (every model unpriced, and said) rather than a panic.
static SHIPPED: LazyLock<Arc<Catalog>> = LazyLock::new(|| {
    Arc::new(Catalog::shipped().unwrap_or_else(|error| {
        tracing::error!(target: "flujo", %error, "flujo's shipped price data cannot be read; models are unpriced");
        Catalog::empty()
    }))
});

impl fmt::Debug for Pricing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pricing")
            .field("version", &self.version)
            .field("strict", &self.strict)
            .finish()
    }
}

static PRICING: LazyLock<RwLock<Arc<Pricing>>> = LazyLock::new(|| {
    RwLock::new(Arc::new(pricing_from(
        Arc::clone(&SHIPPED),
        PriceTable::empty(),
        false,
    )))
});

/// Bumped whenever the prices change: thread caches older than this are stale.
static GENERATION: AtomicU64 = AtomicU64::new(0);

/// Strict pricing, readable without the lock: every model call asks.
static STRICT: AtomicBool = AtomicBool::new(false);

/// Whether calls of unpriced models are refused.
pub(crate) fn strict() -> bool {
    STRICT.load(Ordering::Relaxed)
}

fn pricing_from(catalog: Arc<Catalog>, table: PriceTable, strict: bool) -> Pricing {
    // `genai-prices-0.2.3`, then the layers on top (`+prices.toml@2026-01-01`, `+code`).
    let layers = table
        .version()
        .strip_prefix("empty")
        .unwrap_or(table.version());
    Pricing {
        version: Arc::from(format!("genai-prices-{}{layers}", catalog.version)),
        catalog,
        table,
        strict,
    }
}

/// The prices flujo uses now: `genai-prices-{version}` of the shipped data, then the layers
/// on top of it (a price file `+prices.toml@{its version}`, rows set in code `+code`). Every
/// cost record carries it.
pub fn prices_version() -> String {
    pricing().version.to_string()
}

/// The prices in force (a read lock held for a pointer copy; see [`resolve`] for the cached
/// path model calls take).
pub(crate) fn pricing() -> Arc<Pricing> {
    Arc::clone(&PRICING.read().unwrap_or_else(|e| e.into_inner()))
}

fn update_pricing(
    update: impl FnOnce(&Pricing) -> Result<Pricing, PricingError>,
) -> Result<(), PricingError> {
    let mut current = PRICING.write().unwrap_or_else(|e| e.into_inner());
    *current = Arc::new(update(&current)?);
    STRICT.store(current.strict, Ordering::Relaxed);
    GENERATION.fetch_add(1, Ordering::Release);
    Ok(())
}

/// Rows set with [`set_model_price`]: they win over the `genai-prices` data and any price file,
/// whenever they were set (before `init_telemetry` too) and through every re-init.
static CODE_ROWS: Mutex<Vec<ModelPrice>> = Mutex::new(Vec::new());

/// Loads the prices at init: a `genai-prices` data file (else the shipped data), a TOML price
/// file on top, and the strict setting; rows set in code stay on top.
pub(crate) fn configure(
    data: Option<&Path>,
    file: Option<&Path>,
    strict: bool,
) -> Result<(), PricingError> {
    let catalog = match data {
        Some(data) => Arc::new(Catalog::read_file(data)?),
        None => Arc::clone(&SHIPPED),
    };
    update_pricing(|_| {
        let mut table = PriceTable::empty();
        if let Some(file) = file {
            table.merge_file(file)?;
        }
        for row in CODE_ROWS.lock().unwrap_or_else(|e| e.into_inner()).iter() {
            table.insert(row.clone());
        }
        Ok(pricing_from(catalog, table, strict))
    })
}

/// Adds or replaces a model's price for this process, on top of the `genai-prices` data and any
/// price file (also when set before `init_telemetry`, and through a re-init). Calls priced
/// afterwards use it.
///
/// ```
/// use flujo::cost::{ModelPrice, PerMillionTokens};
///
/// let price = ModelPrice::new(
///     "acme-llm",
///     PerMillionTokens::parse("0.5")?,
///     PerMillionTokens::parse("1.5")?,
/// )
/// .with_provider("acme");
/// flujo::cost::set_model_price(price);
/// # Ok::<(), flujo::cost::PricingError>(())
/// ```
pub fn set_model_price(price: ModelPrice) {
    CODE_ROWS
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push(price.clone());
    let _ = update_pricing(|current| {
        let mut table = current.table.clone();
        table.insert(price);
        Ok(pricing_from(
            Arc::clone(&current.catalog),
            table,
            current.strict,
        ))
    });
}

/// The prices flujo applies now to `model`, as a call names it: a row of a price file or of
/// code, else the `genai-prices` data (matched as calls are: dated snapshots, router and cloud
/// prefixes); `None` when the model has no price. Price a usage with [`Prices::cost`].
///
/// ```
/// use flujo::{TokenUsage, Usd};
///
/// let prices = flujo::cost::model_prices("gpt-4o-mini-2024-07-18").unwrap();
/// let usage = TokenUsage::new(1_000_000, 1_000_000);
/// // $0.15 per million input tokens, $0.60 per million output tokens.
/// assert_eq!(prices.cost(&usage), Usd::parse("0.75")?);
/// assert!(flujo::cost::model_prices("my-own-model").is_none());
/// # Ok::<(), flujo::cost::PricingError>(())
/// ```
pub fn model_prices(model: &str) -> Option<Prices> {
    let now = utc_time(SystemTime::now());
    resolve_uncached(model, None, now.date())
        .price
        .map(|price| price.prices_at(now))
}

pub(crate) use super::utc::{utc_date, utc_time};

/// Where a model's price comes from.
#[derive(Clone)]
enum Price {
    /// A row of a price file or of code.
    Row(Arc<ModelPrice>),
    /// A model of the `genai-prices` data.
    Catalog(Arc<Catalog>, ModelIndex),
}

impl Price {
    /// The standard prices (no request context) in force at `at`.
    fn prices_at(&self, at: OffsetDateTime) -> Prices {
        match self {
            Price::Row(row) => row.prices_for(at, &[]).into_owned(),
            Price::Catalog(catalog, index) => catalog.prices_for(*index, at, &[]).into_owned(),
        }
    }

    /// The cost of a usage read from a response body (every unit the data counts).
    fn costs_of(
        &self,
        counts: &[(&str, Count)],
        at: OffsetDateTime,
        context: &[(&str, &str)],
    ) -> Result<(Usd, Usd), String> {
        match self {
            Price::Row(row) => row.prices_for(at, context).costs_of(counts, &SHIPPED.units),
            Price::Catalog(catalog, index) => catalog
                .prices_for(*index, at, context)
                .costs_of(counts, &catalog.units),
        }
    }

    /// The cost of `usage` and the part of it that pays for output tokens.
    fn costs(
        &self,
        usage: &TokenUsage,
        at: OffsetDateTime,
        context: &[(&str, &str)],
    ) -> (Usd, Usd) {
        match self {
            // One engine: a row holds the data's price shape and is priced by its code.
            Price::Row(row) => row.prices_for(at, context).costs(usage),
            Price::Catalog(catalog, index) => catalog.prices_for(*index, at, context).costs(usage),
        }
    }
}

/// A model name resolved against the prices of one day.
#[derive(Clone)]
pub(crate) struct Resolved {
    price: Option<Price>,
    /// `gen_ai.provider.name`: the row's, else inferred from the name, else `unknown`.
    pub(crate) provider: &'static str,
    pub(crate) version: Arc<str>,
}

impl Resolved {
    /// The exact cost of `usage` for a call at `at` (time-of-day prices) served as `context`
    /// says (the data's price variants), and the part of it that pays for output tokens;
    /// `None` when the model has no price.
    pub(crate) fn costs(
        &self,
        usage: &TokenUsage,
        at: OffsetDateTime,
        context: &[(&str, &str)],
    ) -> Option<(Usd, Usd)> {
        self.price
            .as_ref()
            .map(|price| price.costs(usage, at, context))
    }

    /// [`Resolved::costs`] of a usage read from a response body, every unit of it:
    /// `Some(Err(why))` when the data's rule refuses to price it.
    pub(crate) fn costs_of(
        &self,
        counts: &[(&str, Count)],
        at: OffsetDateTime,
        context: &[(&str, &str)],
    ) -> Option<Result<(Usd, Usd), String>> {
        self.price
            .as_ref()
            .map(|price| price.costs_of(counts, at, context))
    }

    pub(crate) fn is_priced(&self) -> bool {
        self.price.is_some()
    }
}

/// What a response body says about its call, read by the price data's extractors.
#[derive(Debug, Default)]
pub(crate) struct BodyRead {
    /// The tokens, as a [`TokenUsage`] holds them; `None` when no flavor read the body.
    pub(crate) usage: Option<TokenUsage>,
    /// Every unit the body reported, when some are not tokens a `TokenUsage` holds (audio,
    /// web searches, ...) or a count had a fraction: the call is priced from these.
    pub(crate) units: Vec<(String, Count)>,
    /// The units it reported beyond tokens (with a count above 0).
    pub(crate) other_units: Vec<(String, Count)>,
    /// The model the response names.
    pub(crate) model: Option<String>,
}

/// The providers whose shapes a body read without a provider is tried against, most used
/// first: a call site that names its provider (or a model the data knows) reads with that
/// provider's flavors only.
const COMMON_PROVIDERS: [&str; 5] = ["openai", "anthropic", "google", "aws", "cohere"];

/// Reads `body` with the extractors of the call's provider: the call site's
/// (`gen_ai.provider.name`), else the model's in the data or a price row, else the one its
/// name implies; with `api`'s flavor when the call site names one. Without any, the common
/// providers' shapes are tried and the one that reads the most of the body wins.
pub(crate) fn read_body(
    body: &serde_json::Value,
    model: &str,
    site_provider: Option<&str>,
    api: Option<&str>,
) -> BodyRead {
    let pricing = pricing();
    let catalog = &pricing.catalog;
    // The model's price, resolved once a day per thread: no name matching per call.
    let resolved = (site_provider.is_none() && !model.is_empty())
        .then(|| resolve(model, None, utc_date(SystemTime::now())));
    let provider: Option<&str> = match (site_provider, &resolved) {
        (Some(name), _) => Some(genai_provider(name)),
        (None, Some(resolved)) => match &resolved.price {
            Some(Price::Catalog(catalog, index)) => Some(catalog.at(*index).0.id.as_str()),
            _ if resolved.provider != "unknown" => Some(genai_provider(resolved.provider)),
            _ => None,
        },
        (None, None) => None,
    };
    let read = match provider {
        Some(provider) => catalog.extract(provider, api, body).ok(),
        None => COMMON_PROVIDERS
            .iter()
            .filter_map(|provider| catalog.extract(provider, api, body).ok())
            .fold(None, |best: Option<Extracted<'_, '_>>, read| match best {
                Some(best) if best.paths_read() >= read.paths_read() => Some(best),
                _ => Some(read),
            }),
    };
    let Some(read) = read else {
        return BodyRead::default();
    };
    let keep_units = read.other_units().next().is_some() || read.has_fraction();
    BodyRead {
        usage: Some(read.token_usage()),
        units: if keep_units {
            read.counts
                .iter()
                .map(|(unit, count)| ((*unit).to_owned(), *count))
                .collect()
        } else {
            Vec::new()
        },
        other_units: read
            .other_units()
            .map(|(unit, count)| (unit.to_owned(), count))
            .collect(),
        model: read.model.map(str::to_owned),
    }
}

#[derive(Default)]
struct ThreadCache {
    generation: u64,
    day: Option<Date>,
    /// By the call site's `provider`, then by model name (found without allocating a key).
    models: HashMap<Option<&'static str>, HashMap<String, Resolved>>,
    /// How many models are cached, over every provider.
    len: usize,
    /// The model resolved last: a thread that calls one model (the common case) finds it
    /// without hashing its name twice.
    last: Option<(Option<&'static str>, String, Resolved)>,
}

thread_local! {
    static CACHE: RefCell<ThreadCache> = RefCell::new(ThreadCache::default());
}

/// Models resolved per thread and day, at most (a cache, not a record: it is cleared when full).
const CACHED_MODELS: usize = 256;

/// `model` (of `provider`, when the call site names one) resolved against the prices in force
/// on `day`.
pub(crate) fn resolve(model: &str, provider: Option<&'static str>, day: Date) -> Resolved {
    let generation = GENERATION.load(Ordering::Acquire);
    let cached = CACHE.try_with(|cache| {
        let mut cache = cache.borrow_mut();
        if cache.generation != generation || cache.day != Some(day) || cache.len >= CACHED_MODELS {
            *cache = ThreadCache {
                generation,
                day: Some(day),
                ..ThreadCache::default()
            };
        }
        if let Some((_, _, resolved)) = cache
            .last
            .as_ref()
            .filter(|(last_provider, name, _)| *last_provider == provider && name == model)
        {
            return resolved.clone();
        }
        let resolved = match cache.models.get(&provider).and_then(|m| m.get(model)) {
            Some(resolved) => resolved.clone(),
            None => {
                let resolved = resolve_uncached(model, provider, day);
                cache.len += 1;
                cache
                    .models
                    .entry(provider)
                    .or_default()
                    .insert(model.to_owned(), resolved.clone());
                resolved
            }
        };
        // The name's buffer is reused: a thread alternating between models does not allocate.
        let mut name = cache
            .last
            .take()
            .map(|(_, name, _)| name)
            .unwrap_or_default();
        name.clear();
        name.push_str(model);
        cache.last = Some((provider, name, resolved.clone()));
        resolved
    });
    // The thread is exiting: resolve without the cache.
    cached.unwrap_or_else(|_| resolve_uncached(model, provider, day))
}

fn resolve_uncached(model: &str, site_provider: Option<&'static str>, day: Date) -> Resolved {
    let pricing = pricing();
    let row = pricing.table.lookup(model, day).cloned().map(Arc::new);
    let provider = row
        .as_ref()
        .and_then(|row| row.provider.as_deref())
        .map(intern)
        .or_else(|| pricing.table.provider_of(model).as_deref().map(intern))
        .or_else(|| infer_provider(model));
    let catalog = &pricing.catalog;
    let price = match row {
        Some(row) => Some(Price::Row(row)),
        None => site_provider
            .and_then(|name| catalog.locate(model, Some(genai_provider(name))))
            .or_else(|| catalog.lookup(model))
            .filter(|index| {
                let (_, found) = catalog.at(*index);
                found.prices_at(day.midnight().assume_utc()).prices_calls()
            })
            .map(|index| Price::Catalog(Arc::clone(catalog), index)),
    };
    let provider = provider
        .or_else(|| match &price {
            Some(Price::Catalog(catalog, index)) => Some(provider_name(&catalog.at(*index).0.id)),
            _ => None,
        })
        .unwrap_or("unknown");
    Resolved {
        price,
        provider,
        version: Arc::clone(&pricing.version),
    }
}

/// `gen_ai.provider.name`s and the `genai-prices` provider ids they stand for, where the two
/// spell a provider differently; the first name of an id is the one flujo reports.
const PROVIDER_NAMES: &[(&str, &str)] = &[
    ("aws.bedrock", "aws"),
    ("azure.ai.openai", "azure"),
    ("azure.ai.inference", "azure"),
    ("gcp.gemini", "google"),
    ("gcp.gen_ai", "google"),
    ("gcp.vertex_ai", "google"),
    ("mistral_ai", "mistral"),
    ("x_ai", "x-ai"),
    ("moonshot_ai", "moonshotai"),
];

/// The `genai-prices` provider of a `gen_ai.provider.name`.
fn genai_provider(name: &str) -> &str {
    PROVIDER_NAMES
        .iter()
        .find(|(gen_ai, _)| *gen_ai == name)
        .map_or(name, |(_, id)| id)
}

/// `gen_ai.provider.name` of a `genai-prices` provider id.
pub(crate) fn provider_name(id: &str) -> &'static str {
    PROVIDER_NAMES
        .iter()
        .find(|(_, genai)| *genai == id)
        .map_or_else(|| intern(id), |(gen_ai, _)| gen_ai)
}

/// Provider names live as long as the process: there are a handful of them.
fn intern(name: &str) -> &'static str {
    static NAMES: LazyLock<Mutex<HashSet<&'static str>>> = LazyLock::new(Mutex::default);
    let mut names = NAMES.lock().unwrap_or_else(|e| e.into_inner());
    match names.get(name) {
        Some(interned) => interned,
        None => {
            let interned: &'static str = Box::leak(name.to_owned().into_boxed_str());
            names.insert(interned);
            interned
        }
    }
}
