//! The validated model of one `#[track_cost]`: which model, provider and operation, how the
//! usage is read, and the shape of the function it wraps.

use proc_macro2::{Span, TokenStream};
use syn::spanned::Spanned;
use syn::{Expr, ExprLit, Ident, ItemFn, Lit, LitStr, Type};

use crate::model::{self, Errors, FnShape, UnrawString};
use crate::parse::{RawArgs, RawValue};

const ARGUMENTS: &[&str] = &[
    "model",
    "provider",
    "operation",
    "usage",
    "unpriced",
    "crate",
];

const OPERATIONS: &[(&str, &str)] = &[
    ("chat", "Chat"),
    ("text_completion", "TextCompletion"),
    ("embeddings", "Embeddings"),
    ("generate_content", "GenerateContent"),
];

/// Where the model name comes from.
pub(crate) enum ModelArg {
    /// `model = "gpt-4o"`.
    Literal(LitStr),
    /// `model = self.model.as_str()`: read when the call starts.
    Expr(Box<Expr>),
}

pub(crate) struct CostModel {
    pub krate: syn::Path,
    pub model: ModelArg,
    pub provider: Option<LitStr>,
    /// The `flujo::cost::Operation` variant.
    pub operation: Ident,
    pub usage: Option<syn::Path>,
    /// A literal model the price table does not know, and why that is worth a warning.
    pub unpriced_warning: Option<(Span, String)>,
    pub function: String,
    pub output: Option<Type>,
    pub returns_result: bool,
    /// Where a value without usage is reported: the `Ok` type, or the value type.
    pub value_span: Span,
    /// Where an error type that cannot hold a refusal is reported.
    pub error_span: Span,
}

#[derive(Default)]
struct Args {
    krate: Option<syn::Path>,
    model: Option<ModelArg>,
    provider: Option<LitStr>,
    operation: Option<(Span, &'static str)>,
    usage: Option<syn::Path>,
    unpriced: Option<Span>,
    /// `model` was written (perhaps misspelt or with a bad value, already reported).
    model_mentioned: bool,
}

impl Args {
    fn parse(tokens: TokenStream, errors: &mut Errors) -> Args {
        let raw = match syn::parse2::<RawArgs>(tokens) {
            Ok(RawArgs(raw)) => raw,
            Err(error) => {
                errors.push_error(error);
                return Args::default();
            }
        };
        let mut args = Args {
            model_mentioned: raw
                .iter()
                .any(|arg| model::edit_distance(&arg.key.to_string(), "model") <= 2),
            ..Args::default()
        };
        model::accept_known_arguments(raw, ARGUMENTS, errors, |key, name, value, errors| {
            args.accept(key, name, value, errors)
        });
        args
    }

    fn accept(&mut self, key: &Ident, name: &str, value: RawValue, errors: &mut Errors) {
        let span = key.span();
        self.model_mentioned |= name == "model";
        match (name, value) {
            (
                "model",
                RawValue::Expr(Expr::Lit(ExprLit {
                    lit: Lit::Str(lit), ..
                })),
            ) => {
                if lit.value().trim().is_empty() {
                    errors.push(lit.span(), "`model` must not be empty");
                } else {
                    self.model = Some(ModelArg::Literal(lit));
                }
            }
            ("model", RawValue::Expr(Expr::Lit(lit))) => errors.push(
                lit.span(),
                "`model` takes a string literal (`model = \"gpt-4o\"`) or an expression giving \
                 a string (`model = self.model.as_str()`)",
            ),
            ("model", RawValue::Expr(expr)) => self.model = Some(ModelArg::Expr(Box::new(expr))),
            ("provider", RawValue::Expr(expr)) => match model::str_literal(&expr) {
                Some(lit) if lit.value().trim().is_empty() => {
                    errors.push(lit.span(), "`provider` must not be empty")
                }
                Some(lit) => self.provider = Some(lit.clone()),
                None => errors.push(
                    expr.span(),
                    "`provider` takes a string literal as `gen_ai.provider.name` spells it, \
                     e.g. `provider = \"openai\"`",
                ),
            },
            ("operation", RawValue::Expr(expr)) => {
                let known = OPERATIONS
                    .iter()
                    .map(|(op, _)| format!("\"{op}\""))
                    .collect::<Vec<_>>()
                    .join(", ");
                match model::str_literal(&expr) {
                    Some(lit) => match OPERATIONS.iter().find(|(op, _)| *op == lit.value()) {
                        Some((_, variant)) => self.operation = Some((lit.span(), variant)),
                        None => errors.push(
                            lit.span(),
                            format!(
                                "unknown operation {:?}: expected one of {known}",
                                lit.value()
                            ),
                        ),
                    },
                    None => errors.push(
                        expr.span(),
                        format!("`operation` takes a string literal: one of {known}"),
                    ),
                }
            }
            ("usage", RawValue::Expr(Expr::Path(path))) if path.qself.is_none() => {
                self.usage = Some(path.path)
            }
            ("usage", RawValue::Expr(expr)) => errors.push(
                expr.span(),
                "`usage` takes the path of a function `fn(&T) -> flujo::TokenUsage`, e.g. \
                 `usage = usage_of`",
            ),
            ("unpriced", RawValue::Flag) => self.unpriced = Some(span),
            ("unpriced", _) => errors.push(span, "`unpriced` takes no value: write `unpriced`"),
            ("crate", RawValue::Expr(Expr::Path(path))) if path.qself.is_none() => {
                self.krate = Some(path.path)
            }
            ("crate", RawValue::Expr(expr)) => errors.push(
                expr.span(),
                "`crate` takes a path, e.g. `crate = my_facade::flujo`",
            ),
            (_, _) => errors.push(
                span,
                format!("`{name}` takes a value: write `{name} = ...`"),
            ),
        }
    }
}

impl CostModel {
    /// Validates `#[track_cost(args)]` against `item`, adding every problem to `errors`.
    pub(crate) fn build(
        args: TokenStream,
        item: &ItemFn,
        errors: &mut Errors,
    ) -> Option<CostModel> {
        let args = Args::parse(args, errors);
        let shape = FnShape::of(item);
        shape.check_future(item, "#[track_cost]", errors);
        let returns_unit = matches!(&shape.output, Some(Type::Tuple(t)) if t.elems.is_empty());
        if returns_unit {
            errors.push(
                item.sig.ident.span(),
                format!(
                    "#[track_cost] reads the token usage from the value `{}` returns, but it \
                     returns nothing: return the model's response (a type implementing \
                     `flujo::cost::ReportsUsage`)",
                    item.sig.ident
                ),
            );
        }
        if let (Some(unpriced), Some(ModelArg::Expr(_))) = (args.unpriced, &args.model) {
            errors.push(
                unpriced,
                "`unpriced` only applies to a literal `model = \"...\"`: a model chosen at run \
                 time is checked when it is called",
            );
        }
        let Some(model) = args.model else {
            if args.model_mentioned {
                return None;
            }
            errors.push(
                Span::call_site(),
                "#[track_cost] needs the model: `#[track_cost(model = \"gpt-4o\")]`, or \
                 `model = <expression>` for a model chosen at run time",
            );
            return None;
        };
        let unpriced_warning = match (&model, args.unpriced) {
            (ModelArg::Literal(lit), None) => unknown_model_warning(lit),
            _ => None,
        };
        Some(CostModel {
            krate: args.krate.unwrap_or_else(|| syn::parse_quote!(::flujo)),
            model,
            provider: args.provider,
            operation: Ident::new(args.operation.map_or("Chat", |(_, v)| v), Span::call_site()),
            usage: args.usage,
            unpriced_warning,
            function: item.sig.ident.unraw_string(),
            value_span: result_argument(shape.output.as_ref(), 0)
                .or(shape.output.as_ref())
                .map_or_else(Span::call_site, Spanned::span),
            error_span: result_argument(shape.output.as_ref(), 1)
                .map_or_else(Span::call_site, Spanned::span),
            output: shape.output,
            returns_result: shape.returns_result,
        })
    }
}

/// The `index`-th type argument of `Result<T, E>`.
fn result_argument(ty: Option<&Type>, index: usize) -> Option<&Type> {
    let Some(Type::Path(path)) = ty else {
        return None;
    };
    let syn::PathArguments::AngleBracketed(args) = &path.path.segments.last()?.arguments else {
        return None;
    };
    args.args
        .iter()
        .filter_map(|arg| match arg {
            syn::GenericArgument::Type(ty) => Some(ty),
            _ => None,
        })
        .nth(index)
}

/// The warning for a literal model that neither the built-in table nor the price file
/// declared at build time (`FLUJO_PRICING_FILE`, relative to the crate) knows.
fn unknown_model_warning(lit: &LitStr) -> Option<(Span, String)> {
    let user_file = std::env::var_os("FLUJO_PRICING_FILE").map(|file| {
        let file = std::path::PathBuf::from(file);
        match std::env::var_os("CARGO_MANIFEST_DIR") {
            Some(dir) if file.is_relative() => std::path::Path::new(&dir).join(file),
            _ => file,
        }
    });
    let model = lit.value();
    (!is_priced(&model, user_file.as_deref())).then(|| {
        (
            lit.span(),
            format!(
                "flujo has no price for model \"{model}\": its calls will be recorded as \
                 unpriced (not $0). Add it to a price file declared at build time \
                 (FLUJO_PRICING_FILE), or write `unpriced` in #[track_cost] to silence this"
            ),
        )
    })
}

/// Whether the built-in table, or the price file `user_file`, prices `model`.
fn is_priced(model: &str, user_file: Option<&std::path::Path>) -> bool {
    let mut table = flujo_pricing::PriceTable::builtin();
    if let Some(file) = user_file {
        // A broken file is reported by init_telemetry with its line and field.
        let _ = table.merge_file(file);
    }
    table.knows(model)
}

#[cfg(test)]
mod tests {
    use super::is_priced;

    #[test]
    fn a_price_file_declared_at_build_time_prices_its_models() {
        let file =
            std::env::temp_dir().join(format!("flujo-macro-prices-{}.toml", std::process::id()));
        std::fs::write(
            &file,
            "[[model]]\nname = \"acme-x\"\ninput = 1\noutput = 2\n",
        )
        .unwrap();
        assert!(is_priced("gpt-4o-2024-08-06", None));
        assert!(!is_priced("acme-x", None));
        assert!(is_priced("acme-x", Some(&file)));
        assert!(!is_priced("acme-y", Some(&file)));
        std::fs::remove_file(&file).unwrap();
    }
}
