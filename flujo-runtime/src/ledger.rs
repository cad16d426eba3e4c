//! The cost ledger: every model call that reported usage becomes a [`CostRecord`]. Records
//! live in memory, or in a SQLite file (feature `sqlite`, `FLUJO_COST_LEDGER=path`) written
//! by a thread of its own in batches, so that neither the calling thread nor the export
//! worker waits on the disk. Nothing accepted is dropped: the writer's queue is unbounded
//! and shutdown waits for it.

use std::collections::{BTreeMap, VecDeque};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use flujo_pricing::{Date, TokenUsage, Usd};

use crate::TraceId;
use crate::budget::Limit;
use crate::pricing::utc_date;
use crate::report::{CostGroup, CostReport};

/// One priced (or unpriced) model call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CostRecord {
    /// When the call ended.
    pub timestamp: SystemTime,
    /// The request id of the run the call belonged to, when known.
    pub request_id: Option<String>,
    /// The trace of the call, when telemetry recorded one.
    pub trace_id: Option<TraceId>,
    /// The pipeline the call ran in, when known.
    pub pipeline: Option<String>,
    /// The `#[pipeline_step]` the call ran in, when any.
    pub step: Option<String>,
    /// The model as the call named it.
    pub model: String,
    /// `gen_ai.provider.name` of the model.
    pub provider: String,
    /// `gen_ai.operation.name` of the call.
    pub operation: String,
    /// Tokens used.
    pub usage: TokenUsage,
    /// Exact cost; `None` when the model has no price (never counted as $0).
    pub cost: Option<Usd>,
    /// The price table that priced the call (see `PriceTable::version`).
    pub price_version: String,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

enum Store {
    Memory(MemoryLedger),
    #[cfg(feature = "sqlite")]
    Sqlite(crate::ledger_sqlite::Writer),
}

/// The in-memory ledger: exact totals per day, model, step and pipeline (bounded by how many
/// of those there are, not by how many calls), and the most recent records.
struct MemoryLedger {
    totals: BTreeMap<TotalsKey, CostGroup>,
    recent: VecDeque<CostRecord>,
}

type TotalsKey = (Date, String, Option<String>, Option<String>);

/// Individual records the in-memory ledger keeps (reports use the totals, which keep all).
const RECENT_RECORDS: usize = 10_000;

impl MemoryLedger {
    const fn new() -> MemoryLedger {
        MemoryLedger {
            totals: BTreeMap::new(),
            recent: VecDeque::new(),
        }
    }

    fn add(&mut self, record: CostRecord) {
        let key = (
            utc_date(record.timestamp),
            record.model.clone(),
            record.step.clone(),
            record.pipeline.clone(),
        );
        self.totals
            .entry(key)
            .or_default()
            .merge(&CostGroup::of(&record));
        if self.recent.len() == RECENT_RECORDS {
            self.recent.pop_front();
        }
        self.recent.push_back(record);
    }

    fn report(&self, start: Date, end: Date) -> CostReport {
        let mut report = CostReport::default();
        for ((day, model, step, pipeline), group) in &self.totals {
            if (start..=end).contains(day) {
                report.add_group(*day, model, step.as_deref(), pipeline.as_deref(), group);
            }
        }
        report
    }
}

static STORE: Mutex<Store> = Mutex::new(Store::Memory(MemoryLedger::new()));

/// The records of a live `testing::Capture`, besides the ledger.
static CAPTURED: Mutex<Option<Vec<CostRecord>>> = Mutex::new(None);

/// Starts (`true`) or ends keeping a copy of every record for a capture.
pub(crate) fn capture(active: bool) {
    *lock(&CAPTURED) = active.then(Vec::new);
}

/// The records kept for the live capture.
pub(crate) fn captured() -> Vec<CostRecord> {
    lock(&CAPTURED).clone().unwrap_or_default()
}

/// Appends a record (called by the export worker, or by a calling thread whose queue was full).
pub(crate) fn accept(record: CostRecord) {
    if let Some(captured) = &mut *lock(&CAPTURED) {
        captured.push(record.clone());
    }
    match &mut *lock(&STORE) {
        Store::Memory(ledger) => ledger.add(record),
        #[cfg(feature = "sqlite")]
        Store::Sqlite(writer) => writer.send(record),
    }
}

/// The report of `start..=end` (UTC days) of the process ledger.
pub(crate) fn report_between(start: Date, end: Date) -> Result<CostReport, crate::CostError> {
    match &*lock(&STORE) {
        Store::Memory(ledger) => Ok(ledger.report(start, end)),
        #[cfg(feature = "sqlite")]
        Store::Sqlite(writer) => {
            writer.sync(SYNC_TIMEOUT);
            let records = crate::ledger_sqlite::read_between(writer.path(), start, end)?;
            Ok(CostReport::from_records(&records))
        }
    }
}

/// The most recent cost records of this process, oldest first: the last 10,000 with the
/// in-memory ledger (whose reports still cover every call), or today's with a durable
/// ledger (read any range with `CostLedger`).
pub fn recent_cost_records() -> Vec<CostRecord> {
    crate::export::flush(Duration::from_secs(10));
    match &*lock(&STORE) {
        Store::Memory(ledger) => ledger.recent.iter().cloned().collect(),
        #[cfg(feature = "sqlite")]
        Store::Sqlite(writer) => {
            writer.sync(SYNC_TIMEOUT);
            let today = utc_date(SystemTime::now());
            crate::ledger_sqlite::read_between(writer.path(), today, today).unwrap_or_default()
        }
    }
}

/// How long a report waits for the writer to commit what it was given.
#[cfg_attr(not(feature = "sqlite"), allow(dead_code))]
const SYNC_TIMEOUT: Duration = Duration::from_secs(30);

/// Switches the process ledger to the SQLite file at `path` (init with `FLUJO_COST_LEDGER`).
#[cfg(feature = "sqlite")]
pub(crate) fn open_durable(path: PathBuf) -> Result<(), crate::CostError> {
    let (writer, today) = crate::ledger_sqlite::Writer::start(path)?;
    DAILY.reset_to(utc_date(SystemTime::now()), today);
    *lock(&STORE) = Store::Sqlite(writer);
    Ok(())
}

/// Without the `sqlite` feature (which the configuration checks first, naming the feature).
#[cfg(not(feature = "sqlite"))]
pub(crate) fn open_durable(path: PathBuf) -> Result<(), crate::CostError> {
    Err(crate::CostError::Ledger {
        path: path.display().to_string(),
        reason: "this build has no `sqlite` feature".to_owned(),
    })
}

/// Commits everything accepted and goes back to the in-memory ledger; waits at most
/// `timeout`. Returns false if records were still uncommitted then.
#[cfg_attr(not(feature = "sqlite"), allow(unused_variables))]
pub(crate) fn close_durable(timeout: Duration) -> bool {
    let store = std::mem::replace(&mut *lock(&STORE), Store::Memory(MemoryLedger::new()));
    match store {
        Store::Memory(ledger) => {
            *lock(&STORE) = Store::Memory(ledger);
            true
        }
        #[cfg(feature = "sqlite")]
        Store::Sqlite(writer) => writer.close(timeout),
    }
}

/// Today's (UTC) spending in this ledger, for `FLUJO_DAILY_COST_LIMIT_USD`: kept on the
/// calling threads as calls end, seeded from the durable ledger at init.
struct Daily {
    /// Days since the epoch of `spent`.
    day: AtomicU64,
    spent: AtomicU64,
    limit: AtomicU64,
}

const NO_LIMIT: u64 = u64::MAX;

static DAILY: Daily = Daily {
    day: AtomicU64::new(0),
    spent: AtomicU64::new(0),
    limit: AtomicU64::new(NO_LIMIT),
};

fn day_number(date: Date) -> u64 {
    u64::try_from(date.to_julian_day()).unwrap_or(0)
}

impl Daily {
    #[cfg_attr(not(feature = "sqlite"), allow(dead_code))]
    fn reset_to(&self, date: Date, spent: Usd) {
        self.day.store(day_number(date), Ordering::Release);
        self.spent.store(spent.nanos(), Ordering::Release);
    }

    fn spent_on(&self, date: Date) -> Usd {
        let today = day_number(date);
        if self.day.load(Ordering::Acquire) == today {
            Usd::from_nanos(self.spent.load(Ordering::Acquire))
        } else {
            Usd::ZERO
        }
    }
}

/// Sets (or clears) the daily limit.
pub(crate) fn set_daily_limit(limit: Option<Usd>) {
    DAILY
        .limit
        .store(limit.map_or(NO_LIMIT, Usd::nanos), Ordering::Release);
}

pub(crate) fn add_to_today(timestamp: SystemTime, cost: Usd) {
    let day = day_number(utc_date(timestamp));
    let current = DAILY.day.load(Ordering::Acquire);
    if current != day
        && DAILY
            .day
            .compare_exchange(current, day, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
    {
        // A new day: the first call to notice starts the count again.
        DAILY.spent.store(0, Ordering::Release);
    }
    DAILY.spent.fetch_add(cost.nanos(), Ordering::AcqRel);
}

/// The daily limit, when today's spending has reached it.
pub(crate) fn daily_limit_reached() -> Option<Limit> {
    let limit = DAILY.limit.load(Ordering::Acquire);
    if limit == NO_LIMIT {
        return None;
    }
    let spent = DAILY.spent_on(utc_date(SystemTime::now()));
    let limit = Usd::from_nanos(limit);
    (spent >= limit).then_some(Limit::DailyCost { limit, spent })
}
