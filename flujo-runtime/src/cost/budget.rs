//! Whether a model call may start (the run's limits, the daily limit, strict pricing), and
//! charging what it used: to its run and to today's total of the ledger.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::SystemTime;

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
    metrics::counter!("flujo_budget_exceeded_total", "limit" => limit.label()).increment(1);
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
    timestamp: SystemTime,
    added: Progress,
) {
    settle_run(run, reservation, usage, cost, added);
    if let (Some(run), Some(usage)) = (run, usage) {
        scope::note_usage(run, *usage, cost);
    }
    // A cost exists only for a call that reported usage.
    if let Some(cost) = cost {
        add_to_today(timestamp, cost);
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

/// Today's (UTC) spending in this ledger, for `FLUJO_DAILY_COST_LIMIT_USD`: kept on the
/// calling threads as calls end, seeded from the durable ledger at init.
///
/// One atomic word holds the day and its total, so that a rollover and the additions racing
/// it are one compare-and-swap each: no addition is lost at midnight, and a late call stamped
/// with yesterday's date never zeroes today. The low 16 bits of the day number tag the total
/// (days are compared for "same" and "newer" only); the total keeps 48 bits of nano-dollars
/// and saturates at about $281,474.98 (a daily limit above that is never reached).
static DAILY_SPENT: AtomicU64 = AtomicU64::new(EMPTY);
/// No call counted yet: the first one sets the day.
const EMPTY: u64 = 0;
static DAILY_LIMIT: AtomicU64 = AtomicU64::new(NO_LIMIT);

const NO_LIMIT: u64 = u64::MAX;
const TOTAL_BITS: u32 = 48;
const TOTAL_MASK: u64 = (1 << TOTAL_BITS) - 1;

fn day_tag(date: Date) -> u16 {
    (date.to_julian_day() & 0xffff) as u16
}

fn pack(day: u16, nanos: u64) -> u64 {
    (u64::from(day) << TOTAL_BITS) | nanos.min(TOTAL_MASK)
}

fn unpack(word: u64) -> (u16, u64) {
    ((word >> TOTAL_BITS) as u16, word & TOTAL_MASK)
}

/// Starts today's total at what the durable ledger already holds for `date`.
#[cfg_attr(not(feature = "sqlite"), allow(dead_code))]
pub(crate) fn seed_today(date: Date, spent: Usd) {
    DAILY_SPENT.store(pack(day_tag(date), spent.nanos()), Ordering::Release);
}

fn spent_on(date: Date) -> Usd {
    let (day, nanos) = unpack(DAILY_SPENT.load(Ordering::Acquire));
    if day == day_tag(date) {
        Usd::from_nanos(nanos)
    } else {
        Usd::ZERO
    }
}

/// Sets (or clears) the daily limit.
pub(crate) fn set_daily_limit(limit: Option<Usd>) {
    DAILY_LIMIT.store(limit.map_or(NO_LIMIT, Usd::nanos), Ordering::Release);
}

/// Adds a call's cost to the total of the day it is stamped with, when that is today's (or a
/// newer day's, which starts the count again); a call stamped with an earlier day is in the
/// ledger under that day and does not touch today's total.
fn add_to_today(timestamp: SystemTime, cost: Usd) {
    let day = day_tag(utc_date(timestamp));
    let _ = DAILY_SPENT.fetch_update(Ordering::AcqRel, Ordering::Acquire, |word| {
        if word == EMPTY {
            return Some(pack(day, cost.nanos()));
        }
        let (current, nanos) = unpack(word);
        // Newer by the wrapping distance between tags (days are at most hours apart here).
        let ahead = day.wrapping_sub(current) as i16;
        match ahead {
            0 => Some(pack(day, nanos.saturating_add(cost.nanos()))),
            1.. => Some(pack(day, cost.nanos())),
            _ => None,
        }
    });
}

/// The daily limit, when today's spending has reached it.
fn daily_limit_reached() -> Option<Limit> {
    let limit = DAILY_LIMIT.load(Ordering::Acquire);
    if limit == NO_LIMIT {
        return None;
    }
    let spent = spent_on(utc_date(SystemTime::now()));
    let limit = Usd::from_nanos(limit);
    (spent >= limit).then_some(Limit::DailyCost { limit, spent })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

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
        seed_today(date(yesterday), Usd::from_nanos(500));
        let threads: Vec<_> = (0..4)
            .map(|n| {
                std::thread::spawn(move || {
                    for i in 0..10_000 {
                        // Half the calls still carry yesterday's stamp, as around midnight.
                        let day = if (i + n) % 2 == 0 { yesterday } else { today };
                        add_to_today(at(day), Usd::from_nanos(1));
                    }
                })
            })
            .collect();
        for thread in threads {
            thread.join().unwrap();
        }
        let today_total = spent_on(date(today)).nanos();
        // Every today-stamped call after the first one that rolled the day over is counted;
        // none is lost to the reset, and no yesterday-stamped call zeroed today.
        assert_eq!(today_total, 20_000, "today's additions are all there");
        add_to_today(at(yesterday), Usd::from_nanos(7));
        assert_eq!(
            spent_on(date(today)).nanos(),
            20_000,
            "a late call never zeroes today"
        );
        assert_eq!(spent_on(date(yesterday)), Usd::ZERO);

        let day = 20_100;
        seed_today(date(day), Usd::from_nanos(TOTAL_MASK - 1));
        add_to_today(at(day), Usd::from_nanos(u64::MAX));
        assert_eq!(
            spent_on(date(day)),
            Usd::from_nanos(TOTAL_MASK),
            "saturates, never wraps"
        );
    }
}
