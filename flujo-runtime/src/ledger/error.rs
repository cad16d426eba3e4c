//! Errors of cost reports and the ledger.

use std::fmt;

use flujo_pricing::Date;

/// Errors from cost reports and the ledger.
#[derive(Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CostError {
    /// A date that is not `YYYY-MM-DD`.
    #[error("invalid {which} {value:?}: expected a date as YYYY-MM-DD, e.g. 2024-03-01")]
    InvalidDate {
        /// `start_date` or `end_date`.
        which: &'static str,
        /// The value given.
        value: String,
    },
    /// An end date before the start date.
    #[error("end_date {end} is before start_date {start}: the range is inclusive, start <= end")]
    ReversedRange {
        /// The start.
        start: Date,
        /// The end.
        end: Date,
    },
    /// The ledger file could not be opened, read or written.
    #[error("cost ledger {path}: {reason}")]
    Ledger {
        /// The file.
        path: String,
        /// What went wrong.
        reason: String,
    },
}

impl fmt::Debug for CostError {
    /// The message: a `main` returning this error prints what is wrong, not a struct dump.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}
