//! Code generation: a `static` step description and a handful of calls into
//! `<crate>::__private`, wrapped around the user's own block (tokens and spans untouched).

use proc_macro2::{Span, TokenStream};
use quote::{format_ident, quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{AttrStyle, Block, ItemFn};

use crate::internals::qualified_name;
use crate::model::{Backoff, Jitter, Rebind, StepModel};
use crate::shape::{Body, FutureWrapper};
use crate::{cost_expand, fields};

pub(crate) fn expand(model: StepModel) -> TokenStream {
    wrap_body(&model.item, &model.body, |block, is_async| {
        match &model.cost {
            // With `#[track_cost]` on the same function, the model call runs inside the step.
            Some((path, cost)) => {
                let tracked = cost_expand::instrument(cost, block, is_async);
                let instrumented = instrument(&model, &syn::parse_quote!({ #tracked }), is_async);
                // The attribute was consumed here: refer to its path so that the user's
                // `use flujo::track_cost` does not look unused.
                quote! {
                    #[allow(unused_imports)]
                    use #path as _;
                    #instrumented
                }
            }
            None => instrument(&model, block, is_async),
        }
    })
}

/// `item` with its block replaced: `instrument(block, is_async)` gives the statements that
/// replace the block that produces the function's value.
pub(crate) fn wrap_body(
    item: &ItemFn,
    body: &Body,
    instrument: impl Fn(&Block, bool) -> TokenStream,
) -> TokenStream {
    let (outer, inner): (Vec<_>, Vec<_>) = item
        .attrs
        .iter()
        .partition(|attr| matches!(attr.style, AttrStyle::Outer));
    let vis = &item.vis;
    let sig = &item.sig;
    let new_body = match body {
        Body::Sync(block) => {
            let instrumented = instrument(block, false);
            quote!({ #(#inner)* #instrumented })
        }
        Body::AsyncFn(block) => {
            let instrumented = instrument(block, true);
            quote!({ #(#inner)* #instrumented })
        }
        Body::AsyncBlock {
            leading,
            inner: block,
            moves,
            wrapper,
        } => {
            let instrumented = instrument(block, true);
            // The same capture as the user's block: `async` borrows, `async move` moves.
            let future = if *moves {
                quote!(async move { #instrumented })
            } else {
                quote!(async { #instrumented })
            };
            let future = match wrapper {
                FutureWrapper::None => future,
                FutureWrapper::BoxPin => quote!(::std::boxed::Box::pin(#future)),
                FutureWrapper::Method(method) => quote!(#future.#method()),
            };
            quote!({ #(#inner)* #(#leading)* #future })
        }
    };
    quote! {
        #(#outer)*
        #vis #sig #new_body
    }
}

/// The statements that replace `block`: the step description, the call, its attempts.
fn instrument(model: &StepModel, block: &Block, is_async: bool) -> TokenStream {
    let krate = &model.krate;
    let private = quote!(#krate::__private);
    let name = &model.name;
    let function = &model.function;
    let retry_policy = match &model.retry {
        None => quote!(#private::RetryPolicy::NONE),
        Some(retry) => {
            let retries = retry.retries;
            let backoff_ms = retry.backoff_ms;
            let backoff = match retry.backoff {
                Backoff::Fixed => quote!(#private::Backoff::Fixed),
                Backoff::Exponential => quote!(#private::Backoff::Exponential),
            };
            let jitter = retry.jitter.map(|jitter| {
                let jitter = match jitter {
                    Jitter::None => quote!(None),
                    Jitter::Full => quote!(Full),
                    Jitter::Equal => quote!(Equal),
                };
                quote!(.with_jitter(#private::Jitter::#jitter))
            });
            let max_backoff = retry
                .max_backoff_ms
                .map(|ms| quote!(.with_max_backoff_ms(#ms)));
            let deadline = retry.retry_for_ms.map(|ms| quote!(.with_deadline_ms(#ms)));
            quote!(#private::RetryPolicy::new(#retries, #backoff, #backoff_ms)#jitter #max_backoff #deadline)
        }
    };
    let retry_policy = match model.timeout_ms {
        Some(ms) => quote!(#retry_policy.with_timeout_ms(#ms)),
        None => retry_policy,
    };
    let retry_policy = match model.fallback {
        Some(_) => quote!(#retry_policy.with_fallback()),
        None => retry_policy,
    };
    // A streamed model call inside: the step lasts until its stream ends.
    let stream = model.cost.as_ref().and_then(|(_, cost)| cost.stream);
    let retry_policy = match stream {
        Some(_) => quote!(#retry_policy.with_stream()),
        None => retry_policy,
    };
    let begin = if is_async || stream.is_some() {
        quote!(start)
    } else {
        quote!(enter)
    };
    let fields = fields::record(&model.fields, &format_ident!("__flujo_call"));

    let annotation = model.output.as_ref().map(|ty| quote!(: #ty));
    let attempt = if is_async {
        let run = quote!(__flujo_call.context().instrument(async #block));
        let value = match model.timeout_ms {
            Some(_) => {
                // Every token on the error type, so that a missing `From` is reported there.
                let error_private = cost_expand::respan(private.clone(), model.error_span);
                let timeout = quote_spanned!(model.error_span=>
                    #error_private::FromStepTimeout::from_step_timeout(__flujo_call.timed_out()));
                quote! {
                    match #private::deadline(#run, __flujo_call.attempt_timeout()).await {
                        ::core::result::Result::Ok(__flujo_result) => __flujo_result,
                        ::core::result::Result::Err(()) => ::core::result::Result::Err(#timeout),
                    }
                }
            }
            None => quote!(#run.await),
        };
        quote! {
            #[allow(clippy::let_unit_value)]
            let __flujo_result #annotation = #value;
        }
    } else {
        let annotation = model.output.as_ref().map(|ty| quote!(-> #ty));
        let run = quote!((|| #annotation #block)());
        // A detached (streaming) call is current only while its body runs.
        let run = match stream {
            Some(_) => quote!(__flujo_call.context().in_scope(|| #run)),
            None => run,
        };
        quote! {
            #[allow(clippy::redundant_closure_call, clippy::let_unit_value)]
            let __flujo_result = #run;
        }
    };

    // Spanned on the function's value type: an error type without `Display` is reported there.
    let value_span = model
        .output
        .as_ref()
        .map_or_else(Span::call_site, |ty| ty.span());
    // A validator turns a rejected `Ok` into an `Err` before the attempt is judged.
    let attempt = match &model.validate {
        Some(validator) => {
            let name = validator
                .segments
                .last()
                .map(|segment| segment.ident.to_string())
                .unwrap_or_default();
            // The closure lets the validator take a deref of the value (`&str` for a
            // `String`); built with call-site spans, so that lints see generated code.
            let closure = quote!(|__flujo_v| #validator(__flujo_v));
            let check = quote_spanned!(validator.span()=>
                #private::validate_attempt(&mut __flujo_call, __flujo_result, #name, #closure));
            quote! {
                #attempt
                let __flujo_result = #check;
            }
        }
        None => attempt,
    };
    // What the error says about retrying it, read here where its type is known: an error
    // without `RetryAdvice` resolves to the default (autoref specialisation).
    let advice = quote!({
        use #private::{ViaRetryAdvice as _, WithoutRetryAdvice as _};
        (&&#private::Advise(__flujo_error)).advice()
    });
    // `retry_if = path` decides instead of the error; spanned on the path, so that a function
    // of another signature is reported there.
    let advice = match model
        .retry
        .as_ref()
        .and_then(|retry| retry.retry_if.as_ref())
    {
        Some(retry_if) => quote_spanned!(retry_if.span()=>
            #private::retry_if(#advice, __flujo_error, #retry_if)),
        None => advice,
    };
    let advise = quote!(|__flujo_error| #advice);
    let next_attempt =
        quote_spanned!(value_span=> __flujo_call.next_attempt(__flujo_result, #advise));
    let finish_result = quote_spanned!(value_span=> __flujo_call.finish_result(&__flujo_result));
    let rebinds: Vec<_> = model
        .rebinds
        .iter()
        .map(|rebind| rebind_argument(&private, rebind))
        .collect();
    let attempts = if model.retry.is_some() {
        let wait = if is_async {
            quote!(#private::retry_delay(__flujo_delay).await)
        } else {
            quote!(#private::sleep_between_attempts(__flujo_delay))
        };
        quote! {
            loop {
                #(#rebinds)*
                #attempt
                match #next_attempt {
                    ::core::ops::ControlFlow::Break(__flujo_result) => break __flujo_result,
                    ::core::ops::ControlFlow::Continue(__flujo_delay) => #wait,
                }
            }
        }
    } else if model.fallback.is_some() {
        // The copies of a step with a fallback live in a block of their own: the fallback
        // gets the arguments themselves.
        quote! {{
            #(#rebinds)*
            #attempt
            #finish_result;
            __flujo_result
        }}
    } else if model.returns_result {
        quote! {
            #attempt
            #finish_result;
            __flujo_result
        }
    } else if stream.is_some() {
        quote! {
            #attempt
            __flujo_result
        }
    } else {
        quote! {
            #attempt
            __flujo_call.finish_ok();
            __flujo_result
        }
    };

    // `code.function.name`, made at compile time.
    let qualified = qualified_name(function);
    let step = match model.role.variant_and_operation() {
        (_, None) => {
            quote!(#private::Step::new(#name, #function, #qualified, #retry_policy))
        }
        (variant, Some(operation)) => {
            let variant = format_ident!("{variant}");
            let span_name = format!("{operation} {}", model.name);
            quote!(#private::Step::with_role(#name, #function, #qualified, #retry_policy,
                #private::StepRole::#variant, #span_name))
        }
    };
    let attempts = match &model.fallback {
        Some(fallback) => {
            let path = &fallback.path;
            let arguments = &fallback.arguments;
            // Spanned on the path: a fallback whose arguments or value do not fit is reported
            // on `fallback = ...`.
            let call = quote_spanned!(path.span()=> #path(#(#arguments),*));
            let call = if is_async {
                quote!(__flujo_call.context().instrument(#call).await)
            } else {
                call
            };
            quote! {
                let __flujo_result = #attempts;
                if __flujo_call.falls_back() {
                    let __flujo_result #annotation = #call;
                    __flujo_call.finish_fallback(&__flujo_result);
                    __flujo_result
                } else {
                    __flujo_result
                }
            }
        }
        None => attempts,
    };
    let attempts = match stream {
        Some(kind) => {
            let attach = if model.returns_result {
                quote!(#private::step_stream_result(__flujo_call, __flujo_result))
            } else {
                quote!(#private::step_stream(__flujo_call, __flujo_result))
            };
            let attach = cost_expand::box_stream(
                &private,
                kind,
                model.output.as_ref(),
                model.returns_result,
                attach,
                Span::call_site(),
            );
            quote! {
                let __flujo_result = { #attempts };
                #attach
            }
        }
        None => attempts,
    };
    quote! {
        static __FLUJO_STEP: #private::Step = #step;
        let mut __flujo_call = #private::StepCall::new(&__FLUJO_STEP);
        __flujo_call.#begin();
        #fields
        #attempts
    }
}

fn rebind_argument(private: &TokenStream, rebind: &Rebind) -> TokenStream {
    match rebind {
        Rebind::Clone {
            pattern,
            source,
            span,
            cfgs,
        } => {
            // Spanned on the argument so that a missing `Clone` is reported there.
            let clone =
                quote_spanned!(*span=> #private::RetryArgument::clone_for_attempt(&#source));
            quote!(#(#cfgs)* let #pattern = #clone;)
        }
        Rebind::Reborrow { ident, cfgs } => quote!(#(#cfgs)* let #ident = &mut *#ident;),
    }
}
