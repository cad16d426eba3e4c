//! Pricing any usage the data counts: token counts by modality, cache TTL and tool use, web
//! searches, pages, seconds, characters. `genai-prices`' rule, step for step
//! (`ModelPrice.calc_price` and `compute_leaf_values`): each priced unit is charged for what is
//! left of its count after the more specific priced units within it (cache reads out of
//! input, audio cache reads out of both); a unit priced but not reported counts 0, unless a
//! more specific unit within it was reported (then its own count is needed, and the call is
//! not priced); a count below what its parts add up to is an error, never a negative charge.
//!
//! Arithmetic is exact: counts in billionths (a reported fraction, such as audio seconds, is
//! read from its shortest decimal form to nine places) and prices in micro-dollars per `per`
//! units, summed over a common denominator and rounded half up to the nano-dollar once.

use crate::extract::Count;
use crate::money::Usd;
use crate::unit_price::UnitPrice;
use crate::units::{UnitDef, Units};
use crate::usage::MAX_TOKENS_PER_CALL;

/// Billionths of a unit in one unit.
const NANO: u128 = 1_000_000_000;
/// A multiple of every `per` of the data (10^6 tokens, 10^3 requests, 3,600 seconds, 10^9
/// pixels): money is summed in micro-dollars per `LCM` units times billionths of a unit.
const LCM: u128 = 9_000_000_000;
/// Those sums' units in one nano-dollar: a micro-dollar is 1,000 nano-dollars.
const PER_NANO_DOLLAR: u128 = LCM * NANO / 1_000;

/// A count in billionths of a unit.
fn billionths(count: Count) -> u128 {
    match count {
        Count::Whole(n) => u128::from(n) * NANO,
        Count::Fraction(f) => {
            // The shortest decimal that reads back as `f`, as Python's `repr` writes it.
            let text = format!("{f}");
            let (whole, fraction) = text.split_once('.').unwrap_or((&text, ""));
            let whole: u128 = whole.parse().unwrap_or(u128::MAX / (NANO * 1_000));
            let mut digits: String = fraction.chars().take(10).collect();
            while digits.len() < 10 {
                digits.push('0');
            }
            let tenths_of_nano: u128 = digits.parse().unwrap_or(0);
            whole.saturating_mul(NANO) + (tenths_of_nano + 5) / 10
        }
    }
}

/// The costs of `counts` (each reported unit by its usage key, e.g. `("input_tokens",
/// Count::Whole(1200))`) at the prices `priced` (each by its price key): the whole, and the
/// part for output units. `Err` says why the package would refuse to price them.
pub(crate) fn costs<'p>(
    priced: impl Iterator<Item = (&'p str, &'p UnitPrice)>,
    counts: &[(&str, Count)],
    units: &Units,
) -> Result<(Usd, Usd), String> {
    let reported: Vec<(&UnitDef, u128)> = counts
        .iter()
        .filter_map(|(key, count)| Some((units.by_usage_key(key)?, billionths(*count))))
        .collect();
    // The bound keeps every sum below in range: a larger count is a bug in reading usage.
    if let Some((unit, _)) = reported
        .iter()
        .find(|(_, count)| *count > u128::from(MAX_TOKENS_PER_CALL) * NANO)
    {
        return Err(format!(
            "{} is over flujo's bound of {MAX_TOKENS_PER_CALL} per call",
            unit.usage_key
        ));
    }
    let priced: Vec<(&UnitDef, &UnitPrice)> = priced
        .filter_map(|(key, price)| Some((units.by_price_key(key)?, price)))
        .collect();
    let value = |unit: &UnitDef| value_of(unit, &reported);

    let threshold = if priced.iter().any(|(_, price)| !price.tiers.is_empty()) {
        match units.by_usage_key("input_tokens") {
            Some(input) => value(input)?,
            None => 0,
        }
    } else {
        0
    };
    let mut leaves: Vec<(&UnitDef, &UnitPrice)> = priced
        .iter()
        .filter(|(unit, _)| unit.usage_key != "requests")
        .copied()
        .collect();
    leaves.sort_by(|(a, _), (b, _)| {
        b.dimensions
            .len()
            .cmp(&a.dimensions.len())
            .then_with(|| a.usage_key.cmp(&b.usage_key))
    });
    let mut computed: Vec<(&UnitDef, u128)> = Vec::with_capacity(leaves.len());
    let (mut total, mut output) = (0u128, 0u128);
    for (unit, price) in leaves {
        let within: u128 = computed
            .iter()
            .filter(|(other, _)| other.usage_key != unit.usage_key && other.is_within(unit))
            .map(|(_, leaf)| *leaf)
            .sum();
        let count = value(unit)?;
        let Some(leaf) = count.checked_sub(within) else {
            return Err(format!(
                "Invalid usage data: more-specific usage within {} totals more than its {}",
                unit.usage_key,
                count / NANO
            ));
        };
        computed.push((unit, leaf));
        let micros = u128::from(price.for_billionths(threshold));
        let charge = micros * leaf * (LCM / u128::from(unit.per.max(1)));
        total += charge;
        if unit.dimensions.get("direction").map(String::as_str) == Some("output") {
            output += charge;
        }
    }
    if let Some((unit, price)) = priced.iter().find(|(unit, _)| unit.usage_key == "requests") {
        total += u128::from(price.for_billionths(threshold)) * NANO * (LCM / u128::from(unit.per));
    }
    Ok((nano_dollars(total), nano_dollars(output)))
}

fn nano_dollars(sum: u128) -> Usd {
    Usd::from_nanos(
        u64::try_from((sum + PER_NANO_DOLLAR / 2) / PER_NANO_DOLLAR).unwrap_or(u64::MAX),
    )
}

/// The count of `unit`: reported, or 0 when nothing within it was (the package's
/// `Usage._infer_missing_value`).
fn value_of(unit: &UnitDef, reported: &[(&UnitDef, u128)]) -> Result<u128, String> {
    if let Some((_, count)) = reported.iter().find(|(r, _)| r.usage_key == unit.usage_key) {
        return Ok(*count);
    }
    let mut within: Vec<&str> = reported
        .iter()
        .filter(|(r, count)| *count > 0 && r.is_within(unit))
        .map(|(r, _)| r.usage_key.as_str())
        .collect();
    if !within.is_empty() {
        within.sort_unstable();
        return Err(format!(
            "Missing usage for {}: reported descendant usage keys {} require explicit {}",
            unit.usage_key,
            within.join(", "),
            unit.usage_key
        ));
    }
    let mut positive: Vec<&UnitDef> = reported
        .iter()
        .filter(|(_, count)| *count > 0)
        .map(|(r, _)| *r)
        .collect();
    positive.sort_by(|a, b| a.usage_key.cmp(&b.usage_key));
    for (i, left) in positive.iter().enumerate() {
        for right in &positive[i + 1..] {
            if !compatible(left, right) || left.is_within(right) || right.is_within(left) {
                continue;
            }
            let mut joined = left.dimensions.clone();
            joined.extend(right.dimensions.clone());
            if joined == unit.dimensions {
                return Err(format!(
                    "Missing usage for {}: reported overlapping usage keys {}, {} require explicit {}",
                    unit.usage_key, left.usage_key, right.usage_key, unit.usage_key
                ));
            }
        }
    }
    Ok(0)
}

/// No dimension the two share has different values.
fn compatible(a: &UnitDef, b: &UnitDef) -> bool {
    a.dimensions
        .iter()
        .all(|(key, value)| b.dimensions.get(key).is_none_or(|other| other == value))
}
