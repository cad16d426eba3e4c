//! What `#[pipeline_step]`, `#[track_cost]` and `pipeline!` generate for representative functions, pretty-printed. A change
//! in generated code shows up here as a snapshot diff in review (`cargo insta review`).

use quote::quote;

fn expand(args: proc_macro2::TokenStream, item: proc_macro2::TokenStream) -> String {
    let tokens = crate::pipeline_step_impl(args, item);
    let file = syn::parse2::<syn::File>(tokens).expect("expansion is valid Rust");
    prettyplease::unparse(&file)
}

fn expand_cost(args: proc_macro2::TokenStream, item: proc_macro2::TokenStream) -> String {
    let tokens = crate::track_cost_impl(args, item);
    let file = syn::parse2::<syn::File>(tokens).expect("expansion is valid Rust");
    prettyplease::unparse(&file)
}

#[test]
fn cost_sync_result_literal_model() {
    insta::assert_snapshot!(expand_cost(
        quote!(model = "gpt-4o-mini", provider = "openai"),
        quote! {
            fn ask(client: &Client, prompt: &str) -> Result<Completion, ClientError> {
                client.complete(prompt)
            }
        }
    ));
}

#[test]
fn cost_async_runtime_model_with_usage_fn() {
    insta::assert_snapshot!(expand_cost(
        quote!(
            model = self.model.as_str(),
            operation = "embeddings",
            usage = usage_of
        ),
        quote! {
            async fn embed(&self, texts: &[String]) -> Vec<Vec<f32>> {
                self.client.embed(texts).await
            }
        }
    ));
}

#[test]
fn cost_with_request_fields() {
    // The request's parameters as `gen_ai.request.*` attributes of the model call's span,
    // evaluated only when it records.
    insta::assert_snapshot!(expand_cost(
        quote!(
            model = "gpt-4o-mini",
            fields(gen_ai.request.temperature = request.temperature, gen_ai.request.max_tokens = max_tokens, "gen_ai.conversation.id" = %conversation)
        ),
        quote! {
            fn ask(request: &Request, max_tokens: u32, conversation: &ConversationId) -> Result<Completion, ClientError> {
                client().complete(request, max_tokens)
            }
        }
    ));
}

#[test]
fn cost_with_content_capture() {
    // Content is read only when capture is on and the call records.
    insta::assert_snapshot!(expand_cost(
        quote!(
            model = "gpt-4o-mini",
            system_instructions = self.persona,
            input_messages = [("user", question)]
        ),
        quote! {
            fn ask(&self, question: &str) -> Result<Completion, ClientError> {
                self.client.complete(&self.persona, question)
            }
        }
    ));
}

#[test]
fn cost_inside_a_step() {
    // `#[track_cost]` under `#[pipeline_step]`: the model call runs inside each attempt.
    insta::assert_snapshot!(expand(
        quote!(name = "draft", retries = 2),
        quote! {
            #[track_cost(model = "claude-sonnet-4-5")]
            async fn draft(&self, outline: &str) -> Result<Completion, ClientError> {
                self.client.complete(outline).await
            }
        }
    ));
}

#[test]
fn pipeline_with_context_and_version() {
    let tokens = crate::pipeline_impl(quote! {
        /// Answers a question.
        #[pipeline(version = "1.0.0")]
        pub pipeline answer(models: &Models, question: String) -> Review {
            plan? >> draft.await? >> review
        }
    });
    let file = syn::parse2::<syn::File>(tokens).expect("expansion is valid Rust");
    insta::assert_snapshot!(prettyplease::unparse(&file));
}

#[test]
fn tool_step() {
    // `kind = "tool"`: the span is `execute_tool {name}`; metrics keep the step's name.
    insta::assert_snapshot!(expand(
        quote!(kind = "tool", name = "weather"),
        quote! {
            fn get_weather(city: &str) -> Result<Forecast, WeatherError> {
                weather_api::forecast(city)
            }
        }
    ));
}

#[test]
fn step_with_validator() {
    insta::assert_snapshot!(expand(
        quote!(retries = 2, validate = cites_sources),
        quote! {
            fn summarise(text: &str) -> Result<String, SummaryError> {
                summarise_text(text)
            }
        }
    ));
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
        quote!(name = "score", skip(api_key), fields(model, prompt_len = prompt.len(), kind = %kind, "gen_ai.request.model" = ?model)),
        quote! {
            fn score(prompt: &str, model: &str, kind: Kind, api_key: &str) -> Result<f64, ScoreError> {
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
fn async_retries_for_a_rate_limited_api() {
    // A cap on each wait, a deadline across attempts and waits, and the user's own judge of
    // which errors are worth another attempt.
    insta::assert_snapshot!(expand(
        quote!(
            retries = 5,
            max_backoff_ms = 10000,
            retry_for_ms = 30000,
            retry_if = is_transient
        ),
        quote! {
            async fn ask(prompt: &str) -> Result<String, reqwest::Error> {
                client().post(prompt).await
            }
        }
    ));
}

#[test]
fn sync_retries_with_equal_jitter() {
    insta::assert_snapshot!(expand(
        quote!(retries = 3, backoff_ms = 250, jitter = "equal"),
        quote! {
            fn fetch(url: &str) -> Result<String, FetchError> {
                get(url)
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

#[test]
fn async_step_with_timeout_retries_and_fallback() {
    // Each attempt races its timer; the last failure hands over to the fallback, which runs
    // inside the step's span with the step's own arguments.
    insta::assert_snapshot!(expand(
        quote!(
            retries = 1,
            timeout_ms = 30000,
            fallback = Self::draft_with_mini
        ),
        quote! {
            async fn draft(&self, prompt: String) -> Result<String, DraftError> {
                self.client.send(&prompt).await
            }
        }
    ));
}

#[test]
fn sync_step_with_fallback() {
    insta::assert_snapshot!(expand(
        quote!(fallback = cached_answer),
        quote! {
            fn live_answer(question: String, (a, b): (u32, u32)) -> Result<String, Unavailable> {
                lookup(&question, a + b)
            }
        }
    ));
}

#[test]
fn cost_streamed_call() {
    // The call lasts until the stream ends: it never becomes the thread's current span, and
    // the function's stream comes back wrapped.
    insta::assert_snapshot!(expand_cost(
        quote!(model = "gpt-4o-mini"),
        quote! {
            async fn ask(&self, prompt: &str) -> Result<impl Stream<Item = Result<Chunk, ApiError>>, ApiError> {
                self.client.stream(prompt).await
            }
        }
    ));
}

#[test]
fn streaming_step_with_boxed_stream() {
    // A step around a streamed call hands itself over to the stream, boxed back into the
    // declared type.
    insta::assert_snapshot!(expand(
        quote!(name = "draft"),
        quote! {
            #[track_cost(model = "gpt-4o", stream)]
            fn draft(client: &Client, prompt: &str) -> Result<ChatStream, ApiError> {
                client.stream(prompt)
            }
        }
    ));
}
