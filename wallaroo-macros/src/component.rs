//! What every annotated item expands to besides its trait impl: the unit struct that
//! replaces an annotated function, and the registry entry submitted to `inventory`.
//!
//! ```text
//! #[computation] fn double(x: u64) -> u64 { x * 2 }
//! ```
//! becomes
//! ```text
//! #[derive(Clone, Copy, Debug, Default)] struct double;
//! impl double { fn call(x: u64) -> u64 { x * 2 } }
//! impl Deref for double { type Target = fn(u64) -> u64; … }   // so `double(21)` still works
//! const _: () = {
//!     static __WALLAROO_INFO: ComponentInfo = …;
//!     inventory::submit! { Registered(&__WALLAROO_INFO) }
//!     impl Computation<u64> for double { … double::call(input) … }
//! };
//! ```

use proc_macro2::{Span, TokenStream};
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
    /// Lint levels (`#[allow]`, …): on both the struct and the function.
    pub(crate) lints: Vec<Attribute>,
    /// Everything else (`#[inline]`, `#[must_use]`, other attribute macros): on the
    /// function, which is the only generated item they can apply to.
    pub(crate) on_fn: Vec<Attribute>,
}

impl Attrs {
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
                Some("allow" | "warn" | "deny" | "forbid" | "expect") => out.lints.push(attr.clone()),
                _ => out.on_fn.push(attr.clone()),
            }
        }
        out
    }
}

/// The unit struct that replaces the function `f`, the inherent `call` that keeps its body,
/// and the `Deref` to a function pointer that keeps `f(x)` working.
///
/// A return type with `impl Trait` cannot be named in a function pointer type, so such a
/// function gets no `Deref`: it is called as `f::call(x)`.
pub(crate) fn unit_struct(f: &ItemFn) -> TokenStream {
    let attrs = Attrs::sort(&f.attrs);
    let (cfg, on_struct, lints, on_fn) = (&attrs.cfg, &attrs.on_struct, &attrs.lints, &attrs.on_fn);
    let vis = &f.vis;
    let ident = &f.sig.ident;
    let sig = &f.sig;
    let (inputs, output, block) = (&sig.inputs, &sig.output, &f.block);
    let derives = paths::unit_derives(Span::call_site());
    let call_doc = format!(
        " Calls `{}` as written, without going through the pipeline.",
        ident.unraw()
    );

    let deref = (!matches!(output, syn::ReturnType::Type(_, ty) if contains_impl_trait(ty))).then(|| {
        let deref = paths::deref(Span::call_site());
        let types = typed_params(sig).into_iter().map(|p| &p.ty);
        let fn_ptr = quote_spanned!(ident.span()=> fn(#(#types),*) #output);
        quote! {
            #(#cfg)*
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
        #vis struct #ident;

        #(#cfg)*
        impl #ident {
            #[doc = #call_doc]
            #(#lints)*
            #(#on_fn)*
            #vis fn call(#inputs) #output #block
        }

        #deref
    }
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
pub(crate) fn registered(cfg: &[Attribute], info: &Info, trait_impl: TokenStream) -> TokenStream {
    let span = info.ident.span();
    let call_site = Span::call_site();
    let component_info = paths::component_info(call_site);
    let kind = Ident::new(info.kind, call_site);
    let component_kind = paths::component_kind(call_site);
    let name = &info.name;
    let ident = LitStr::new(&info.ident.unraw().to_string(), span);
    let (module_path, file, line) = (paths::module_path(span), paths::file(span), paths::line(span));
    let type_name = |ty: &Option<TokenStream>| match ty {
        Some(ty) => {
            let some = paths::some(call_site);
            let type_name = paths::type_name(call_site);
            quote!(#some(#type_name::<#ty>))
        }
        None => paths::none(call_site),
    };
    let (input, output, state) = (type_name(&info.input), type_name(&info.output), type_name(&info.state));
    let inventory = paths::inventory(call_site);
    let registered = paths::registered(call_site);
    let static_name = info_static();

    quote! {
        #(#cfg)*
        const _: () = {
            static #static_name: #component_info = #component_info {
                kind: #component_kind::#kind,
                name: #name,
                ident: #ident,
                module_path: #module_path(),
                file: #file(),
                line: #line(),
                input: #input,
                output: #output,
                state: #state,
            };
            #inventory::submit! { #registered(&#static_name) }
            #trait_impl
        };
    }
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
