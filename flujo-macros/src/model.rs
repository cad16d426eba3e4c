//! The validated model of one `#[pipeline_step]`: arguments checked against each other and
//! against the function they annotate. Every problem found is reported, each on its token.

use proc_macro2::{Span, TokenStream};
use syn::spanned::Spanned;
use syn::{Expr, ExprLit, FnArg, Ident, ItemFn, Lit, LitStr, Pat, PatIdent, Type};

use crate::cost_model::CostModel;
use crate::fields::{self, Field, param_names};
use crate::internals::{
    Errors, UnrawString, accept_known_arguments, one_of, parse_function, str_literal,
    take_attribute,
};
use crate::parse::{self, FieldArg, RawArgs, RawValue};
use crate::shape::{Body, FnShape, FutureWrapper};

const ARGUMENTS: &[&str] = &[
    "name",
    "skip",
    "skip_all",
    "fields",
    "retries",
    "backoff",
    "backoff_ms",
    "jitter",
    "max_backoff_ms",
    "retry_for_ms",
    "retry_if",
    "validate",
    "timeout_ms",
    "fallback",
    "kind",
    "crate",
];

/// Longest `timeout_ms`, `retry_for_ms` or `max_backoff_ms` a step may declare: one day.
const MAX_TIMEOUT_MS: u64 = 86_400_000;

/// `backoff_ms` when the step does not say.
const DEFAULT_BACKOFF_MS: u64 = 100;

/// What a step stands for, `kind = "..."`: the values and the `StepRole` variant of each.
const KINDS: &[(&str, StepRole)] = &[
    ("step", StepRole::Step),
    ("tool", StepRole::Tool),
    ("agent", StepRole::Agent),
];

/// What a step stands for in the GenAI conventions (`kind = "..."`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum StepRole {
    Step,
    Tool,
    Agent,
}

impl StepRole {
    /// The runtime's `StepRole` variant, and the operation that names the span (none for a
    /// plain step, whose span is its name).
    pub(crate) fn variant_and_operation(self) -> (&'static str, Option<&'static str>) {
        match self {
            StepRole::Step => ("Step", None),
            StepRole::Tool => ("Tool", Some("execute_tool")),
            StepRole::Agent => ("Agent", Some("invoke_agent")),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Backoff {
    Fixed,
    Exponential,
}

/// `jitter = "..."`: how a retry's wait is spread.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Jitter {
    None,
    Full,
    Equal,
}

pub(crate) struct Retry {
    pub retries: u32,
    pub backoff: Backoff,
    pub backoff_ms: u64,
    /// Written: the runtime's default (full for exponential, none for fixed) otherwise.
    pub jitter: Option<Jitter>,
    /// `max_backoff_ms`: written, else the runtime's 60 s.
    pub max_backoff_ms: Option<u64>,
    /// `retry_for_ms`: the deadline across attempts and waits.
    pub retry_for_ms: Option<u64>,
    /// `retry_if = path`: `fn(&E) -> bool` decides whether an error is retried.
    pub retry_if: Option<syn::Path>,
}

/// A by-value argument that every retry attempt needs afresh.
pub(crate) enum Rebind {
    /// `let <pattern> = clone_for_attempt(&<source>);`
    Clone {
        pattern: Box<Pat>,
        source: Ident,
        span: Span,
        /// The parameter's `#[cfg(..)]`s: the copy exists exactly when the parameter does.
        cfgs: Vec<syn::Attribute>,
    },
    /// `let <ident> = &mut *<ident>;`: each attempt reborrows a `&mut` argument.
    Reborrow {
        ident: Ident,
        cfgs: Vec<syn::Attribute>,
    },
}

pub(crate) struct StepModel {
    pub krate: syn::Path,
    pub name: String,
    pub function: String,
    pub fields: Vec<Field>,
    pub retry: Option<Retry>,
    pub body: Body,
    /// The function's value type, when it can be written in a type annotation.
    pub output: Option<Type>,
    pub returns_result: bool,
    pub rebinds: Vec<Rebind>,
    /// `validate = path`: checks each attempt's `Ok` value.
    pub validate: Option<syn::Path>,
    /// `timeout_ms = N`: each attempt of the (async) step is cancelled after N ms.
    pub timeout_ms: Option<u64>,
    /// `fallback = path`: called with the step's arguments when its last attempt fails.
    pub fallback: Option<Fallback>,
    /// Where an error type that cannot hold a `StepTimeout` is reported.
    pub error_span: Span,
    /// The `StepRole` variant (`kind = "tool"` / `"agent"`, else `Step`).
    pub role: StepRole,
    /// `#[track_cost]` on the same function, in either order: its model call runs inside
    /// the step (a child span), and each retry attempt is a model call of its own.
    pub cost: Option<(syn::Path, CostModel)>,
    /// The function with its body taken out (and, with retries, arguments renamed).
    pub item: ItemFn,
}

/// `fallback = path` and the arguments it is called with: the step's own, in order.
pub(crate) struct Fallback {
    pub path: syn::Path,
    pub arguments: Vec<Ident>,
}

/// Arguments after their own checks, before they meet the function.
#[derive(Default)]
struct Args {
    krate: Option<syn::Path>,
    name: Option<LitStr>,
    skip_all: Option<Span>,
    skip: Vec<Ident>,
    fields: Vec<FieldArg>,
    retries: Option<(Span, u32)>,
    backoff: Option<(Span, Backoff)>,
    backoff_ms: Option<(Span, u64)>,
    jitter: Option<(Span, Jitter)>,
    /// The key's span, the value and the literal's span.
    max_backoff_ms: Option<(Span, u64, Span)>,
    retry_for_ms: Option<(Span, u64)>,
    retry_if: Option<(Span, syn::Path)>,
    validate: Option<syn::Path>,
    timeout_ms: Option<(Span, u64)>,
    fallback: Option<syn::Path>,
    /// `kind = "tool"` / `"agent"`.
    kind: Option<StepRole>,
}

fn int_literal<T: std::str::FromStr>(expr: &Expr) -> Option<(T, Span)>
where
    T::Err: std::fmt::Display,
{
    match expr {
        Expr::Lit(ExprLit {
            lit: Lit::Int(int), ..
        }) => int.base10_parse().ok().map(|v| (v, int.span())),
        _ => None,
    }
}

/// A duration argument `name = N` of at most a day (and at least 1 when `zero` says what
/// omitting it means instead), reported on the literal; `example` is a typical value.
fn milliseconds(
    name: &str,
    expr: &Expr,
    zero: Option<&str>,
    example: &str,
    errors: &mut Errors,
) -> Option<(u64, Span)> {
    match int_literal::<u64>(expr) {
        Some((0, lit)) if zero.is_some() => {
            let omit = zero.unwrap_or_default();
            errors.push(lit, format!("`{name}` must be at least 1: {omit}"));
            None
        }
        Some((ms, lit)) if ms > MAX_TIMEOUT_MS => {
            errors.push(
                lit,
                format!("`{name}` is at most {MAX_TIMEOUT_MS} (one day)"),
            );
            None
        }
        Some(found) => Some(found),
        None => {
            errors.push(
                expr.span(),
                format!("`{name}` takes a whole number of milliseconds, e.g. `{name} = {example}`"),
            );
            None
        }
    }
}

impl Args {
    fn parse(tokens: TokenStream, errors: &mut Errors) -> syn::Result<Args> {
        let RawArgs(raw) = syn::parse2(tokens)?;
        let mut args = Args::default();
        accept_known_arguments(raw, ARGUMENTS, errors, |key, name, value, errors| {
            args.accept(key, name, value, errors)
        });
        if let (Some(all), Some(first)) = (args.skip_all, args.skip.first()) {
            errors.push(
                all,
                format!("`skip_all` and `skip({first}, ...)` together: keep one of them"),
            );
        }
        if args.retries.is_none() {
            for (span, arg) in [
                (args.backoff.map(|(s, _)| s), "backoff"),
                (args.backoff_ms.map(|(s, _)| s), "backoff_ms"),
                (args.jitter.map(|(s, _)| s), "jitter"),
                (args.max_backoff_ms.map(|(s, ..)| s), "max_backoff_ms"),
                (args.retry_for_ms.map(|(s, _)| s), "retry_for_ms"),
                (args.retry_if.as_ref().map(|(s, _)| *s), "retry_if"),
            ] {
                if let Some(span) = span {
                    errors.push(
                        span,
                        format!("`{arg}` has no effect without `retries`: add `retries = N` or remove it"),
                    );
                }
            }
        }
        if let Some((_, most, lit)) = args.max_backoff_ms {
            let (backoff_ms, said) = match args.backoff_ms {
                Some((_, ms)) => (ms, ""),
                None => (DEFAULT_BACKOFF_MS, ", the default `backoff_ms`"),
            };
            if most < backoff_ms {
                errors.push(
                    lit,
                    format!(
                        "`max_backoff_ms` ({most}) is below the backoff of {backoff_ms} ms{said}: \
                         raise it to at least {backoff_ms} or lower `backoff_ms`"
                    ),
                );
            }
        }
        Ok(args)
    }

    fn accept(&mut self, key: &Ident, name: &str, value: RawValue, errors: &mut Errors) {
        let span = key.span();
        let shape_error = |expected: &str| format!("`{name}` takes {expected}");
        match (name, value) {
            ("name", RawValue::Expr(expr)) => match str_literal(&expr) {
                Some(lit) if lit.value().trim().is_empty() => {
                    errors.push(lit.span(), "`name` must not be empty")
                }
                Some(lit) => self.name = Some(lit.clone()),
                None => errors.push(
                    expr.span(),
                    shape_error("a string literal, e.g. `name = \"plan\"`"),
                ),
            },
            ("skip_all", RawValue::Flag) => self.skip_all = Some(span),
            ("skip", RawValue::List(tokens)) => match parse::ident_list(tokens) {
                Ok(idents) => self.skip = idents,
                Err(error) => errors.push_error(error),
            },
            ("fields", RawValue::List(tokens)) => match parse::field_list(tokens) {
                Ok(fields) => self.fields = fields,
                Err(error) => errors.push_error(error),
            },
            ("retries", RawValue::Expr(expr)) => match int_literal::<u32>(&expr) {
                Some((0, lit)) => errors.push(
                    lit,
                    "`retries` must be a positive integer: omit it for a single attempt",
                ),
                Some((n, _)) => self.retries = Some((span, n)),
                None => errors.push(
                    expr.span(),
                    shape_error("a positive integer, e.g. `retries = 3`"),
                ),
            },
            ("backoff", RawValue::Expr(expr)) => {
                match str_literal(&expr).map(|lit| lit.value()).as_deref() {
                    Some("fixed") => self.backoff = Some((span, Backoff::Fixed)),
                    Some("exponential") => self.backoff = Some((span, Backoff::Exponential)),
                    _ => errors.push(expr.span(), shape_error("\"fixed\" or \"exponential\"")),
                }
            }
            ("jitter", RawValue::Expr(expr)) => {
                match str_literal(&expr).map(|lit| lit.value()).as_deref() {
                    Some("full") => self.jitter = Some((span, Jitter::Full)),
                    Some("equal") => self.jitter = Some((span, Jitter::Equal)),
                    Some("none") => self.jitter = Some((span, Jitter::None)),
                    _ => errors.push(
                        expr.span(),
                        shape_error("\"full\", \"equal\" or \"none\""),
                    ),
                }
            }
            ("backoff_ms", RawValue::Expr(expr)) => match int_literal::<u64>(&expr) {
                Some((ms, _)) => self.backoff_ms = Some((span, ms)),
                None => errors.push(
                    expr.span(),
                    shape_error("a whole number of milliseconds, e.g. `backoff_ms = 200`"),
                ),
            },
            ("max_backoff_ms", RawValue::Expr(expr)) => {
                if let Some((ms, lit)) = milliseconds(name, &expr, None, "10000", errors) {
                    self.max_backoff_ms = Some((span, ms, lit));
                }
            }
            ("retry_for_ms", RawValue::Expr(expr)) => {
                let zero = Some("omit it for no deadline");
                if let Some((ms, _)) = milliseconds(name, &expr, zero, "30000", errors) {
                    self.retry_for_ms = Some((span, ms));
                }
            }
            ("retry_if", RawValue::Expr(Expr::Path(path))) if path.qself.is_none() => {
                self.retry_if = Some((span, path.path))
            }
            ("retry_if", RawValue::Expr(expr)) => errors.push(
                expr.span(),
                shape_error("the path of a function `fn(&E) -> bool` of the step's error, e.g. `retry_if = is_transient`"),
            ),
            ("timeout_ms", RawValue::Expr(expr)) => {
                let zero = Some("omit it for no timeout");
                if let Some((ms, _)) = milliseconds(name, &expr, zero, "30000", errors) {
                    self.timeout_ms = Some((span, ms));
                }
            }
            ("fallback", RawValue::Expr(Expr::Path(path))) if path.qself.is_none() => {
                self.fallback = Some(path.path)
            }
            ("fallback", RawValue::Expr(expr)) => errors.push(
                expr.span(),
                shape_error("the path of a function called with the step's arguments, e.g. `fallback = draft_with_mini` or `fallback = Self::draft_with_mini`"),
            ),
            ("crate", RawValue::Expr(Expr::Path(path))) if path.qself.is_none() => {
                self.krate = Some(path.path)
            }
            ("validate", RawValue::Expr(Expr::Path(path))) if path.qself.is_none() => {
                self.validate = Some(path.path)
            }
            ("kind", RawValue::Expr(expr)) => {
                if let Some((_, variant)) = one_of("kind", KINDS, &expr, errors) {
                    self.kind = Some(variant);
                }
            }
            ("validate", RawValue::Expr(expr)) => errors.push(
                expr.span(),
                shape_error("the path of a function `fn(&T) -> Result<(), impl Display>`, e.g. `validate = cites_sources`"),
            ),
            ("crate", RawValue::Expr(expr)) => errors.push(
                expr.span(),
                shape_error("a path, e.g. `crate = my_facade::flujo`"),
            ),
            ("skip_all", _) => errors.push(span, "`skip_all` takes no value: write `skip_all`"),
            ("skip", _) => errors.push(
                span,
                shape_error("a list of parameters, e.g. `skip(prompt)`"),
            ),
            ("fields", _) => errors.push(
                span,
                shape_error("a list, e.g. `fields(user_id, model = %self.model)`"),
            ),
            _ => errors.push(span, shape_error("a value: write `key = value`")),
        }
    }
}

/// A parameter's `#[cfg]` and `#[cfg_attr]` attributes.
fn cfgs_of(attrs: &[syn::Attribute]) -> Vec<syn::Attribute> {
    attrs
        .iter()
        .filter(|attr| attr.path().is_ident("cfg") || attr.path().is_ident("cfg_attr"))
        .cloned()
        .collect()
}

/// Plans the per-attempt copies of arguments, renaming pattern arguments in the signature.
fn plan_rebinds(item: &mut ItemFn, boxed_async: bool, errors: &mut Errors) -> Vec<Rebind> {
    let mut rebinds = Vec::new();
    for (index, input) in item.sig.inputs.iter_mut().enumerate() {
        match input {
            FnArg::Receiver(receiver) => {
                if receiver.reference.is_none() {
                    errors.push(
                        receiver.self_token.span,
                        "`retries` cannot re-run a method that takes `self` by value: \
                         take `&self` or `&mut self`",
                    );
                } else if boxed_async && receiver.mutability.is_some() {
                    errors.push(
                        receiver.self_token.span,
                        "`retries` on an `#[async_trait]` method taking `&mut self` is not \
                         supported: take `&self`, or retry inside the method",
                    );
                }
            }
            FnArg::Typed(typed) => match (&*typed.ty, &mut *typed.pat) {
                (Type::Reference(reference), Pat::Ident(ident)) => {
                    if reference.mutability.is_some() {
                        rebinds.push(Rebind::Reborrow {
                            ident: ident.ident.clone(),
                            cfgs: cfgs_of(&typed.attrs),
                        });
                    }
                }
                (Type::Reference(_), _) => {}
                (_, Pat::Wild(_)) => {}
                (_, Pat::Ident(ident)) if ident.by_ref.is_none() && ident.subpat.is_none() => {
                    let pattern = Box::new(Pat::Ident(ident.clone()));
                    ident.mutability = None;
                    rebinds.push(Rebind::Clone {
                        pattern,
                        source: ident.ident.clone(),
                        span: typed.ty.span(),
                        cfgs: cfgs_of(&typed.attrs),
                    });
                }
                (_, pat) => {
                    let source = Ident::new(&format!("__flujo_arg{index}"), pat.span());
                    let pattern = Box::new(std::mem::replace(
                        pat,
                        Pat::Ident(PatIdent {
                            attrs: Vec::new(),
                            by_ref: None,
                            mutability: None,
                            ident: source.clone(),
                            subpat: None,
                        }),
                    ));
                    rebinds.push(Rebind::Clone {
                        pattern,
                        source,
                        span: typed.ty.span(),
                        cfgs: cfgs_of(&typed.attrs),
                    });
                }
            },
        }
    }
    rebinds
}

impl StepModel {
    pub(crate) fn build(args: TokenStream, item: TokenStream) -> syn::Result<StepModel> {
        let mut errors = Errors::default();
        let mut item = parse_function(item, "pipeline_step", &mut errors)?;
        let cost_attribute = take_attribute(&mut item, "track_cost");
        let mut args = Args::parse(args, &mut errors).unwrap_or_else(|error| {
            errors.push_error(error);
            Args::default()
        });

        let params = param_names(&item);
        for skipped in &args.skip {
            if !params.contains(&skipped.to_string()) {
                errors.push(
                    skipped.span(),
                    format!(
                        "`skip({skipped})` names no parameter of `{}`: parameters are {}",
                        item.sig.ident,
                        list_or_none(&params)
                    ),
                );
            }
        }
        let is_skipped =
            |name: &str| args.skip_all.is_some() || args.skip.iter().any(|skipped| skipped == name);
        let fields = fields::resolve(&args.fields, &params, &is_skipped, &mut errors);
        // The model call's own fields keep the step's `skip` too: one function, one promise.
        let cost = cost_attribute.and_then(|(path, cost_args)| {
            CostModel::build(cost_args, &item, &is_skipped, &mut errors).map(|model| (path, model))
        });

        let shape = FnShape::of(&item);
        shape.check_future(&item, "#[pipeline_step]", &mut errors);
        let FnShape {
            body,
            output,
            returns_result,
        } = shape;

        let retry = args.retries.map(|(span, retries)| {
            if !returns_result {
                errors.push(
                    span,
                    "`retries` needs the function to return `Result`: only an `Err` is retried",
                );
            }
            Retry {
                retries,
                backoff: args.backoff.map_or(Backoff::Exponential, |(_, b)| b),
                backoff_ms: args.backoff_ms.map_or(DEFAULT_BACKOFF_MS, |(_, ms)| ms),
                jitter: args.jitter.map(|(_, jitter)| jitter),
                max_backoff_ms: args.max_backoff_ms.map(|(_, ms, _)| ms),
                retry_for_ms: args.retry_for_ms.map(|(_, ms)| ms),
                retry_if: args.retry_if.take().map(|(_, path)| path),
            }
        });
        if let Some((span, _)) = args.timeout_ms {
            if matches!(body, Body::Sync(_)) {
                errors.push(
                    span,
                    "`timeout_ms` needs an async step: a synchronous function cannot be \
                     cancelled while it runs (flujo would have to stop its thread); make the \
                     step `async`, or time out inside it (e.g. the HTTP client's own timeout)",
                );
            } else if !returns_result {
                errors.push(
                    span,
                    "`timeout_ms` needs the function to return `Result`: a timed-out attempt \
                     returns its error built from `flujo::StepTimeout`",
                );
            }
        }
        if let Some(fallback) = &args.fallback
            && !returns_result
        {
            errors.push(
                fallback.span(),
                "`fallback` needs the function to return `Result`: it runs when the last \
                 attempt returns `Err`",
            );
        }
        if let Some(validate) = &args.validate
            && !returns_result
        {
            errors.push(
                validate.span(),
                "`validate` needs the function to return `Result`: a rejected output becomes its `Err`",
            );
        }
        let rebinds = if retry.is_some() || args.fallback.is_some() {
            let boxed = matches!(
                body,
                Body::AsyncBlock {
                    wrapper: FutureWrapper::BoxPin | FutureWrapper::Method(_),
                    ..
                }
            );
            plan_rebinds(&mut item, boxed, &mut errors)
        } else {
            Vec::new()
        };
        let error_span = crate::shape::result_argument(output.as_ref(), 1)
            .map_or_else(Span::call_site, Spanned::span);
        let fallback = args.fallback.map(|path| Fallback {
            arguments: fallback_arguments(&item, &mut errors),
            path,
        });
        errors.finish()?;

        Ok(StepModel {
            krate: args.krate.unwrap_or_else(|| syn::parse_quote!(::flujo)),
            name: args
                .name
                .map_or_else(|| item.sig.ident.unraw_string(), |lit| lit.value()),
            function: item.sig.ident.unraw_string(),
            fields,
            retry,
            body,
            output,
            returns_result,
            rebinds,
            validate: args.validate,
            timeout_ms: args.timeout_ms.map(|(_, ms)| ms),
            fallback,
            error_span,
            role: args.kind.unwrap_or(StepRole::Step),
            cost,
            item,
        })
    }
}

/// The step's arguments as its fallback is called with them (after the per-attempt copies
/// renamed pattern arguments).
fn fallback_arguments(item: &ItemFn, errors: &mut Errors) -> Vec<Ident> {
    item.sig
        .inputs
        .iter()
        .filter_map(|input| match input {
            FnArg::Receiver(receiver) => Some(Ident::new("self", receiver.self_token.span)),
            FnArg::Typed(typed) => {
                if let Some(cfg) = cfgs_of(&typed.attrs).first() {
                    errors.push(
                        cfg.span(),
                        "`fallback` is called with every argument of the step: a parameter \
                         that exists only under `#[cfg]` cannot be passed on",
                    );
                }
                match &*typed.pat {
                    Pat::Ident(ident) => Some(ident.ident.clone()),
                    pat => {
                        errors.push(
                            pat.span(),
                            "`fallback` is called with every argument of the step: give this \
                             parameter a name",
                        );
                        None
                    }
                }
            }
        })
        .collect()
}

fn list_or_none(names: &[String]) -> String {
    if names.is_empty() {
        "none".to_owned()
    } else {
        names
            .iter()
            .map(|n| format!("`{n}`"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}
