//! `#[state]`: a struct whose instances are the per-key state of a state partition.

use proc_macro2::{Span, TokenStream};
use quote::{quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{Expr, Item, ItemStruct};

use crate::attr::StateArgs;
use crate::component::{self, Info};
use crate::ctxt::Errors;
use crate::paths;
use crate::serial::{self, Serial};
use crate::signature::item_head;

/// A `#[state]` as wallaroo understands it.
struct State {
    role: Role,
    item: ItemStruct,
    info: Info,
    builder: Option<Expr>,
    version: Option<syn::LitInt>,
    upgrade: Option<Expr>,
    serial: Serial,
    /// The layout of the serialized form, as the struct was written.
    layout: String,
}

pub(crate) fn expand(args: TokenStream, item: TokenStream) -> syn::Result<TokenStream> {
    expand_as(Role::State, args, item)
}

/// `#[aggregation]`: a state of its own kind, the accumulator of a window.
pub(crate) fn expand_aggregation(args: TokenStream, item: TokenStream) -> syn::Result<TokenStream> {
    expand_as(Role::Aggregation, args, item)
}

/// What the struct is to the application.
#[derive(Clone, Copy)]
enum Role {
    State,
    Aggregation,
}

impl Role {
    fn attr(self) -> &'static str {
        match self {
            Role::State => "#[state]",
            Role::Aggregation => "#[aggregation]",
        }
    }

    fn kind(self) -> &'static str {
        match self {
            Role::State => "State",
            Role::Aggregation => "Aggregation",
        }
    }
}

fn expand_as(role: Role, args: TokenStream, item: TokenStream) -> syn::Result<TokenStream> {
    let mut errors = Errors::default();
    let args = StateArgs::parse(args, &mut errors);
    let model = errors
        .ok(parse_struct(role, item))
        .and_then(|item| State::new(role, item, args, &mut errors));
    Ok(generate(&errors.finish_with(model)?))
}

/// Parses the annotated item, which must be a struct.
fn parse_struct(role: Role, item: TokenStream) -> syn::Result<ItemStruct> {
    let item = syn::parse2::<Item>(item)?;
    let message = match (role, &item) {
        (_, Item::Struct(_)) => {
            let Item::Struct(s) = item else { unreachable!() };
            return Ok(s);
        }
        (Role::State, Item::Enum(_)) => "#[state] applies to a struct, not an enum: wrap the enum in a struct, `#[state] struct MyState { inner: MyEnum }`",
        (Role::State, Item::Fn(_)) => "#[state] applies to a struct; a function that updates state is a `#[state_computation] fn step(msg: In, state: &mut S) -> (Out, bool)`",
        (Role::State, _) => "#[state] applies to a struct: `#[state] #[derive(Default)] struct Total { count: u64 }`",
        (Role::Aggregation, Item::Impl(_)) => "#[aggregation] applies to the accumulator struct, not to its `impl Aggregation<In>`: move it to `#[aggregation] #[derive(Clone, Default)] struct Stats { … }`",
        (Role::Aggregation, _) => "#[aggregation] applies to a struct, the accumulator: `#[aggregation] #[derive(Clone, Default)] struct Stats { count: u64 }` with `impl Aggregation<In> for Stats`",
    };
    Err(syn::Error::new_spanned(item_head(&item), message))
}

impl State {
    fn new(role: Role, item: ItemStruct, args: StateArgs, errors: &mut Errors) -> Option<State> {
        let attr = role.attr();
        if !item.generics.params.is_empty() {
            let why = match role {
                Role::State => "the state of a partition is one concrete type; remove the generic parameters",
                Role::Aggregation => "the windows of a partition keep one concrete accumulator type; remove the generic parameters and name the types it holds (`sum: f64`)",
            };
            errors.spanned(&item.generics, format!("{attr} cannot be generic: {why}"));
        } else if let Some(clause) = &item.generics.where_clause {
            errors.spanned(
                clause,
                format!("{attr} cannot have a `where` clause: remove it"),
            );
        }
        let mut item = item;
        let serial = Serial::of(&item.attrs);
        // Before `check_fields`, whose attributes change nothing that is saved.
        let layout = serial::layout(&item.fields);
        serial.check_fields(&mut item.fields);
        let mut info = Info::new(role.kind(), &item.ident);
        let ident = &item.ident;
        info.state = Some(quote!(#ident));
        Some(State {
            role,
            info,
            builder: args.builder,
            version: args.version,
            upgrade: args.upgrade,
            serial,
            layout,
            item,
        })
    }
}

fn generate(s: &State) -> TokenStream {
    let item = &s.item;
    let ident = &item.ident;
    let call_site = Span::call_site();
    let serde_attrs = s.serial.attrs();

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
    let layout = syn::LitStr::new(&s.layout, call_site);
    // Spanned at the path, so that a function of the wrong type is reported there.
    let read_saved = s.upgrade.as_ref().map(|upgrade| {
        let read_upgraded = paths::read_upgraded(upgrade.span());
        let read_saved = paths::read_saved(call_site);
        let saved_version = paths::saved_version(call_site);
        let result = paths::result(call_site);
        let mismatch = paths::version_mismatch(call_site);
        quote_spanned! {upgrade.span()=>
            fn read_saved<R: #read_saved<Self>>(
                saved: &#saved_version<'_>,
                reader: R,
            ) -> #result<R::Output, #mismatch> {
                let upgrade: fn(_) -> Self = #upgrade;
                #read_upgraded(saved, reader, upgrade)
            }
        }
    });
    let trait_impl = quote! {
        #[automatically_derived]
        impl #state for #ident {
            #version
            const LAYOUT: &'static ::core::primitive::str = #layout;
            #read_saved
            #[inline]
            fn info() -> &'static #component_info {
                &#static_name
            }
            fn build() -> Self {
                #build
            }
        }
    };
    // An aggregation says so with a trait of its own, so that a struct without
    // `#[aggregation]` in `impl Aggregation<…>` is reported as not an aggregation.
    let trait_impl = match s.role {
        Role::State => trait_impl,
        Role::Aggregation => {
            let accumulator = paths::accumulator_trait(call_site);
            quote! {
                #trait_impl
                #[automatically_derived]
                impl #accumulator for #ident {}
            }
        }
    };
    let attrs = component::Attrs::sort(&item.attrs);
    let registered = component::registered(&attrs, &s.info, trait_impl);
    // Ours first, so that the user's `#[serde(…)]` helpers come after the derive that
    // introduces them.
    quote! {
        #serde_attrs
        #item
        #registered
    }
}
