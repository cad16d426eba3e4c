//! Attribute macros of flujo. Use them through the `flujo` crate (`flujo::pipeline_step`),
//! which documents them in full.

mod expand;
mod model;
mod parse;

use proc_macro::TokenStream;

/// Instruments a function as a pipeline step: a span per call, step metrics, retries and
/// failure logs. See the `flujo` crate documentation and README for the argument reference.
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

#[cfg(test)]
mod expansion_snapshots;
