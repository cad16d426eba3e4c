//! Code generation of `pipeline!`: a type per pipeline implementing `flujo::Pipeline`, whose
//! steps run in order, each fed the previous one's output.

use proc_macro2::{Span, TokenStream};
use quote::{quote, quote_spanned};
use syn::spanned::Spanned;

use crate::cost_expand::respan;
use crate::internals::qualified_name;
use crate::pipeline_model::{PipelineModel, Stage};

pub(crate) fn expand(model: &PipelineModel) -> TokenStream {
    let PipelineModel {
        krate,
        docs,
        description,
        version,
        vis,
        name,
        context,
        input,
        output,
        stages,
    } = model;
    let private = quote!(#krate::__private);
    let name_str = name.to_string();
    let qualified = qualified_name(&name_str);
    let span_name = format!("invoke_workflow {name_str}");
    let version = match version {
        Some(lit) => quote!(::core::option::Option::Some(#lit)),
        None => quote!(::core::option::Option::None),
    };
    let description = match description {
        Some(text) => quote!(::core::option::Option::Some(#text)),
        None => quote!(::core::option::Option::None),
    };
    let step_names = stages.iter().map(|stage| &stage.name);
    let (definition, context_binding) = match context {
        // A braced struct lives in the type namespace only: a `fn` or a `let` of the same
        // snake_case name beside the pipeline does not collide with it (a unit struct would).
        None => (
            quote! {
                #[derive(Clone, Copy, Debug, Default)]
                #vis struct #name {
                    _private: (),
                }

                impl #name {
                    /// The pipeline (it has no context).
                    #vis const fn new() -> Self {
                        #name { _private: () }
                    }
                }
            },
            TokenStream::new(),
        ),
        Some(context) => {
            let field = &context.name;
            let ty = &context.ty;
            (
                quote! {
                    #vis struct #name {
                        /// The context every step gets by reference.
                        pub #field: #ty,
                    }

                    impl #name {
                        /// The pipeline with the context its steps use.
                        #vis fn new(#field: #ty) -> Self {
                            #name { #field }
                        }
                    }
                },
                quote!(let #field = &self.#field;),
            )
        }
    };
    let context_arg = context.as_ref().map(|context| {
        let field = &context.name;
        quote!(#field,)
    });
    let steps = stages.iter().enumerate().map(|(index, stage)| {
        let giver = index
            .checked_sub(1)
            .map(|previous| stages[previous].path.span());
        expand_stage(stage, context_arg.as_ref(), &private, giver)
    });
    let finish = match stages.last() {
        Some(last) => {
            let value = handed_on(&private, last.path.span());
            quote_spanned!(last.path.span()=> let __flujo_output: #output = #value;)
        }
        None => quote_spanned!(name.span()=> let __flujo_output: #output = __flujo_value;),
    };
    quote! {
        #(#docs)*
        #[allow(non_camel_case_types)]
        #definition

        impl #krate::Pipeline for #name {
            type Input = #input;
            type Output = #output;

            fn info(&self) -> &'static #private::PipelineInfo {
                static __FLUJO_ROOT: #private::Step =
                    #private::Step::pipeline(#span_name, #name_str, #qualified);
                static __FLUJO_PIPELINE: #private::PipelineInfo = #private::PipelineInfo::new(
                    #name_str,
                    #version,
                    #description,
                    &[#(#step_names),*],
                    &__FLUJO_ROOT,
                );
                &__FLUJO_PIPELINE
            }

            #[allow(clippy::let_unit_value, unused_variables)]
            fn run_steps<'a>(
                &'a self,
                __flujo_run: &'a #private::RunState<'_>,
                input: #input,
            ) -> impl ::core::future::Future<
                Output = ::core::result::Result<#output, #private::PipelineError>,
            > + 'a {
                async move {
                    #[allow(unused_imports)]
                    use #private::{FutureStage as _, PlainStage as _};
                    #context_binding
                    let __flujo_value: #input = input;
                    #(#steps)*
                    #finish
                    ::core::result::Result::Ok(__flujo_output)
                }
            }
        }
    }
}

/// The previous step's value handed on, spanned on the step that gave it: a forgotten `?` or
/// `.await` there is reported at that step, saying so (see `StageValue`).
fn handed_on(private: &TokenStream, giver: Span) -> TokenStream {
    // Every token on the giving step, so that the error points at it alone.
    let private = respan(private.clone(), giver);
    quote_spanned!(giver=> #private::StageValue(::core::option::Option::Some(__flujo_value)).hand_on())
}

/// One stage; `giver` is the span of the step whose value it takes (`None` for the first,
/// which takes the pipeline's input).
fn expand_stage(
    stage: &Stage,
    context: Option<&TokenStream>,
    private: &TokenStream,
    giver: Option<Span>,
) -> TokenStream {
    let path = &stage.path;
    let name = &stage.name;
    // Spanned on the step: a step that does not take its input is reported there.
    let span = path.span();
    let input = match giver {
        Some(giver) => handed_on(private, giver),
        None => quote!(__flujo_value),
    };
    let call = quote_spanned!(span=> #path(#context #input));
    let call = if stage.is_async {
        quote_spanned!(span=> #call.await)
    } else {
        call
    };
    let finish = if stage.fallible {
        quote_spanned!(span=> __flujo_run.step_result(__flujo_stage, __flujo_out)?)
    } else {
        quote_spanned!(span=> __flujo_run.step_ok(__flujo_stage, __flujo_out))
    };
    quote! {
        let __flujo_stage = __flujo_run.step_started(#name);
        let __flujo_out = #call;
        let __flujo_value = #finish;
    }
}
