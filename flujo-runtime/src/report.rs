//! Cost reports over the ledger: totals by model, step, pipeline, day and month.

use std::collections::BTreeMap;
use std::fmt;
#[cfg(feature = "sqlite")]
use std::path::{Path, PathBuf};

use flujo_pricing::{Date, TokenUsage, Usd};

use crate::ledger::{self, CostRecord};
use crate::pricing::utc_date;

/// Errors from cost reports and the ledger.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
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

/// A date for [`get_cost_report`]: a `"YYYY-MM-DD"` string or a [`Date`].
pub trait ReportDate {
    /// The date, or why it is not one (`which` names the argument in the error).
    fn report_date(&self, which: &'static str) -> Result<Date, CostError>;
}

impl ReportDate for Date {
    fn report_date(&self, _: &'static str) -> Result<Date, CostError> {
        Ok(*self)
    }
}

impl ReportDate for str {
    fn report_date(&self, which: &'static str) -> Result<Date, CostError> {
        parse_date(self).ok_or_else(|| CostError::InvalidDate {
            which,
            value: self.to_owned(),
        })
    }
}

impl ReportDate for String {
    fn report_date(&self, which: &'static str) -> Result<Date, CostError> {
        self.as_str().report_date(which)
    }
}

impl<T: ReportDate + ?Sized> ReportDate for &T {
    fn report_date(&self, which: &'static str) -> Result<Date, CostError> {
        (**self).report_date(which)
    }
}

fn parse_date(text: &str) -> Option<Date> {
    let mut parts = text.trim().splitn(3, '-');
    let (year, month, day) = (parts.next()?, parts.next()?, parts.next()?);
    if year.len() != 4 || month.len() != 2 || day.len() != 2 {
        return None;
    }
    let month = time::Month::try_from(month.parse::<u8>().ok()?).ok()?;
    Date::from_calendar_date(year.parse().ok()?, month, day.parse().ok()?).ok()
}

/// What a group of calls used and cost.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CostGroup {
    /// Model calls that reported usage.
    pub requests: u64,
    /// Of those, calls whose model had no price (their cost is not in `cost`).
    pub unpriced_requests: u64,
    /// Tokens used.
    pub tokens: TokenUsage,
    /// Exact cost of the priced calls.
    pub cost: Usd,
}

impl CostGroup {
    /// One call.
    pub(crate) fn of(record: &CostRecord) -> CostGroup {
        CostGroup {
            requests: 1,
            unpriced_requests: u64::from(record.cost.is_none()),
            tokens: record.usage,
            cost: record.cost.unwrap_or(Usd::ZERO),
        }
    }

    pub(crate) fn merge(&mut self, other: &CostGroup) {
        self.requests += other.requests;
        self.unpriced_requests += other.unpriced_requests;
        self.tokens += other.tokens;
        self.cost += other.cost;
    }
}

/// How [`CostReport::groups`] groups calls.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GroupBy {
    /// By model.
    Model,
    /// By step (`(none)` for calls outside any step).
    Step,
    /// By pipeline (`(none)` for calls outside any pipeline).
    Pipeline,
    /// By UTC day, `YYYY-MM-DD`.
    Day,
    /// By UTC month, `YYYY-MM`.
    Month,
}

const NONE: &str = "(none)";

/// Costs over a date range, as the guide's `get_cost_report` returns them. Every total is
/// the exact sum of the records it covers.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CostReport {
    /// First day covered (UTC, inclusive).
    pub start_date: Option<Date>,
    /// Last day covered (UTC, inclusive).
    pub end_date: Option<Date>,
    /// Cost of every priced call.
    pub total_cost: Usd,
    /// Cost by model.
    pub cost_by_model: BTreeMap<String, Usd>,
    /// Cost by step.
    pub cost_by_step: BTreeMap<String, Usd>,
    /// Cost by pipeline.
    pub cost_by_pipeline: BTreeMap<String, Usd>,
    /// Tokens by model.
    pub tokens_by_model: BTreeMap<String, TokenUsage>,
    /// Model calls that reported usage.
    pub requests: u64,
    /// Calls whose model had no price, by model: their cost is unknown, not zero.
    pub unpriced_requests: BTreeMap<String, u64>,
    /// Cost by UTC day.
    pub by_day: BTreeMap<Date, Usd>,
    /// Cost by UTC month (`YYYY-MM`).
    pub by_month: BTreeMap<String, Usd>,
    groups: [BTreeMap<String, CostGroup>; 5],
}

impl CostReport {
    /// The report over `records`.
    pub fn from_records<'a>(records: impl IntoIterator<Item = &'a CostRecord>) -> CostReport {
        let mut report = CostReport::default();
        for record in records {
            report.add(record);
        }
        report
    }

    fn add(&mut self, record: &CostRecord) {
        let group = CostGroup::of(record);
        self.add_group(
            utc_date(record.timestamp),
            &record.model,
            record.step.as_deref(),
            record.pipeline.as_deref(),
            &group,
        );
    }

    /// Adds the calls of `group`, all of one day, model, step and pipeline.
    pub(crate) fn add_group(
        &mut self,
        day: Date,
        model: &str,
        step: Option<&str>,
        pipeline: Option<&str>,
        group: &CostGroup,
    ) {
        let step = step.unwrap_or(NONE);
        let pipeline = pipeline.unwrap_or(NONE);
        let keys = [
            model.to_owned(),
            step.to_owned(),
            pipeline.to_owned(),
            day.to_string(),
            month_of(day),
        ];
        for (groups, key) in self.groups.iter_mut().zip(keys) {
            groups.entry(key).or_default().merge(group);
        }
        self.requests += group.requests;
        *self.tokens_by_model.entry(model.to_owned()).or_default() += group.tokens;
        if group.requests > group.unpriced_requests {
            self.total_cost += group.cost;
            *self.cost_by_model.entry(model.to_owned()).or_default() += group.cost;
            *self.cost_by_step.entry(step.to_owned()).or_default() += group.cost;
            *self
                .cost_by_pipeline
                .entry(pipeline.to_owned())
                .or_default() += group.cost;
            *self.by_day.entry(day).or_default() += group.cost;
            *self.by_month.entry(month_of(day)).or_default() += group.cost;
        }
        if group.unpriced_requests > 0 {
            *self.unpriced_requests.entry(model.to_owned()).or_default() += group.unpriced_requests;
        }
    }

    /// Requests, tokens and cost per group, ordered by key.
    pub fn groups(&self, by: GroupBy) -> &BTreeMap<String, CostGroup> {
        &self.groups[by as usize]
    }
}

fn month_of(day: Date) -> String {
    format!("{:04}-{:02}", day.year(), u8::from(day.month()))
}

impl fmt::Display for CostReport {
    /// A plain-text summary, amounts to the cent.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let (Some(start), Some(end)) = (self.start_date, self.end_date) {
            writeln!(f, "Cost report {start} .. {end}")?;
        }
        writeln!(
            f,
            "Total cost: {} over {} requests",
            self.total_cost, self.requests
        )?;
        writeln!(f, "Cost by model:")?;
        for (model, group) in self.groups(GroupBy::Model) {
            writeln!(
                f,
                "- {model}: {} ({} requests, {} input / {} output tokens{})",
                group.cost,
                group.requests,
                group.tokens.input,
                group.tokens.output,
                if group.unpriced_requests > 0 {
                    format!(", {} unpriced", group.unpriced_requests)
                } else {
                    String::new()
                }
            )?;
        }
        writeln!(f, "Cost by step:")?;
        for (step, cost) in &self.cost_by_step {
            writeln!(f, "- {step}: {cost}")?;
        }
        Ok(())
    }
}

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
/// process that wrote to it; otherwise the calls of this process.
///
/// ```
/// let report = flujo::get_cost_report("2024-03-01", "2024-03-14")?;
/// println!("Total cost: {}", report.total_cost);
/// for (model, cost) in &report.cost_by_model {
///     println!("- {model}: {cost}");
/// }
/// assert!(flujo::get_cost_report("2024-03-01", "March 14").is_err());
/// # Ok::<(), flujo::CostError>(())
/// ```
pub fn get_cost_report(
    start_date: impl ReportDate,
    end_date: impl ReportDate,
) -> Result<CostReport, CostError> {
    let (start, end) = range(&start_date, &end_date)?;
    // Records still queued for the export worker belong in the report.
    crate::export::flush(std::time::Duration::from_secs(10));
    Ok(dated(ledger::report_between(start, end)?, start, end))
}

/// A durable ledger file opened for reading (feature `sqlite`), e.g. by the `flujo cost` CLI
/// or a monthly job in another process.
#[cfg(feature = "sqlite")]
#[derive(Clone, Debug)]
pub struct CostLedger {
    path: PathBuf,
}

#[cfg(feature = "sqlite")]
impl CostLedger {
    /// Opens the ledger at `path` (it must exist).
    pub fn open(path: impl AsRef<Path>) -> Result<CostLedger, CostError> {
        let path = path.as_ref().to_owned();
        // Reading an empty range checks that it is a ledger.
        crate::ledger_sqlite::read_between(&path, Date::MIN, Date::MIN)?;
        Ok(CostLedger { path })
    }

    /// The records of `start_date..=end_date` (UTC, inclusive), oldest first.
    pub fn records(
        &self,
        start_date: impl ReportDate,
        end_date: impl ReportDate,
    ) -> Result<Vec<CostRecord>, CostError> {
        let (start, end) = range(&start_date, &end_date)?;
        crate::ledger_sqlite::read_between(&self.path, start, end)
    }

    /// The cost report of `start_date..=end_date` (UTC, inclusive).
    pub fn report(
        &self,
        start_date: impl ReportDate,
        end_date: impl ReportDate,
    ) -> Result<CostReport, CostError> {
        let (start, end) = range(&start_date, &end_date)?;
        let records = crate::ledger_sqlite::read_between(&self.path, start, end)?;
        Ok(dated(CostReport::from_records(&records), start, end))
    }
}
