//! The shape of an annotated function: the checks that every function macro shares, and the
//! syntactic reading of its parameter and return types.

use proc_macro2::TokenStream;
use quote::{quote, ToTokens};
use syn::{
    FnArg, GenericArgument, Item, ItemFn, PatType, PathArguments, ReturnType, Safety, Signature,
    Type,
};

use crate::ctxt::Errors;

/// Which macro is checking, for error messages.
pub(crate) struct Macro {
    /// The attribute as written: `#[computation]`.
    pub(crate) attr: &'static str,
    /// The function it expects, as written: `fn step(msg: In) -> Out`.
    pub(crate) shape: &'static str,
    /// Whether it may return `impl Trait` (only an encoder's bytes are never named).
    pub(crate) returns_impl_trait: bool,
}

/// Parses the annotated item, which must be a function.
pub(crate) fn parse_fn(m: &Macro, item: TokenStream) -> syn::Result<ItemFn> {
    match syn::parse2::<Item>(item)? {
        Item::Fn(f) => Ok(f),
        other => Err(syn::Error::new_spanned(
            item_head(&other),
            format!("{} applies to a function: `{}`", m.attr, m.shape),
        )),
    }
}

/// The tokens naming an item (`struct Foo`, `enum Foo`), for errors about the item as a
/// whole: shorter than the item itself.
pub(crate) fn item_head(item: &Item) -> TokenStream {
    match item {
        Item::Struct(s) => {
            let (token, ident) = (&s.struct_token, &s.ident);
            quote!(#token #ident)
        }
        Item::Enum(e) => {
            let (token, ident) = (&e.enum_token, &e.ident);
            quote!(#token #ident)
        }
        Item::Union(u) => {
            let (token, ident) = (&u.union_token, &u.ident);
            quote!(#token #ident)
        }
        Item::Fn(f) => {
            let (token, ident) = (&f.sig.fn_token, &f.sig.ident);
            quote!(#token #ident)
        }
        Item::Type(t) => {
            let (token, ident) = (&t.type_token, &t.ident);
            quote!(#token #ident)
        }
        Item::Trait(t) => {
            let (token, ident) = (&t.trait_token, &t.ident);
            quote!(#token #ident)
        }
        Item::Impl(i) => {
            let (token, ty) = (&i.impl_token, &i.self_ty);
            quote!(#token #ty)
        }
        other => other.to_token_stream(),
    }
}

/// Checks what no annotated function may be: `const`, `async`, `unsafe`, `extern`,
/// generic, a method, variadic, or taking `impl Trait`.
pub(crate) fn check_common(m: &Macro, sig: &Signature, errors: &mut Errors) {
    let (attr, shape) = (m.attr, m.shape);
    if let Some(token) = &sig.constness {
        errors.spanned(
            token,
            format!("{attr} cannot be `const`: remove `const` and write `{shape}`"),
        );
    }
    if let Some(token) = &sig.asyncness {
        errors.spanned(
            token,
            format!("{attr} cannot be `async`: wallaroo calls it synchronously, on its own threads; remove `async` and write `{shape}`"),
        );
    }
    if let Safety::Unsafe(token) = &sig.safety {
        errors.spanned(
            token,
            format!("{attr} cannot be `unsafe`: the runtime calls it with no safety contract; remove `unsafe` and write `{shape}`"),
        );
    }
    if let Some(abi) = &sig.abi {
        errors.spanned(
            abi,
            format!(
                "{attr} cannot be `extern`: remove `{}` and write `{shape}`",
                pretty(abi)
            ),
        );
    }
    if !sig.generics.params.is_empty() {
        errors.spanned(
            &sig.generics,
            format!("{attr} cannot be generic: the pipeline needs its concrete message types; remove the generic parameters and write `{shape}` with concrete types (elided lifetimes such as `&T` are fine)"),
        );
    }
    if let Some(clause) = &sig.generics.where_clause {
        errors.spanned(
            clause,
            format!("{attr} cannot have a `where` clause: remove it and write `{shape}` with concrete types"),
        );
    }
    if let Some(receiver) = sig.receiver() {
        errors.spanned(
            receiver,
            format!("{attr} applies to a free function, not a method: remove `self` and write `{shape}`"),
        );
    }
    if let Some(variadic) = &sig.variadic {
        errors.spanned(
            variadic,
            format!("{attr} cannot be variadic: write `{shape}`"),
        );
    }
    if let Some(ty) = return_type(sig) {
        if !m.returns_impl_trait && contains_impl_trait(ty) {
            errors.spanned(
                ty,
                format!("{attr} returns a concrete type, not `impl Trait`: the pipeline needs to name it; write `{shape}`"),
            );
        }
    }
    for param in typed_params(sig) {
        if contains_impl_trait(&param.ty) {
            errors.spanned(
                &param.ty,
                format!(
                    "{attr} takes concrete types, not `impl Trait`: name the type, as in `{shape}`"
                ),
            );
        }
    }
}

/// The parameters other than a `self` receiver.
pub(crate) fn typed_params(sig: &Signature) -> Vec<&PatType> {
    sig.inputs
        .iter()
        .filter_map(|arg| match arg {
            FnArg::Typed(param) => Some(param),
            FnArg::Receiver(_) => None,
        })
        .collect()
}

/// Checks that `sig` takes exactly `count` parameters (a receiver counts as one, and is
/// reported by [`check_common`]). `what` says what they must be, e.g. "one message".
pub(crate) fn check_param_count(
    m: &Macro,
    sig: &Signature,
    count: usize,
    what: &str,
    errors: &mut Errors,
) -> bool {
    let given = sig.inputs.len();
    if given == count {
        return true;
    }
    let (attr, shape) = (m.attr, m.shape);
    let message = format!(
        "{attr} takes {what}, but this function takes {given} parameter{}: write `{shape}`",
        if given == 1 { "" } else { "s" }
    );
    if given == 0 {
        errors.at(sig.paren_token.span.join(), message);
    } else if given > count {
        // Point at the parameters that are too many.
        let extra: Vec<_> = sig.inputs.iter().skip(count).collect();
        errors.spanned(quote!(#(#extra),*), message);
    } else {
        errors.spanned(&sig.inputs, message);
    }
    false
}

/// The type without invisible groups and parentheses.
pub(crate) fn peel(mut ty: &Type) -> &Type {
    loop {
        match ty {
            Type::Group(group) => ty = &group.elem,
            Type::Paren(paren) => ty = &paren.elem,
            _ => return ty,
        }
    }
}

/// The return type, if one is written.
pub(crate) fn return_type(sig: &Signature) -> Option<&Type> {
    match &sig.output {
        ReturnType::Type(_, ty) => Some(ty),
        ReturnType::Default => None,
    }
}

/// How a step sends on what its function returns.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Emits {
    /// `-> Out`: one message.
    One,
    /// `-> Option<Out>`: a filter.
    Optional,
    /// `-> Vec<Out>`: a fan-out.
    Many,
}

/// Reads a step's return type: `Option<Out>` and `Vec<Out>` (by their last path segment,
/// so `std::vec::Vec<Out>` counts) send zero-or-one and many messages of type `Out`;
/// anything else is one message.
pub(crate) fn emits(ty: &Type) -> (Emits, &Type) {
    if let Type::Path(path) = peel(ty) {
        if path.qself.is_none() {
            if let Some(last) = path.path.segments.last() {
                let emits = match last.ident.to_string().as_str() {
                    "Option" => Some(Emits::Optional),
                    "Vec" => Some(Emits::Many),
                    _ => None,
                };
                if let (Some(emits), PathArguments::AngleBracketed(args)) = (emits, &last.arguments)
                {
                    let mut types = args.args.iter().filter_map(|arg| match arg {
                        GenericArgument::Type(ty) => Some(ty),
                        _ => None,
                    });
                    if let (Some(out), None) = (types.next(), types.next()) {
                        return (emits, out);
                    }
                }
            }
        }
    }
    (Emits::One, ty)
}

/// Whether `impl Trait` appears anywhere in `ty`.
pub(crate) fn contains_impl_trait(ty: &Type) -> bool {
    fn walk(tokens: TokenStream) -> bool {
        tokens.into_iter().any(|tt| match tt {
            proc_macro2::TokenTree::Ident(ident) => ident == "impl",
            proc_macro2::TokenTree::Group(group) => walk(group.stream()),
            _ => false,
        })
    }
    walk(ty.to_token_stream())
}

/// How a parameter of a function is passed.
pub(crate) enum Passing<'a> {
    /// `&T`
    Shared(&'a Type),
    /// `&mut T`
    Mut(&'a Type),
    /// `T`
    Value(&'a Type),
}

/// Reads how `ty` is passed.
pub(crate) fn passing(ty: &Type) -> Passing<'_> {
    match peel(ty) {
        Type::Reference(r) if r.mutability.is_some() => Passing::Mut(&r.elem),
        Type::Reference(r) => Passing::Shared(&r.elem),
        other => Passing::Value(other),
    }
}

/// Tokens as a user would write them, for error messages: `Vec<u8>`, not `Vec < u8 >`.
pub(crate) fn pretty(tokens: &impl ToTokens) -> String {
    let mut text = tokens.to_token_stream().to_string();
    for (from, to) in [
        (" < ", "<"),
        ("< ", "<"),
        (" <", "<"),
        (" >", ">"),
        (" :: ", "::"),
        (":: ", "::"),
        (" ::", "::"),
        (" ,", ","),
        ("& ", "&"),
        ("( ", "("),
        (" )", ")"),
        ("[ ", "["),
        (" ]", "]"),
        (" ;", ";"),
    ] {
        text = text.replace(from, to);
    }
    text
}
