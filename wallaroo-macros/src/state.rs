//! `#[state]`: a struct whose instances are the per-key state of a state partition.

use proc_macro2::{Span, TokenStream, TokenTree};
use quote::{quote, quote_spanned};
use syn::punctuated::Punctuated;
use syn::spanned::Spanned;
use syn::{Attribute, Expr, Item, ItemStruct, Path, Token};

use crate::attr::StateArgs;
use crate::component::{self, Info};
use crate::ctxt::Errors;
use crate::paths;
use crate::signature::item_head;

/// A `#[state]` as wallaroo understands it.
struct State {
    item: ItemStruct,
    info: Info,
    builder: Option<Expr>,
    version: Option<syn::LitInt>,
    /// The serde traits to derive: those the item does not derive already.
    derive: Vec<&'static str>,
    /// Whether to add `#[serde(crate = "…")]`.
    serde_crate: bool,
}

pub(crate) fn expand(args: TokenStream, item: TokenStream) -> syn::Result<TokenStream> {
    let mut errors = Errors::default();
    let args = StateArgs::parse(args, &mut errors);
    let model = errors
        .ok(parse_struct(item))
        .and_then(|item| State::new(item, args, &mut errors));
    Ok(generate(&errors.finish_with(model)?))
}

/// Parses the annotated item, which must be a struct.
fn parse_struct(item: TokenStream) -> syn::Result<ItemStruct> {
    let message = match syn::parse2::<Item>(item)? {
        Item::Struct(s) => return Ok(s),
        item @ Item::Enum(_) => (item, "#[state] applies to a struct, not an enum: wrap the enum in a struct, `#[state] struct MyState { inner: MyEnum }`"),
        item @ Item::Fn(_) => (item, "#[state] applies to a struct; a function that updates state is a `#[state_computation] fn step(msg: In, state: &mut S) -> (Out, bool)`"),
        item => (item, "#[state] applies to a struct: `#[state] #[derive(Default)] struct Total { count: u64 }`"),
    };
    Err(syn::Error::new_spanned(item_head(&message.0), message.1))
}

impl State {
    fn new(item: ItemStruct, args: StateArgs, errors: &mut Errors) -> Option<State> {
        if !item.generics.params.is_empty() {
            errors.spanned(
                &item.generics,
                "#[state] cannot be generic: the state of a partition is one concrete type; remove the generic parameters",
            );
        } else if let Some(clause) = &item.generics.where_clause {
            errors.spanned(clause, "#[state] cannot have a `where` clause: remove it");
        }
        let derived = derived_traits(&item.attrs);
        let derive: Vec<&'static str> = ["Serialize", "Deserialize"]
            .into_iter()
            .filter(|t| !derived.iter().any(|d| d == t))
            .collect();
        let serde_crate = !derive.is_empty() && !has_serde_crate(&item.attrs);
        let mut info = Info::new("State", &item.ident);
        let ident = &item.ident;
        info.state = Some(quote!(#ident));
        Some(State {
            info,
            builder: args.builder,
            version: args.version,
            derive,
            serde_crate,
            item,
        })
    }
}

/// The last segments of every path in the item's `#[derive(…)]` attributes.
pub(crate) fn derived_traits(attrs: &[Attribute]) -> Vec<String> {
    attrs
        .iter()
        .filter(|attr| attr.path().is_ident("derive"))
        .filter_map(|attr| {
            attr.parse_args_with(Punctuated::<Path, Token![,]>::parse_terminated)
                .ok()
        })
        .flatten()
        .filter_map(|path| path.segments.last().map(|s| s.ident.to_string()))
        .collect()
}

/// Whether the item already says `#[serde(crate = "…")]`.
pub(crate) fn has_serde_crate(attrs: &[Attribute]) -> bool {
    attrs
        .iter()
        .filter(|attr| attr.path().is_ident("serde"))
        .any(|attr| match &attr.meta {
            syn::Meta::List(list) => list
                .tokens
                .clone()
                .into_iter()
                .any(|tt| matches!(tt, TokenTree::Ident(ident) if ident == "crate")),
            _ => false,
        })
}

fn generate(s: &State) -> TokenStream {
    let item = &s.item;
    let ident = &item.ident;
    let call_site = Span::call_site();
    let serde = paths::serde(call_site);
    let derives = s.derive.iter().map(|t| {
        let t = syn::Ident::new(t, call_site);
        quote!(#serde::#t)
    });
    let derive = (!s.derive.is_empty()).then(|| quote!(#[derive(#(#derives),*)]));
    let serde_crate = s.serde_crate.then(|| {
        let path = syn::LitStr::new(paths::SERDE_CRATE, call_site);
        quote!(#[serde(crate = #path)])
    });

    let state = paths::state_trait(call_site);
    let component_info = paths::component_info(call_site);
    let static_name = component::info_static();
    let build = match &s.builder {
        // Spanned at the struct's name, so that "has no state builder" points there.
        None => {
            let default_state = paths::default_state(ident.span());
            quote_spanned!(ident.span()=> #default_state::<Self>())
        }
        // A typed binding, so that a builder of the wrong type is reported at its path.
        Some(builder) => quote_spanned! {builder.span()=>
            let build: fn() -> Self = #builder;
            build()
        },
    };
    let version = s.version.as_ref().map(|v| {
        let v = syn::LitInt::new(&format!("{}u32", v.base10_digits()), v.span());
        quote!(const VERSION: ::core::primitive::u32 = #v;)
    });
    let trait_impl = quote! {
        #[automatically_derived]
        impl #state for #ident {
            #version
            #[inline]
            fn info() -> &'static #component_info {
                &#static_name
            }
            fn build() -> Self {
                #build
            }
        }
    };
    let attrs = component::Attrs::sort(&item.attrs);
    let registered = component::registered(&attrs, &s.info, trait_impl);
    // Ours first, so that the user's `#[serde(…)]` helpers come after the derive that
    // introduces them.
    quote! {
        #derive
        #serde_crate
        #item
        #registered
    }
}
