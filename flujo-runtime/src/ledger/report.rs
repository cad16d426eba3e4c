//! Cost reports: totals by model, step, pipeline, day and month, and the dates they cover.

use std::collections::BTreeMap;
use std::fmt;

use flujo_pricing::{Date, TokenUsage, Usd};

use super::error::CostError;
use super::record::CostRecord;
use crate::accounting::pricing::utc_date;

/// A date for [`get_cost_report`](crate::cost::get_cost_report): a `"YYYY-MM-DD"` string or a [`Date`].
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

pub(crate) fn parse_date(text: &str) -> Option<Date> {
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
#[non_exhaustive]
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
    /// The group's cost; `None` when none of its calls was priced: unknown, not $0.
    pub fn known_cost(&self) -> Option<Usd> {
        (self.requests == 0 || self.unpriced_requests < self.requests).then_some(self.cost)
    }

    /// The cost as a person reads it: `$0.0093`; `$0.0093 + 1 unpriced call` (the priced part,
    /// and what it leaves out); `unknown` when no call was priced. `decimals` as in `{:.N}`.
    pub fn cost_text(&self, decimals: Option<u8>) -> String {
        let Some(cost) = self.known_cost() else {
            return "unknown".to_owned();
        };
        let cost = match decimals {
            Some(decimals) => format!("{:.*}", usize::from(decimals), cost),
            None => cost.to_string(),
        };
        match self.unpriced_requests {
            0 => cost,
            1 => format!("{cost} + 1 unpriced call"),
            n => format!("{cost} + {n} unpriced calls"),
        }
    }

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
#[non_exhaustive]
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
#[non_exhaustive]
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
    /// By UTC day, then model, step and pipeline (the first three of `GroupBy`).
    daily: [BTreeMap<Date, BTreeMap<String, CostGroup>>; 3],
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
        for (daily, key) in self.daily.iter_mut().zip(&keys) {
            daily
                .entry(day)
                .or_default()
                .entry(key.clone())
                .or_default()
                .merge(group);
        }
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

    /// Requests, tokens and cost of every call the report covers.
    pub fn totals(&self) -> CostGroup {
        let mut total = CostGroup::default();
        for group in self.groups(GroupBy::Model).values() {
            total.merge(group);
        }
        total
    }

    /// Requests, tokens and cost per group, ordered by key.
    pub fn groups(&self, by: GroupBy) -> &BTreeMap<String, CostGroup> {
        &self.groups[by as usize]
    }

    /// Requests, tokens and cost per UTC day and group: spend over time by model, step or
    /// pipeline (by day or month: each day's one group, named as [`CostReport::groups`] names
    /// it).
    pub fn daily(&self, by: GroupBy) -> BTreeMap<Date, BTreeMap<String, CostGroup>> {
        match by {
            GroupBy::Model | GroupBy::Step | GroupBy::Pipeline => self.daily[by as usize].clone(),
            GroupBy::Day | GroupBy::Month => self.daily[GroupBy::Model as usize]
                .iter()
                .map(|(day, groups)| {
                    let mut total = CostGroup::default();
                    groups.values().for_each(|group| total.merge(group));
                    let key = match by {
                        GroupBy::Month => month_of(*day),
                        _ => day.to_string(),
                    };
                    (*day, BTreeMap::from([(key, total)]))
                })
                .collect(),
        }
    }
}

/// "1 request", "2 requests".
fn requests(count: u64) -> String {
    match count {
        1 => "1 request".to_owned(),
        n => format!("{n} requests"),
    }
}

fn month_of(day: Date) -> String {
    format!("{:04}-{:02}", day.year(), u8::from(day.month()))
}

impl fmt::Display for CostReport {
    /// A plain-text summary: amounts to the cent, or to two significant digits below a cent
    /// (`$0.0019`), so a cheap call never reads as `$0.00`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let (Some(start), Some(end)) = (self.start_date, self.end_date) {
            writeln!(f, "Cost report {start} .. {end}")?;
        }
        writeln!(
            f,
            "Total cost: {} over {}",
            self.totals().cost_text(None),
            requests(self.requests)
        )?;
        writeln!(f, "Cost by model:")?;
        for (model, group) in self.groups(GroupBy::Model) {
            writeln!(
                f,
                "- {model}: {} ({}, {} input / {} output tokens{})",
                group
                    .known_cost()
                    .map_or_else(|| "unknown".to_owned(), |cost| cost.to_string()),
                requests(group.requests),
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
        for (step, group) in self.groups(GroupBy::Step) {
            writeln!(f, "- {step}: {}", group.cost_text(None))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_summary_shows_cheap_calls_and_counts_in_words() {
        let mut report = CostReport::default();
        let group = CostGroup {
            requests: 1,
            unpriced_requests: 0,
            tokens: TokenUsage::new(1_200, 40),
            cost: Usd::from_nanos(1_900_000),
        };
        report.add_group(Date::MIN, "gpt-4o-mini", Some("draft"), None, &group);
        let text = report.to_string();
        assert!(
            text.contains("Total cost: $0.0019 over 1 request\n"),
            "{text}"
        );
        assert!(
            text.contains("- gpt-4o-mini: $0.0019 (1 request, 1200 input / 40 output tokens)"),
            "{text}"
        );
        assert!(text.contains("- draft: $0.0019"), "{text}");
    }

    #[test]
    fn unpriced_calls_read_as_unknown_never_as_zero() {
        let mut report = CostReport::default();
        let priced = CostGroup {
            requests: 2,
            unpriced_requests: 0,
            tokens: TokenUsage::new(1_000, 10),
            cost: Usd::from_nanos(9_300_000),
        };
        let unpriced = CostGroup {
            requests: 1,
            unpriced_requests: 1,
            tokens: TokenUsage::new(500, 5),
            cost: Usd::ZERO,
        };
        report.add_group(Date::MIN, "gpt-4o-mini", Some("draft"), None, &priced);
        report.add_group(Date::MIN, "gpt-4o-minii", Some("review"), None, &unpriced);
        let text = report.to_string();
        assert!(
            text.contains("Total cost: $0.0093 + 1 unpriced call over 3 requests\n"),
            "{text}"
        );
        assert!(
            text.contains(
                "- gpt-4o-minii: unknown (1 request, 500 input / 5 output tokens, 1 unpriced)"
            ),
            "{text}"
        );
        assert!(text.contains("- review: unknown\n"), "{text}");
        assert!(text.contains("- draft: $0.0093\n"), "{text}");
        assert!(!text.contains("$0.00 "), "{text}");
        assert_eq!(
            report.groups(GroupBy::Model)["gpt-4o-minii"].known_cost(),
            None
        );
        assert_eq!(
            report.totals().known_cost(),
            Some(Usd::from_nanos(9_300_000))
        );
    }

    #[test]
    fn spend_over_time_is_kept_per_day_and_group_and_sums_to_the_totals() {
        let mut report = CostReport::default();
        let call = |nanos| CostGroup {
            requests: 1,
            unpriced_requests: 0,
            tokens: TokenUsage::new(10, 1),
            cost: Usd::from_nanos(nanos),
        };
        let (monday, tuesday) = (
            Date::from_calendar_date(2026, time::Month::March, 2).unwrap(),
            Date::from_calendar_date(2026, time::Month::March, 3).unwrap(),
        );
        report.add_group(monday, "a", Some("s"), Some("p"), &call(5));
        report.add_group(monday, "b", Some("s"), None, &call(7));
        report.add_group(tuesday, "a", None, Some("p"), &call(11));
        let by_model = report.daily(GroupBy::Model);
        assert_eq!(by_model[&monday]["a"].cost, Usd::from_nanos(5));
        assert_eq!(by_model[&monday]["b"].cost, Usd::from_nanos(7));
        assert_eq!(by_model[&tuesday]["a"].cost, Usd::from_nanos(11));
        assert_eq!(
            report.daily(GroupBy::Step)[&tuesday]["(none)"].cost,
            Usd::from_nanos(11)
        );
        assert_eq!(
            report.daily(GroupBy::Pipeline)[&monday]["p"].cost,
            Usd::from_nanos(5)
        );
        assert_eq!(
            report.daily(GroupBy::Day)[&monday]["2026-03-02"].cost,
            Usd::from_nanos(12)
        );
        assert_eq!(
            report.daily(GroupBy::Month)[&tuesday]["2026-03"].requests,
            1
        );
        let summed: Usd = by_model
            .values()
            .flat_map(|g| g.values())
            .map(|g| g.cost)
            .sum();
        assert_eq!(summed, report.total_cost);
    }
}
