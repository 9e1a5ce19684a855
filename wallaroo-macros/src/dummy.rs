//! What a macro leaves when it rejects its item, next to its errors (clap_derive's
//! dummies): the item as an accepted one would have become, the unit struct and its `call`
//! keeping the function as written, with an implementation of the runtime trait for any
//! message type whose methods are never run. The builder and the rest of the crate then
//! type-check against it, so that only the macro's own errors are reported, not a second
//! "`decode` is not a decoder" where the pipeline uses it.
//!
//! The types an implementation needs (a step's output, a partition's key) are read from
//! the signature where it names them plainly, and are `()` otherwise.

use proc_macro2::{Span, TokenStream, TokenTree};
use quote::{quote, ToTokens};
use syn::{Data, DeriveInput, ItemFn, PathArguments, Type};

use crate::component;
use crate::paths;
use crate::signature::{self, emits, Passing};

/// What the rejected function was meant to be.
#[derive(Clone, Copy)]
pub(crate) enum Kind {
    Computation,
    StateComputation,
    Decoder,
    Encoder,
    Partition,
}

/// The dummy of a rejected function: the item as written when it is not a free function
/// (a method, a variadic function, or not a function at all).
pub(crate) fn function(kind: Kind, item: TokenStream) -> TokenStream {
    let Ok(f) = syn::parse2::<ItemFn>(item.clone()) else {
        return item;
    };
    if f.sig.receiver().is_some() || f.sig.variadic.is_some() {
        return item;
    }
    let ident = &f.sig.ident;
    let call_site = Span::call_site();
    let unreachable = paths::unreachable(call_site);
    let info = paths::component_info(call_site);
    let info = quote! {
        fn info(&self) -> &'static #info {
            #unreachable
        }
    };
    let emit = paths::emit(call_site);
    let nameable = |ty: &Type| f.sig.generics.params.is_empty() && is_nameable(ty);
    let or_unit = |ty: Option<&Type>| match ty.filter(|ty| nameable(ty)) {
        Some(ty) => ty.to_token_stream(),
        None => quote!(()),
    };
    let returns = signature::return_type(&f.sig);
    let params = signature::typed_params(&f.sig);
    let trait_impl = match kind {
        Kind::Computation => {
            let computation = paths::computation_trait(call_site);
            let out = or_unit(returns.map(|ty| emits(ty).1));
            quote! {
                impl<__In> #computation<__In> for #ident {
                    type Out = #out;
                    #info
                    fn compute(&self, _: __In, _: &mut impl #emit<Self::Out>) {
                        #unreachable
                    }
                }
            }
        }
        Kind::StateComputation => {
            let state_computation = paths::state_computation_trait(call_site);
            let out = returns.and_then(|ty| match signature::peel(ty) {
                Type::Tuple(pair) if pair.elems.len() == 2 => Some(emits(&pair.elems[0]).1),
                _ => None,
            });
            let out = or_unit(out);
            // The state: the parameter passed `&mut`, else the second one as written.
            let state = params
                .iter()
                .find_map(|p| match signature::passing(&p.ty) {
                    Passing::Mut(state) => Some(state),
                    _ => None,
                })
                .or_else(|| {
                    params.get(1).map(|p| match signature::passing(&p.ty) {
                        Passing::Mut(ty) | Passing::Shared(ty) | Passing::Value(ty) => ty,
                    })
                })
                .filter(|ty| nameable(ty));
            let state = match state {
                Some(ty) => ty.to_token_stream(),
                None => paths::unknown_state(call_site),
            };
            let bool_ty = paths::bool(call_site);
            quote! {
                impl<__In> #state_computation<__In> for #ident {
                    type Out = #out;
                    type State = #state;
                    #info
                    fn compute(&self, _: __In, _: &mut Self::State, _: &mut impl #emit<Self::Out>) -> #bool_ty {
                        #unreachable
                    }
                }
            }
        }
        Kind::Decoder => {
            let decoder = paths::decoder_trait(call_site);
            let (result, u8) = (paths::result(call_site), paths::u8(call_site));
            let infallible = paths::infallible(call_site);
            let out = or_unit(returns.and_then(result_ok));
            quote! {
                impl #decoder for #ident {
                    type Out = #out;
                    type Error = #infallible;
                    #info
                    fn decode(&self, _: &[#u8]) -> #result<Self::Out, Self::Error> {
                        #unreachable
                    }
                }
            }
        }
        Kind::Encoder => {
            let encoder = paths::encoder_trait(call_site);
            let (vec, u8) = (paths::vec(call_site), paths::u8(call_site));
            quote! {
                impl<__In> #encoder<__In> for #ident {
                    #info
                    fn encode(&self, _: &__In, _: &mut #vec<#u8>) {
                        #unreachable
                    }
                }
            }
        }
        Kind::Partition => {
            let partition = paths::partition_trait(call_site);
            let key = match returns.map(signature::peel) {
                Some(Type::Reference(borrowed)) if nameable(&borrowed.elem) => {
                    let to_owned = paths::to_owned(call_site);
                    let borrowed = &borrowed.elem;
                    quote!(<#borrowed as #to_owned>::Owned)
                }
                other => or_unit(other),
            };
            let build_hasher = paths::build_hasher(call_site);
            let (u64_, bool_) = (paths::u64(call_site), paths::bool(call_site));
            quote! {
                impl<__In> #partition<__In> for #ident {
                    type Key = #key;
                    type Carried = ();
                    #info
                    fn key(&self, _: &__In) -> Self::Key {
                        #unreachable
                    }
                    fn route<H: #build_hasher>(&self, _: &__In, _: &H) -> (#u64_, ()) {
                        #unreachable
                    }
                    fn is_key(&self, _: &__In, _: &(), _: &Self::Key) -> #bool_ {
                        #unreachable
                    }
                }
            }
        }
    };
    let unit = component::unit_struct(&f);
    let cfg = component::Attrs::sort(&f.attrs).cfg;
    quote! {
        #unit
        #(#cfg)*
        const _: () = {
            #[automatically_derived]
            #[allow(deprecated)]
            #trait_impl
        };
    }
}

/// The dummy of a rejected `#[data]`: a struct or enum gets serde's derives, so that the
/// states that keep it stay quiet; anything else is left as written.
pub(crate) fn data(item: TokenStream) -> TokenStream {
    match syn::parse2::<DeriveInput>(item.clone()) {
        Ok(input) if !matches!(input.data, Data::Union(_)) => {
            let serde_attrs = crate::serial::Serial::of(&input.attrs).attrs();
            quote!(#serde_attrs #item)
        }
        _ => item,
    }
}

/// The dummy of a rejected `#[state]`: a struct or enum without generic parameters gets
/// serde's derives and a `State` implementation that is never run; anything else is left
/// as written.
pub(crate) fn state(item: TokenStream) -> TokenStream {
    state_as(item, false)
}

/// The dummy of a rejected `#[aggregation]`: the dummy of a `#[state]`, and an `Accumulator`
/// implementation, so that its `impl Aggregation<…>` raises no second error.
pub(crate) fn aggregation(item: TokenStream) -> TokenStream {
    state_as(item, true)
}

fn state_as(item: TokenStream, aggregation: bool) -> TokenStream {
    let Ok(input) = syn::parse2::<DeriveInput>(item.clone()) else {
        return item;
    };
    if !input.generics.params.is_empty()
        || input.generics.where_clause.is_some()
        || matches!(input.data, Data::Union(_))
    {
        return item;
    }
    let call_site = Span::call_site();
    let serde_attrs = crate::serial::Serial::of(&input.attrs).attrs();
    let ident = &input.ident;
    let state = paths::state_trait(call_site);
    let info = paths::component_info(call_site);
    let unreachable = paths::unreachable(call_site);
    let cfg = component::Attrs::sort(&input.attrs).cfg;
    let accumulator = aggregation.then(|| {
        let accumulator = paths::accumulator_trait(call_site);
        quote! {
            #(#cfg)*
            #[automatically_derived]
            impl #accumulator for #ident {}
        }
    });
    quote! {
        #serde_attrs
        #item
        #(#cfg)*
        #[automatically_derived]
        impl #state for #ident {
            fn info() -> &'static #info {
                #unreachable
            }
            fn build() -> Self {
                #unreachable
            }
        }
        #accumulator
    }
}

/// `T` of a return type written `Result<T, …>` (or an alias such as `io::Result<T>`).
fn result_ok(ty: &Type) -> Option<&Type> {
    let Type::Path(path) = signature::peel(ty) else {
        return None;
    };
    let last = path.path.segments.last()?;
    if !last.ident.to_string().ends_with("Result") {
        return None;
    }
    let PathArguments::AngleBracketed(args) = &last.arguments else {
        return None;
    };
    args.args.iter().find_map(|arg| match arg {
        syn::GenericArgument::Type(ty) => Some(ty),
        _ => None,
    })
}

/// Whether `ty` can be named in an implementation as written: no `impl Trait`, no
/// references or lifetimes (elided ones cannot be written there), no `_`.
fn is_nameable(ty: &Type) -> bool {
    fn walk(tokens: TokenStream) -> bool {
        tokens.into_iter().all(|tt| match tt {
            TokenTree::Ident(ident) => ident != "impl" && ident != "_",
            TokenTree::Punct(punct) => punct.as_char() != '&' && punct.as_char() != '\'',
            TokenTree::Group(group) => walk(group.stream()),
            TokenTree::Literal(_) => true,
        })
    }
    walk(ty.to_token_stream())
}
