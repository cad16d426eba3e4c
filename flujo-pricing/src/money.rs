//! Exact money: integer nano-dollars for amounts, integer micro-dollars per million tokens
//! for prices. Nothing here is accumulated in floating point.

use std::fmt;
use std::iter::Sum;
use std::ops::{Add, AddAssign};

/// An amount of US dollars, kept as a whole number of nano-dollars (10⁻⁹ USD).
///
/// A call's cost is computed exactly from integer prices and rounded once, to the nearest
/// nano-dollar; totals add these integers, so a total always equals the sum of its records.
/// `Display` rounds to the cent (`$12.35`); ask for more digits with a precision:
///
/// ```
/// use flujo::Usd;
///
/// let cost = Usd::from_nanos(12_345_678);
/// assert_eq!(cost.to_string(), "$0.01");
/// assert_eq!(format!("{cost:.6}"), "$0.012346");
/// assert_eq!(Usd::parse("0.25")?.nanos(), 250_000_000);
/// # Ok::<(), flujo::cost::PricingError>(())
/// ```
#[derive(Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Usd(u64);

const NANOS_PER_USD: u64 = 1_000_000_000;

impl Usd {
    /// No money.
    pub const ZERO: Usd = Usd(0);

    /// An amount of `nanos` nano-dollars.
    pub const fn from_nanos(nanos: u64) -> Usd {
        Usd(nanos)
    }

    /// The amount in nano-dollars.
    pub const fn nanos(self) -> u64 {
        self.0
    }

    /// Parses a decimal amount such as `"12.50"` exactly (at most 9 decimal places, no sign).
    pub fn parse(text: &str) -> Result<Usd, PricingError> {
        let nanos = parse_decimal(text.trim(), 9).ok_or_else(|| PricingError::InvalidAmount {
            value: text.to_owned(),
            expected: "a non-negative decimal number of dollars with at most 9 decimal places, e.g. 12.50",
        })?;
        Ok(Usd(nanos))
    }

    /// The amount as a float, for metrics and span attributes only (never for sums).
    pub fn as_f64(self) -> f64 {
        self.0 as f64 / NANOS_PER_USD as f64
    }

    /// `self + other`, saturating at the largest amount.
    pub const fn saturating_add(self, other: Usd) -> Usd {
        Usd(self.0.saturating_add(other.0))
    }
}

impl Add for Usd {
    type Output = Usd;
    fn add(self, other: Usd) -> Usd {
        self.saturating_add(other)
    }
}

impl AddAssign for Usd {
    fn add_assign(&mut self, other: Usd) {
        *self = *self + other;
    }
}

impl Sum for Usd {
    fn sum<I: Iterator<Item = Usd>>(iter: I) -> Usd {
        iter.fold(Usd::ZERO, Add::add)
    }
}

impl<'a> Sum<&'a Usd> for Usd {
    fn sum<I: Iterator<Item = &'a Usd>>(iter: I) -> Usd {
        iter.copied().sum()
    }
}

impl fmt::Display for Usd {
    /// `$` and the amount rounded half-up to `precision` decimals (at most 9). Without a
    /// precision: cents from one cent up, and two significant digits below (`$0.0019`), so a
    /// cheap call never reads as `$0.00`. Width, fill and alignment apply as for any value
    /// (right-aligned by default, like numbers).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let decimals = f
            .precision()
            .map_or_else(|| self.meaningful_decimals(), |p| p.min(9)) as u32;
        let unit = 10u64.pow(9 - decimals);
        let rounded = self.0 / unit + u64::from(self.0 % unit >= unit.div_ceil(2) && unit > 1);
        let scale = 10u64.pow(decimals);
        let text = if decimals == 0 {
            format!("${rounded}")
        } else {
            format!(
                "${}.{:0width$}",
                rounded / scale,
                rounded % scale,
                width = decimals as usize
            )
        };
        pad(f, &text)
    }
}

impl Usd {
    /// Decimals that show an amount meaningfully: 2 from a cent up (and for zero), else as
    /// many as two significant digits need (at most 9).
    fn meaningful_decimals(self) -> usize {
        const CENT: u64 = 10_000_000;
        if self.0 == 0 || self.0 >= CENT {
            return 2;
        }
        let digits = self.0.ilog10() as usize + 1;
        (9 - digits + 2).min(9)
    }
}

/// Writes `text` with the formatter's width, fill and alignment (`pad` would also read the
/// precision, as a truncation).
fn pad(f: &mut fmt::Formatter<'_>, text: &str) -> fmt::Result {
    let width = f.width().unwrap_or(0);
    let len = text.chars().count();
    if len >= width {
        return f.write_str(text);
    }
    let space = width - len;
    let (before, after) = match f.align() {
        Some(fmt::Alignment::Left) => (0, space),
        Some(fmt::Alignment::Center) => (space / 2, space - space / 2),
        Some(fmt::Alignment::Right) | None => (space, 0),
    };
    let fill = f.fill();
    for _ in 0..before {
        f.write_fmt(format_args!("{fill}"))?;
    }
    f.write_str(text)?;
    for _ in 0..after {
        f.write_fmt(format_args!("{fill}"))?;
    }
    Ok(())
}

impl fmt::Debug for Usd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Usd({:.9})", self)
    }
}

/// The highest price flujo accepts, in USD per million tokens: about 160 times the highest
/// published one (o1-pro's $600/M output). With [`crate::MAX_TOKENS_PER_CALL`] it bounds what
/// one call can cost (about $2·10^8), so sums over many calls stay far from overflowing.
pub const MAX_USD_PER_MILLION_TOKENS: u64 = 100_000;

/// A price in US dollars per million tokens, kept as whole micro-dollars per million tokens
/// (that is, pico-dollars per token): every published price is a whole number of these.
#[derive(Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub struct PerMillionTokens(u64);

impl PerMillionTokens {
    /// Free.
    pub const ZERO: PerMillionTokens = PerMillionTokens(0);

    /// Parses a decimal price such as `"2.50"` exactly: at most 6 decimal places, from 0 to
    /// [`MAX_USD_PER_MILLION_TOKENS`].
    pub fn parse(text: &str) -> Result<PerMillionTokens, PricingError> {
        parse_decimal(text.trim(), 6)
            .filter(|micros| *micros <= MAX_USD_PER_MILLION_TOKENS * 1_000_000)
            .map(PerMillionTokens)
            .ok_or_else(|| PricingError::InvalidAmount {
                value: text.to_owned(),
                expected: "a price in USD per million tokens from 0 to 100000 with at most 6 decimal places, e.g. 2.50",
            })
    }

    /// `micros` micro-dollars per million tokens (pico-dollars per token).
    pub const fn from_micros(micros: u64) -> PerMillionTokens {
        PerMillionTokens(micros)
    }

    /// `dollars` per million tokens from a float, for callers that hold one: exact or
    /// refused. A value that is not within float noise of a whole micro-dollar (a seventh
    /// decimal), negative, not finite or above [`MAX_USD_PER_MILLION_TOKENS`] is an error;
    /// prefer [`PerMillionTokens::parse`].
    pub fn usd(dollars: f64) -> Result<PerMillionTokens, PricingError> {
        let invalid = || PricingError::InvalidAmount {
            value: dollars.to_string(),
            expected: "a price in USD per million tokens from 0 to 100000 with at most 6 decimal places, e.g. 2.5",
        };
        if !dollars.is_finite() || !(0.0..=MAX_USD_PER_MILLION_TOKENS as f64).contains(&dollars) {
            return Err(invalid());
        }
        let micros = dollars * 1e6;
        // Decimal prices are not exact binary fractions: accept what is within float noise of
        // a whole micro-dollar (a few units in the last place, relative to the magnitude),
        // refuse what carries a real seventh decimal at any magnitude.
        if (micros - micros.round()).abs() > (micros * 1e-12).max(1e-9) {
            return Err(invalid());
        }
        Ok(PerMillionTokens(micros.round() as u64))
    }

    /// Micro-dollars per million tokens (pico-dollars per token).
    pub const fn micros(self) -> u64 {
        self.0
    }
}

impl fmt::Display for PerMillionTokens {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = format!("{}.{:06}", self.0 / 1_000_000, self.0 % 1_000_000);
        let text = text.trim_end_matches('0').trim_end_matches('.');
        write!(f, "${text}/M")
    }
}

/// Rounds pico-dollars (half up) to nano-dollars.
pub(crate) fn picos_to_usd(picos: u128) -> Usd {
    Usd(u64::try_from((picos + 500) / 1000).unwrap_or(u64::MAX))
}

/// `digits[.fraction]` as an integer scaled by 10^`scale`; `None` if malformed or too precise.
pub(crate) fn parse_decimal(text: &str, scale: u32) -> Option<u64> {
    let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if whole.is_empty() && fraction.is_empty()
        || !digits(whole)
        || !digits(fraction)
        || fraction.len() > scale as usize
    {
        return None;
    }
    let whole: u64 = if whole.is_empty() {
        0
    } else {
        whole.parse().ok()?
    };
    let fraction_value: u64 = if fraction.is_empty() {
        0
    } else {
        fraction.parse::<u64>().ok()? * 10u64.pow(scale - fraction.len() as u32)
    };
    whole
        .checked_mul(10u64.pow(scale))?
        .checked_add(fraction_value)
}

/// Problems with prices, amounts and price files.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum PricingError {
    /// An amount or price that is not a valid number of dollars.
    #[error("invalid amount {value:?}: expected {expected}")]
    InvalidAmount {
        /// The value given.
        value: String,
        /// What is accepted.
        expected: &'static str,
    },
    /// A price file that cannot be used.
    #[error("price file {file}, line {line}: {message}")]
    File {
        /// The file (or `<built-in>`).
        file: String,
        /// 1-based line of the problem.
        line: usize,
        /// What is wrong, naming the field.
        message: String,
    },
    /// A price key that the `genai-prices` data does not have.
    #[error(
        "`{key}` is not a price key of the genai-prices data (did you mean `{nearest}`? the keys \
         are the data's: `input_audio_mtok`, `web_searches_kcount`, `audio_hours`, ...)"
    )]
    UnknownPriceKey {
        /// The key given.
        key: String,
        /// The data's key nearest to it.
        nearest: String,
    },
    /// A price file that cannot be read.
    #[error("cannot read price file {file}: {reason}")]
    Read {
        /// The file.
        file: String,
        /// The I/O error.
        reason: String,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_rounds_half_up_to_the_precision() {
        // Below a cent, two significant digits: a cheap call is never shown as $0.00.
        assert_eq!(Usd::from_nanos(4_999_999).to_string(), "$0.0050");
        assert_eq!(Usd::from_nanos(1_900_000).to_string(), "$0.0019");
        assert_eq!(Usd::from_nanos(190_000).to_string(), "$0.00019");
        assert_eq!(Usd::from_nanos(1).to_string(), "$0.000000001");
        assert_eq!(Usd::ZERO.to_string(), "$0.00");
        assert_eq!(format!("{:.2}", Usd::from_nanos(5_000_000)), "$0.01");
        assert_eq!(Usd::from_nanos(1_234_567_891).to_string(), "$1.23");
        assert_eq!(format!("{:.9}", Usd::from_nanos(1)), "$0.000000001");
        assert_eq!(format!("{:.0}", Usd::from_nanos(1_500_000_000)), "$2");
        assert_eq!(format!("{:>8}", Usd::from_nanos(1_000_000_000)), "   $1.00");
        // Width, fill and alignment as for any value.
        assert_eq!(
            format!("{:<8}|", Usd::from_nanos(1_000_000_000)),
            "$1.00   |"
        );
        assert_eq!(
            format!("{:^9}", Usd::from_nanos(1_000_000_000)),
            "  $1.00  "
        );
        assert_eq!(
            format!("{:*>10.3}", Usd::from_nanos(1_500_000_000)),
            "****$1.500"
        );
    }

    #[test]
    fn parse_is_exact_and_strict() {
        assert_eq!(Usd::parse("12.5").unwrap().nanos(), 12_500_000_000);
        assert_eq!(Usd::parse(".000000001").unwrap().nanos(), 1);
        for bad in ["", ".", "-1", "1.0000000001", "1e3", "abc"] {
            assert!(Usd::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn prices_keep_six_decimals_exactly() {
        assert_eq!(PerMillionTokens::usd(0.0375).unwrap().micros(), 37_500);
        assert_eq!(PerMillionTokens::usd(2.5).unwrap().micros(), 2_500_000);
        assert_eq!(PerMillionTokens::usd(0.01875).unwrap().micros(), 18_750);
        assert!(PerMillionTokens::usd(0.0000001).is_err());
        // A seventh decimal is refused at every magnitude, not rounded away above $1/M.
        for seventh in [1.0000001, 2.5000001, 15.0000004, 1000.0000001] {
            assert!(PerMillionTokens::usd(seventh).is_err(), "{seventh}");
        }
        assert_eq!(
            PerMillionTokens::usd(15.000001).unwrap().micros(),
            15_000_001
        );
        assert!(PerMillionTokens::usd(-1.0).is_err());
        assert!(PerMillionTokens::usd(f64::NAN).is_err());
        assert_eq!(
            PerMillionTokens::usd(0.0375).unwrap().to_string(),
            "$0.0375/M"
        );
    }
}
