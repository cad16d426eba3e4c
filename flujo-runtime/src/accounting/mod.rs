//! Accounting: the prices in force (the `genai-prices` data, a price file and rows set in
//! code over it) and the budgets calls are admitted against (the daily and monthly limits,
//! strict pricing).

pub(crate) mod budget;
pub(crate) mod pricing;
mod utc;
