//! What the three macros share: the error context that collects every problem, argument
//! tables with did-you-mean, literal readers, and reading the annotated function.

pub(crate) use flujo_pricing::edit_distance;
use proc_macro2::{Span, TokenStream};
use quote::ToTokens;
use syn::spanned::Spanned;
use syn::{Expr, ExprLit, Ident, ItemFn, Lit, LitStr};

use crate::parse::{RawArg, RawValue};

/// The fully qualified name of the function (or pipeline) `name` at the call site,
/// `module::path::name`, made at compile time: its `code.function.name`.
pub(crate) fn qualified_name(name: &str) -> TokenStream {
    quote::quote!(::core::concat!(::core::module_path!(), "::", #name))
}

/// Collects errors so that one expansion reports all of them.
#[derive(Default)]
pub(crate) struct Errors(Option<syn::Error>);

impl Errors {
    pub(crate) fn push(&mut self, span: Span, message: impl std::fmt::Display) {
        self.push_error(syn::Error::new(span, message));
    }

    pub(crate) fn push_error(&mut self, error: syn::Error) {
        match &mut self.0 {
            Some(existing) => existing.combine(error),
            None => self.0 = Some(error),
        }
    }

    pub(crate) fn finish(self) -> syn::Result<()> {
        self.0.map_or(Ok(()), Err)
    }
}

/// Calls `accept` for each argument of `raw` named in `known`, once per name, in the order
/// written (so that errors come out in source order); unknown and repeated ones are reported.
pub(crate) fn accept_known_arguments(
    raw: Vec<RawArg>,
    known: &[&str],
    errors: &mut Errors,
    mut accept: impl FnMut(&Ident, &str, RawValue, &mut Errors),
) {
    let mut seen: Vec<String> = Vec::new();
    for RawArg { key, value } in raw {
        let name = key.to_string();
        if !known.contains(&name.as_str()) {
            errors.push_error(unknown_argument(&key, known));
        } else if seen.contains(&name) {
            errors.push(key.span(), format!("duplicate argument `{name}`"));
        } else {
            accept(&key, &name, value, errors);
            seen.push(name);
        }
    }
}

fn unknown_argument(key: &Ident, arguments: &[&str]) -> syn::Error {
    let name = key.to_string();
    let known = arguments.join(", ");
    let message = match arguments
        .iter()
        .min_by_key(|known| edit_distance(&name, known))
        .filter(|known| edit_distance(&name, known) <= 2)
    {
        Some(close) => format!("unknown argument `{name}`: did you mean `{close}`?"),
        None => format!("unknown argument `{name}`: expected one of {known}"),
    };
    syn::Error::new(key.span(), message)
}

pub(crate) fn str_literal(expr: &Expr) -> Option<&LitStr> {
    match expr {
        Expr::Lit(ExprLit {
            lit: Lit::Str(s), ..
        }) => Some(s),
        _ => None,
    }
}

/// Removes the first attribute named `name` (by its last path segment, so `track_cost` and
/// `flujo::track_cost` both match) and returns its path as written and its arguments.
pub(crate) fn take_attribute(item: &mut ItemFn, name: &str) -> Option<(syn::Path, TokenStream)> {
    let index = item.attrs.iter().position(|attr| {
        attr.path()
            .segments
            .last()
            .is_some_and(|segment| segment.ident == name)
    })?;
    let attr = item.attrs.remove(index);
    let path = attr.path().clone();
    Some(match attr.meta {
        syn::Meta::List(list) => (path, list.tokens),
        _ => (path, TokenStream::new()),
    })
}

/// Parses the annotated item: a function with a body, not `const`, not variadic.
pub(crate) fn parse_function(
    item: TokenStream,
    attribute: &str,
    errors: &mut Errors,
) -> syn::Result<ItemFn> {
    let item: ItemFn = match syn::parse2::<syn::Item>(item)? {
        syn::Item::Fn(item) => item,
        other => {
            return Err(syn::Error::new(
                first_token_span(&other),
                format!("#[{attribute}] can only be applied to functions and methods with a body"),
            ));
        }
    };
    if let Some(constness) = &item.sig.constness {
        errors.push(
            constness.span,
            format!("#[{attribute}] cannot instrument a `const fn`: telemetry runs at run time"),
        );
    }
    if let Some(variadic) = &item.sig.variadic {
        errors.push(
            variadic.span(),
            format!("#[{attribute}] cannot instrument a variadic function"),
        );
    }
    Ok(item)
}

pub(crate) trait UnrawString {
    fn unraw_string(&self) -> String;
}

impl UnrawString for Ident {
    fn unraw_string(&self) -> String {
        syn::ext::IdentExt::unraw(self).to_string()
    }
}

fn first_token_span(item: &syn::Item) -> Span {
    item.to_token_stream()
        .into_iter()
        .find(|token| !matches!(token, proc_macro2::TokenTree::Punct(p) if p.as_char() == '#'))
        .map_or_else(Span::call_site, |token| token.span())
}

/// The variant named by `argument = "<literal>"` in `choices` (literal, variant): an unknown
/// literal or a value that is not a string literal is an error listing the choices.
pub(crate) fn one_of<T: Copy>(
    argument: &str,
    choices: &[(&str, T)],
    expr: &syn::Expr,
    errors: &mut Errors,
) -> Option<(Span, T)> {
    let known = choices
        .iter()
        .map(|(choice, _)| format!("\"{choice}\""))
        .collect::<Vec<_>>()
        .join(", ");
    let Some(lit) = str_literal(expr) else {
        errors.push(
            expr.span(),
            format!("`{argument}` takes a string literal: one of {known}"),
        );
        return None;
    };
    match choices.iter().find(|(choice, _)| *choice == lit.value()) {
        Some((_, variant)) => Some((lit.span(), *variant)),
        None => {
            errors.push(
                lit.span(),
                format!(
                    "unknown {argument} {:?}: expected one of {known}",
                    lit.value()
                ),
            );
            None
        }
    }
}
