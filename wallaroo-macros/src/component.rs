//! What every annotated item expands to besides its trait impl: the unit struct that
//! replaces an annotated function, and the registry entry submitted to `inventory`.
//!
//! ```text
//! #[computation] fn double(x: u64) -> u64 { x * 2 }
//! ```
//! becomes
//! ```text
//! #[derive(Clone, Copy, Debug, Default)] struct double {}
//! const double: double = double {};
//! impl double { fn call(x: u64) -> u64 { x * 2 } }
//! impl Deref for double { type Target = fn(u64) -> u64; … }   // so `double(21)` still works
//! const _: () = {
//!     static __WALLAROO_INFO: ComponentInfo = …;
//!     inventory::submit! { Registered(&__WALLAROO_INFO) }
//!     impl Computation<u64> for double { … double::call(input) … }
//! };
//! ```

use proc_macro2::{Literal, Span, TokenStream};
use quote::{quote, quote_spanned};
use syn::ext::IdentExt;
use syn::{Attribute, Ident, ItemFn, LitStr};

use crate::paths;
use crate::signature::{contains_impl_trait, typed_params};

/// The attributes of an annotated function, sorted by the item they belong on.
pub(crate) struct Attrs {
    /// `#[cfg]`: on every generated item, so that they come and go together.
    pub(crate) cfg: Vec<Attribute>,
    /// Docs, `#[deprecated]`: on the unit struct, which is what users see.
    pub(crate) on_struct: Vec<Attribute>,
    /// Lint levels (`#[allow]`, …, with `#[expect]` as `#[allow]`): on every generated item
    /// the user's tokens are in.
    pub(crate) lints: Vec<Attribute>,
    /// Everything else (`#[inline]`, `#[must_use]`, other attribute macros): on the
    /// function, which is the only generated item they can apply to.
    pub(crate) on_fn: Vec<Attribute>,
}

impl Attrs {
    /// `#[allow(deprecated)]` when the item is `#[deprecated]`, for the generated items
    /// that name it: the user is warned where they use it, not where the macro does.
    pub(crate) fn allow_deprecated(&self) -> Option<TokenStream> {
        self.on_struct
            .iter()
            .any(|a| a.path().is_ident("deprecated"))
            .then(|| quote!(#[allow(deprecated)]))
    }

    pub(crate) fn sort(attrs: &[Attribute]) -> Attrs {
        let mut out = Attrs {
            cfg: Vec::new(),
            on_struct: Vec::new(),
            lints: Vec::new(),
            on_fn: Vec::new(),
        };
        for attr in attrs {
            let name = attr.path().get_ident().map(Ident::to_string);
            match name.as_deref() {
                Some("cfg") => out.cfg.push(attr.clone()),
                Some("doc" | "deprecated") => out.on_struct.push(attr.clone()),
                Some("allow" | "warn" | "deny" | "forbid") => out.lints.push(attr.clone()),
                // Copied onto several items, an expectation would go unfulfilled on all but
                // the one the lint fires on: it becomes an `allow`.
                Some("expect") => {
                    let mut allow = attr.clone();
                    if let syn::Meta::List(list) = &mut allow.meta {
                        list.path = syn::parse_quote!(allow);
                    }
                    out.lints.push(allow);
                }
                _ => out.on_fn.push(attr.clone()),
            }
        }
        out
    }
}

/// The unit struct that replaces the function `f`, the inherent `call` that keeps its body,
/// and the `Deref` to a function pointer that keeps `f(x)` working.
///
/// The struct is declared `struct f {}` with a `const f: f = f {};` beside it rather than as
/// `struct f;`: the two behave the same, but clippy takes a call of a unit struct's value
/// for a constructor and reports `f(x);` as a "statement with no effect" (`no_effect`).
///
/// A return type with `impl Trait` cannot be named in a function pointer type, so such a
/// function gets no `Deref`: it is called as `f::call(x)`.
pub(crate) fn unit_struct(f: &ItemFn) -> TokenStream {
    let attrs = Attrs::sort(&f.attrs);
    let (cfg, on_struct, lints, on_fn) = (&attrs.cfg, &attrs.on_struct, &attrs.lints, &attrs.on_fn);
    let vis = &f.vis;
    let ident = &f.sig.ident;
    let sig = &f.sig;
    let (output, block) = (&sig.output, &f.block);
    // The signature as written (an accepted one is plain; a rejected one, kept by a
    // dummy, may be `async`, generic, …), renamed.
    let mut call_sig = sig.clone();
    call_sig.ident = Ident::new("call", Span::call_site());
    let derives = paths::unit_derives(Span::call_site());
    let allow_deprecated = attrs.allow_deprecated();
    // The body keeps the crate's level for uses of deprecated items.
    let warn_deprecated = allow_deprecated
        .as_ref()
        .map(|_| quote!(#[warn(deprecated)]));
    let const_doc = format!(
        " `{}` as a value: give it to the pipeline builder, or call it as the function it was.",
        ident.unraw()
    );
    let call_doc = format!(
        " Calls `{}` as written, without going through the pipeline.",
        ident.unraw()
    );

    let deref = is_plain(sig).then(|| {
        let deref = paths::deref(Span::call_site());
        let types = typed_params(sig).into_iter().map(|p| &p.ty);
        let fn_ptr = quote_spanned!(ident.span()=> fn(#(#types),*) #output);
        quote! {
            #(#cfg)*
            #allow_deprecated
            // A function pointer type counts as more complex than the signature it is made
            // of: clippy would flag a user's plain `-> ((u32, u64), bool)` here.
            #[allow(clippy::type_complexity)]
            impl #deref for #ident {
                type Target = #fn_ptr;
                #[inline]
                fn deref(&self) -> &Self::Target {
                    const CALL: #fn_ptr = #ident::call;
                    &CALL
                }
            }
        }
    });

    quote! {
        #(#cfg)*
        #(#on_struct)*
        #(#lints)*
        #[allow(non_camel_case_types)]
        #[derive(#derives)]
        #vis struct #ident {}

        #(#cfg)*
        #allow_deprecated
        #(#lints)*
        #[doc = #const_doc]
        #[allow(non_upper_case_globals)]
        #vis const #ident: #ident = #ident {};

        #(#cfg)*
        #allow_deprecated
        impl #ident {
            #[doc = #call_doc]
            #warn_deprecated
            // The macro dictates the signature (`&In`, messages by value, a `Result`), and
            // the user's docs are on the struct, so clippy's advice about either cannot be
            // followed here.
            #[allow(
                clippy::ptr_arg,
                clippy::trivially_copy_pass_by_ref,
                clippy::needless_pass_by_value,
                clippy::unnecessary_wraps,
                clippy::must_use_candidate,
                clippy::missing_errors_doc,
                clippy::missing_panics_doc
            )]
            #(#lints)*
            #(#on_fn)*
            #vis #call_sig #block
        }

        #deref
    }
}

/// Whether `sig` can be named as a function pointer `fn(A, B) -> R`: not generic, async,
/// unsafe, extern, variadic or a method, and no `impl Trait` in it.
fn is_plain(sig: &syn::Signature) -> bool {
    sig.generics.params.is_empty()
        && sig.generics.where_clause.is_none()
        && sig.asyncness.is_none()
        && !matches!(sig.safety, syn::Safety::Unsafe(_))
        && sig.abi.is_none()
        && sig.receiver().is_none()
        && sig.variadic.is_none()
        && !typed_params(sig).iter().any(|p| contains_impl_trait(&p.ty))
        && !matches!(&sig.output, syn::ReturnType::Type(_, ty) if contains_impl_trait(ty))
}

/// The registry entry of an annotated item.
pub(crate) struct Info {
    /// The `ComponentKind` variant: `Computation`, …
    pub(crate) kind: &'static str,
    /// The name shown in the topology.
    pub(crate) name: LitStr,
    /// The annotated item's name.
    pub(crate) ident: Ident,
    /// The message type it takes.
    pub(crate) input: Option<TokenStream>,
    /// The message or key type it produces.
    pub(crate) output: Option<TokenStream>,
    /// The state type it works on.
    pub(crate) state: Option<TokenStream>,
}

impl Info {
    /// An entry named after the item.
    pub(crate) fn new(kind: &'static str, ident: &Ident) -> Info {
        Info {
            kind,
            name: LitStr::new(&ident.unraw().to_string(), ident.span()),
            ident: ident.clone(),
            input: None,
            output: None,
            state: None,
        }
    }
}

/// The name of the generated static holding the entry; unlikely to collide with a user's
/// item that `keys = …` or `builder = …` might name inside the `const _` block.
pub(crate) fn info_static() -> Ident {
    Ident::new("__WALLAROO_INFO", Span::call_site())
}

/// `const _: () = { static …; inventory::submit! { … } #trait_impl };`, under `cfg`.
pub(crate) fn registered(attrs: &Attrs, info: &Info, trait_impl: TokenStream) -> TokenStream {
    let cfg = &attrs.cfg;
    let allow_deprecated = attrs.allow_deprecated();
    let span = info.ident.span();
    let call_site = Span::call_site();
    let component_info = paths::component_info(call_site);
    let kind = Ident::new(info.kind, call_site);
    let component_kind = paths::component_kind(call_site);
    let name = &info.name;
    let ident = LitStr::new(&info.ident.unraw().to_string(), span);
    let (module_path, file) = (paths::module_path(span), paths::file(span));
    let line = line_of(&info.ident);
    let type_name = |ty: &Option<TokenStream>| match ty {
        Some(ty) => {
            let some = paths::some(call_site);
            let type_name = paths::type_name(call_site);
            quote!(#some(#type_name::<#ty>))
        }
        None => paths::none(call_site),
    };
    let (input, output, state) = (
        type_name(&info.input),
        type_name(&info.output),
        type_name(&info.state),
    );
    let inventory = paths::inventory(call_site);
    let registered = paths::registered(call_site);
    let static_name = info_static();

    quote! {
        #(#cfg)*
        #allow_deprecated
        const _: () = {
            static #static_name: #component_info = #component_info {
                kind: #component_kind::#kind,
                name: #name,
                ident: #ident,
                module_path: #module_path(),
                file: #file(),
                line: #line,
                input: #input,
                output: #output,
                state: #state,
            };
            #inventory::submit! { #registered(&#static_name) }
            #trait_impl
        };
    }
}

/// The line of the item's name, as a literal: `line!()` would give the line of the
/// attribute, which is above the item's docs and other attributes.
fn line_of(ident: &Ident) -> Literal {
    Literal::u32_unsuffixed(u32::try_from(ident.span().unwrap().line()).unwrap_or(u32::MAX))
}

/// `fn info(&self) -> &'static ComponentInfo { &__WALLAROO_INFO }`.
pub(crate) fn info_method() -> TokenStream {
    let component_info = paths::component_info(Span::call_site());
    let static_name = info_static();
    quote! {
        #[inline]
        fn info(&self) -> &'static #component_info {
            &#static_name
        }
    }
}
