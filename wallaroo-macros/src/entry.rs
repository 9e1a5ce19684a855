//! `#[wallaroo::main]`: the application's setup function,
//! `fn(args: &Args, flags: &Flags) -> Application` (`Flags` the application's own flags, a
//! struct that derives `clap::Args`), `fn(args: &Args) -> Application` or
//! `fn() -> Application`, gets a `main` that runs what it builds; `--help` starts with its
//! doc comment.

use proc_macro2::{Ident, Span, TokenStream};
use quote::{quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{Expr, ItemFn, Meta, Stmt, Type};

use crate::attr;
use crate::ctxt::Errors;
use crate::paths;
use crate::signature::{self, Macro, Passing};

const MACRO: Macro = Macro {
    attr: "#[wallaroo::main]",
    shape: "fn setup(args: &Args) -> Application",
    returns_impl_trait: false,
};

/// The function with the application's own flags, for error messages.
const WITH_FLAGS: &str = "fn setup(args: &Args, flags: &Flags) -> Application";

/// The setup function as wallaroo understands it.
struct Setup {
    item: ItemFn,
    takes: Takes,
    /// The type that the first parameter lends, if it is a shared reference.
    args: Option<Type>,
}

/// What the setup function takes.
enum Takes {
    /// `fn setup() -> Application`.
    Nothing,
    /// `fn setup(args: &Args) -> Application`.
    Args,
    /// `fn setup(args: &Args, flags: &Flags) -> Application`: the flags' type.
    ArgsAndFlags(Box<Type>),
}

pub(crate) fn expand(args: TokenStream, item: TokenStream) -> syn::Result<TokenStream> {
    let mut errors = Errors::default();
    attr::none(MACRO.attr, args, &mut errors);
    let model = errors
        .ok(signature::parse_fn(&MACRO, item))
        .and_then(|item| Setup::new(item, &mut errors));
    Ok(generate(&errors.finish_with(model)?))
}

impl Setup {
    fn new(item: ItemFn, errors: &mut Errors) -> Option<Setup> {
        let sig = &item.sig;
        signature::check_common(&MACRO, sig, errors);
        if sig.ident == "main" {
            errors.spanned(
                &sig.ident,
                "#[wallaroo::main] generates `fn main`, so the setup function needs another name: `fn setup(args: &Args) -> Application`",
            );
        }
        let params = signature::typed_params(sig);
        let args = params
            .first()
            .and_then(|first| match signature::passing(&first.ty) {
                Passing::Shared(ty) => Some(ty.clone()),
                Passing::Mut(_) | Passing::Value(_) => {
                    errors.spanned(
                        &first.ty,
                        "#[wallaroo::main] lends the command line to read: write `args: &Args`",
                    );
                    None
                }
            });
        let takes = match params.as_slice() {
            [] => Takes::Nothing,
            [_] => Takes::Args,
            [_, flags] => match signature::passing(&flags.ty) {
                Passing::Shared(ty) => Takes::ArgsAndFlags(Box::new(ty.clone())),
                Passing::Mut(ty) => {
                    errors.spanned(
                        &flags.ty,
                        format!(
                            "#[wallaroo::main] lends the application's flags to read, not to change: write `&{}`",
                            signature::pretty(ty)
                        ),
                    );
                    Takes::ArgsAndFlags(Box::new(ty.clone()))
                }
                Passing::Value(ty) => {
                    errors.spanned(
                        &flags.ty,
                        format!(
                            "#[wallaroo::main] lends the application's flags: write `&{}`, as in `{WITH_FLAGS}`",
                            signature::pretty(ty)
                        ),
                    );
                    Takes::ArgsAndFlags(Box::new(ty.clone()))
                }
            },
            [_, _, extra @ ..] => {
                errors.spanned(
                    quote!(#(#extra),*),
                    format!(
                        "#[wallaroo::main] takes the command line's `&Args` and the application's flags, one struct that derives `clap::Args`, but this function takes {} parameters: write `{WITH_FLAGS}`, with every flag a field of `Flags`",
                        sig.inputs.len()
                    ),
                );
                Takes::Args
            }
        };
        if signature::return_type(sig).is_none() {
            errors.spanned(
                sig,
                "#[wallaroo::main] needs the application the function builds: write `-> Application`",
            );
        }
        Some(Setup { item, takes, args })
    }
}

/// The setup function with its result passed through `IntoApplication`, so that a pipeline
/// left without `.to_sink(…)` or `.done()` is told so, at the expression that returns it.
///
/// Only a method chain or a name is wrapped: an expression whose type is inferred from the
/// return type (`x.into()`, `todo!()`) would lose it.
fn with_checked_result(item: &ItemFn) -> ItemFn {
    let mut item = item.clone();
    if let Some(Stmt::Expr(tail, None)) = item.block.stmts.last_mut() {
        // The error is spanned at the last method called (where `.to_sink(…)` goes), or
        // at the name.
        let span = match &*tail {
            Expr::MethodCall(call) if call.method != "into" => Some(call.method.span()),
            Expr::Path(path) => Some(path.span()),
            _ => None,
        };
        if let Some(span) = span {
            // Bound to a name first: given the expression itself, the compiler would
            // suggest removing its last method call, which ended the pipeline's type.
            let into_application = paths::into_application(span);
            let app = Ident::new("__wallaroo_application", span);
            let wrapped = quote_spanned!(span=> {
                let #app = #tail;
                #into_application(#app)
            });
            *tail = Expr::Verbatim(wrapped);
        }
    }
    item
}

/// The doc comment of the setup function, one line per `#[doc]` attribute, as an expression
/// of type `&'static str`: `--help` starts with it.
fn doc(item: &ItemFn) -> TokenStream {
    let lines = item.attrs.iter().filter_map(|attr| match &attr.meta {
        Meta::NameValue(doc) if doc.path.is_ident("doc") => Some(&doc.value),
        _ => None,
    });
    let concat = paths::concat(Span::call_site());
    quote!(#concat(#(#lines, "\n"),*))
}

fn generate(s: &Setup) -> TokenStream {
    let item = &with_checked_result(&s.item);
    let ident = &item.sig.ident;
    let call_site = Span::call_site();
    let (run_application, env, exit_code) = (
        paths::run_application(call_site),
        paths::env(call_site),
        paths::exit_code(call_site),
    );
    let (args, application, no_flags) = (
        paths::args(ident.span()),
        paths::application(ident.span()),
        paths::no_flags(ident.span()),
    );
    // A typed binding, so that a setup function of the wrong type is reported at its name.
    let (setup, run) = match &s.takes {
        Takes::Nothing => (
            quote_spanned!(ident.span()=> let setup = |_: &#args, _: &#no_flags| -> #application { #ident() };),
            run_application,
        ),
        Takes::Args => (
            quote_spanned!(ident.span()=>
                let setup: fn(&#args) -> #application = #ident;
                let setup = |args: &#args, _: &#no_flags| setup(args);
            ),
            run_application,
        ),
        Takes::ArgsAndFlags(flags) => (
            quote_spanned!(ident.span()=> let setup: fn(&#args, &#flags) -> #application = #ident;),
            // Flags of the wrong type are reported where their type is written.
            quote_spanned!(flags.span()=> #run_application::<#flags>),
        ),
    };
    // The command line's type is checked where it is written.
    let args_check = s.args.as_ref().map(|ty| {
        let is_command_line = paths::is_command_line(ty.span());
        quote_spanned!(ty.span()=> #is_command_line::<#ty>();)
    });
    let doc = doc(item);
    let cfg = item.attrs.iter().filter(|attr| attr.path().is_ident("cfg"));
    quote! {
        #item

        #(#cfg)*
        fn main() -> #exit_code {
            #args_check
            #setup
            #run(#env("CARGO_CRATE_NAME"), #env("CARGO_PKG_VERSION"), #doc, setup)
        }
    }
}

/// What `#[wallaroo::main]` leaves when it fails: the item as written and, unless the item
/// is itself `main`, an empty `main`, so that the errors are not followed by "`main`
/// function not found".
pub(crate) fn fallback(item: TokenStream) -> TokenStream {
    match syn::parse2::<ItemFn>(item.clone()) {
        Ok(f) if f.sig.ident != "main" => quote! {
            #item
            fn main() {}
        },
        _ => item,
    }
}
