//! Whether a model call may start (the run's limits, the daily limit, strict pricing), and
//! charging what it used: to its run and to today's total of the ledger.

use crate::core::names::Metric;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use flujo_pricing::{Date, TokenUsage, Usd};

use super::pricing::{self, utc_date};
use crate::run::limits::{Budget, Limit, Progress, Reservation, UsageLimitExceeded};
use crate::run::scope::{self, RunScope};

/// Admits the call of `model`, reserving its share of the run's limits, or refuses it when a
/// limit says so: counted in `flujo_budget_exceeded_total{limit}`, logged, and kept on the
/// run for its error.
pub(crate) fn admit(
    model: &str,
    provider: Option<&'static str>,
    run: Option<&RunScope>,
) -> Result<Reservation, UsageLimitExceeded> {
    let mut reservation = Reservation::default();
    let refused = match run.and_then(|run| run.budget.as_ref()).map(Budget::reserve) {
        Some(Ok(reserved)) => {
            reservation = reserved;
            None
        }
        Some(Err(limit)) => Some(limit),
        None => None,
    };
    let refused = refused.or_else(daily_limit_reached).or_else(|| {
        let unpriced = pricing::strict()
            && !pricing::resolve(model, provider, utc_date(SystemTime::now())).is_priced();
        unpriced.then(|| Limit::UnpricedModel {
            model: model.to_owned(),
        })
    });
    let Some(limit) = refused else {
        return Ok(reservation);
    };
    // Refused after the run's budget reserved (by the daily limit or strict pricing).
    settle_run(run, reservation, None, None, Progress::NONE);
    metrics::counter!(Metric::BudgetExceeded.name(), "limit" => limit.label()).increment(1);
    let refusal = UsageLimitExceeded { limit };
    tracing::warn!(target: "flujo", model, "{refusal}");
    scope::note_refusal(run, &refusal);
    Err(refusal)
}

/// Charges a finished call (or releases a cancelled one): its reservation back and its usage
/// to its run (less what a streamed call `added` while it ran), its cost to today's total.
pub(crate) fn charge(
    run: Option<&RunScope>,
    reservation: Reservation,
    usage: Option<&TokenUsage>,
    cost: Option<Usd>,
    day: Date,
    added: Progress,
) {
    settle_run(run, reservation, usage, cost, added);
    if let (Some(run), Some(usage)) = (run, usage) {
        scope::note_usage(run, *usage, cost);
    }
    // A cost exists only for a call that reported usage.
    if let Some(cost) = cost {
        add_to_today(day, cost);
    }
}

fn settle_run(
    run: Option<&RunScope>,
    reservation: Reservation,
    usage: Option<&TokenUsage>,
    cost: Option<Usd>,
    added: Progress,
) {
    if let Some(budget) = run.and_then(|run| run.budget.as_ref()) {
        budget.settle(reservation, usage, cost, added);
    }
}

/// A streamed call of `run` has used `usage` (costing `cost`) so far, of which `added` is
/// charged already: the rest is charged now. Returns what is charged.
pub(crate) fn charge_progress(
    run: &RunScope,
    added: Progress,
    usage: &TokenUsage,
    cost: Option<Usd>,
) -> Progress {
    let now = Progress {
        tokens: usage.total(),
        cost_nanos: cost.map_or(0, Usd::nanos),
    };
    match &run.budget {
        Some(budget) => budget.add_progress(added, now),
        None => added,
    }
}

/// What this process spent in one period (a UTC day, or a month), for the ledger's limits:
/// kept on the calling threads as calls end, seeded from the SQLite ledger at init.
///
/// One atomic word holds the period and its total, so that a rollover and the additions
/// racing it are one compare-and-swap each: no addition is lost at midnight, and a late call
/// stamped with yesterday's date never zeroes today. The low 16 bits of the period's number
/// tag the total (periods are compared for "same" and "newer" only); the total keeps 48 bits
/// of nano-dollars and saturates at about $281,474.98 (a limit above that is never reached).
struct PeriodTotal {
    word: AtomicU64,
    period: Period,
}

#[derive(Clone, Copy)]
enum Period {
    Day,
    Month,
}

impl Period {
    fn tag(self, date: Date) -> u16 {
        let number = match self {
            Period::Day => date.to_julian_day(),
            Period::Month => date.year() * 12 + i32::from(u8::from(date.month())),
        };
        (number & 0xffff) as u16
    }
}

/// No call counted yet: the first one sets the period.
const EMPTY: u64 = 0;
const NO_LIMIT: u64 = u64::MAX;
const TOTAL_BITS: u32 = 48;
const TOTAL_MASK: u64 = (1 << TOTAL_BITS) - 1;

fn pack(tag: u16, nanos: u64) -> u64 {
    (u64::from(tag) << TOTAL_BITS) | nanos.min(TOTAL_MASK)
}

fn unpack(word: u64) -> (u16, u64) {
    ((word >> TOTAL_BITS) as u16, word & TOTAL_MASK)
}

impl PeriodTotal {
    const fn new(period: Period) -> PeriodTotal {
        PeriodTotal {
            word: AtomicU64::new(EMPTY),
            period,
        }
    }

    /// Sets the total of `date`'s period.
    fn set(&self, date: Date, spent: Usd) {
        self.word.store(
            pack(self.period.tag(date), spent.nanos()),
            Ordering::Release,
        );
    }

    fn on(&self, date: Date) -> Usd {
        let (tag, nanos) = unpack(self.word.load(Ordering::Acquire));
        if tag == self.period.tag(date) {
            Usd::from_nanos(nanos)
        } else {
            Usd::ZERO
        }
    }

    /// Adds a cost to the total of the period it is stamped with, when that is the current
    /// one (or a newer one, which starts the count again); a cost stamped with an earlier
    /// period is in the ledger under that period and does not touch the current total.
    fn add(&self, date: Date, cost: Usd) {
        let tag = self.period.tag(date);
        let _ = self
            .word
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |word| {
                if word == EMPTY {
                    return Some(pack(tag, cost.nanos()));
                }
                let (current, nanos) = unpack(word);
                // Newer by the wrapping distance between tags (periods are hours apart here).
                let ahead = tag.wrapping_sub(current) as i16;
                match ahead {
                    0 => Some(pack(tag, nanos.saturating_add(cost.nanos()))),
                    1.. => Some(pack(tag, cost.nanos())),
                    _ => None,
                }
            });
    }
}

/// This process's spend today and this month (UTC).
static SPENT_TODAY: PeriodTotal = PeriodTotal::new(Period::Day);
static SPENT_THIS_MONTH: PeriodTotal = PeriodTotal::new(Period::Month);
/// What the rest of the fleet spent (a PostgreSQL ledger): the fleet's total as last read,
/// less this process's part of it.
static OTHERS_TODAY: PeriodTotal = PeriodTotal::new(Period::Day);
static OTHERS_THIS_MONTH: PeriodTotal = PeriodTotal::new(Period::Month);
static DAILY_LIMIT: AtomicU64 = AtomicU64::new(NO_LIMIT);
static MONTHLY_LIMIT: AtomicU64 = AtomicU64::new(NO_LIMIT);
/// When the fleet's spend was last read (milliseconds since the epoch); 0: the ledger is not
/// shared by a fleet.
static FLEET_READ_AT_MS: AtomicU64 = AtomicU64::new(0);
/// How old the fleet's spend may grow before it counts as unknown (milliseconds).
static FLEET_STALE_AFTER_MS: AtomicU64 = AtomicU64::new(u64::MAX);
static FAIL_CLOSED: AtomicBool = AtomicBool::new(false);

/// What calls do while the fleet's spend is unknown (a shared ledger that cannot be read):
/// `FLUJO_COST_LEDGER_UNREACHABLE`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum WhenUnreachable {
    /// Calls go on, counted against the last fleet total read plus this process's own spend
    /// since (counted in `flujo_budget_unverified_total{limit}`). The default: an outage of
    /// the database does not stop the application.
    #[default]
    Open,
    /// Calls are refused with [`Limit::LedgerUnreachable`] until the fleet's spend is read
    /// again: no spend the limits cannot see.
    Closed,
}

impl WhenUnreachable {
    /// The accepted values of `FLUJO_COST_LEDGER_UNREACHABLE`.
    pub const VALUES: &'static str =
        "open (calls go on; the default) or closed (calls are refused)";

    /// `open` or `closed`.
    pub fn parse(value: &str) -> Option<WhenUnreachable> {
        match value.trim().to_ascii_lowercase().as_str() {
            "open" => Some(WhenUnreachable::Open),
            "closed" => Some(WhenUnreachable::Closed),
            _ => None,
        }
    }
}

/// Starts this process's totals at what the durable ledger already holds for `date`'s day
/// and month.
#[cfg_attr(not(feature = "sqlite"), allow(dead_code))]
pub(crate) fn seed(date: Date, today: Usd, this_month: Usd) {
    SPENT_TODAY.set(date, today);
    SPENT_THIS_MONTH.set(date, this_month);
}

/// Sets (or clears) the daily and monthly limits.
pub(crate) fn set_limits(daily: Option<Usd>, monthly: Option<Usd>) {
    DAILY_LIMIT.store(daily.map_or(NO_LIMIT, Usd::nanos), Ordering::Release);
    MONTHLY_LIMIT.store(monthly.map_or(NO_LIMIT, Usd::nanos), Ordering::Release);
    // At zero from the start: a dashboard of a healthy application sees the series.
    for (limit, set) in [("daily_cost", daily), ("monthly_cost", monthly)] {
        if set.is_some() {
            metrics::counter!(Metric::BudgetUnverified.name(), "limit" => limit).increment(0);
        }
    }
}

/// The fleet's spend as a shared ledger last read it.
#[cfg_attr(not(feature = "postgres"), allow(dead_code))]
pub(crate) struct FleetSpend {
    /// The UTC day it was read for.
    pub(crate) day: Date,
    /// The fleet's spend of that day and its month, less this process's committed part.
    pub(crate) others_today: Usd,
    pub(crate) others_this_month: Usd,
    pub(crate) read_at: SystemTime,
}

fn epoch_ms(at: SystemTime) -> u64 {
    at.duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// The limits count the fleet: its spend (read every `refresh`) counts as unknown once older
/// than `stale_after`, and then calls go on or are refused as `when` says. `None`: this
/// process alone.
pub(crate) fn share_with_fleet(fleet: Option<(Duration, WhenUnreachable)>) {
    match fleet {
        Some((stale_after, when)) => {
            FLEET_STALE_AFTER_MS.store(
                u64::try_from(stale_after.as_millis()).unwrap_or(u64::MAX),
                Ordering::Release,
            );
            FAIL_CLOSED.store(when == WhenUnreachable::Closed, Ordering::Release);
            // Unknown until first read.
            FLEET_READ_AT_MS.store(1, Ordering::Release);
            let today = utc_date(SystemTime::now());
            OTHERS_TODAY.set(today, Usd::ZERO);
            OTHERS_THIS_MONTH.set(today, Usd::ZERO);
            // A fleet's totals are read from the ledger, not seeded.
            seed(today, Usd::ZERO, Usd::ZERO);
        }
        None => {
            FLEET_READ_AT_MS.store(0, Ordering::Release);
            FAIL_CLOSED.store(false, Ordering::Release);
        }
    }
}

/// Hands the limits what the fleet spent (from the ledger's writer thread).
#[cfg_attr(not(feature = "postgres"), allow(dead_code))]
pub(crate) fn set_fleet_spend(spend: FleetSpend) {
    if FLEET_READ_AT_MS.load(Ordering::Acquire) == 0 {
        return;
    }
    OTHERS_TODAY.set(spend.day, spend.others_today);
    OTHERS_THIS_MONTH.set(spend.day, spend.others_this_month);
    FLEET_READ_AT_MS.store(epoch_ms(spend.read_at).max(1), Ordering::Release);
}

/// Adds a call's cost to this process's totals of the day (and month) it is stamped with.
fn add_to_today(date: Date, cost: Usd) {
    SPENT_TODAY.add(date, cost);
    SPENT_THIS_MONTH.add(date, cost);
}

/// The daily or monthly limit, when the spending (the fleet's, with a shared ledger) has
/// reached it; or the fleet's spend is unknown and calls are to be refused then.
fn daily_limit_reached() -> Option<Limit> {
    let daily = DAILY_LIMIT.load(Ordering::Acquire);
    let monthly = MONTHLY_LIMIT.load(Ordering::Acquire);
    if daily == NO_LIMIT && monthly == NO_LIMIT {
        return None;
    }
    let now = SystemTime::now();
    let today = utc_date(now);
    let read_at = FLEET_READ_AT_MS.load(Ordering::Acquire);
    if read_at != 0 {
        let age = epoch_ms(now).saturating_sub(read_at);
        if age > FLEET_STALE_AFTER_MS.load(Ordering::Acquire) {
            let unknown_for = Duration::from_millis(if read_at == 1 { 0 } else { age });
            if FAIL_CLOSED.load(Ordering::Acquire) {
                return Some(Limit::LedgerUnreachable { unknown_for });
            }
            let limit = if daily == NO_LIMIT {
                "monthly_cost"
            } else {
                "daily_cost"
            };
            metrics::counter!(Metric::BudgetUnverified.name(), "limit" => limit).increment(1);
        }
    }
    let reached = |limit: u64, own: &PeriodTotal, others: &PeriodTotal| {
        let spent = own.on(today).saturating_add(others.on(today));
        (limit != NO_LIMIT && spent.nanos() >= limit).then(|| (Usd::from_nanos(limit), spent))
    };
    if let Some((limit, spent)) = reached(daily, &SPENT_TODAY, &OTHERS_TODAY) {
        return Some(Limit::DailyCost { limit, spent });
    }
    reached(monthly, &SPENT_THIS_MONTH, &OTHERS_THIS_MONTH)
        .map(|(limit, spent)| Limit::MonthlyCost { limit, spent })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(day: i64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(u64::try_from(day).unwrap() * 86_400 + 3_600)
    }

    fn date(day: i64) -> Date {
        utc_date(at(day))
    }

    // One test: the total is process-wide.
    #[test]
    fn the_daily_total_survives_a_rollover_and_saturates() {
        let (yesterday, today) = (20_000, 20_001);
        SPENT_TODAY.set(date(yesterday), Usd::from_nanos(500));
        let threads: Vec<_> = (0..4)
            .map(|n| {
                std::thread::spawn(move || {
                    for i in 0..10_000 {
                        // Half the calls still carry yesterday's stamp, as around midnight.
                        let day = if (i + n) % 2 == 0 { yesterday } else { today };
                        SPENT_TODAY.add(date(day), Usd::from_nanos(1));
                    }
                })
            })
            .collect();
        for thread in threads {
            thread.join().unwrap();
        }
        let today_total = SPENT_TODAY.on(date(today)).nanos();
        // Every today-stamped call after the first one that rolled the day over is counted;
        // none is lost to the reset, and no yesterday-stamped call zeroed today.
        assert_eq!(today_total, 20_000, "today's additions are all there");
        SPENT_TODAY.add(date(yesterday), Usd::from_nanos(7));
        assert_eq!(
            SPENT_TODAY.on(date(today)).nanos(),
            20_000,
            "a late call never zeroes today"
        );
        assert_eq!(SPENT_TODAY.on(date(yesterday)), Usd::ZERO);

        let day = 20_100;
        SPENT_TODAY.set(date(day), Usd::from_nanos(TOTAL_MASK - 1));
        SPENT_TODAY.add(date(day), Usd::from_nanos(u64::MAX));
        assert_eq!(
            SPENT_TODAY.on(date(day)),
            Usd::from_nanos(TOTAL_MASK),
            "saturates, never wraps"
        );
        // Months roll over as days do, on their own tag.
        let (march, april) = (
            Date::from_calendar_date(2026, time::Month::March, 31).unwrap(),
            Date::from_calendar_date(2026, time::Month::April, 1).unwrap(),
        );
        SPENT_THIS_MONTH.set(march, Usd::from_nanos(9));
        SPENT_THIS_MONTH.add(march, Usd::from_nanos(1));
        assert_eq!(
            SPENT_THIS_MONTH.on(march.replace_day(2).unwrap()),
            Usd::from_nanos(10)
        );
        SPENT_THIS_MONTH.add(april, Usd::from_nanos(3));
        assert_eq!(SPENT_THIS_MONTH.on(april), Usd::from_nanos(3));
        assert_eq!(SPENT_THIS_MONTH.on(march), Usd::ZERO);
    }
}
