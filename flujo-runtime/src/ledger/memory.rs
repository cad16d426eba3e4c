//! The in-memory ledger of a process without a durable one.

use std::collections::{BTreeMap, VecDeque};

use flujo_pricing::Date;

use super::record::CostRecord;
use crate::accounting::pricing::utc_date;
use crate::ledger::report::{CostGroup, CostReport};

/// The in-memory ledger: exact totals per day, model, step and pipeline (bounded by how many
/// of those there are, not by how many calls), and the most recent records.
pub(crate) struct MemoryLedger {
    totals: BTreeMap<TotalsKey, CostGroup>,
    /// The key of the last record's totals.
    last: Option<TotalsKey>,
    pub(crate) recent: VecDeque<CostRecord>,
}

type TotalsKey = (Date, String, Option<String>, Option<String>);

/// Individual records the in-memory ledger keeps (reports use the totals, which keep all).
const RECENT_RECORDS: usize = 10_000;

impl MemoryLedger {
    pub(crate) const fn new() -> MemoryLedger {
        MemoryLedger {
            totals: BTreeMap::new(),
            last: None,
            recent: VecDeque::new(),
        }
    }

    pub(crate) fn add(&mut self, record: CostRecord) {
        let day = utc_date(record.timestamp);
        let group = CostGroup::of(&record);
        // Most records add to the totals of the one before: found without building a key.
        let last = self
            .last
            .as_ref()
            .filter(|(last_day, model, step, pipeline)| {
                *last_day == day
                    && *model == record.model
                    && *step == record.step
                    && *pipeline == record.pipeline
            });
        match last.and_then(|key| self.totals.get_mut(key)) {
            Some(totals) => totals.merge(&group),
            None => {
                let key = (
                    day,
                    record.model.clone(),
                    record.step.clone(),
                    record.pipeline.clone(),
                );
                self.totals.entry(key.clone()).or_default().merge(&group);
                self.last = Some(key);
            }
        }
        if self.recent.len() == RECENT_RECORDS {
            self.recent.pop_front();
        }
        self.recent.push_back(record);
    }

    pub(crate) fn report(&self, start: Date, end: Date) -> CostReport {
        let mut report = CostReport::default();
        for ((day, model, step, pipeline), group) in &self.totals {
            if (start..=end).contains(day) {
                report.add_group(*day, model, step.as_deref(), pipeline.as_deref(), group);
            }
        }
        report
    }
}
