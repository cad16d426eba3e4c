//! Usage limits on a run: the cost and tokens its model calls may use, what they used, and
//! the refusal a `#[track_cost]` call returns instead of calling the model once a limit is
//! reached.

use std::sync::atomic::{AtomicU64, Ordering};

use flujo_pricing::{TokenUsage, Usd};

/// Limits on what the model calls of one run may use. `None` means no limit. Build it with
/// [`UsageLimits::new`] and the setters (the struct grows, so it has no public literal):
///
/// ```
/// use flujo::{TokenUsage, UsageLimits, Usd, track_cost};
///
/// #[derive(Debug)]
/// struct Reply { usage: TokenUsage }
/// impl flujo::cost::ReportsUsage for Reply {
///     fn token_usage(&self) -> Option<TokenUsage> { Some(self.usage) }
/// }
///
/// #[track_cost(model = "gpt-4o-mini")]
/// fn ask(prompt: &str) -> Result<Reply, anyhow::Error> {
///     Ok(Reply { usage: TokenUsage::new(prompt.len() as u64, 500) })
/// }
///
/// let limits = UsageLimits::new().total_tokens_limit(1_000);
/// # let _ = UsageLimits::new().total_cost_usd_limit(Usd::parse("0.05").unwrap());
/// limits.run(|| {
///     assert!(ask("first").is_ok());   // 505 tokens used
///     assert!(ask("second").is_ok());  // 1011 used: this call started under the limit
///     let refused = ask("third").unwrap_err();
///     assert!(refused.downcast_ref::<flujo::UsageLimitExceeded>().is_some());
/// });
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct UsageLimits {
    /// Most the run may spend.
    pub total_cost_usd_limit: Option<Usd>,
    /// Most tokens (input + output) the run may use.
    pub total_tokens_limit: Option<u64>,
}

impl UsageLimits {
    /// No limits.
    pub const fn new() -> UsageLimits {
        UsageLimits {
            total_cost_usd_limit: None,
            total_tokens_limit: None,
        }
    }

    /// Sets [`UsageLimits::total_cost_usd_limit`].
    #[must_use]
    pub const fn total_cost_usd_limit(mut self, limit: Usd) -> UsageLimits {
        self.total_cost_usd_limit = Some(limit);
        self
    }

    /// Sets [`UsageLimits::total_tokens_limit`].
    #[must_use]
    pub const fn total_tokens_limit(mut self, limit: u64) -> UsageLimits {
        self.total_tokens_limit = Some(limit);
        self
    }

    /// The budget a pipeline run under these limits starts with.
    pub(crate) fn budget(self) -> Budget {
        Budget::new(self)
    }
}

/// Which limit refused a call.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Limit {
    /// [`UsageLimits::total_cost_usd_limit`](UsageLimits#structfield.total_cost_usd_limit) of the run.
    TotalCost {
        /// The limit.
        limit: Usd,
        /// What the run had spent.
        spent: Usd,
    },
    /// [`UsageLimits::total_tokens_limit`](UsageLimits#structfield.total_tokens_limit) of the run.
    TotalTokens {
        /// The limit.
        limit: u64,
        /// What the run had used.
        used: u64,
    },
    /// The ledger's daily limit (`FLUJO_DAILY_COST_LIMIT_USD`).
    DailyCost {
        /// The limit.
        limit: Usd,
        /// What the ledger recorded today (UTC).
        spent: Usd,
    },
    /// The ledger's monthly limit (`FLUJO_MONTHLY_COST_LIMIT_USD`), over the UTC calendar
    /// month: the fleet's spending with a PostgreSQL ledger.
    MonthlyCost {
        /// The limit.
        limit: Usd,
        /// What the ledger recorded this month (UTC).
        spent: Usd,
    },
    /// A shared (PostgreSQL) ledger's fleet spending could not be read for longer than three
    /// refresh intervals and `FLUJO_COST_LEDGER_UNREACHABLE=closed`: no call the daily or
    /// monthly limit cannot see.
    LedgerUnreachable {
        /// How long the fleet's spending has been unknown (zero: never read in this session).
        unknown_for: std::time::Duration,
    },
    /// Strict pricing (`FLUJO_PRICING_STRICT=true`) and a model without a price: its cost
    /// could not be counted against any limit.
    UnpricedModel {
        /// The model.
        model: String,
    },
}

/// A model call refused because a usage limit was reached. The `#[track_cost]` function
/// returns it (converted into its error type) instead of calling the model. Its `Debug` is
/// its message, so that a `main` returning it prints what happened.
#[derive(Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", describe(.limit))]
pub struct UsageLimitExceeded {
    /// The limit that refused the call.
    pub limit: Limit,
}

impl std::fmt::Debug for UsageLimitExceeded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(self, f)
    }
}

fn describe(limit: &Limit) -> String {
    match limit {
        Limit::TotalCost { limit, spent } => format!(
            "usage limit reached: the run spent {spent:.4} of its {limit:.4} total_cost_usd_limit; \
             the model was not called"
        ),
        Limit::TotalTokens { limit, used } => format!(
            "usage limit reached: the run used {used} of its {limit} total_tokens_limit; \
             the model was not called"
        ),
        Limit::DailyCost { limit, spent } => format!(
            "daily cost limit reached: {spent:.4} spent today (UTC) of {limit:.4} \
             (FLUJO_DAILY_COST_LIMIT_USD); the model was not called"
        ),
        Limit::MonthlyCost { limit, spent } => format!(
            "monthly cost limit reached: {spent:.4} spent this month (UTC) of {limit:.4} \
             (FLUJO_MONTHLY_COST_LIMIT_USD); the model was not called"
        ),
        Limit::LedgerUnreachable { unknown_for } => format!(
            "the cost ledger's fleet spending is unknown (the database has not answered for \
             {} s) and FLUJO_COST_LEDGER_UNREACHABLE=closed: the daily and monthly limits \
             cannot be checked, so the model was not called",
            unknown_for.as_secs()
        ),
        Limit::UnpricedModel { model } => format!(
            "model `{model}` has no price and strict pricing is on (FLUJO_PRICING_STRICT): add \
             it to your price file (FLUJO_PRICING_FILE) or turn strict pricing off; the model \
             was not called"
        ),
    }
}

impl Limit {
    /// The `limit` label of `flujo_budget_exceeded_total`.
    pub(crate) fn label(&self) -> &'static str {
        match self {
            Limit::TotalCost { .. } => "total_cost",
            Limit::TotalTokens { .. } => "total_tokens",
            Limit::DailyCost { .. } => "daily_cost",
            Limit::MonthlyCost { .. } => "monthly_cost",
            Limit::LedgerUnreachable { .. } => "ledger_unreachable",
            Limit::UnpricedModel { .. } => "unpriced_model",
        }
    }
}

/// A run's limits and what its calls used, updated when each call ends (on the calling
/// thread, so that the next call sees it at once).
///
/// Concurrent calls reserve before they start: a call is admitted only while what the run
/// spent plus what its calls in flight reserved stays under each limit, and each call
/// reserves the most a call of this run has used so far. So however many calls run at once,
/// the run exceeds a limit by at most one call's worth (plus the amount by which calls in
/// flight exceed the largest earlier call); until a first call has finished the run has no
/// measure of a call and reserves nothing.
#[derive(Debug)]
pub(crate) struct Budget {
    cost_limit: Option<Usd>,
    tokens_limit: Option<u64>,
    cost: Meter,
    tokens: Meter,
}

/// One quantity of a budget: used, reserved by calls in flight, the largest single use.
#[derive(Debug, Default)]
struct Meter {
    used: AtomicU64,
    reserved: AtomicU64,
    largest: AtomicU64,
}

impl Meter {
    /// Reserves the largest use so far, unless `used + reserved` has reached `limit`:
    /// `Err(used)` then.
    fn reserve(&self, limit: Option<u64>) -> Result<u64, u64> {
        let Some(limit) = limit else {
            return Ok(0);
        };
        let amount = self.largest.load(Ordering::Acquire);
        let mut reserved = self.reserved.load(Ordering::Acquire);
        loop {
            let used = self.used.load(Ordering::Acquire);
            if used.saturating_add(reserved) >= limit {
                return Err(used);
            }
            match self.reserved.compare_exchange_weak(
                reserved,
                reserved.saturating_add(amount),
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => return Ok(amount),
                Err(now) => reserved = now,
            }
        }
    }

    fn release(&self, amount: u64) {
        let _ = self
            .reserved
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |r| {
                Some(r.saturating_sub(amount))
            });
    }

    /// Adds a finished call's use, less what it `added` while it ran (saturating: a huge
    /// limit is never wrapped past).
    fn add(&self, amount: u64, added: u64) {
        self.add_used(amount.saturating_sub(added));
        self.largest.fetch_max(amount, Ordering::AcqRel);
    }

    fn add_used(&self, amount: u64) {
        let _ = self
            .used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |u| {
                Some(u.saturating_add(amount))
            });
    }
}

/// What a streamed call has added to its run's budget while it runs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Progress {
    pub(crate) tokens: u64,
    pub(crate) cost_nanos: u64,
}

impl Progress {
    pub(crate) const NONE: Progress = Progress {
        tokens: 0,
        cost_nanos: 0,
    };
}

/// What an admitted call reserved of its run's budget, given back when it ends.
#[derive(Debug, Default)]
pub(crate) struct Reservation {
    cost: u64,
    tokens: u64,
}

impl Budget {
    fn new(limits: UsageLimits) -> Budget {
        Budget {
            cost_limit: limits.total_cost_usd_limit,
            tokens_limit: limits.total_tokens_limit,
            cost: Meter::default(),
            tokens: Meter::default(),
        }
    }

    /// Whether a limit is reached by what the run used (reservations aside).
    pub(crate) fn check(&self) -> Result<(), Limit> {
        let spent = Usd::from_nanos(self.cost.used.load(Ordering::Acquire));
        if let Some(limit) = self.cost_limit
            && spent >= limit
        {
            return Err(Limit::TotalCost { limit, spent });
        }
        let used = self.tokens.used.load(Ordering::Acquire);
        if let Some(limit) = self.tokens_limit
            && used >= limit
        {
            return Err(Limit::TotalTokens { limit, used });
        }
        Ok(())
    }

    /// Admits a call, reserving its share, or says which limit refuses it.
    pub(crate) fn reserve(&self) -> Result<Reservation, Limit> {
        let cost = self
            .cost
            .reserve(self.cost_limit.map(Usd::nanos))
            .map_err(|spent| Limit::TotalCost {
                limit: self.cost_limit.unwrap_or(Usd::ZERO),
                spent: Usd::from_nanos(spent),
            })?;
        match self.tokens.reserve(self.tokens_limit) {
            Ok(tokens) => Ok(Reservation { cost, tokens }),
            Err(used) => {
                self.cost.release(cost);
                Err(Limit::TotalTokens {
                    limit: self.tokens_limit.unwrap_or(0),
                    used,
                })
            }
        }
    }

    /// A call ended: gives its reservation back and adds what it used (less what it added
    /// while it ran).
    pub(crate) fn settle(
        &self,
        reservation: Reservation,
        usage: Option<&TokenUsage>,
        cost: Option<Usd>,
        added: Progress,
    ) {
        self.cost.release(reservation.cost);
        self.tokens.release(reservation.tokens);
        match usage {
            Some(usage) => self.tokens.add(usage.total(), added.tokens),
            None => self.tokens.add(added.tokens, added.tokens),
        }
        match cost {
            Some(cost) => self.cost.add(cost.nanos(), added.cost_nanos),
            None => self.cost.add(added.cost_nanos, added.cost_nanos),
        }
    }

    /// A streamed call's chunks reported more usage: what exceeds `added` is added now.
    pub(crate) fn add_progress(&self, added: Progress, now: Progress) -> Progress {
        self.tokens
            .add_used(now.tokens.saturating_sub(added.tokens));
        self.cost
            .add_used(now.cost_nanos.saturating_sub(added.cost_nanos));
        Progress {
            tokens: now.tokens.max(added.tokens),
            cost_nanos: now.cost_nanos.max(added.cost_nanos),
        }
    }
}
