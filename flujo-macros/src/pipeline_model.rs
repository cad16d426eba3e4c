//! `pipeline! { ... }`: the declarations it takes, parsed and checked into a typed model.
//!
//! ```text
//! /// Optional description.
//! #[pipeline(version = "1.2.0")]                       // optional
//! pub pipeline answer(models: &Models, question: Question) -> Answer {
//!     plan? >> draft.await? >> review
//! }
//! ```

use proc_macro2::{Span, TokenStream};
use syn::ext::IdentExt;
use syn::parse::{Parse, ParseStream};
use syn::spanned::Spanned;
use syn::{Attribute, Expr, FnArg, Ident, LitStr, Pat, Path, Token, Type, Visibility};

use crate::internals::{self, Errors};
use crate::parse::{RawArgs, RawValue};

/// One stage: `path`, `path?`, `path.await`, `path.await?`.
pub(crate) struct Stage {
    pub path: Path,
    pub name: String,
    pub is_async: bool,
    pub fallible: bool,
}

/// The value every step gets by reference before its input.
pub(crate) struct Context {
    pub name: Ident,
    pub ty: Type,
}

pub(crate) struct PipelineModel {
    pub krate: syn::Path,
    pub docs: Vec<Attribute>,
    pub description: Option<String>,
    pub version: Option<LitStr>,
    pub vis: Visibility,
    pub name: Ident,
    pub context: Option<Context>,
    pub input: Type,
    pub output: Type,
    pub stages: Vec<Stage>,
}

/// Every declaration of one `pipeline!` invocation.
pub(crate) struct Pipelines(pub Vec<PipelineModel>);

const ARGUMENTS: &[&str] = &["version", "crate"];

impl Parse for Pipelines {
    fn parse(input: ParseStream) -> syn::Result<Self> {
        let mut errors = Errors::default();
        let mut pipelines = Vec::new();
        while !input.is_empty() {
            if let Some(pipeline) = parse_pipeline(input, &mut errors)? {
                pipelines.push(pipeline);
            }
        }
        errors.finish()?;
        if pipelines.is_empty() {
            return Err(input.error(
                "pipeline! declares pipelines: `pub pipeline name(input: Input) -> Output { step_a >> step_b }`",
            ));
        }
        Ok(Pipelines(pipelines))
    }
}

fn parse_pipeline(input: ParseStream, errors: &mut Errors) -> syn::Result<Option<PipelineModel>> {
    let attrs = input.call(Attribute::parse_outer)?;
    let vis: Visibility = input.parse()?;
    let keyword = Ident::parse_any(input)?;
    if keyword != "pipeline" {
        return Err(syn::Error::new(
            keyword.span(),
            format!(
                "expected `pipeline`, found `{keyword}`: declare `pub pipeline name(input: Input) -> Output {{ step_a >> step_b }}`"
            ),
        ));
    }
    let name: Ident = input.parse()?;
    let params;
    syn::parenthesized!(params in input);
    let params = params.parse_terminated(FnArg::parse, Token![,])?;
    if !input.peek(Token![->]) {
        return Err(input.error(format!(
            "pipeline `{name}` needs its output type: `pipeline {name}(input: Input) -> Output {{ ... }}`"
        )));
    }
    input.parse::<Token![->]>()?;
    let output: Type = input.parse()?;
    let body;
    let braces = syn::braced!(body in input);
    let stages = parse_stages(&body, braces.span.join(), errors);

    let (mut docs, mut settings) = (Vec::new(), None);
    for attr in attrs {
        if attr.path().is_ident("doc") {
            docs.push(attr);
        } else if attr.path().is_ident("pipeline") {
            settings = Some(attr);
        } else {
            errors.push(
                attr.path().span(),
                "pipeline! takes doc comments and `#[pipeline(version = \"...\")]` only",
            );
        }
    }
    let (version, krate) = settings.map_or((None, None), |attr| parse_settings(&attr, errors));
    let (context, input_ty) = check_params(&name, params.into_iter().collect(), errors);
    let description = docs
        .iter()
        .filter_map(|attr| match &attr.meta {
            syn::Meta::NameValue(nv) => match &nv.value {
                Expr::Lit(syn::ExprLit {
                    lit: syn::Lit::Str(s),
                    ..
                }) => Some(s.value().trim().to_owned()),
                _ => None,
            },
            _ => None,
        })
        .collect::<Vec<_>>()
        .join(" ");
    let Some(input_ty) = input_ty else {
        return Ok(None);
    };
    Ok(Some(PipelineModel {
        krate: krate.unwrap_or_else(|| syn::parse_quote!(::flujo)),
        docs,
        description: (!description.is_empty()).then_some(description),
        version,
        vis,
        name,
        context,
        input: input_ty,
        output,
        stages,
    }))
}

fn parse_settings(attr: &Attribute, errors: &mut Errors) -> (Option<LitStr>, Option<syn::Path>) {
    let tokens = match &attr.meta {
        syn::Meta::List(list) => list.tokens.clone(),
        other => {
            errors.push(other.span(), "write `#[pipeline(version = \"1.0.0\")]`");
            return (None, None);
        }
    };
    let raw = match syn::parse2::<RawArgs>(tokens) {
        Ok(RawArgs(raw)) => raw,
        Err(error) => {
            errors.push_error(error);
            return (None, None);
        }
    };
    let (mut version, mut krate) = (None, None);
    internals::accept_known_arguments(raw, ARGUMENTS, errors, |key, name, value, errors| {
        match (name, value) {
            ("version", RawValue::Expr(expr)) => match internals::str_literal(&expr) {
                Some(lit) if !lit.value().trim().is_empty() => version = Some(lit.clone()),
                _ => errors.push(
                    expr.span(),
                    "`version` takes a non-empty string, e.g. `version = \"1.2.0\"`",
                ),
            },
            ("crate", RawValue::Expr(Expr::Path(path))) if path.qself.is_none() => {
                krate = Some(path.path)
            }
            _ => errors.push(
                key.span(),
                format!("`{name}` takes a value: write `{name} = ...`"),
            ),
        }
    });
    (version, krate)
}

/// `(input: Input)` or `(context: &Context, input: Input)`.
fn check_params(
    name: &Ident,
    params: Vec<FnArg>,
    errors: &mut Errors,
) -> (Option<Context>, Option<Type>) {
    let mut typed = Vec::new();
    for param in params {
        match param {
            FnArg::Typed(typed_param) => match &*typed_param.pat {
                Pat::Ident(ident) => typed.push((ident.ident.clone(), (*typed_param.ty).clone())),
                other => errors.push(other.span(), "a pipeline parameter is a name: `input: Input`"),
            },
            FnArg::Receiver(receiver) => {
                errors.push(receiver.span(), "a pipeline has no `self`: its parameters are `(input: Input)` or `(context: &Context, input: Input)`")
            }
        }
    }
    match typed.len() {
        1 => (None, typed.pop().map(|(_, ty)| ty)),
        2 => {
            let (input_ty, (context_name, context_ty)) =
                (typed.pop().map(|(_, ty)| ty), typed.remove(0));
            match context_ty {
                Type::Reference(reference) if reference.mutability.is_none() => (
                    Some(Context {
                        name: context_name,
                        ty: (*reference.elem).clone(),
                    }),
                    input_ty,
                ),
                other => {
                    errors.push(
                        other.span(),
                        format!(
                            "the first of two parameters is the context every step gets by shared reference: write `{context_name}: &{}`",
                            quote::ToTokens::to_token_stream(&other)
                        ),
                    );
                    (None, None)
                }
            }
        }
        0 => {
            errors.push(
                name.span(),
                format!("pipeline `{name}` needs an input parameter: `pipeline {name}(input: Input) -> Output`"),
            );
            (None, None)
        }
        _ => {
            errors.push(
                name.span(),
                format!(
                    "pipeline `{name}` takes `(input: Input)` or `(context: &Context, input: Input)`: put several values in one struct"
                ),
            );
            (None, None)
        }
    }
}

fn parse_stages(body: ParseStream, body_span: Span, errors: &mut Errors) -> Vec<Stage> {
    let mut stages = Vec::new();
    if body.is_empty() {
        errors.push(
            body_span,
            "a pipeline needs at least one step: `{ step_a >> step_b }`",
        );
        return stages;
    }
    loop {
        match parse_stage(body) {
            Ok(stage) => stages.push(stage),
            Err(error) => {
                errors.push_error(error);
                let _ = body.parse::<TokenStream>();
                return stages;
            }
        }
        if body.is_empty() {
            return stages;
        }
        if body.peek(Token![>>]) {
            body.parse::<Token![>>]>().ok();
            continue;
        }
        errors.push(
            body.span(),
            "steps are joined with `>>`: `step_a >> step_b? >> step_c.await?`",
        );
        let _ = body.parse::<TokenStream>();
        return stages;
    }
}

fn parse_stage(input: ParseStream) -> syn::Result<Stage> {
    if !(input.peek(Ident)
        || input.peek(Token![::])
        || input.peek(Token![crate])
        || input.peek(Token![self])
        || input.peek(Token![super]))
    {
        return Err(input.error(
            "expected a step: a function's path, then `.await` if it is async and `?` if it returns Result",
        ));
    }
    let path = Path::parse_mod_style(input)?;
    let mut is_async = false;
    if input.peek(Token![.]) {
        input.parse::<Token![.]>()?;
        input.parse::<Token![await]>().map_err(|error| {
            syn::Error::new(
                error.span(),
                "after a step only `.await` may follow: write `step.await`",
            )
        })?;
        is_async = true;
    }
    let fallible = input.parse::<Option<Token![?]>>()?.is_some();
    let name = path
        .segments
        .last()
        .map(|segment| segment.ident.unraw().to_string())
        .unwrap_or_default();
    Ok(Stage {
        path,
        name,
        is_async,
        fallible,
    })
}
