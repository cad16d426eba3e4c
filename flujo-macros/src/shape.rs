//! The shape of an annotated function: where its value comes from (a sync body, an `async fn`,
//! an `async` block returned as a future) and what type it has.

use syn::spanned::Spanned;
use syn::{
    Block, Expr, GenericArgument, ItemFn, PathArguments, ReturnType, Stmt, Type, TypeParamBound,
};

use crate::internals::Errors;

/// How the function produces its value, which decides where the instrumentation goes.
pub(crate) enum Body {
    /// A plain `fn`.
    Sync(Box<Block>),
    /// An `async fn`.
    AsyncFn(Box<Block>),
    /// A `fn` whose last expression is an `async` block (`move` or not), as written by hand
    /// for `-> impl Future`, produced by `#[async_trait]` inside `Box::pin(...)`, or boxed
    /// with `futures::FutureExt` (`async move { .. }.boxed()`).
    AsyncBlock {
        leading: Vec<Stmt>,
        inner: Box<Block>,
        /// `async move` (else the block borrows, as the user wrote it).
        moves: bool,
        wrapper: FutureWrapper,
    },
}

/// What the `async` block is wrapped in.
pub(crate) enum FutureWrapper {
    None,
    /// `Box::pin(async ..)`.
    BoxPin,
    /// `async { .. }.boxed()` / `.boxed_local()`.
    Method(syn::Ident),
}

/// Finds `Output = T` in `impl Future<Output = T>` or `Pin<Box<dyn Future<Output = T> + ..>>`.
fn future_output(ty: &Type) -> Option<&Type> {
    let bounds = match ty {
        Type::ImplTrait(t) => &t.bounds,
        Type::TraitObject(t) => &t.bounds,
        Type::Paren(t) => return future_output(&t.elem),
        Type::Path(path) => {
            let last = path.path.segments.last()?;
            let PathArguments::AngleBracketed(args) = &last.arguments else {
                return None;
            };
            // `futures`' `BoxFuture<'a, T>` / `LocalBoxFuture<'a, T>`: the output is `T`.
            if last.ident == "BoxFuture" || last.ident == "LocalBoxFuture" {
                return args.args.iter().find_map(|arg| match arg {
                    GenericArgument::Type(output) => Some(output),
                    _ => None,
                });
            }
            return args.args.iter().find_map(|arg| match arg {
                GenericArgument::Type(inner) => future_output(inner),
                _ => None,
            });
        }
        _ => return None,
    };
    bounds.iter().find_map(|bound| {
        let TypeParamBound::Trait(trait_bound) = bound else {
            return None;
        };
        let last = trait_bound.path.segments.last()?;
        let PathArguments::AngleBracketed(args) = &last.arguments else {
            return None;
        };
        args.args.iter().find_map(|arg| match arg {
            GenericArgument::AssocType(assoc) if assoc.ident == "Output" => Some(&assoc.ty),
            _ => None,
        })
    })
}

fn is_result(ty: &Type) -> bool {
    match ty {
        Type::Path(path) => path
            .path
            .segments
            .last()
            .is_some_and(|segment| segment.ident == "Result"),
        Type::Paren(inner) => is_result(&inner.elem),
        Type::Group(inner) => is_result(&inner.elem),
        _ => false,
    }
}

fn classify_body(item: &ItemFn) -> Body {
    if item.sig.asyncness.is_some() {
        return Body::AsyncFn(item.block.clone());
    }
    let stmts = &item.block.stmts;
    if let Some((Stmt::Expr(last, None), leading)) = stmts.split_last() {
        let (async_expr, wrapper) = match last {
            Expr::Async(block) => (Some(block), FutureWrapper::None),
            Expr::Call(call) if call.args.len() == 1 => {
                let is_box_pin = matches!(&*call.func, Expr::Path(p)
                    if p.path.segments.len() >= 2
                        && p.path.segments.iter().rev().nth(1).is_some_and(|s| s.ident == "Box")
                        && p.path.segments.last().is_some_and(|s| s.ident == "pin"));
                match &call.args[0] {
                    Expr::Async(block) if is_box_pin => (Some(block), FutureWrapper::BoxPin),
                    _ => (None, FutureWrapper::None),
                }
            }
            Expr::MethodCall(call)
                if call.args.is_empty()
                    && (call.method == "boxed" || call.method == "boxed_local") =>
            {
                match &*call.receiver {
                    Expr::Async(block) => (Some(block), FutureWrapper::Method(call.method.clone())),
                    _ => (None, FutureWrapper::None),
                }
            }
            _ => (None, FutureWrapper::None),
        };
        if let Some(async_expr) = async_expr {
            return Body::AsyncBlock {
                leading: leading.to_vec(),
                inner: Box::new(async_expr.block.clone()),
                moves: async_expr.capture.is_some(),
                wrapper,
            };
        }
    }
    Body::Sync(item.block.clone())
}

/// Whether `ty` is a future (`impl Future<..>`, `Pin<Box<dyn Future<..>>>`, `BoxFuture<..>`).
pub(crate) fn is_future(ty: &Type) -> bool {
    future_output(ty).is_some()
}

/// `ty` with every `impl Trait` in it replaced by `_` (as tracing-attributes erases them), so
/// that it can annotate a binding or a closure: `(impl Display, u8)` becomes `(_, u8)`, and
/// `Result<impl Display, E>` keeps `E` for `?` to convert into.
pub(crate) fn erase_impl_trait(ty: &Type) -> Type {
    struct Eraser;
    impl syn::visit_mut::VisitMut for Eraser {
        fn visit_type_mut(&mut self, ty: &mut Type) {
            if let Type::ImplTrait(impl_trait) = ty {
                *ty = Type::Infer(syn::TypeInfer {
                    underscore_token: syn::Token![_](impl_trait.impl_token.span),
                });
                return;
            }
            syn::visit_mut::visit_type_mut(self, ty);
        }
    }
    let mut erased = ty.clone();
    syn::visit_mut::VisitMut::visit_type_mut(&mut Eraser, &mut erased);
    erased
}

/// The `index`-th type argument of `Result<T, E>`.
pub(crate) fn result_argument(ty: Option<&Type>, index: usize) -> Option<&Type> {
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

/// How a function that returns a stream of chunks returns it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum StreamKind {
    /// `impl Stream<..>`: the tracked stream is returned as it is.
    Impl,
    /// A named type (`Pin<Box<dyn Stream<..>>>`, `BoxStream<..>`, an alias of one): the
    /// tracked stream is boxed into it.
    Boxed,
}

/// Whether `ty` (or the `Ok` type of a `Result`) is a stream, and of which kind.
pub(crate) fn stream_kind(ty: &Type) -> Option<StreamKind> {
    let inner = if is_result(ty) {
        result_argument(Some(ty), 0)?
    } else {
        ty
    };
    let names_stream = |bounds: &syn::punctuated::Punctuated<TypeParamBound, syn::Token![+]>| {
        bounds.iter().any(|bound| {
            matches!(bound, TypeParamBound::Trait(t)
                if t.path.segments.last().is_some_and(|s| s.ident == "Stream"))
        })
    };
    match inner {
        Type::ImplTrait(t) if names_stream(&t.bounds) => Some(StreamKind::Impl),
        Type::Paren(t) => stream_kind(&t.elem),
        Type::Path(path) => {
            let last = path.path.segments.last()?;
            if last.ident == "BoxStream" || last.ident == "LocalBoxStream" {
                return Some(StreamKind::Boxed);
            }
            // `Pin<Box<dyn Stream<..> + ..>>`.
            let PathArguments::AngleBracketed(args) = &last.arguments else {
                return None;
            };
            let boxed = args.args.iter().find_map(|arg| match arg {
                GenericArgument::Type(Type::Path(inner)) => inner.path.segments.last(),
                _ => None,
            })?;
            let PathArguments::AngleBracketed(boxed_args) = &boxed.arguments else {
                return None;
            };
            let is_dyn_stream = boxed_args.args.iter().any(|arg| {
                matches!(arg, GenericArgument::Type(Type::TraitObject(object)) if names_stream(&object.bounds))
            });
            (last.ident == "Pin" && boxed.ident == "Box" && is_dyn_stream)
                .then_some(StreamKind::Boxed)
        }
        _ => None,
    }
}

/// The `Item` type of an `impl Stream<Item = T>` (or of the `Ok` type of a `Result` of one),
/// when it is not a `Result`: a tracked stream must yield `Result<Chunk, E>`.
pub(crate) fn stream_item_not_result(ty: &Type) -> Option<&Type> {
    let inner = if is_result(ty) {
        result_argument(Some(ty), 0)?
    } else {
        ty
    };
    let Type::ImplTrait(bounds) = inner else {
        return None;
    };
    bounds.bounds.iter().find_map(|bound| {
        let TypeParamBound::Trait(stream) = bound else {
            return None;
        };
        let last = stream
            .path
            .segments
            .last()
            .filter(|s| s.ident == "Stream")?;
        let PathArguments::AngleBracketed(args) = &last.arguments else {
            return None;
        };
        args.args.iter().find_map(|arg| match arg {
            GenericArgument::AssocType(item) if item.ident == "Item" && !is_result(&item.ty) => {
                Some(&item.ty)
            }
            _ => None,
        })
    })
}

/// The type of the value the function's body produces (a future's output for an `async`
/// block), as written.
pub(crate) fn declared_value_type(item: &ItemFn, body: &Body) -> Option<Type> {
    match (body, &item.sig.output) {
        (Body::AsyncBlock { .. }, ReturnType::Type(_, ty)) => future_output(ty).cloned(),
        (_, ReturnType::Type(_, ty)) => Some((**ty).clone()),
        (_, ReturnType::Default) => None,
    }
}

/// Where a function's value comes from and what type it has.
pub(crate) struct FnShape {
    pub body: Body,
    /// The value type, when it can be written in a type annotation.
    pub output: Option<Type>,
    pub returns_result: bool,
}

impl FnShape {
    /// Reports a function that returns a future but whose future flujo cannot instrument
    /// (it would time the future's construction, not its run).
    pub(crate) fn check_future(&self, item: &ItemFn, attribute: &str, errors: &mut Errors) {
        if let (Body::Sync(_), ReturnType::Type(_, ty)) = (&self.body, &item.sig.output)
            && is_future(ty)
        {
            errors.push(
                ty.span(),
                format!(
                    "`{attribute}` on a function that returns a future needs the future to be an \
                     `async` block as its last expression (`async {{ .. }}`, `async move {{ .. }}`, \
                     `Box::pin(async move {{ .. }})` or `async move {{ .. }}.boxed()`), or an \
                     `async fn`: otherwise the span would time building the future, not running it"
                ),
            );
        }
    }

    pub(crate) fn of(item: &ItemFn) -> FnShape {
        let body = classify_body(item);
        let value_type = match (&body, &item.sig.output) {
            (Body::AsyncBlock { .. }, ReturnType::Type(_, ty)) => future_output(ty).cloned(),
            (Body::AsyncBlock { .. }, ReturnType::Default) => None,
            (_, ReturnType::Type(_, ty)) => Some((**ty).clone()),
            (_, ReturnType::Default) => Some(syn::parse_quote!(())),
        };
        let returns_result = value_type.as_ref().is_some_and(is_result);
        FnShape {
            body,
            output: value_type.as_ref().map(erase_impl_trait),
            returns_result,
        }
    }
}
