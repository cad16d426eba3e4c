//! Whether a model call may start (the run's limits, the daily limit, strict pricing), and
//! charging what it used: to its run and to today's total of the ledger.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::SystemTime;

use flujo_pricing::{Date, TokenUsage, Usd};

use super::pricing::{self, utc_date};
use crate::run::limits::{Limit, UsageLimitExceeded};
use crate::run::scope::{self, RunScope};

/// Refuses the call of `model` when a limit says so: counted in
/// `flujo_budget_exceeded_total{limit}`, logged, and kept on the run for its error.
pub(crate) fn admit(model: &str, run: Option<&RunScope>) -> Result<(), UsageLimitExceeded> {
    let refused = run
        .and_then(|run| run.budget.as_ref())
        .and_then(|budget| budget.check().err())
        .or_else(daily_limit_reached)
        .or_else(|| {
            let unpriced = pricing::strict()
                && !pricing::resolve(model, utc_date(SystemTime::now())).is_priced();
            unpriced.then(|| Limit::UnpricedModel {
                model: model.to_owned(),
            })
        });
    let Some(limit) = refused else {
        return Ok(());
    };
    metrics::counter!("flujo_budget_exceeded_total", "limit" => limit.label()).increment(1);
    let refusal = UsageLimitExceeded { limit };
    tracing::warn!(target: "flujo", model, "{refusal}");
    if let Some(run) = run {
        *run.refused.lock().unwrap_or_else(|e| e.into_inner()) = Some(refusal.clone());
    }
    Err(refusal)
}

/// Charges a finished call's usage to its run and its cost to today's total.
pub(crate) fn charge(
    run: Option<&RunScope>,
    usage: &TokenUsage,
    cost: Option<Usd>,
    timestamp: SystemTime,
) {
    if let Some(run) = run {
        if let Some(budget) = &run.budget {
            budget.add(usage, cost);
        }
        scope::note_usage(run, *usage, cost);
    }
    if let Some(cost) = cost {
        add_to_today(timestamp, cost);
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

/// Starts today's total at what the durable ledger already holds for `date`.
#[cfg_attr(not(feature = "sqlite"), allow(dead_code))]
pub(crate) fn seed_today(date: Date, spent: Usd) {
    DAILY.day.store(day_number(date), Ordering::Release);
    DAILY.spent.store(spent.nanos(), Ordering::Release);
}

fn spent_on(date: Date) -> Usd {
    if DAILY.day.load(Ordering::Acquire) == day_number(date) {
        Usd::from_nanos(DAILY.spent.load(Ordering::Acquire))
    } else {
        Usd::ZERO
    }
}

/// Sets (or clears) the daily limit.
pub(crate) fn set_daily_limit(limit: Option<Usd>) {
    DAILY
        .limit
        .store(limit.map_or(NO_LIMIT, Usd::nanos), Ordering::Release);
}

fn add_to_today(timestamp: SystemTime, cost: Usd) {
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
fn daily_limit_reached() -> Option<Limit> {
    let limit = DAILY.limit.load(Ordering::Acquire);
    if limit == NO_LIMIT {
        return None;
    }
    let spent = spent_on(utc_date(SystemTime::now()));
    let limit = Usd::from_nanos(limit);
    (spent >= limit).then_some(Limit::DailyCost { limit, spent })
}
