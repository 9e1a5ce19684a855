//! `#[partition]`: `fn(&In) -> Key`, or `fn(&In) -> &Q` for a key borrowed from the message
//! (its key type is `Q::Owned`), with `keys = expr` for the keys whose state is built at
//! start.

use proc_macro2::{Span, TokenStream};
use quote::{quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{Expr, ItemFn, Type};

use crate::attr::PartitionArgs;
use crate::component::{self, Info};
use crate::ctxt::Errors;
use crate::paths;
use crate::signature::{self, Macro, Passing};

const MACRO: Macro = Macro {
    attr: "#[partition]",
    shape: "fn by_key(msg: &In) -> Key",
    returns_impl_trait: false,
};

/// A `#[partition]` as wallaroo understands it.
struct Partition {
    item: ItemFn,
    info: Info,
    /// `In` of `&In`.
    message: Type,
    key: Type,
    keys: Option<Expr>,
}

pub(crate) fn expand(args: TokenStream, item: TokenStream) -> syn::Result<TokenStream> {
    let mut errors = Errors::default();
    let args = PartitionArgs::parse(args, &mut errors);
    let model = errors
        .ok(signature::parse_fn(&MACRO, item))
        .and_then(|item| Partition::new(item, args, &mut errors));
    Ok(generate(&errors.finish_with(model)?))
}

impl Partition {
    fn new(item: ItemFn, args: PartitionArgs, errors: &mut Errors) -> Option<Partition> {
        let sig = &item.sig;
        signature::check_common(&MACRO, sig, errors);
        let count_ok = signature::check_param_count(&MACRO, sig, 1, "one message", errors);
        let message = signature::typed_params(sig).first().and_then(|p| match signature::passing(&p.ty) {
            Passing::Shared(message) => Some(message.clone()),
            Passing::Mut(message) | Passing::Value(message) => {
                errors.spanned(
                    &p.ty,
                    format!("a #[partition] borrows the message it reads the key of: write `msg: &{}`", signature::pretty(message)),
                );
                None
            }
        });
        let key = signature::return_type(sig).cloned();
        if key.is_none() {
            errors.spanned(sig, "a #[partition] returns the message's partition key: write `-> Key`, such as `-> u64` or `-> String`");
        }
        let (Some(message), Some(key), true) = (message, key, count_ok) else {
            return None;
        };
        let mut info = Info::new("Partition", &sig.ident);
        info.input = Some(quote!(#message));
        info.output = Some(quote!(#key));
        Some(Partition {
            item,
            info,
            message,
            key,
            keys: args.keys,
        })
    }
}

fn generate(p: &Partition) -> TokenStream {
    let ident = &p.item.sig.ident;
    let (message, key) = (&p.message, &p.key);
    let call_site = Span::call_site();
    let partition = paths::partition_trait(call_site);
    let info = component::info_method();
    let build_hasher = paths::build_hasher(call_site);
    let (u64_, bool_) = (paths::u64(call_site), paths::bool(call_site));
    // A partition function returns its key, which then travels with the message, or a
    // borrow of it (`&str`), which the worker borrows from the message again: no key is
    // made per message.
    let (key_type, carried, route, is_key, owned_key) = match key {
        Type::Reference(borrowed) if borrowed.mutability.is_none() => {
            let borrowed = &*borrowed.elem;
            let to_owned = paths::to_owned(borrowed.span());
            let route_borrowed = paths::route_borrowed(call_site);
            let is_borrowed_key = paths::is_borrowed_key(call_site);
            (
                quote_spanned!(borrowed.span()=> type Key = <#borrowed as #to_owned>::Owned;),
                quote!(()),
                quote!(#route_borrowed(#ident::call(msg), hasher)),
                quote!(#is_borrowed_key(key, #ident::call(msg))),
                quote!(#to_owned::to_owned(#ident::call(msg))),
            )
        }
        _ => {
            let route_owned = paths::route_owned(call_site);
            let is_owned_key = paths::is_owned_key(call_site);
            (
                quote_spanned!(key.span()=> type Key = #key;),
                quote!(Self::Key),
                quote!(#route_owned(self, msg, hasher)),
                quote!(#is_owned_key::<Self, #message>(carried, key)),
                quote!(#ident::call(msg)),
            )
        }
    };
    let initial_keys = p.keys.as_ref().map(|keys| {
        let vec = paths::vec(call_site);
        let collect_keys = paths::collect_keys(keys.span());
        let collect = quote_spanned!(keys.span()=> #collect_keys(#keys));
        quote! {
            fn initial_keys(&self) -> #vec<Self::Key> {
                #collect
            }
        }
    });
    let trait_impl = quote! {
        #[automatically_derived]
        impl #partition<#message> for #ident {
            #key_type
            type Carried = #carried;
            #info
            #[inline]
            fn key(&self, msg: &#message) -> Self::Key {
                #owned_key
            }
            #[inline]
            fn route<H: #build_hasher>(&self, msg: &#message, hasher: &H) -> (#u64_, Self::Carried) {
                #route
            }
            #[inline]
            fn is_key(&self, msg: &#message, carried: &Self::Carried, key: &Self::Key) -> #bool_ {
                let _ = (msg, carried);
                #is_key
            }
            #initial_keys
        }
    };
    let attrs = component::Attrs::sort(&p.item.attrs);
    let unit = component::unit_struct(&p.item);
    let registered = component::registered(&attrs, &p.info, trait_impl);
    quote!(#unit #registered)
}
