//! `#[computation]`: a stateless step, `fn(In) -> Out | Option<Out> | Vec<Out>`.

use proc_macro2::{Span, TokenStream};
use quote::{quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{ItemFn, Type};

use crate::attr::StepArgs;
use crate::component::{self, Info};
use crate::ctxt::Errors;
use crate::paths;
use crate::signature::{self, emits, Emits, Macro, Passing};

const MACRO: Macro = Macro {
    attr: "#[computation]",
    shape: "fn step(msg: In) -> Out",
    returns_impl_trait: false,
};

/// A `#[computation]` as wallaroo understands it.
struct Computation {
    item: ItemFn,
    info: Info,
    input: Type,
    emits: Emits,
    output: Type,
    returns: Type,
}

pub(crate) fn expand(args: TokenStream, item: TokenStream) -> syn::Result<TokenStream> {
    let mut errors = Errors::default();
    let args = StepArgs::parse(MACRO.attr, args, &mut errors);
    let model = errors
        .ok(signature::parse_fn(&MACRO, item))
        .and_then(|item| Computation::new(item, args, &mut errors));
    Ok(generate(&errors.finish_with(model)?))
}

impl Computation {
    /// Reads and checks the function.
    fn new(item: ItemFn, args: StepArgs, errors: &mut Errors) -> Option<Computation> {
        let sig = &item.sig;
        signature::check_common(&MACRO, sig, errors);
        let params = signature::typed_params(sig);
        if sig.inputs.len() == 2
            && matches!(
                params.get(1).map(|p| signature::passing(&p.ty)),
                Some(Passing::Mut(_))
            )
        {
            errors.spanned(
                &sig.inputs,
                "#[computation] takes one message and no state: a step that updates state is a `#[state_computation] fn step(msg: In, state: &mut S) -> (Out, bool)`",
            );
            return None;
        }
        if !signature::check_param_count(&MACRO, sig, 1, "one message", errors) {
            return None;
        }
        let input = (*params.first()?.ty).clone();
        if let Passing::Shared(inner) | Passing::Mut(inner) = signature::passing(&input) {
            errors.spanned(
                &input,
                format!(
                    "#[computation] takes its message by value: write `msg: {}`",
                    signature::pretty(inner)
                ),
            );
        }
        let Some(returns) = signature::return_type(sig).cloned() else {
            errors.spanned(
                sig,
                "#[computation] returns what it sends on: `-> Out`, `-> Option<Out>` to filter, or `-> Vec<Out>` to fan out",
            );
            return None;
        };
        let (emits, output) = emits(&returns);
        let output = output.clone();
        let mut info = Info::new("Computation", &sig.ident);
        if let Some(name) = args.name {
            info.name = name;
        }
        info.input = Some(quote!(#input));
        info.output = Some(quote!(#output));
        Some(Computation {
            item,
            info,
            input,
            emits,
            output,
            returns,
        })
    }
}

fn generate(c: &Computation) -> TokenStream {
    let ident = &c.item.sig.ident;
    let (input, output) = (&c.input, &c.output);
    let computation = paths::computation_trait(Span::call_site());
    let emit = paths::emit(Span::call_site());
    let emit_fn = emit_fn(c.emits, c.returns.span());
    let info = component::info_method();
    let out_type = quote_spanned!(output.span()=> type Out = #output;);
    let call = quote_spanned!(c.returns.span()=> #emit_fn(out, #ident::call(input)));
    let state_computation = paths::state_computation_trait(Span::call_site());
    let use_to = paths::use_to(Span::call_site());
    let unknown_state = paths::unknown_state(Span::call_site());
    let bool_ty = paths::bool(Span::call_site());
    let unreachable = paths::unreachable(Span::call_site());
    let trait_impl = quote! {
        // Never applies: makes `.to_state_partition(step, …)` fail on a bound that says to
        // use `.to`.
        #[automatically_derived]
        impl<__In> #state_computation<__In> for #ident where #ident: #use_to<__In> {
            type Out = ();
            type State = #unknown_state;
            #info
            fn compute(&self, _: __In, _: &mut #unknown_state, _: &mut impl #emit<()>) -> #bool_ty {
                #unreachable
            }
        }
        #[automatically_derived]
        impl #computation<#input> for #ident {
            #out_type
            #info
            #[inline]
            fn compute(&self, input: #input, out: &mut impl #emit<Self::Out>) {
                #call
            }
        }
    };
    let attrs = component::Attrs::sort(&c.item.attrs);
    let unit = component::unit_struct(&c.item);
    let registered = component::registered(&attrs, &c.info, trait_impl);
    quote!(#unit #registered)
}

/// The `emit_*` helper that sends on what a step returned.
pub(crate) fn emit_fn(emits: Emits, span: Span) -> TokenStream {
    match emits {
        Emits::One => paths::emit_one(span),
        Emits::Optional => paths::emit_option(span),
        Emits::Many => paths::emit_many(span),
    }
}
