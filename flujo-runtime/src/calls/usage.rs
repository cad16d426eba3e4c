//! How a model call's value reports its token usage.

use std::borrow::Cow;

use flujo_pricing::TokenUsage;
use flujo_pricing::extract::Count;

use super::content::{self, Captured};
use crate::accounting::pricing;
use crate::core::attribute::capped_copy;
use crate::core::record::ResponseDetails;

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
            or name a function that extracts it: `#[track_cost(model = ..., usage = my_usage_fn)]`",
    note = "if `{Self}` is a stream of chunks, return it as `impl Stream<Item = Result<Chunk, E>>`, or as a \
            boxed stream (`Pin<Box<dyn Stream<..>>>`, `BoxStream`) with `#[track_cost(stream, ..)]` for an alias"
)]
pub trait ReportsUsage {
    /// The tokens the call used; `None` when the response carries no usage (the call is then
    /// counted as a request without tokens or cost).
    fn token_usage(&self) -> Option<TokenUsage>;

    /// The model that actually answered (`gen_ai.response.model`), when the response says.
    fn response_model(&self) -> Option<&str> {
        None
    }

    /// The response's id (`gen_ai.response.id`, e.g. `chatcmpl-123`), when it has one.
    fn response_id(&self) -> Option<&str> {
        None
    }

    /// Why the model stopped, one reason per choice (`gen_ai.response.finish_reasons`, e.g.
    /// `["stop"]`); empty when the response does not say.
    fn finish_reasons(&self) -> Vec<Cow<'_, str>> {
        Vec::new()
    }

    /// The text of each choice, for `gen_ai.output.messages` when content capture is on (it is
    /// only asked for then).
    fn output_texts(&self) -> Vec<Cow<'_, str>> {
        Vec::new()
    }

    /// How the provider served the request, as the price data's variants name it:
    /// `("service_tier", "flex")`, `("processing", "batch")`, ... A matching variant's prices
    /// replace the standard ones (OpenAI's flex tier at half price, say).
    fn price_context(&self) -> Vec<(&'static str, Cow<'_, str>)> {
        Vec::new()
    }

    /// The value as a JSON response body, whose usage `#[track_cost]` reads with the call
    /// site's provider and API flavor (only `serde_json::Value` is one).
    #[doc(hidden)]
    fn json_body(&self) -> Option<&serde_json::Value> {
        None
    }
}

impl ReportsUsage for TokenUsage {
    fn token_usage(&self) -> Option<TokenUsage> {
        Some(*self)
    }
}

/// Everything a reference, a box or an option reports is what the value inside reports.
macro_rules! reports_through {
    ($(impl<$t:ident $(: ?$unsized:ident)?> for $wrapper:ty => $inner:ident;)*) => {$(
        impl<$t: ReportsUsage $(+ ?$unsized)?> ReportsUsage for $wrapper {
            fn token_usage(&self) -> Option<TokenUsage> {
                $inner(self).and_then(ReportsUsage::token_usage)
            }
            fn response_model(&self) -> Option<&str> {
                $inner(self).and_then(ReportsUsage::response_model)
            }
            fn response_id(&self) -> Option<&str> {
                $inner(self).and_then(ReportsUsage::response_id)
            }
            fn finish_reasons(&self) -> Vec<Cow<'_, str>> {
                $inner(self).map(ReportsUsage::finish_reasons).unwrap_or_default()
            }
            fn output_texts(&self) -> Vec<Cow<'_, str>> {
                $inner(self).map(ReportsUsage::output_texts).unwrap_or_default()
            }
            fn price_context(&self) -> Vec<(&'static str, Cow<'_, str>)> {
                $inner(self).map(ReportsUsage::price_context).unwrap_or_default()
            }
            fn json_body(&self) -> Option<&serde_json::Value> {
                $inner(self).and_then(ReportsUsage::json_body)
            }
        }
    )*};
}

fn referenced<'a, T: ?Sized>(value: &&'a T) -> Option<&'a T> {
    Some(*value)
}

#[expect(
    clippy::borrowed_box,
    reason = "`reports_through!` passes `&self`, which for this impl is a `&Box<T>`"
)]
fn boxed<T: ?Sized>(value: &Box<T>) -> Option<&T> {
    Some(value)
}

fn optional<T>(value: &Option<T>) -> Option<&T> {
    value.as_ref()
}

reports_through! {
    impl<T: ?Sized> for &T => referenced;
    impl<T: ?Sized> for Box<T> => boxed;
    impl<T> for Option<T> => optional;
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

/// Finish reasons as a record keeps them: owned, each cut to the attribute bound.
pub(crate) fn capped_reasons(reasons: &[Cow<'_, str>]) -> Vec<Cow<'static, str>> {
    reasons
        .iter()
        .map(|reason| Cow::Owned(capped_copy(reason)))
        .collect()
}

/// What a return value said about its usage and itself.
#[derive(Default)]
pub(crate) struct UsageReport {
    pub(crate) usage: Option<TokenUsage>,
    /// Every unit a response body reported, when the call is priced from them (some are not
    /// tokens a `TokenUsage` holds, or a count had a fraction); empty otherwise.
    pub(crate) units: Vec<(String, Count)>,
    pub(crate) response: ResponseDetails,
    /// `gen_ai.output.messages`, when content is captured.
    pub(crate) output: Option<Captured>,
    /// How the request was served, for the price data's variants.
    pub(crate) price_context: Vec<(&'static str, String)>,
}

/// What a call site knows that reading a response body needs.
pub(crate) struct CallSite<'a> {
    /// The model the call asked for.
    pub(crate) model: &'a str,
    /// `#[track_cost(provider = ...)]`.
    pub(crate) provider: Option<&'static str>,
    /// `#[track_cost(api = ...)]`.
    pub(crate) api: Option<&'static str>,
}

impl UsageReport {
    pub(crate) fn of<T: ReportsUsage + ?Sized>(value: &T, site: &CallSite<'_>) -> UsageReport {
        let finish_reasons = capped_reasons(&value.finish_reasons());
        let output = content::is_captured()
            .then(|| value.output_texts())
            .filter(|texts| !texts.is_empty())
            .map(|texts| content::output_messages(&texts, &finish_reasons));
        let (usage, units, body_model) = match value.json_body() {
            Some(body) => {
                let read = pricing::read_body(body, site.model, site.provider, site.api);
                // A client's typed usage stands in when its raw body does not read.
                (
                    read.usage.or_else(|| value.token_usage()),
                    read.units,
                    read.model,
                )
            }
            None => (value.token_usage(), Vec::new(), None),
        };
        UsageReport {
            usage,
            units,
            response: ResponseDetails {
                model: body_model
                    .as_deref()
                    .or_else(|| value.response_model())
                    .map(capped_copy),
                id: value.response_id().map(capped_copy),
                finish_reasons,
            },
            output,
            price_context: value
                .price_context()
                .into_iter()
                .map(|(key, value)| (key, capped_copy(&value)))
                .collect(),
        }
    }

    pub(crate) fn from_usage(usage: impl IntoTokenUsage) -> UsageReport {
        UsageReport {
            usage: usage.into_token_usage(),
            ..UsageReport::default()
        }
    }
}
