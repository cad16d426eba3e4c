//! Attribute macros of flujo. Use them through the `flujo` crate (`flujo::pipeline_step`),
//! which documents them in full.

#![forbid(unsafe_code)]

mod cost_expand;
mod cost_model;
mod expand;
mod fields;
mod internals;
mod model;
mod parse;
mod pipeline_expand;
mod pipeline_model;
mod shape;

use proc_macro::TokenStream;

/// Instruments a function as a pipeline step: a span per call, step metrics, retries and
/// failure logs. The argument reference is on `flujo::pipeline_step`, where this macro is
/// re-exported with runnable examples.
#[proc_macro_attribute]
pub fn pipeline_step(args: TokenStream, item: TokenStream) -> TokenStream {
    pipeline_step_impl(args.into(), item.into()).into()
}

fn pipeline_step_impl(
    args: proc_macro2::TokenStream,
    item: proc_macro2::TokenStream,
) -> proc_macro2::TokenStream {
    match model::StepModel::build(args, item.clone()) {
        Ok(model) => expand::expand(model),
        // The original item is kept so that a bad attribute does not also make every use
        // of the function an error.
        Err(error) => {
            let error = error.to_compile_error();
            quote::quote!(#error #item)
        }
    }
}

/// Tracks the cost of a model call: a model-call span with the GenAI attributes, token and
/// cost metrics, a cost record in the ledger, and the run's usage limits. The argument
/// reference is on `flujo::track_cost`, where this macro is re-exported with examples.
#[proc_macro_attribute]
pub fn track_cost(args: TokenStream, item: TokenStream) -> TokenStream {
    track_cost_impl(args.into(), item.into()).into()
}

fn track_cost_impl(
    args: proc_macro2::TokenStream,
    item: proc_macro2::TokenStream,
) -> proc_macro2::TokenStream {
    let mut errors = internals::Errors::default();
    let built =
        internals::parse_function(item.clone(), "track_cost", &mut errors).map(|mut function| {
            let step = internals::take_attribute(&mut function, "pipeline_step");
            // A `skip` of a `#[pipeline_step]` below is checked when that attribute expands.
            let cost =
                cost_model::CostModel::build(args.clone(), &function, &|_| false, &mut errors);
            (function, step, cost)
        });
    let result = built.and_then(|built| errors.finish().map(|()| built));
    match result {
        // `#[pipeline_step]` below: hand both to it, so that the step span is the parent
        // whichever attribute comes first.
        Ok((function, Some((step_path, step_args)), Some(cost))) => {
            let krate = &cost.krate;
            quote::quote! {
                #[#step_path(#step_args)]
                #[#krate::track_cost(#args)]
                #function
            }
        }
        Ok((function, None, Some(cost))) => {
            let shape = shape::FnShape::of(&function);
            expand::wrap_body(&function, &shape.body, |block, is_async| {
                cost_expand::instrument(&cost, block, is_async)
            })
        }
        // A missing model was pushed to `errors`, so this is the `Err` arm's case too.
        Ok((_, _, None)) => item,
        Err(error) => {
            let error = error.to_compile_error();
            quote::quote!(#error #item)
        }
    }
}

/// Declares pipelines from `#[pipeline_step]` functions. The syntax reference is on
/// `flujo::pipeline`, where this macro is re-exported with examples.
#[proc_macro]
pub fn pipeline(input: TokenStream) -> TokenStream {
    pipeline_impl(input.into()).into()
}

fn pipeline_impl(input: proc_macro2::TokenStream) -> proc_macro2::TokenStream {
    match syn::parse2::<pipeline_model::Pipelines>(input) {
        Ok(pipelines) => pipelines.0.iter().map(pipeline_expand::expand).collect(),
        Err(error) => error.to_compile_error(),
    }
}

#[cfg(test)]
mod expansion_snapshots;
