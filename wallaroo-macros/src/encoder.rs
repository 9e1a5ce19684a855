//! `#[encoder]`: `fn(&T, &mut Vec<u8>)`, or `fn(&T) -> R` where `R: AsRef<[u8]>`.

use proc_macro2::{Span, TokenStream};
use quote::{quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{ItemFn, Type};

use crate::attr;
use crate::component::{self, Info};
use crate::ctxt::Errors;
use crate::paths;
use crate::signature::{self, Macro, Passing};

const MACRO: Macro = Macro {
    attr: "#[encoder]",
    shape: "fn encode(msg: &T, out: &mut Vec<u8>)",
    returns_impl_trait: true,
};

/// How the function hands over the bytes.
enum Writes {
    /// `fn(&T, &mut Vec<u8>)`.
    IntoBuffer,
    /// `fn(&T) -> R`: the bytes are appended.
    Returned(Box<Type>),
}

/// An `#[encoder]` as wallaroo understands it.
struct Encoder {
    item: ItemFn,
    info: Info,
    /// `T` of `&T`.
    message: Type,
    writes: Writes,
}

pub(crate) fn expand(args: TokenStream, item: TokenStream) -> syn::Result<TokenStream> {
    let mut errors = Errors::default();
    attr::none(MACRO.attr, args, &mut errors);
    let model = errors
        .ok(signature::parse_fn(&MACRO, item))
        .and_then(|item| Encoder::new(item, &mut errors));
    Ok(generate(&errors.finish_with(model)?))
}

impl Encoder {
    fn new(item: ItemFn, errors: &mut Errors) -> Option<Encoder> {
        let sig = &item.sig;
        signature::check_common(&MACRO, sig, errors);
        let params = signature::typed_params(sig);
        let returns = signature::return_type(sig);
        let writes = match (sig.inputs.len(), returns) {
            (1, Some(ty)) => Some(Writes::Returned(Box::new(ty.clone()))),
            (1, None) => {
                errors.spanned(
                    sig,
                    "an #[encoder] either writes into the output buffer, `fn encode(msg: &T, out: &mut Vec<u8>)`, or returns the bytes, `fn encode(msg: &T) -> Vec<u8>`",
                );
                None
            }
            (2, returns) => {
                if let Some(out) = params.get(1) {
                    if !matches!(signature::passing(&out.ty), Passing::Mut(_)) {
                        errors.spanned(
                            &out.ty,
                            "an #[encoder] appends to the output buffer: write `out: &mut Vec<u8>`",
                        );
                    }
                }
                if let Some(ty) = returns {
                    errors.spanned(
                        ty,
                        "an #[encoder] that writes into `out: &mut Vec<u8>` returns nothing: remove the return type, or remove `out` and return the bytes",
                    );
                }
                Some(Writes::IntoBuffer)
            }
            _ => {
                signature::check_param_count(
                    &MACRO,
                    sig,
                    1,
                    "the message (and the output buffer)",
                    errors,
                );
                None
            }
        };
        let message = params
            .first()
            .and_then(|p| match signature::passing(&p.ty) {
                Passing::Shared(message) => Some(message.clone()),
                Passing::Mut(message) | Passing::Value(message) => {
                    errors.spanned(
                        &p.ty,
                        format!(
                            "an #[encoder] borrows the message it encodes: write `msg: &{}`",
                            signature::pretty(message)
                        ),
                    );
                    None
                }
            });
        let (Some(message), Some(writes)) = (message, writes) else {
            return None;
        };
        let mut info = Info::new("Encoder", &sig.ident);
        info.input = Some(quote!(#message));
        Some(Encoder {
            item,
            info,
            message,
            writes,
        })
    }
}

fn generate(e: &Encoder) -> TokenStream {
    let ident = &e.item.sig.ident;
    let message = &e.message;
    let call_site = Span::call_site();
    let encoder = paths::encoder_trait(call_site);
    let vec = paths::vec(call_site);
    let u8 = paths::u8(call_site);
    let info = component::info_method();
    let body = match &e.writes {
        Writes::IntoBuffer => quote!(#ident::call(msg, out)),
        Writes::Returned(ty) => {
            // Bound first, so that bytes that are not `AsRef<[u8]>` are reported at the
            // return type.
            let append_bytes = paths::append_bytes(ty.span());
            let append = quote_spanned!(ty.span()=> #append_bytes(out, bytes));
            quote! {
                let bytes = #ident::call(msg);
                #append
            }
        }
    };
    let trait_impl = quote! {
        #[automatically_derived]
        impl #encoder<#message> for #ident {
            #info
            #[inline]
            fn encode(&self, msg: &#message, out: &mut #vec<#u8>) {
                #body
            }
        }
    };
    let attrs = component::Attrs::sort(&e.item.attrs);
    // Why: the sink calls the encoder from one generic loop per pipeline, where the call
    // itself costs; inlined, the Alphabet encoder saves 7.7 instructions a message of 615
    // (callgrind, 1 M frames). Decoders are left to the compiler: inlining the Alphabet
    // decoder into the source's loop cost 3 more. The user's own `#[inline(...)]` wins.
    let mut item = e.item.clone();
    if !item.attrs.iter().any(|a| a.path().is_ident("inline")) {
        item.attrs.push(syn::parse_quote!(#[inline]));
    }
    let unit = component::unit_struct(&item);
    let registered = component::registered(&attrs, &e.info, trait_impl);
    quote!(#unit #registered)
}
