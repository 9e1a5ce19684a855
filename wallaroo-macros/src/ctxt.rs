//! Collects every error of one macro invocation, so that the user sees them all at once
//! rather than fixing them one compile at a time (serde_derive's `Ctxt`, darling's
//! accumulator).

use std::fmt::Display;

use proc_macro2::Span;
use quote::ToTokens;

/// The errors found so far.
#[derive(Default)]
pub(crate) struct Errors {
    combined: Option<syn::Error>,
}

impl Errors {
    /// Adds an error (which may itself hold several).
    pub(crate) fn push(&mut self, error: syn::Error) {
        match &mut self.combined {
            Some(combined) => combined.combine(error),
            None => self.combined = Some(error),
        }
    }

    /// Adds an error spanned on `tokens`.
    pub(crate) fn spanned(&mut self, tokens: impl ToTokens, message: impl Display) {
        self.push(syn::Error::new_spanned(tokens, message));
    }

    /// Adds an error at `span`.
    pub(crate) fn at(&mut self, span: Span, message: impl Display) {
        self.push(syn::Error::new(span, message));
    }

    /// Keeps the value of `result`, or records its error.
    pub(crate) fn ok<T>(&mut self, result: syn::Result<T>) -> Option<T> {
        result.map_err(|e| self.push(e)).ok()
    }

    /// `Ok` when no error was recorded, else every error combined.
    pub(crate) fn finish(self) -> syn::Result<()> {
        match self.combined {
            Some(error) => Err(error),
            None => Ok(()),
        }
    }
}

impl Errors {
    /// The model built from the input, when no error was recorded.
    pub(crate) fn finish_with<T>(self, model: Option<T>) -> syn::Result<T> {
        self.finish()?;
        model.ok_or_else(|| {
            // Every path that leaves the model unbuilt records an error; this is a bug.
            syn::Error::new(
                Span::call_site(),
                "wallaroo-macros: internal error, please report it",
            )
        })
    }
}
