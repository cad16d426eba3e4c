//! `fields(...)`, shared by `#[pipeline_step]` and `#[track_cost]`: resolving each field
//! against the function's parameters and the `skip` redaction guarantee, and the code that
//! records them on a call.

use proc_macro2::{Ident, Span, TokenStream};
use quote::{ToTokens, quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{Expr, FnArg, ItemFn, Pat};

use crate::internals::Errors;
use crate::parse::{FieldArg, FieldSigil};

pub(crate) enum FieldValue {
    Value(Expr),
    Display(Expr),
    Debug(Expr),
}

pub(crate) struct Field {
    pub key: String,
    pub value: FieldValue,
}

/// Resolves `fields(...)`: shorthands become parameter reads, and a field that reads a
/// parameter for which `is_skipped` holds, in any form, is an error on that read.
pub(crate) fn resolve(
    args: &[FieldArg],
    params: &[String],
    is_skipped: &dyn Fn(&str) -> bool,
    errors: &mut Errors,
) -> Vec<Field> {
    let mut keys: Vec<&str> = Vec::new();
    let mut fields = Vec::new();
    for field in args {
        if keys.contains(&field.key.as_str()) {
            errors.push(field.key_span, format!("duplicate field `{}`", field.key));
            continue;
        }
        keys.push(&field.key);
        let value = match &field.value {
            None => {
                if !params.contains(&field.key) {
                    errors.push(
                        field.key_span,
                        format!(
                            "`{0}` is not a parameter: record a value with `{0} = <expression>`",
                            field.key
                        ),
                    );
                    continue;
                }
                let ident = Ident::new(&field.key, field.key_span);
                FieldValue::Value(syn::parse_quote!(#ident))
            }
            Some((sigil, expr)) => match sigil {
                FieldSigil::Value => FieldValue::Value(expr.clone()),
                FieldSigil::Display => FieldValue::Display(expr.clone()),
                FieldSigil::Debug => FieldValue::Debug(expr.clone()),
            },
        };
        let recorded = match &value {
            FieldValue::Value(e) | FieldValue::Display(e) | FieldValue::Debug(e) => e,
        };
        if !reads_no_skipped(
            recorded,
            &format!("field `{}`", field.key),
            params,
            is_skipped,
            errors,
        ) {
            continue;
        }
        fields.push(Field {
            key: field.key.clone(),
            value,
        });
    }
    fields
}

/// Whether `recorded` reads no parameter for which `is_skipped` holds; each read of one, in
/// any form (a method call, a reference, a closure, a macro's arguments, a format string's
/// `{name}`), is an error on it naming `what` would record it.
pub(crate) fn reads_no_skipped(
    recorded: &Expr,
    what: &str,
    params: &[String],
    is_skipped: &dyn Fn(&str) -> bool,
    errors: &mut Errors,
) -> bool {
    let mut reads = Vec::new();
    skipped_reads(
        recorded.to_token_stream(),
        &|name| params.iter().any(|param| param == name) && is_skipped(name),
        &mut reads,
    );
    for (span, name) in &reads {
        errors.push(
            *span,
            format!(
                "`{name}` is skipped, so {what} cannot read it: remove it from \
                 `skip`/`skip_all`, or record something that does not contain it"
            ),
        );
    }
    reads.is_empty()
}

/// The names of `item`'s parameters that are plain identifiers (`self` for a receiver).
pub(crate) fn param_names(item: &ItemFn) -> Vec<String> {
    item.sig
        .inputs
        .iter()
        .filter_map(|input| match input {
            FnArg::Receiver(_) => Some("self".to_owned()),
            FnArg::Typed(typed) => match &*typed.pat {
                Pat::Ident(ident) => Some(ident.ident.to_string()),
                _ => None,
            },
        })
        .collect()
}

/// The statements that record `fields` on the call `call` (a `StepCall` or `ModelCall`),
/// evaluated only when the call records a span.
pub(crate) fn record(fields: &[Field], call: &Ident) -> TokenStream {
    if fields.is_empty() {
        return TokenStream::new();
    }
    let records = fields.iter().map(|field| {
        let key = &field.key;
        // Spanned on the value: a type that cannot be recorded is reported there.
        match &field.value {
            FieldValue::Value(expr) => quote_spanned!(expr.span()=> #call.record(#key, &#expr);),
            FieldValue::Display(expr) => {
                quote_spanned!(expr.span()=> #call.record_display(#key, &#expr);)
            }
            FieldValue::Debug(expr) => {
                quote_spanned!(expr.span()=> #call.record_debug(#key, &#expr);)
            }
        }
    });
    quote! {
        if #call.is_recording() {
            #(#records)*
        }
    }
}

/// The places in `tokens` that read a variable for which `is_skipped` holds: identifiers
/// that are not a field or method name (after `.`) or a later path segment (after `::`),
/// and `{name}` captures in string literals (inline format arguments).
fn skipped_reads(
    tokens: proc_macro2::TokenStream,
    is_skipped: &dyn Fn(&str) -> bool,
    reads: &mut Vec<(Span, String)>,
) {
    use proc_macro2::{Spacing, TokenTree};
    type Mark = Option<(char, Spacing)>;
    // The last two punctuation marks right before the current token, if it follows them.
    let mut before: (Mark, Mark) = (None, None);
    for token in tokens {
        match token {
            TokenTree::Group(group) => {
                skipped_reads(group.stream(), is_skipped, reads);
                before = (None, None);
            }
            TokenTree::Ident(ident) => {
                let after_dot = matches!(before.1, Some(('.', _)));
                let after_path = matches!(before, (Some((':', Spacing::Joint)), Some((':', _))));
                let name = ident.to_string();
                if !after_dot && !after_path && is_skipped(&name) {
                    reads.push((ident.span(), name));
                }
                before = (None, None);
            }
            TokenTree::Punct(punct) => {
                before = (before.1, Some((punct.as_char(), punct.spacing())));
            }
            TokenTree::Literal(literal) => {
                let text = literal.to_string();
                if text.ends_with('"') {
                    for name in format_captures(&text) {
                        if is_skipped(name) {
                            reads.push((literal.span(), name.to_owned()));
                        }
                    }
                }
                before = (None, None);
            }
        }
    }
}

/// The `name` of every `{name}` / `{name:...}` in a string literal's text (`{{` escapes).
fn format_captures(text: &str) -> Vec<&str> {
    let mut names = Vec::new();
    let mut rest = text;
    while let Some(open) = rest.find('{') {
        rest = &rest[open + 1..];
        if let Some(escaped) = rest.strip_prefix('{') {
            rest = escaped;
            continue;
        }
        let end = rest
            .find(|c: char| !(c.is_alphanumeric() || c == '_'))
            .unwrap_or(rest.len());
        if end > 0 && matches!(rest[end..].chars().next(), Some('}' | ':')) {
            names.push(&rest[..end]);
        }
        rest = &rest[end..];
    }
    names
}
