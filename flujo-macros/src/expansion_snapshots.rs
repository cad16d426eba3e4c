//! What `#[pipeline_step]` generates for representative functions, pretty-printed. A change
//! in generated code shows up here as a snapshot diff in review (`cargo insta review`).

use quote::quote;

fn expand(args: proc_macro2::TokenStream, item: proc_macro2::TokenStream) -> String {
    let tokens = crate::pipeline_step_impl(args, item);
    let file = syn::parse2::<syn::File>(tokens).expect("expansion is valid Rust");
    prettyplease::unparse(&file)
}

#[test]
fn sync_plain() {
    insta::assert_snapshot!(expand(
        quote!(),
        quote! {
            /// Splits text into words.
            pub fn tokenize(text: &str) -> Vec<String> {
                text.split_whitespace().map(str::to_owned).collect()
            }
        }
    ));
}

#[test]
fn sync_result_with_fields() {
    insta::assert_snapshot!(expand(
        quote!(name = "score", skip(prompt), fields(model, prompt_len = prompt.len(), kind = %kind, "gen_ai.request.model" = ?model)),
        quote! {
            fn score(prompt: &str, model: &str, kind: Kind) -> Result<f64, ScoreError> {
                let value = parse(prompt)?;
                Ok(value)
            }
        }
    ));
}

#[test]
fn sync_retries_clone_by_value_arguments() {
    insta::assert_snapshot!(expand(
        quote!(retries = 3, backoff = "fixed", backoff_ms = 250),
        quote! {
            fn call(&mut self, prompt: Prompt, mut history: Vec<String>, (a, b): (u8, u8), out: &mut Vec<u8>, config: &Config) -> Result<String, ModelError> {
                history.push(prompt.0);
                out.push(a + b);
                self.model.complete(&history, config)
            }
        }
    ));
}

#[test]
fn async_fn_with_retries() {
    insta::assert_snapshot!(expand(
        quote!(retries = 2),
        quote! {
            async fn complete(&self, prompt: String) -> anyhow::Result<String> {
                self.client.send(&prompt).await
            }
        }
    ));
}

#[test]
fn impl_future_returning_async_block() {
    insta::assert_snapshot!(expand(
        quote!(),
        quote! {
            fn fetch(id: u32) -> impl Future<Output = Result<Doc, FetchError>> {
                let url = format!("/docs/{id}");
                async move { get(url).await }
            }
        }
    ));
}

#[test]
fn async_trait_boxed_future() {
    // The shape `#[async_trait]` gives a method before `#[pipeline_step]` sees it.
    insta::assert_snapshot!(expand(
        quote!(crate = my_facade::flujo),
        quote! {
            fn complete<'life0, 'life1, 'async_trait>(&'life0 self, prompt: &'life1 str)
                -> ::core::pin::Pin<Box<dyn ::core::future::Future<Output = Result<String, ModelError>> + ::core::marker::Send + 'async_trait>>
            where 'life0: 'async_trait, 'life1: 'async_trait, Self: 'async_trait
            {
                Box::pin(async move {
                    let __self = self;
                    let __ret: Result<String, ModelError> = { __self.inner.complete(prompt).await };
                    #[allow(unreachable_code)]
                    __ret
                })
            }
        }
    ));
}
