//! The price of one unit, flat or tiered by a request's input: what the data states, what a
//! price row states, and what pricing reads.

/// A price of one unit: flat, or replaced by a tier's once a request's input is above the
/// tier's start (the whole request is repriced, as providers do).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnitPrice {
    /// Micro-dollars per unit (per million tokens, per thousand requests) below every tier.
    pub base: u64,
    /// `(start, micro-dollars)`, by ascending start: the price when input tokens are above
    /// `start`.
    pub tiers: Vec<(u64, u64)>,
    /// The base or a tier is one of [`ROUNDED_PRICES`](crate::genai::ROUNDED_PRICES): rounded to the micro-dollar.
    pub rounded: bool,
}

impl UnitPrice {
    /// `micros` micro-dollars per unit (per million tokens, per thousand requests), untiered.
    pub const fn new(micros: u64) -> UnitPrice {
        UnitPrice {
            base: micros,
            tiers: Vec::new(),
            rounded: false,
        }
    }

    /// With `micros` for requests whose input tokens are above `start` (tiers kept in
    /// ascending order; a second price for the same start replaces the first).
    #[must_use]
    pub fn with_tier(mut self, start: u64, micros: u64) -> UnitPrice {
        self.tiers.retain(|(at, _)| *at != start);
        self.tiers.push((start, micros));
        self.tiers.sort_unstable();
        self
    }

    /// The price for a request with `input_tokens` of input.
    pub fn for_input(&self, input_tokens: u64) -> u64 {
        self.tiers
            .iter()
            .rev()
            .find(|(start, _)| input_tokens > *start)
            .map_or(self.base, |(_, price)| *price)
    }

    /// The price for a request with `input` billionths of an input token (a count read
    /// from a body may have a fraction).
    pub(crate) fn for_billionths(&self, input: u128) -> u64 {
        self.tiers
            .iter()
            .rev()
            .find(|(start, _)| input > u128::from(*start) * 1_000_000_000)
            .map_or(self.base, |(_, price)| *price)
    }
}
