//! Code generation of `#[track_cost]`: a `static` model-call site and calls into
//! `<crate>::__private` around the function's block.

use proc_macro2::{Span, TokenStream, TokenTree};
use quote::{format_ident, quote, quote_spanned};
use syn::Block;
use syn::spanned::Spanned;

use crate::cost_model::{CostModel, ModelArg};
use crate::fields;
use crate::internals::qualified_name;
use crate::shape::StreamKind;

/// The statements that replace `block` (the body of a fn, or of its `async move` block).
pub(crate) fn instrument(model: &CostModel, block: &Block, is_async: bool) -> TokenStream {
    let krate = &model.krate;
    let private = quote!(#krate::__private);
    let operation = &model.operation;
    let provider = match &model.provider {
        Some(lit) => quote!(::core::option::Option::Some(#lit)),
        None => quote!(::core::option::Option::None),
    };
    let with_api = model.api.as_ref().map(|api| quote!(.with_api(#api)));
    let function = &model.function;
    let qualified = qualified_name(function);
    let model_name = match &model.model {
        ModelArg::Literal(lit) => quote!(::std::borrow::Cow::Borrowed(#lit)),
        ModelArg::Expr(expr) => quote_spanned!(expr.span()=> #private::model_name(&(#expr))),
    };
    // A stream outlives the function: its call never becomes the thread's current span.
    let detached = is_async || model.stream.is_some();
    let begin = if model.returns_result {
        let method = if detached {
            quote!(start)
        } else {
            quote!(enter)
        };
        // Every token on the error type, so that a missing `From` is reported there.
        let error_private = respan(quote!(#krate::__private), model.error_span);
        let refusal = quote_spanned!(model.error_span=>
            #error_private::FromUsageLimitExceeded::from_usage_limit_exceeded(__flujo_refusal));
        quote! {
            if let ::core::result::Result::Err(__flujo_refusal) = __flujo_model_call.#method(#model_name) {
                return ::core::result::Result::Err(#refusal);
            }
        }
    } else {
        quote!(__flujo_model_call.enter_unrefusable(#model_name, #detached);)
    };
    let call = if is_async {
        let annotation = model.output.as_ref().map(|ty| quote!(: #ty));
        // A named stream type is usually built by coercion (`Ok(Box::pin(stream))`), which
        // needs the type where the block's value is made.
        let body = match (model.stream, &annotation) {
            (Some(StreamKind::Boxed), Some(annotation)) => quote! {
                async {
                    let __flujo_body #annotation = #block;
                    __flujo_body
                }
            },
            _ => quote!(async #block),
        };
        quote! {
            #[allow(clippy::let_unit_value)]
            let __flujo_value #annotation = __flujo_model_call.context().instrument(#body).await;
        }
    } else {
        let annotation = model.output.as_ref().map(|ty| quote!(-> #ty));
        quote! {
            #[allow(clippy::redundant_closure_call)]
            let __flujo_value = (|| #annotation #block)();
        }
    };
    let warning = model.unpriced_warning.as_ref().map(|warning| {
        let (span, note) = (warning.span, &warning.note);
        let name = format_ident!("{}", warning.constant, span = span);
        quote_spanned! {span=>
            const _: () = {
                #[deprecated(note = #note)]
                #[allow(non_upper_case_globals)]
                const #name: () = ();
                #name
            };
        }
    });
    let tail = match model.stream {
        Some(kind) => wrap_stream(model, &private, kind),
        None => {
            let finish = finish_call(model);
            quote!(#finish; __flujo_value)
        }
    };
    let tracking = &model.build_tracking;
    let fields = fields::record(&model.fields, &format_ident!("__flujo_model_call"));
    let content = (!model.content.is_empty()).then(|| {
        // Spanned on the expression: a value that is not messages is reported there.
        let captures = model.content.iter().map(
            |(method, expr)| quote_spanned!(expr.span()=> __flujo_model_call.#method(&#expr);),
        );
        quote! {
            if __flujo_model_call.captures_content() {
                #(#captures)*
            }
        }
    });
    quote! {
        #warning
        #tracking
        static __FLUJO_MODEL_CALL: #private::ModelCallSite = #private::ModelCallSite::new(
            #private::Operation::#operation, #provider, #function, #qualified)#with_api;
        let mut __flujo_model_call = #private::ModelCall::new(&__FLUJO_MODEL_CALL);
        #begin
        #fields
        #content
        #call
        #tail
    }
}

/// Ends a call that is not streamed: reads the usage of its value (`__flujo_value`).
fn finish_call(model: &CostModel) -> TokenStream {
    let value_span = model.value_span;
    // Through a closure, so that the usage function may take a deref of the value
    // (`&[T]` for a `Vec<T>`, `&str` for a `String`); the closure has call-site spans, so
    // that lints see generated code.
    match (&model.usage, model.returns_result) {
        (None, true) => {
            quote_spanned!(value_span=> __flujo_model_call.finish_result(&__flujo_value))
        }
        (None, false) => quote_spanned!(value_span=> __flujo_model_call.finish(&__flujo_value)),
        (Some(usage), true) => {
            let closure = quote!(|__flujo_v| #usage(__flujo_v));
            quote_spanned!(usage.span()=> __flujo_model_call.finish_result_with(&__flujo_value, #closure))
        }
        (Some(usage), false) => {
            let closure = quote!(|__flujo_v| #usage(__flujo_v));
            quote_spanned!(usage.span()=> __flujo_model_call.finish_with(&__flujo_value, #closure))
        }
    }
}

/// The end of a streamed call's expansion: the function's stream, wrapped so that the call
/// lasts until it ends (boxed again into a named stream type).
fn wrap_stream(model: &CostModel, private: &TokenStream, kind: StreamKind) -> TokenStream {
    let value_span = model.value_span;
    let tracked = if model.returns_result {
        quote_spanned!(value_span=> #private::track_stream_result(__flujo_model_call, __flujo_value))
    } else {
        quote_spanned!(value_span=> #private::track_stream(__flujo_model_call, __flujo_value))
    };
    // On the declared type: a type that cannot hold the stream is reported there.
    box_stream(
        private,
        kind,
        model.output.as_ref(),
        model.returns_result,
        tracked,
        value_span,
    )
}

/// `stream` (a `Result` of one when `returns_result`) boxed back into the declared `output`
/// type for a named stream type, else as it is; `span` is where a type that cannot hold it
/// is reported.
pub(crate) fn box_stream(
    private: &TokenStream,
    kind: StreamKind,
    output: Option<&syn::Type>,
    returns_result: bool,
    stream: TokenStream,
    span: Span,
) -> TokenStream {
    let (StreamKind::Boxed, Some(output)) = (kind, output) else {
        return stream;
    };
    let boxed_into = quote_spanned!(span=> #private::BoxedStream::boxed);
    let boxed = if returns_result {
        quote!(#stream.map(#boxed_into))
    } else {
        quote!(#boxed_into(#stream))
    };
    quote! {
        let __flujo_stream: #output = #boxed;
        __flujo_stream
    }
}

/// `tokens` with every span replaced by `span`.
pub(crate) fn respan(tokens: TokenStream, span: Span) -> TokenStream {
    tokens
        .into_iter()
        .map(|mut token| {
            if let TokenTree::Group(group) = &token {
                let mut inner =
                    proc_macro2::Group::new(group.delimiter(), respan(group.stream(), span));
                inner.set_span(span);
                token = TokenTree::Group(inner);
            } else {
                token.set_span(span);
            }
            token
        })
        .collect()
}
