//! `#[decoder]`: `fn(&[u8]) -> Result<T, E>`, with the framing of the byte stream given as
//! arguments: `header_length = N` (1 to 8, default 4), `payload_length = path`, or `lines`.

use proc_macro2::{Literal, Span, TokenStream};
use quote::{quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{Expr, ItemFn, Type};

use crate::attr::DecoderArgs;
use crate::component::{self, Info};
use crate::ctxt::Errors;
use crate::paths;
use crate::signature::{self, Macro, Passing};

const MACRO: Macro = Macro {
    attr: "#[decoder]",
    shape: "fn decode(payload: &[u8]) -> Result<Message, DecodeError>",
    returns_impl_trait: false,
};

/// How the byte stream is cut into payloads.
enum Framing {
    /// The trait's default: a 4-byte big-endian length header.
    Default,
    LengthPrefixed {
        header_length: usize,
        payload_length: Option<Expr>,
    },
    Lines,
}

/// A `#[decoder]` as wallaroo understands it.
struct Decoder {
    item: ItemFn,
    info: Info,
    returns: Type,
    framing: Framing,
}

pub(crate) fn expand(args: TokenStream, item: TokenStream) -> syn::Result<TokenStream> {
    let mut errors = Errors::default();
    let args = DecoderArgs::parse(args, &mut errors);
    let framing = framing(args, &mut errors);
    let model = errors
        .ok(signature::parse_fn(&MACRO, item))
        .and_then(|item| Decoder::new(item, framing, &mut errors));
    Ok(generate(&errors.finish_with(model)?))
}

/// Checks how the framing arguments combine.
fn framing(args: DecoderArgs, errors: &mut Errors) -> Framing {
    if args.lines.is_some() {
        let mut conflicts = Vec::new();
        if let Some(header) = &args.header_length {
            conflicts.push(&header.key);
        }
        if let Some((key, _)) = &args.payload_length {
            conflicts.push(key);
        }
        for key in conflicts {
            errors.spanned(
                key,
                format!("`{key}` cannot be combined with `lines`: newline-delimited text has no length header; remove `{key}`, or remove `lines` for length-prefixed frames"),
            );
        }
        return Framing::Lines;
    }
    match (args.header_length, args.payload_length) {
        (None, None) => Framing::Default,
        (header, payload) => Framing::LengthPrefixed {
            header_length: header.map_or(4, |h| h.bytes),
            payload_length: payload.map(|(_, f)| f),
        },
    }
}

impl Decoder {
    fn new(item: ItemFn, framing: Framing, errors: &mut Errors) -> Option<Decoder> {
        let sig = &item.sig;
        signature::check_common(&MACRO, sig, errors);
        let count_ok = signature::check_param_count(&MACRO, sig, 1, "the payload", errors);
        if let Some(param) = signature::typed_params(sig).first() {
            if !matches!(signature::passing(&param.ty), Passing::Shared(_)) {
                errors.spanned(
                    &param.ty,
                    "a #[decoder] borrows the payload: write `payload: &[u8]`",
                );
            }
        }
        let returns = signature::return_type(sig).cloned();
        if returns.is_none() {
            errors.spanned(
                sig,
                "a #[decoder] returns `Result<Message, Error>`: write `-> Result<Message, DecodeError>`",
            );
        }
        let (Some(returns), true) = (returns, count_ok) else {
            return None;
        };
        let mut info = Info::new("Decoder", &sig.ident);
        // Spanned at the return type like every other use of `DecodeResult`, so that a
        // wrong return type is reported once, there.
        let span = returns.span();
        let decoder = paths::decoder_trait(span);
        let ident = &sig.ident;
        info.output = Some(quote_spanned!(span=> <#ident as #decoder>::Out));
        Some(Decoder {
            item,
            info,
            returns,
            framing,
        })
    }
}

fn generate(d: &Decoder) -> TokenStream {
    let ident = &d.item.sig.ident;
    let returns = &d.returns;
    let call_site = Span::call_site();
    let decoder = paths::decoder_trait(call_site);
    let decode_result = paths::decode_result(returns.span());
    let result = paths::result(returns.span());
    let u8 = paths::u8(returns.span());
    let info = component::info_method();
    let types = quote_spanned! {returns.span()=>
        type Out = <#returns as #decode_result>::Ok;
        type Error = <#returns as #decode_result>::Err;
    };
    let framing = framing_method(&d.framing);
    // Spanned at the return type, so that a wrong one is reported there, and once: the
    // compiler reports the same error at the same place only once.
    let decode = quote_spanned! {returns.span()=>
        #[inline]
        fn decode(&self, payload: &[#u8]) -> #result<Self::Out, Self::Error> {
            <#returns as #decode_result>::into_result(#ident::call(payload))
        }
    };
    let trait_impl = quote! {
        #[automatically_derived]
        impl #decoder for #ident {
            #types
            #info
            #framing
            #decode
        }
    };
    let attrs = component::Attrs::sort(&d.item.attrs);
    let unit = component::unit_struct(&d.item);
    let registered = component::registered(&attrs, &d.info, trait_impl);
    quote!(#unit #registered)
}

/// `fn framing(&self) -> Framing`, unless the trait's default applies.
fn framing_method(framing: &Framing) -> Option<TokenStream> {
    let call_site = Span::call_site();
    let framing_ty = paths::framing(call_site);
    let body = match framing {
        Framing::Default => return None,
        Framing::Lines => quote!(#framing_ty::Lines),
        Framing::LengthPrefixed {
            header_length,
            payload_length,
        } => {
            let header_length = Literal::usize_unsuffixed(*header_length);
            let payload_length = match payload_length {
                None => paths::none(call_site),
                Some(f) => {
                    let (u8, usize, some) = (
                        paths::u8(f.span()),
                        paths::usize(f.span()),
                        paths::some(call_site),
                    );
                    // A typed binding, so that a function of the wrong type is reported at
                    // the path the user wrote.
                    let bind =
                        quote_spanned!(f.span()=> let payload_length: fn(&[#u8]) -> #usize = #f;);
                    quote!({ #bind #some(payload_length) })
                }
            };
            quote! {
                #framing_ty::LengthPrefixed {
                    header_length: #header_length,
                    payload_length: #payload_length,
                }
            }
        }
    };
    Some(quote! {
        fn framing(&self) -> #framing_ty {
            #body
        }
    })
}
