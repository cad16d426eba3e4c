//! Syntax of attribute arguments: `key`, `key = expr`, `key(tokens)`, comma separated.
//! Meaning is given in `model`; only malformed syntax fails here.

use proc_macro2::{Span, TokenStream};
use syn::ext::IdentExt;
use syn::parse::{Parse, ParseStream, Parser};
use syn::punctuated::Punctuated;
use syn::{Expr, Ident, LitStr, Token, parenthesized};

/// One argument as written.
pub(crate) struct RawArg {
    /// The argument's name; `crate` is accepted as a name.
    pub key: Ident,
    pub value: RawValue,
}

pub(crate) enum RawValue {
    /// `key`
    Flag,
    /// `key = expr`
    Expr(Expr),
    /// `key(tokens)`, parsed later by the argument that expects a list.
    List(TokenStream),
}

/// All arguments of one attribute.
pub(crate) struct RawArgs(pub Vec<RawArg>);

/// `expr` without the invisible groups a `macro_rules!` fragment (`$provider:literal`,
/// `$model:expr`) arrives in, so that an attribute written by a macro reads as written by hand.
fn without_invisible_groups(mut expr: Expr) -> Expr {
    while let Expr::Group(group) = expr {
        expr = *group.expr;
    }
    expr
}

impl Parse for RawArgs {
    fn parse(input: ParseStream) -> syn::Result<Self> {
        let mut args = Vec::new();
        while !input.is_empty() {
            let key = Ident::parse_any(input)?;
            let value = if input.peek(Token![=]) {
                input.parse::<Token![=]>()?;
                RawValue::Expr(without_invisible_groups(input.parse()?))
            } else if input.peek(syn::token::Paren) {
                let content;
                parenthesized!(content in input);
                RawValue::List(content.parse()?)
            } else {
                RawValue::Flag
            };
            args.push(RawArg { key, value });
            if !input.is_empty() {
                input.parse::<Token![,]>()?;
            }
        }
        Ok(RawArgs(args))
    }
}

/// A comma-separated list of identifiers: `skip(a, b)`; `self` is accepted.
pub(crate) fn ident_list(tokens: TokenStream) -> syn::Result<Vec<Ident>> {
    let parser = |input: ParseStream| {
        Punctuated::<Ident, Token![,]>::parse_terminated_with(input, Ident::parse_any)
    };
    Ok(parser.parse2(tokens)?.into_iter().collect())
}

/// How a field's value is turned into an attribute.
pub(crate) enum FieldSigil {
    /// `key = value`: the value itself (integers, floats, bools, strings).
    Value,
    /// `key = %value`: its `Display` output.
    Display,
    /// `key = ?value`: its `Debug` output.
    Debug,
}

/// `key`, `key = value`, `key = %value`, `key = ?value`; `key` is `a.b.c` or `"a.b.c"`.
pub(crate) struct FieldArg {
    pub key: String,
    pub key_span: Span,
    pub value: Option<(FieldSigil, Expr)>,
}

impl Parse for FieldArg {
    fn parse(input: ParseStream) -> syn::Result<Self> {
        if !(input.peek(LitStr) || input.peek(Ident::peek_any)) {
            return Err(input.error(
                "expected a field: `name`, `name = value`, `name = %value`, `name = ?value` \
                 or `\"dotted.name\" = value`",
            ));
        }
        let (key, key_span) = if input.peek(LitStr) {
            let lit: LitStr = input.parse()?;
            (lit.value(), lit.span())
        } else {
            let first = Ident::parse_any(input)?;
            let span = first.span();
            let mut key = first.unraw().to_string();
            while input.peek(Token![.]) {
                input.parse::<Token![.]>()?;
                key.push('.');
                key.push_str(&Ident::parse_any(input)?.unraw().to_string());
            }
            (key, span)
        };
        let value = if input.peek(Token![=]) {
            input.parse::<Token![=]>()?;
            let sigil = if input.peek(Token![%]) {
                input.parse::<Token![%]>()?;
                FieldSigil::Display
            } else if input.peek(Token![?]) {
                input.parse::<Token![?]>()?;
                FieldSigil::Debug
            } else {
                FieldSigil::Value
            };
            Some((sigil, input.parse()?))
        } else {
            None
        };
        Ok(FieldArg {
            key,
            key_span,
            value,
        })
    }
}

pub(crate) fn field_list(tokens: TokenStream) -> syn::Result<Vec<FieldArg>> {
    let list = Punctuated::<FieldArg, Token![,]>::parse_terminated.parse2(tokens)?;
    Ok(list.into_iter().collect())
}
