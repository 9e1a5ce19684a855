//! `#[state_computation]`: a step over partitioned state, `fn(In, &mut S) -> (R, bool)` where
//! `R` is `Out`, `Option<Out>` or `Vec<Out>`.

use proc_macro2::{Span, TokenStream};
use quote::{quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{ItemFn, Type};

use crate::attr::StepArgs;
use crate::component::{self, Info};
use crate::computation::emit_fn;
use crate::ctxt::Errors;
use crate::paths;
use crate::signature::{self, emits, Emits, Macro, Passing};

const MACRO: Macro = Macro {
    attr: "#[state_computation]",
    shape: "fn step(msg: In, state: &mut S) -> (Out, bool)",
    returns_impl_trait: false,
};

/// A `#[state_computation]` as wallaroo understands it.
struct StateComputation {
    item: ItemFn,
    info: Info,
    input: Type,
    state: Type,
    /// `R` of `(R, bool)`.
    returns: Type,
    emits: Emits,
    output: Type,
    /// `bool` of `(R, bool)`.
    changed: Type,
}

pub(crate) fn expand(args: TokenStream, item: TokenStream) -> syn::Result<TokenStream> {
    let mut errors = Errors::default();
    let args = StepArgs::parse(MACRO.attr, args, &mut errors);
    let model = errors
        .ok(signature::parse_fn(&MACRO, item))
        .and_then(|item| StateComputation::new(item, args, &mut errors));
    Ok(generate(&errors.finish_with(model)?))
}

impl StateComputation {
    /// Reads and checks the function; every problem is recorded before giving up.
    fn new(item: ItemFn, args: StepArgs, errors: &mut Errors) -> Option<StateComputation> {
        let sig = &item.sig;
        signature::check_common(&MACRO, sig, errors);
        let params = signature::typed_params(sig);
        let count_ok =
            signature::check_param_count(&MACRO, sig, 2, "a message and its state", errors);

        // `fn(state: &mut S, msg: In)`: the two are swapped, and the advice for each alone
        // (take the message by value, the state as `&mut`) would swap their types instead.
        if let [first, second] = params.as_slice() {
            if let (Passing::Mut(state), Passing::Value(msg) | Passing::Shared(msg)) = (
                signature::passing(&first.ty),
                signature::passing(&second.ty),
            ) {
                errors.spanned(
                    &sig.inputs,
                    format!(
                        "#[state_computation] takes the message first and its state second: swap the parameters, `fn {}({}: {}, {}: &mut {})`",
                        sig.ident,
                        signature::pretty(&second.pat),
                        signature::pretty(msg),
                        signature::pretty(&first.pat),
                        signature::pretty(state),
                    ),
                );
                return None;
            }
        }

        let input = params.first().map(|p| (*p.ty).clone());
        if let Some(input) = &input {
            if let Passing::Shared(inner) | Passing::Mut(inner) = signature::passing(input) {
                errors.spanned(
                    input,
                    format!(
                        "#[state_computation] takes its message by value: write `msg: {}`",
                        signature::pretty(inner)
                    ),
                );
            }
        }
        let state = params.get(1).and_then(|p| match signature::passing(&p.ty) {
            Passing::Mut(state) => Some(state.clone()),
            Passing::Shared(state) => {
                errors.spanned(
                    &p.ty,
                    format!("the state of a #[state_computation] is passed as `&mut`: write `state: &mut {}`", signature::pretty(state)),
                );
                None
            }
            Passing::Value(state) => {
                errors.spanned(
                    state,
                    format!("the state of a #[state_computation] is passed as `&mut`: write `state: &mut {}`", signature::pretty(state)),
                );
                None
            }
        });

        const RETURNS: &str = "a #[state_computation] returns `(output, bool)`: the bool says whether the state changed and must be saved";
        let pair = match signature::return_type(sig) {
            None => {
                errors.spanned(sig, format!("{RETURNS}; write `-> (Out, bool)`"));
                None
            }
            Some(ty) => match signature::peel(ty) {
                Type::Tuple(tuple) if tuple.elems.len() == 2 => {
                    Some((tuple.elems[0].clone(), tuple.elems[1].clone()))
                }
                Type::Tuple(_) => {
                    errors.spanned(ty, format!("{RETURNS}; write `-> (Out, bool)`"));
                    None
                }
                other => {
                    errors.spanned(
                        ty,
                        format!("{RETURNS}; write `-> ({}, bool)`", signature::pretty(other)),
                    );
                    None
                }
            },
        };

        let (Some(input), Some(state), Some((returns, changed)), true) =
            (input, state, pair, count_ok)
        else {
            return None;
        };
        let (emits, output) = emits(&returns);
        let output = output.clone();
        let mut info = Info::new("StateComputation", &sig.ident);
        if let Some(name) = args.name {
            info.name = name;
        }
        info.input = Some(quote!(#input));
        info.output = Some(quote!(#output));
        info.state = Some(quote!(#state));
        Some(StateComputation {
            item,
            info,
            input,
            state,
            returns,
            emits,
            output,
            changed,
        })
    }
}

fn generate(c: &StateComputation) -> TokenStream {
    let ident = &c.item.sig.ident;
    let (input, state, output) = (&c.input, &c.state, &c.output);
    let trait_path = paths::state_computation_trait(Span::call_site());
    let emit = paths::emit(Span::call_site());
    let bool_ty = paths::bool(Span::call_site());
    let emit_fn = emit_fn(c.emits, c.returns.span());
    let info = component::info_method();
    let out_type = quote_spanned!(output.span()=> type Out = #output;);
    let state_type = quote_spanned!(state.span()=> type State = #state;);
    let send = quote_spanned!(c.returns.span()=> #emit_fn(out, output););
    let changed = quote_spanned!(c.changed.span()=> changed);
    let computation = paths::computation_trait(Span::call_site());
    let use_to_state_partition = paths::use_to_state_partition(Span::call_site());
    let unreachable = paths::unreachable(Span::call_site());
    let trait_impl = quote! {
        // Never applies: makes `.to(step)` fail on a bound that says to use
        // `.to_state_partition`.
        #[automatically_derived]
        impl<__In> #computation<__In> for #ident where #ident: #use_to_state_partition<__In> {
            type Out = ();
            #info
            fn compute(&self, _: __In, _: &mut impl #emit<()>) {
                #unreachable
            }
        }
        #[automatically_derived]
        impl #trait_path<#input> for #ident {
            #out_type
            #state_type
            #info
            #[inline]
            fn compute(&self, input: #input, state: &mut #state, out: &mut impl #emit<Self::Out>) -> #bool_ty {
                let (output, changed) = #ident::call(input, state);
                #send
                #changed
            }
        }
    };
    let attrs = component::Attrs::sort(&c.item.attrs);
    let unit = component::unit_struct(&c.item);
    let registered = component::registered(&attrs, &c.info, trait_impl);
    quote!(#unit #registered)
}
