//! Code generation of `pipeline!`: a type per pipeline implementing `flujo::Pipeline`, whose
//! steps run in order, each fed the previous one's output.

use proc_macro2::TokenStream;
use quote::{quote, quote_spanned};
use syn::spanned::Spanned;

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
    let steps = stages
        .iter()
        .map(|stage| expand_stage(stage, context_arg.as_ref()));
    let last_span = stages
        .last()
        .map_or_else(|| name.span(), |stage| stage.path.span());
    let finish = quote_spanned!(last_span=> let __flujo_output: #output = __flujo_value;);
    quote! {
        #(#docs)*
        #[allow(non_camel_case_types)]
        #definition

        impl #krate::Pipeline for #name {
            type Input = #input;
            type Output = #output;

            fn info(&self) -> &'static #private::PipelineInfo {
                static __FLUJO_ROOT: #private::Step =
                    #private::Step::pipeline(#span_name, #name_str, ::core::module_path!());
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

fn expand_stage(stage: &Stage, context: Option<&TokenStream>) -> TokenStream {
    let path = &stage.path;
    let name = &stage.name;
    // Spanned on the step: a step that does not take the previous output is reported there.
    let span = path.span();
    let call = quote_spanned!(span=> #path(#context __flujo_value));
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
