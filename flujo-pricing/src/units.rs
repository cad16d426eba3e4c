//! The units usage is counted and priced in, as the data declares them (`genai-prices`'
//! `data_units.py`): each has a usage key (`cache_read_tokens`), a price key
//! (`cache_read_mtok`), how many units one price is for, and dimensions that place it under
//! the more general units it is part of (cache reads are input tokens).

use std::collections::BTreeMap;

use serde::Deserialize;

/// A unit of the data.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnitDef {
    /// Its name in a usage: `input_tokens`, `web_searches`, `audio_seconds`, ...
    pub usage_key: String,
    /// Its name in prices: `input_mtok`, `web_searches_kcount`, `audio_hours`, ...
    pub price_key: String,
    /// How many of it one price is for (a million tokens, a thousand searches, 3,600 seconds).
    pub per: u64,
    /// What it is (`family`, `direction`, `modality`, ...): a unit is part of every unit whose
    /// dimensions are a subset of its own.
    pub dimensions: BTreeMap<String, String>,
}

impl UnitDef {
    /// Whether this unit is `other` or part of it (`other`'s dimensions are a subset).
    pub fn is_within(&self, other: &UnitDef) -> bool {
        other
            .dimensions
            .iter()
            .all(|(key, value)| self.dimensions.get(key) == Some(value))
    }
}

/// Every unit of the data, by usage key.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Units(Vec<UnitDef>);

/// The unit a request fee is priced in: not a count a response reports.
const REQUESTS: &str = "requests";

impl Units {
    /// The unit a usage names, if the data knows it.
    pub fn by_usage_key(&self, key: &str) -> Option<&UnitDef> {
        self.0.iter().find(|unit| unit.usage_key == key)
    }

    /// The unit a price names, if the data knows it.
    pub fn by_price_key(&self, key: &str) -> Option<&UnitDef> {
        self.0.iter().find(|unit| unit.price_key == key)
    }

    /// Whether a response may report `key` (every unit but the request fee's).
    pub fn is_reported(&self, key: &str) -> bool {
        key != REQUESTS && self.by_usage_key(key).is_some()
    }

    /// Every unit.
    pub fn iter(&self) -> impl Iterator<Item = &UnitDef> {
        self.0.iter()
    }
}

/// A unit as the data writes it.
#[derive(Deserialize)]
pub(crate) struct RawUnit {
    per: u64,
    price_key: String,
    dimensions: BTreeMap<String, String>,
}

/// The units of `raw` (the data's `units`, by usage key).
pub(crate) fn build(raw: BTreeMap<String, RawUnit>) -> Units {
    Units(
        raw.into_iter()
            .map(|(usage_key, unit)| UnitDef {
                usage_key,
                price_key: unit.price_key,
                per: unit.per,
                dimensions: unit.dimensions,
            })
            .collect(),
    )
}
