//! Reading the ledger: `get_cost_report` over this process's ledger, and `CostLedger` over
//! any ledger file.

use flujo_pricing::Date;

use super::error::CostError;
use super::report::{CostReport, ReportDate};
#[cfg(durable_ledger)]
use super::{CostRecord, LedgerLocation};
use crate::accounting::pricing::utc_date;
use crate::ledger;

/// Today's date in UTC, the calendar the ledger uses: `get_cost_report(utc_today(), utc_today())`.
pub fn utc_today() -> Date {
    utc_date(std::time::SystemTime::now())
}

fn range(start: &impl ReportDate, end: &impl ReportDate) -> Result<(Date, Date), CostError> {
    let start = start.report_date("start_date")?;
    let end = end.report_date("end_date")?;
    if end < start {
        return Err(CostError::ReversedRange { start, end });
    }
    Ok((start, end))
}

/// `report`, saying which days it covers.
fn dated(mut report: CostReport, start: Date, end: Date) -> CostReport {
    report.start_date = Some(start);
    report.end_date = Some(end);
    report
}

/// The cost report of this process's ledger for the UTC days `start_date..=end_date`
/// (inclusive), as in the guide. With a durable ledger (`FLUJO_COST_LEDGER`) it covers every
/// process that wrote to it, summed in SQL; otherwise the calls of this process. It never
/// holds a lock that a call or the export worker needs while it reads.
///
/// ```
/// let report = flujo::cost::get_cost_report("2024-03-01", "2024-03-14")?;
/// println!("Total cost: {}", report.total_cost);
/// for (model, cost) in &report.cost_by_model {
///     println!("- {model}: {cost}");
/// }
/// assert!(flujo::cost::get_cost_report("2024-03-01", "March 14").is_err());
/// # Ok::<(), flujo::cost::CostError>(())
/// ```
pub fn get_cost_report(
    start_date: impl ReportDate,
    end_date: impl ReportDate,
) -> Result<CostReport, CostError> {
    let (start, end) = range(&start_date, &end_date)?;
    // Records still queued for the export worker belong in the report.
    crate::collect::worker::flush(std::time::Duration::from_secs(10));
    Ok(dated(ledger::report_between(start, end)?, start, end))
}

/// A durable ledger opened for reading, e.g. by the `flujo cost` CLI or a monthly job in
/// another process: a SQLite file (feature `sqlite`) or a PostgreSQL database (feature
/// `postgres`). Its `Debug` never shows a database password.
#[cfg(durable_ledger)]
#[derive(Clone, Debug)]
pub struct CostLedger {
    location: LedgerLocation,
}

#[cfg(durable_ledger)]
impl CostLedger {
    /// Opens the ledger at `location`, which must hold one: a SQLite file's path, or a
    /// `postgres://user:password@host:port/database` URL.
    ///
    /// ```no_run
    /// let ledger = flujo::cost::CostLedger::open("postgres://flujo@db.internal/costs")?;
    /// let march = ledger.report("2026-03-01", "2026-03-31")?;
    /// println!("{}", march.total_cost);
    /// # Ok::<(), flujo::cost::CostError>(())
    /// ```
    pub fn open(location: impl Into<LedgerLocation>) -> Result<CostLedger, CostError> {
        let location = location.into();
        if let Some(refused) = location.refusal() {
            return Err(refused);
        }
        if !location.is_built() {
            return Err(CostError::Ledger {
                path: location.to_string(),
                reason: format!(
                    "this build has no `{}` feature: add it to the flujo dependency",
                    location.feature().unwrap_or_default()
                ),
            });
        }
        location.check_readable()?;
        Ok(CostLedger { location })
    }

    /// The records of `start_date..=end_date` (UTC, inclusive), oldest first.
    pub fn records(
        &self,
        start_date: impl ReportDate,
        end_date: impl ReportDate,
    ) -> Result<Vec<CostRecord>, CostError> {
        let (start, end) = range(&start_date, &end_date)?;
        self.location.read_between(start, end)
    }

    /// The cost report of `start_date..=end_date` (UTC, inclusive), summed where the ledger
    /// is (in SQL).
    pub fn report(
        &self,
        start_date: impl ReportDate,
        end_date: impl ReportDate,
    ) -> Result<CostReport, CostError> {
        let (start, end) = range(&start_date, &end_date)?;
        Ok(dated(self.location.report_between(start, end)?, start, end))
    }
}
