//! What `#[state]` and `#[data]` add for serde: the derives through wallaroo's own serde,
//! fields checked one by one, and the layout of the serialized form.

use proc_macro2::{Span, TokenStream, TokenTree};
use quote::{quote, ToTokens};
use syn::punctuated::Punctuated;
use syn::spanned::Spanned;
use syn::{parse_quote_spanned, Attribute, Fields, LitStr, Path, Token};

use crate::paths;

/// The serde traits to derive and how.
pub(crate) struct Serial {
    /// The traits to derive: those the item does not derive already.
    derive: Vec<&'static str>,
    /// Whether to add `#[serde(crate = "…")]`.
    serde_crate: bool,
}

impl Serial {
    /// What an item with these attributes needs.
    pub(crate) fn of(attrs: &[Attribute]) -> Serial {
        let derived = derived_traits(attrs);
        let derive: Vec<&'static str> = ["Serialize", "Deserialize"]
            .into_iter()
            .filter(|t| !derived.iter().any(|d| d == t))
            .collect();
        let serde_crate = !derive.is_empty() && !has_serde_key(attrs, "crate");
        Serial {
            derive,
            serde_crate,
        }
    }

    /// Routes every field whose (de)serialization the user left to serde through
    /// `Field`, spanned at the field's type: a type that is not serializable is then one
    /// error at that field, with the fix, instead of serde's bounds deep in its derive.
    /// Only when both derives are ours: a derive of the user's own may be of another serde.
    pub(crate) fn check_fields(&self, fields: &mut Fields) {
        if self.derive.len() < 2 {
            return;
        }
        for field in fields.iter_mut() {
            if [
                "with",
                "serialize_with",
                "deserialize_with",
                "skip",
                "skip_serializing",
                "skip_deserializing",
            ]
            .iter()
            .any(|key| has_serde_key(&field.attrs, key))
            {
                continue;
            }
            let span = field.ty.span();
            let save = LitStr::new("::wallaroo::__private::save_field", span);
            let load = LitStr::new("::wallaroo::__private::load_field", span);
            field
                .attrs
                .push(parse_quote_spanned!(span=> #[serde(serialize_with = #save, deserialize_with = #load)]));
        }
    }

    /// The attributes to put before the item: ours first, so that the user's `#[serde(…)]`
    /// helpers come after the derive that introduces them.
    pub(crate) fn attrs(&self) -> TokenStream {
        let call_site = Span::call_site();
        let serde = paths::serde(call_site);
        let derives = self.derive.iter().map(|t| {
            let t = syn::Ident::new(t, call_site);
            quote!(#serde::#t)
        });
        let derive = (!self.derive.is_empty()).then(|| quote!(#[derive(#(#derives),*)]));
        let serde_crate = self.serde_crate.then(|| {
            let path = LitStr::new(paths::SERDE_CRATE, call_site);
            quote!(#[serde(crate = #path)])
        });
        quote!(#derive #serde_crate)
    }
}

/// The layout of a struct's serialized form: its fields' names and types as written, and
/// the `#[serde(…)]` attributes that change how a field is saved, such as
/// `{ mean: f64, max: f64 }`, `(u64, String)` or `;` for a unit struct.
pub(crate) fn layout(fields: &Fields) -> String {
    let field = |f: &syn::Field| {
        let serde: Vec<String> = f
            .attrs
            .iter()
            .filter(|a| a.path().is_ident("serde"))
            .map(|a| format!("{} ", tidy(a.to_token_stream())))
            .collect();
        let ty = tidy(f.ty.to_token_stream());
        match &f.ident {
            Some(name) => format!("{}{name}: {ty}", serde.concat()),
            None => format!("{}{ty}", serde.concat()),
        }
    };
    let list: Vec<String> = fields.iter().map(field).collect();
    match fields {
        Fields::Named(_) => format!("{{ {} }}", list.join(", ")),
        Fields::Unnamed(_) => format!("({})", list.join(", ")),
        Fields::Unit => ";".to_owned(),
    }
}

/// Tokens as text with a space only where two words meet (`Vec<Option<u8>>`,
/// `&'static str`, `[u8; 4]`): the same text however the user spaced them.
fn tidy(tokens: TokenStream) -> String {
    let text = tokens.to_string();
    let mut out = String::with_capacity(text.len());
    let chars: Vec<char> = text.chars().collect();
    for (i, &c) in chars.iter().enumerate() {
        if c == ' ' {
            let word = |c: Option<&char>| c.is_some_and(|c| c.is_alphanumeric() || *c == '_');
            let before = out.chars().last();
            // A space stays between two words, and after `;` and `,` (as in `[u8; 4]`).
            if (word(before.as_ref()) && word(chars.get(i + 1)))
                || matches!(before, Some(';' | ','))
            {
                out.push(' ');
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// The last segments of every path in the item's `#[derive(…)]` attributes.
fn derived_traits(attrs: &[Attribute]) -> Vec<String> {
    attrs
        .iter()
        .filter(|attr| attr.path().is_ident("derive"))
        .filter_map(|attr| {
            attr.parse_args_with(Punctuated::<Path, Token![,]>::parse_terminated)
                .ok()
        })
        .flatten()
        .filter_map(|path| path.segments.last().map(|s| s.ident.to_string()))
        .collect()
}

/// Whether the attributes hold `#[serde(… key …)]`.
fn has_serde_key(attrs: &[Attribute], key: &str) -> bool {
    attrs
        .iter()
        .filter(|attr| attr.path().is_ident("serde"))
        .any(|attr| match &attr.meta {
            syn::Meta::List(list) => list
                .tokens
                .clone()
                .into_iter()
                .any(|tt| matches!(tt, TokenTree::Ident(ident) if ident == key)),
            _ => false,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(item: TokenStream) -> Fields {
        syn::parse2::<syn::ItemStruct>(item).unwrap().fields
    }

    #[test]
    fn layouts_name_fields_and_types_as_written_whatever_the_spacing() {
        assert_eq!(
            layout(&fields(quote!(
                struct S {
                    mean: f64,
                    max: f64,
                }
            ))),
            "{ mean: f64, max: f64 }"
        );
        assert_eq!(
            layout(&fields(quote!(
                struct S {
                    max: f64,
                    mean: f64,
                }
            ))),
            "{ max: f64, mean: f64 }"
        );
        assert_eq!(
            layout(&fields(quote!(
                struct S(Vec<Option<u8>>, [u8; 4], &'static str);
            ))),
            "(Vec<Option<u8>>, [u8; 4], &'static str)"
        );
        assert_eq!(
            layout(&fields(quote!(
                struct S;
            ))),
            ";"
        );
        assert_eq!(
            layout(&fields(quote!(
                struct S {
                    #[serde(skip)]
                    cache: Vec<u8>,
                    n: std::collections::HashMap<String, u64>,
                }
            ))),
            "{ #[serde(skip)] cache: Vec<u8>, n: std::collections::HashMap<String, u64> }"
        );
    }
}
