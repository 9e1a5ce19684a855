//! `#[wallaroo::main]`: the application's setup function, `fn(args: &Args) -> Application`
//! (or `fn() -> Application`), gets a `main` that runs what it builds.

use proc_macro2::{Ident, Span, TokenStream};
use quote::{quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{Expr, ItemFn, Stmt};

use crate::attr;
use crate::ctxt::Errors;
use crate::paths;
use crate::signature::{self, Macro};

const MACRO: Macro = Macro {
    attr: "#[wallaroo::main]",
    shape: "fn setup(args: &Args) -> Application",
    returns_impl_trait: false,
};

/// The setup function as wallaroo understands it.
struct Setup {
    item: ItemFn,
    takes_args: bool,
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
        if sig.inputs.len() > 1 {
            signature::check_param_count(
                &MACRO,
                sig,
                1,
                "the command line's `&Args` (or nothing)",
                errors,
            );
        }
        if signature::return_type(sig).is_none() {
            errors.spanned(
                sig,
                "#[wallaroo::main] needs the application the function builds: write `-> Application`",
            );
        }
        let takes_args = sig.inputs.len() == 1;
        Some(Setup { item, takes_args })
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

fn generate(s: &Setup) -> TokenStream {
    let item = &with_checked_result(&s.item);
    let ident = &item.sig.ident;
    let call_site = Span::call_site();
    let (run_main, env, exit_code) = (
        paths::run_main(call_site),
        paths::env(call_site),
        paths::exit_code(call_site),
    );
    let (args, application) = (paths::args(ident.span()), paths::application(ident.span()));
    // A typed binding, so that a setup function of the wrong type is reported at its name.
    let setup = if s.takes_args {
        quote_spanned!(ident.span()=> let setup: fn(&#args) -> #application = #ident;)
    } else {
        quote_spanned!(ident.span()=> let setup = |_: &#args| -> #application { #ident() };)
    };
    let cfg = item.attrs.iter().filter(|attr| attr.path().is_ident("cfg"));
    quote! {
        #item

        #(#cfg)*
        fn main() -> #exit_code {
            #setup
            #run_main(#env("CARGO_CRATE_NAME"), #env("CARGO_PKG_VERSION"), setup)
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
