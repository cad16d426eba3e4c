//! The validated model of one `#[track_cost]`: which model, provider and operation, how the
//! usage is read, and the shape of the function it wraps.

use std::path::{Path, PathBuf};

use proc_macro2::{Span, TokenStream};
use quote::{format_ident, quote};
use syn::spanned::Spanned;
use syn::{Expr, ExprLit, Ident, ItemFn, Lit, LitStr, Type};

use crate::fields::{self, Field, param_names};
use crate::internals::{self, Errors, UnrawString};
use crate::parse::{self, FieldArg, RawArgs, RawValue};
use crate::shape::{self, FnShape, StreamKind, result_argument};

const ARGUMENTS: &[&str] = &[
    "model",
    "provider",
    "api",
    "operation",
    "usage",
    "unpriced",
    "fields",
    "input_messages",
    "system_instructions",
    "stream",
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
    /// `api = "responses"`: the API flavor a JSON response body is read with.
    pub api: Option<LitStr>,
    /// The `flujo::cost::Operation` variant.
    pub operation: Ident,
    pub usage: Option<syn::Path>,
    /// A literal model the price table does not know, and why that is worth a warning.
    pub unpriced_warning: Option<UnpricedWarning>,
    /// Makes cargo rebuild when `FLUJO_PRICING_FILE` or the file it names changes.
    pub build_tracking: TokenStream,
    pub function: String,
    pub output: Option<Type>,
    pub returns_result: bool,
    /// Where a value without usage is reported: the `Ok` type, or the value type.
    pub value_span: Span,
    /// Where an error type that cannot hold a refusal is reported.
    pub error_span: Span,
    /// `fields(...)`: attributes of the model call's span (request parameters, say).
    pub fields: Vec<Field>,
    /// `input_messages = expr` and `system_instructions = expr`: content captured when
    /// content capture is on (the `ModelCall` method and the expression).
    pub content: Vec<(Ident, Expr)>,
    /// The function returns a stream of chunks (seen in its type, or declared with
    /// `stream`): the call lasts until the stream ends.
    pub stream: Option<StreamKind>,
}

#[derive(Default)]
struct Args {
    krate: Option<syn::Path>,
    model: Option<ModelArg>,
    provider: Option<LitStr>,
    api: Option<LitStr>,
    operation: Option<(Span, &'static str)>,
    usage: Option<syn::Path>,
    unpriced: Option<Span>,
    fields: Vec<FieldArg>,
    content: Vec<(&'static str, Expr)>,
    /// `stream`: the value is a stream whose type does not say so (an alias).
    stream: Option<Span>,
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
                .any(|arg| internals::edit_distance(&arg.key.to_string(), "model") <= 2),
            ..Args::default()
        };
        internals::accept_known_arguments(raw, ARGUMENTS, errors, |key, name, value, errors| {
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
            ("provider", RawValue::Expr(expr)) => match internals::str_literal(&expr) {
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
            ("api", RawValue::Expr(expr)) => match internals::str_literal(&expr) {
                Some(lit) => {
                    let flavors = api_flavors();
                    if flavors.contains(&lit.value()) {
                        self.api = Some(lit.clone());
                    } else {
                        errors.push(
                            lit.span(),
                            format!(
                                "`api` names an API flavor of the price data's usage \
                                 extractors, one of: {}",
                                flavors.join(", ")
                            ),
                        );
                    }
                }
                None => errors.push(
                    expr.span(),
                    "`api` takes a string literal naming the API flavor a JSON response is \
                     read with, e.g. `api = \"responses\"`",
                ),
            },
            ("operation", RawValue::Expr(expr)) => {
                if let Some(operation) = internals::one_of("operation", OPERATIONS, &expr, errors) {
                    self.operation = Some(operation);
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
            ("fields", RawValue::List(tokens)) => match parse::field_list(tokens) {
                Ok(fields) => self.fields = fields,
                Err(error) => errors.push_error(error),
            },
            ("fields", _) => errors.push(
                span,
                "`fields` takes a list, e.g. `fields(gen_ai.request.temperature = temperature)`",
            ),
            ("input_messages", RawValue::Expr(expr)) => self.content.push(("input_messages", expr)),
            ("system_instructions", RawValue::Expr(expr)) => {
                self.content.push(("system_instructions", expr))
            }
            ("unpriced", RawValue::Flag) => self.unpriced = Some(span),
            ("stream", RawValue::Flag) => self.stream = Some(span),
            ("stream", _) => errors.push(span, "`stream` takes no value: write `stream`"),
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
    /// Validates `#[track_cost(args)]` against `item`, adding every problem to `errors`;
    /// `is_skipped` names the parameters a `#[pipeline_step]` on the same function skips.
    pub(crate) fn build(
        args: TokenStream,
        item: &ItemFn,
        is_skipped: &dyn Fn(&str) -> bool,
        errors: &mut Errors,
    ) -> Option<CostModel> {
        let args = Args::parse(args, errors);
        let params = param_names(item);
        let fields = fields::resolve(&args.fields, &params, is_skipped, errors);
        let content = args
            .content
            .into_iter()
            .filter(|(argument, expr)| {
                fields::reads_no_skipped(
                    expr,
                    &format!("`{argument}`"),
                    &params,
                    is_skipped,
                    errors,
                )
            })
            // On the expression: a value that is not content is reported there.
            .map(|(argument, expr)| {
                (
                    format_ident!("capture_{argument}", span = expr.span()),
                    expr,
                )
            })
            .collect();
        let shape = FnShape::of(item);
        shape.check_future(item, "#[track_cost]", errors);
        let declared = shape::declared_value_type(item, &shape.body);
        if let Some(chunk) = declared.as_ref().and_then(shape::stream_item_not_result) {
            errors.push(
                chunk.span(),
                "the stream of a `#[track_cost]` function yields `Result<Chunk, E>`: an `Err` \
                 item ends the model call as failed (wrap the items in `Ok` if the stream \
                 cannot fail)",
            );
        }
        let stream = declared
            .as_ref()
            .and_then(shape::stream_kind)
            .or(args.stream.map(|_| StreamKind::Boxed));
        if let (Some(_), Some(usage)) = (stream, &args.usage) {
            errors.push(
                usage.span(),
                "`usage = ...` reads a whole response, but this function returns a stream: \
                 its chunks report usage through `flujo::cost::StreamChunk::chunk_usage`",
            );
        }
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
        let (unpriced_warning, build_tracking) = match (&model, args.unpriced) {
            (ModelArg::Literal(lit), None) => {
                let crate_dir = std::env::var_os("CARGO_MANIFEST_DIR").map(PathBuf::from);
                match BuildPrices::load(
                    std::env::var_os("FLUJO_PRICING_FILE"),
                    crate_dir.as_deref(),
                ) {
                    Ok(prices) => (prices.unknown_model_warning(lit), prices.tracking()),
                    Err(message) => {
                        errors.push(lit.span(), message);
                        (None, TokenStream::new())
                    }
                }
            }
            _ => (None, TokenStream::new()),
        };
        Some(CostModel {
            krate: args.krate.unwrap_or_else(|| syn::parse_quote!(::flujo)),
            model,
            provider: args.provider,
            api: args.api,
            operation: Ident::new(args.operation.map_or("Chat", |(_, v)| v), Span::call_site()),
            usage: args.usage,
            unpriced_warning,
            build_tracking,
            function: item.sig.ident.unraw_string(),
            value_span: result_argument(shape.output.as_ref(), 0)
                .or(shape.output.as_ref())
                .map_or_else(Span::call_site, Spanned::span),
            error_span: result_argument(shape.output.as_ref(), 1)
                .map_or_else(Span::call_site, Spanned::span),
            output: shape.output,
            returns_result: shape.returns_result,
            fields,
            content,
            stream,
        })
    }
}

/// The prices flujo ships (`genai-prices`), read once per compiler process: every
/// `#[track_cost]` of a crate asks them.
/// The API flavors of the shipped data's usage extractors (`chat`, `responses`, ...), each
/// once, in the data's order.
fn api_flavors() -> Vec<String> {
    let mut flavors: Vec<String> = Vec::new();
    for provider in &shipped_catalog().providers {
        for extractor in &provider.extractors {
            if !flavors.contains(&extractor.flavor) {
                flavors.push(extractor.flavor.clone());
            }
        }
    }
    flavors
}

fn shipped_catalog() -> &'static flujo_pricing::genai::Catalog {
    static CATALOG: std::sync::OnceLock<flujo_pricing::genai::Catalog> = std::sync::OnceLock::new();
    CATALOG.get_or_init(|| {
        flujo_pricing::genai::Catalog::shipped()
            .unwrap_or_else(|_| flujo_pricing::genai::Catalog::empty())
    })
}

/// The prices a literal model is checked against at build time: the shipped `genai-prices`
/// data and the price file declared at build time (`FLUJO_PRICING_FILE`, relative to the
/// crate) on top.
struct BuildPrices {
    /// The file, when the variable is set.
    file: Option<PathBuf>,
    table: flujo_pricing::PriceTable,
    catalog: &'static flujo_pricing::genai::Catalog,
}

impl BuildPrices {
    /// The shipped data with the declared file on top; a variable or file that cannot be
    /// used is an error naming it (the file's own errors name its line and field).
    fn load(
        variable: Option<std::ffi::OsString>,
        crate_dir: Option<&Path>,
    ) -> Result<BuildPrices, String> {
        let mut table = flujo_pricing::PriceTable::empty();
        let catalog = shipped_catalog();
        let Some(value) = variable else {
            return Ok(BuildPrices {
                file: None,
                table,
                catalog,
            });
        };
        let Some(text) = value.to_str() else {
            return Err(
                "FLUJO_PRICING_FILE (set at build time) is not valid UTF-8: set it to the path \
                 of a TOML price file"
                    .to_owned(),
            );
        };
        let file = PathBuf::from(text);
        let file = match crate_dir {
            Some(dir) if file.is_relative() => dir.join(file),
            _ => file,
        };
        if !file.is_file() {
            return Err(format!(
                "FLUJO_PRICING_FILE={text} (set at build time): no such file {}; set it to a \
                 TOML price file (relative paths are from the crate's directory), or unset it",
                file.display()
            ));
        }
        table.merge_file(&file).map_err(|error| {
            format!("the price file declared at build time (FLUJO_PRICING_FILE): {error}")
        })?;
        Ok(BuildPrices {
            file: Some(file),
            table,
            catalog,
        })
    }

    /// Code that makes cargo rebuild the crate when the variable or the file changes: rustc
    /// tracks what `option_env!` and `include_bytes!` read.
    fn tracking(&self) -> TokenStream {
        let file = self
            .file
            .as_ref()
            .and_then(|file| file.to_str())
            .map(|file| {
                quote!(
                    const _: &[u8] = ::core::include_bytes!(#file);
                )
            });
        quote! {
            const _: ::core::option::Option<&str> = ::core::option_env!("FLUJO_PRICING_FILE");
            #file
        }
    }

    /// The warning for a literal model that neither the shipped data nor the declared file
    /// prices, with the nearest priced names.
    fn unknown_model_warning(&self, lit: &LitStr) -> Option<UnpricedWarning> {
        let model = lit.value();
        if self.table.knows(&model) || self.catalog.lookup(&model).is_some() {
            return None;
        }
        let names = self.table.models().chain(
            self.catalog
                .providers
                .iter()
                .flat_map(|provider| provider.models.iter().map(|m| m.id.as_str())),
        );
        let nearest = nearest_models(names, &model);
        let suggestion = match nearest.as_slice() {
            [] => String::new(),
            names => format!(
                " Did you mean {}?",
                names
                    .iter()
                    .map(|name| format!("\"{name}\""))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        };
        Some(UnpricedWarning {
            span: lit.span(),
            constant: constant_naming(&model),
            note: format!(
                "flujo has no price for model \"{model}\": its calls will be recorded as \
                 unpriced (not $0).{suggestion} Add it to a price file declared at build time \
                 (FLUJO_PRICING_FILE), or write `unpriced` in #[track_cost] to silence this"
            ),
        })
    }
}

/// The compile-time warning for a literal model no price knows: rustc's deprecation warning
/// on a constant (the one warning a proc macro can raise on stable), the constant named after
/// the model, so that the warning's first words say which model has no price.
pub struct UnpricedWarning {
    pub span: Span,
    /// `model_<the model, other characters as _>_has_no_price`.
    pub constant: String,
    pub note: String,
}

/// The constant that names `model`: `gtp-4o` -> `model_gtp_4o_has_no_price`.
fn constant_naming(model: &str) -> String {
    let model: String = model
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    format!("model_{model}_has_no_price")
}

/// Up to three priced names closest to `model` (by edit distance, a third of its length at
/// most), nearest first.
fn nearest_models<'a>(names: impl Iterator<Item = &'a str>, model: &str) -> Vec<&'a str> {
    let limit = (model.chars().count() / 3).max(2);
    let mut close: Vec<(usize, &str)> = names
        .map(|name| (internals::edit_distance(model, name), name))
        .filter(|(distance, _)| *distance <= limit)
        .collect();
    close.sort();
    close.dedup_by(|a, b| a.1 == b.1);
    close.into_iter().take(3).map(|(_, name)| name).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_warnings_constant_is_named_after_the_model() {
        assert_eq!(constant_naming("gtp-4o"), "model_gtp_4o_has_no_price");
        assert_eq!(
            constant_naming("anthropic/claude-3.5@v2"),
            "model_anthropic_claude_3_5_v2_has_no_price"
        );
        // Whatever the model, a valid identifier (the macro would panic on another).
        for model in ["", "4o", "ñandú", "a b", "self"] {
            syn::parse_str::<syn::Ident>(&constant_naming(model)).expect(model);
        }
    }

    fn temp_file(name: &str, text: &str) -> PathBuf {
        let file = std::env::temp_dir().join(format!("flujo-macro-{}-{name}", std::process::id()));
        std::fs::write(&file, text).unwrap();
        file
    }

    #[test]
    fn a_price_file_declared_at_build_time_prices_its_models() {
        let file = temp_file(
            "prices.toml",
            "[[model]]\nname = \"acme-x\"\ninput = 1\noutput = 2\n",
        );
        let builtin = BuildPrices::load(None, None).unwrap();
        let lit = |name: &str| LitStr::new(name, Span::call_site());
        assert!(
            builtin
                .unknown_model_warning(&lit("gpt-4o-2024-08-06"))
                .is_none()
        );
        assert!(builtin.unknown_model_warning(&lit("acme-x")).is_some());
        let declared = BuildPrices::load(Some(file.clone().into()), None).unwrap();
        assert!(declared.unknown_model_warning(&lit("acme-x")).is_none());
        assert!(declared.unknown_model_warning(&lit("acme-y")).is_some());
        // The expansion makes cargo rebuild when the variable or the file changes.
        let tracking = declared.tracking().to_string();
        assert!(
            tracking.contains("option_env ! (\"FLUJO_PRICING_FILE\")"),
            "{tracking}"
        );
        assert!(tracking.contains("include_bytes !"), "{tracking}");
        std::fs::remove_file(&file).unwrap();
    }

    #[test]
    fn a_broken_or_missing_build_time_price_file_is_an_error_naming_it() {
        let missing = BuildPrices::load(
            Some("no/such/prices.toml".into()),
            Some(Path::new("/crate")),
        );
        let message = missing.err().unwrap();
        assert!(
            message.contains("FLUJO_PRICING_FILE=no/such/prices.toml"),
            "{message}"
        );
        assert!(message.contains("/crate/no/such/prices.toml"), "{message}");
        let broken = temp_file(
            "broken.toml",
            "[[model]]\nname = \"acme-x\"\ninput = \"cheap\"\noutput = 2\n",
        );
        let message = BuildPrices::load(Some(broken.clone().into()), None)
            .err()
            .unwrap();
        assert!(message.contains(&broken.display().to_string()), "{message}");
        assert!(message.contains("line 3"), "{message}");
        assert!(message.contains("input"), "{message}");
        std::fs::remove_file(&broken).unwrap();
    }

    #[test]
    fn an_unknown_literal_model_suggests_the_nearest_priced_names() {
        let prices = BuildPrices::load(None, None).unwrap();
        let warning = prices
            .unknown_model_warning(&LitStr::new("gtp-4o", Span::call_site()))
            .unwrap();
        assert!(
            warning.note.contains("Did you mean \"gpt-4o\""),
            "{}",
            warning.note
        );
        assert_eq!(warning.constant, "model_gtp_4o_has_no_price");
    }
}
