//! `#[data]`: a struct or enum that a state keeps, serializable through wallaroo's serde.

use proc_macro2::TokenStream;
use quote::quote;
use syn::{Item, ItemEnum, ItemStruct};

use crate::serial::Serial;
use crate::signature::item_head;

pub(crate) fn expand(args: TokenStream, item: TokenStream) -> syn::Result<TokenStream> {
    if !args.is_empty() {
        return Err(syn::Error::new_spanned(
            args,
            "#[data] takes no arguments: write `#[data]`; serde's own options go in `#[serde(…)]` after it",
        ));
    }
    match syn::parse2::<Item>(item)? {
        Item::Struct(item) => Ok(data_struct(item)),
        Item::Enum(item) => Ok(data_enum(item)),
        item @ Item::Fn(_) => Err(syn::Error::new_spanned(
            item_head(&item),
            "#[data] applies to a struct or an enum that a state keeps; a function is a step: `#[computation]` or `#[state_computation]`",
        )),
        item => Err(syn::Error::new_spanned(
            item_head(&item),
            "#[data] applies to a struct or an enum: `#[data] struct Reading { value: f64 }`",
        )),
    }
}

fn data_struct(mut item: ItemStruct) -> TokenStream {
    let serial = Serial::of(&item.attrs);
    // A generic field's bounds are serde's to infer; only concrete fields are checked.
    if item.generics.params.is_empty() {
        serial.check_fields(&mut item.fields);
    }
    let attrs = serial.attrs();
    quote!(#attrs #item)
}

fn data_enum(mut item: ItemEnum) -> TokenStream {
    let serial = Serial::of(&item.attrs);
    if item.generics.params.is_empty() {
        for variant in &mut item.variants {
            serial.check_fields(&mut variant.fields);
        }
    }
    let attrs = serial.attrs();
    quote!(#attrs #item)
}
