//! Usage limits on a run: the cost and tokens its model calls may use. A `#[track_cost]`
//! call that would start after a limit is reached returns [`UsageLimitExceeded`] instead
//! of calling the model.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use flujo_pricing::{TokenUsage, Usd};

use crate::context::{SpanContext, WithContext};
use crate::run::{self, RunScope, RunSwap};

/// Limits on what the model calls of one run may use. `None` means no limit.
///
/// ```
/// use flujo::{TokenUsage, UsageLimits, track_cost};
///
/// #[derive(Debug)]
/// struct Reply { usage: TokenUsage }
/// impl flujo::ReportsUsage for Reply {
///     fn token_usage(&self) -> Option<TokenUsage> { Some(self.usage) }
/// }
///
/// #[track_cost(model = "gpt-4o-mini")]
/// fn ask(prompt: &str) -> Result<Reply, anyhow::Error> {
///     Ok(Reply { usage: TokenUsage::new(prompt.len() as u64, 500) })
/// }
///
/// let limits = UsageLimits { total_tokens_limit: Some(1_000), ..Default::default() };
/// limits.run(|| {
///     assert!(ask("first").is_ok());   // 505 tokens used
///     assert!(ask("second").is_ok());  // 1011 used: this call started under the limit
///     let refused = ask("third").unwrap_err();
///     assert!(refused.downcast_ref::<flujo::UsageLimitExceeded>().is_some());
/// });
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct UsageLimits {
    /// Most USD the run may spend. A negative or NaN limit refuses every call.
    pub total_cost_usd_limit: Option<f64>,
    /// Most tokens (input + output) the run may use.
    pub total_tokens_limit: Option<u64>,
}

impl UsageLimits {
    /// Runs `f` as one run under these limits. Model calls made inside it, on this thread
    /// or in tasks spawned with [`crate::StepFutureExt::in_current_step`], count against them.
    pub fn run<R>(self, f: impl FnOnce() -> R) -> R {
        let mut scope = Some(self.scope());
        let _current = RunSwap::enter(&mut scope);
        f()
    }

    /// Runs `future` as one run under these limits (see [`UsageLimits::run`]). Steps inside
    /// it are children of the step current where this is called.
    pub fn run_async<F: Future>(self, future: F) -> WithContext<F> {
        WithContext::with_run(SpanContext::current(), Some(self.scope()), future)
    }

    fn scope(self) -> Arc<RunScope> {
        Arc::new(RunScope {
            budget: Some(Budget::new(self)),
            ..RunScope::default()
        })
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
    /// [`UsageLimits::total_cost_usd_limit`] of the run.
    TotalCost {
        /// The limit.
        limit: Usd,
        /// What the run had spent.
        spent: Usd,
    },
    /// [`UsageLimits::total_tokens_limit`] of the run.
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
    /// Strict pricing (`FLUJO_PRICING_STRICT=true`) and a model without a price: its cost
    /// could not be counted against any limit.
    UnpricedModel {
        /// The model.
        model: String,
    },
}

/// A model call refused because a usage limit was reached. The `#[track_cost]` function
/// returns it (converted into its error type) instead of calling the model.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{}", describe(.limit))]
pub struct UsageLimitExceeded {
    /// The limit that refused the call.
    pub limit: Limit,
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
            Limit::UnpricedModel { .. } => "unpriced_model",
        }
    }
}

/// A run's limits and what its calls used, updated when each call ends (on the calling
/// thread, so that the next call sees it at once).
#[derive(Debug)]
pub(crate) struct Budget {
    cost_limit: Option<Usd>,
    tokens_limit: Option<u64>,
    spent_nanos: AtomicU64,
    tokens: AtomicU64,
}

impl Budget {
    fn new(limits: UsageLimits) -> Budget {
        Budget {
            cost_limit: limits
                .total_cost_usd_limit
                .map(|usd| Usd::from_dollars(usd).unwrap_or(Usd::ZERO)),
            tokens_limit: limits.total_tokens_limit,
            spent_nanos: AtomicU64::new(0),
            tokens: AtomicU64::new(0),
        }
    }

    pub(crate) fn check(&self) -> Result<(), Limit> {
        let spent = Usd::from_nanos(self.spent_nanos.load(Ordering::Acquire));
        if let Some(limit) = self.cost_limit
            && spent >= limit
        {
            return Err(Limit::TotalCost { limit, spent });
        }
        let used = self.tokens.load(Ordering::Acquire);
        if let Some(limit) = self.tokens_limit
            && used >= limit
        {
            return Err(Limit::TotalTokens { limit, used });
        }
        Ok(())
    }

    pub(crate) fn add(&self, usage: &TokenUsage, cost: Option<Usd>) {
        self.tokens.fetch_add(usage.total(), Ordering::AcqRel);
        if let Some(cost) = cost {
            self.spent_nanos.fetch_add(cost.nanos(), Ordering::AcqRel);
        }
    }
}

/// Whether the current run has reached one of its limits (a step does not retry then: the
/// next attempt would be refused too).
pub(crate) fn exhausted() -> bool {
    run::with_current(|run| {
        run.and_then(|run| run.budget.as_ref())
            .is_some_and(|budget| budget.check().is_err())
    })
}
