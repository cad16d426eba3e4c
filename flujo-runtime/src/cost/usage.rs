//! How a model call's value reports its token usage.

use flujo_pricing::TokenUsage;

/// The token usage a model call's return value reports. `#[track_cost]` reads it from the
/// function's value (the `Ok` value of a `Result`).
///
/// ```
/// use flujo::TokenUsage;
/// use flujo::cost::ReportsUsage;
///
/// struct Completion { text: String, prompt_tokens: u64, completion_tokens: u64, cached: u64 }
///
/// impl ReportsUsage for Completion {
///     fn token_usage(&self) -> Option<TokenUsage> {
///         Some(TokenUsage::new(self.prompt_tokens, self.completion_tokens).with_cache_read(self.cached))
///     }
/// }
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` does not report token usage, which `#[track_cost]` needs to price the call",
    label = "`#[track_cost]` reads the token usage from this value",
    note = "implement `flujo::cost::ReportsUsage` for `{Self}` (return `Some(flujo::TokenUsage::new(input, output))`), \
            or name a function that extracts it: `#[track_cost(model = ..., usage = my_usage_fn)]`"
)]
pub trait ReportsUsage {
    /// The tokens the call used; `None` when the response carries no usage (the call is then
    /// counted as a request without tokens or cost).
    fn token_usage(&self) -> Option<TokenUsage>;

    /// The model that actually answered (`gen_ai.response.model`), when the response says.
    fn response_model(&self) -> Option<&str> {
        None
    }
}

impl ReportsUsage for TokenUsage {
    fn token_usage(&self) -> Option<TokenUsage> {
        Some(*self)
    }
}

impl<T: ReportsUsage + ?Sized> ReportsUsage for &T {
    fn token_usage(&self) -> Option<TokenUsage> {
        (**self).token_usage()
    }
    fn response_model(&self) -> Option<&str> {
        (**self).response_model()
    }
}

impl<T: ReportsUsage + ?Sized> ReportsUsage for Box<T> {
    fn token_usage(&self) -> Option<TokenUsage> {
        (**self).token_usage()
    }
    fn response_model(&self) -> Option<&str> {
        (**self).response_model()
    }
}

impl<T: ReportsUsage> ReportsUsage for Option<T> {
    fn token_usage(&self) -> Option<TokenUsage> {
        self.as_ref().and_then(ReportsUsage::token_usage)
    }
    fn response_model(&self) -> Option<&str> {
        self.as_ref().and_then(ReportsUsage::response_model)
    }
}

/// What a `usage = path` function may return.
#[diagnostic::on_unimplemented(
    message = "a `usage = ...` function must return `flujo::TokenUsage` or `Option<flujo::TokenUsage>`, not `{Self}`"
)]
pub trait IntoTokenUsage {
    /// The usage, if any.
    fn into_token_usage(self) -> Option<TokenUsage>;
}

impl IntoTokenUsage for TokenUsage {
    fn into_token_usage(self) -> Option<TokenUsage> {
        Some(self)
    }
}

impl IntoTokenUsage for Option<TokenUsage> {
    fn into_token_usage(self) -> Option<TokenUsage> {
        self
    }
}

/// What a return value said about its usage.
pub(crate) struct UsageReport {
    pub(crate) usage: Option<TokenUsage>,
    pub(crate) response_model: Option<String>,
}

impl UsageReport {
    pub(crate) fn of<T: ReportsUsage + ?Sized>(value: &T) -> UsageReport {
        UsageReport {
            usage: value.token_usage(),
            response_model: value.response_model().map(str::to_owned),
        }
    }

    pub(crate) fn from_usage(usage: impl IntoTokenUsage) -> UsageReport {
        UsageReport {
            usage: usage.into_token_usage(),
            response_model: None,
        }
    }
}
