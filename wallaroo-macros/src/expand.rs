//! The expansion of each macro, `expand::x(args, item) -> syn::Result<TokenStream>`, and the
//! one place where a result becomes the macro's output.

use proc_macro2::TokenStream;
use quote::quote;

pub(crate) use crate::computation::expand as computation;
pub(crate) use crate::data::expand as data;
pub(crate) use crate::decoder::expand as decoder;
pub(crate) use crate::encoder::expand as encoder;
pub(crate) use crate::entry::expand as main;
pub(crate) use crate::entry::fallback as main_fallback;
pub(crate) use crate::partition::expand as partition;
pub(crate) use crate::state::expand as state;
pub(crate) use crate::state::expand_aggregation as aggregation;
pub(crate) use crate::state_computation::expand as state_computation;

/// The macro's output: the expansion, or on error the `fallback` (the item as written, or a
/// dummy that stands for it: see [`crate::dummy`]) next to a `compile_error!` per error,
/// so that IDEs and the rest of the crate still see the item.
///
/// With `WALLAROO_MACROS_DEBUG=1` in the compiler's environment, prints the output.
pub(crate) fn finish(
    attr: &str,
    result: syn::Result<TokenStream>,
    fallback: impl FnOnce() -> TokenStream,
) -> TokenStream {
    let output = match result {
        Ok(expansion) => expansion,
        Err(error) => {
            let item = fallback();
            let errors = error.into_compile_error();
            quote!(#item #errors)
        }
    };
    if std::env::var_os("WALLAROO_MACROS_DEBUG").is_some_and(|v| v == "1") {
        eprintln!("wallaroo-macros: {attr} expands to:\n{output}\n");
    }
    output
}
