//! Attribute arguments: parsed into one typed struct per macro.
//!
//! Every macro takes `key = value` and flag arguments separated by commas. An unknown key,
//! a key given twice, a flag given a value, a key given none, and a value of the wrong kind
//! are each an error spanned on the offending tokens; the errors about keys list the valid
//! ones. All of them are collected, not just the first.

use std::collections::HashSet;

use proc_macro2::TokenStream;
use syn::ext::IdentExt;
use syn::parse::{ParseStream, Parser};
use syn::{token, Expr, Ident, Lit, LitInt, LitStr, Token};

use crate::ctxt::Errors;

/// One valid argument of a macro.
pub(crate) struct Key {
    /// The key as written.
    pub(crate) name: &'static str,
    /// Whether it takes a value.
    pub(crate) takes_value: bool,
    /// How it is written, for error messages: ``name = "…"``.
    pub(crate) example: &'static str,
}

/// One argument as written: `key` or `key = value`.
pub(crate) struct Arg {
    pub(crate) key: Ident,
    pub(crate) value: Option<Expr>,
}

/// The valid arguments, as a list for error messages.
fn expected(keys: &[Key]) -> String {
    let list: Vec<String> = keys.iter().map(|k| format!("`{}`", k.example)).collect();
    match list.len() {
        0 => "it takes no arguments".to_owned(),
        1 => format!("the only argument is {}", list[0]),
        _ => format!("expected one of: {}", list.join(", ")),
    }
}

/// Parses `tokens` as the arguments of `attr` (such as `#[computation]`), keeping the
/// valid ones and recording an error for each problem.
pub(crate) fn parse(
    attr: &str,
    keys: &[Key],
    tokens: TokenStream,
    errors: &mut Errors,
) -> Vec<Arg> {
    let parser = |input: ParseStream| -> syn::Result<Vec<Arg>> {
        let mut args = Vec::new();
        while !input.is_empty() {
            if !input.peek(Ident::peek_any) {
                return Err(input.error(format!(
                    "expected an argument of {attr}: {}",
                    expected(keys)
                )));
            }
            let key = input.call(Ident::parse_any)?;
            let value = if input.peek(Token![=]) {
                input.parse::<Token![=]>()?;
                Some(input.parse::<Expr>()?)
            } else if input.peek(token::Paren)
                || input.peek(token::Bracket)
                || input.peek(token::Brace)
            {
                return Err(input.error(format!(
                    "expected `,` or `=` after `{key}`: arguments of {attr} are written `key = value`; {}",
                    expected(keys)
                )));
            } else {
                None
            };
            args.push(Arg { key, value });
            if input.is_empty() {
                break;
            }
            if !input.peek(Token![,]) {
                return Err(input.error("expected `,` between arguments"));
            }
            input.parse::<Token![,]>()?;
        }
        Ok(args)
    };
    let args = errors.ok(parser.parse2(tokens)).unwrap_or_default();

    let mut seen = HashSet::new();
    let mut valid = Vec::new();
    for arg in args {
        let name = arg.key.unraw().to_string();
        let Some(key) = keys.iter().find(|k| k.name == name) else {
            let message = if keys.is_empty() {
                format!("{attr} takes no arguments: remove `{name}`")
            } else {
                format!("unknown argument `{name}` of {attr}; {}", expected(keys))
            };
            errors.spanned(&arg.key, message);
            continue;
        };
        if !seen.insert(key.name) {
            errors.spanned(
                &arg.key,
                format!(
                    "duplicate argument `{name}`: {attr} takes each argument at most once; {}",
                    expected(keys)
                ),
            );
            continue;
        }
        match (&arg.value, key.takes_value) {
            (Some(value), false) => errors.spanned(
                value,
                format!(
                    "`{name}` is a flag and takes no value: write `{}`",
                    key.example
                ),
            ),
            (None, true) => errors.spanned(
                &arg.key,
                format!("`{name}` needs a value: write `{}`", key.example),
            ),
            _ => valid.push(arg),
        }
    }
    valid
}

/// The string literal of `arg`, or an error.
fn lit_str(arg: &Arg, example: &str, errors: &mut Errors) -> Option<LitStr> {
    match arg.value.as_ref()? {
        Expr::Lit(syn::ExprLit {
            lit: Lit::Str(s), ..
        }) => Some(s.clone()),
        other => {
            errors.spanned(
                other,
                format!("`{}` takes a string literal: `{example}`", arg.key),
            );
            None
        }
    }
}

/// The value of `arg` where a function is expected (a path or a closure); a literal, the
/// way serde's `default = "path"` is written, is an error that says how to write it.
fn function(arg: &Arg, example: &str, errors: &mut Errors) -> Option<Expr> {
    match arg.value.as_ref()? {
        Expr::Lit(lit) => {
            errors.spanned(
                lit,
                format!(
                    "`{}` takes the path of a function, not a literal: `{example}`",
                    arg.key
                ),
            );
            None
        }
        other => Some(other.clone()),
    }
}

/// The `name = "…"` of `#[computation]` and `#[state_computation]`.
#[derive(Default)]
pub(crate) struct StepArgs {
    /// The name shown in the topology; the function's name when absent.
    pub(crate) name: Option<LitStr>,
}

impl StepArgs {
    const KEYS: &'static [Key] = &[Key {
        name: "name",
        takes_value: true,
        example: "name = \"…\"",
    }];

    pub(crate) fn parse(attr: &str, tokens: TokenStream, errors: &mut Errors) -> Self {
        let mut out = StepArgs::default();
        for arg in parse(attr, Self::KEYS, tokens, errors) {
            if let Some(name) = lit_str(&arg, "name = \"add votes\"", errors) {
                if name.value().trim().is_empty() {
                    errors.spanned(&name, "a step's name cannot be empty: write `name = \"add votes\"`, or leave `name` out to use the function's name");
                } else {
                    out.name = Some(name);
                }
            }
        }
        out
    }
}

/// The `builder = path` and `version = N` of `#[state]`.
#[derive(Default)]
pub(crate) struct StateArgs {
    /// A `fn() -> Self` that builds the state of a new key; `Default` when absent.
    pub(crate) builder: Option<Expr>,
    /// The version of the serialized form; 0 when absent.
    pub(crate) version: Option<LitInt>,
    /// `upgrade = path`: a `fn(Previous) -> Self` from the previous version's state.
    pub(crate) upgrade: Option<Expr>,
}

impl StateArgs {
    const KEYS: &'static [Key] = &[
        Key {
            name: "builder",
            takes_value: true,
            example: "builder = path::to::fn",
        },
        Key {
            name: "version",
            takes_value: true,
            example: "version = 2",
        },
        Key {
            name: "upgrade",
            takes_value: true,
            example: "upgrade = path::to::fn",
        },
    ];

    pub(crate) fn parse(tokens: TokenStream, errors: &mut Errors) -> Self {
        let mut out = StateArgs::default();
        let mut upgrade_key = None;
        for arg in parse("#[state]", Self::KEYS, tokens, errors) {
            if arg.key == "version" {
                out.version = version(&arg, errors);
            } else if arg.key == "upgrade" {
                out.upgrade = function(&arg, "upgrade = from_v1", errors);
                upgrade_key = Some(arg.key);
            } else {
                out.builder = function(&arg, "builder = Total::new", errors);
            }
        }
        if let (Some(key), None) = (&upgrade_key, &out.version) {
            errors.spanned(
                key,
                "`upgrade` converts the previous version's state into this one, so this state needs a \
                 version above it: `#[state(version = 2, upgrade = from_v1)]`",
            );
        }
        out
    }
}

/// The value of `version = N`: a `u32` integer literal.
fn version(arg: &Arg, errors: &mut Errors) -> Option<LitInt> {
    let value = arg.value.as_ref()?;
    match value {
        Expr::Lit(syn::ExprLit {
            lit: Lit::Int(int), ..
        }) if int.base10_parse::<u32>().is_ok() => Some(int.clone()),
        _ => {
            errors.spanned(
                value,
                "`version` takes an integer literal (a u32): `version = 2`",
            );
            None
        }
    }
}

/// `header_length = N` as given.
pub(crate) struct HeaderLength {
    pub(crate) key: Ident,
    pub(crate) bytes: usize,
}

/// The framing arguments of `#[decoder]`, as given; `decoder.rs` checks how they combine.
#[derive(Default)]
pub(crate) struct DecoderArgs {
    /// `header_length = N`.
    pub(crate) header_length: Option<HeaderLength>,
    /// `payload_length = path`: the key and the function.
    pub(crate) payload_length: Option<(Ident, Expr)>,
    /// `lines`.
    pub(crate) lines: Option<Ident>,
}

impl DecoderArgs {
    const KEYS: &'static [Key] = &[
        Key {
            name: "header_length",
            takes_value: true,
            example: "header_length = 4",
        },
        Key {
            name: "payload_length",
            takes_value: true,
            example: "payload_length = path::to::fn",
        },
        Key {
            name: "lines",
            takes_value: false,
            example: "lines",
        },
    ];

    pub(crate) fn parse(tokens: TokenStream, errors: &mut Errors) -> Self {
        let mut out = DecoderArgs::default();
        for arg in parse("#[decoder]", Self::KEYS, tokens, errors) {
            match arg.key.to_string().as_str() {
                "header_length" => {
                    out.header_length = header_length(&arg, errors).map(|bytes| HeaderLength {
                        key: arg.key.clone(),
                        bytes,
                    });
                }
                "payload_length" => {
                    out.payload_length = function(&arg, "payload_length = length_of", errors)
                        .map(|f| (arg.key.clone(), f));
                }
                _ => out.lines = Some(arg.key),
            }
        }
        out
    }
}

/// The value of `header_length = N`: an integer literal from 1 to 8.
fn header_length(arg: &Arg, errors: &mut Errors) -> Option<usize> {
    let value = arg.value.as_ref()?;
    let Expr::Lit(syn::ExprLit {
        lit: Lit::Int(int), ..
    }) = value
    else {
        errors.spanned(
            value,
            "`header_length` takes an integer literal from 1 to 8: `header_length = 2`",
        );
        return None;
    };
    match bytes_in_header(int) {
        Some(bytes) => Some(bytes),
        None => {
            errors.spanned(
                int,
                format!(
                    "`header_length` is the number of bytes of the length header, from 1 to 8, not {}",
                    int.base10_digits()
                ),
            );
            None
        }
    }
}

fn bytes_in_header(int: &LitInt) -> Option<usize> {
    int.base10_parse::<usize>()
        .ok()
        .filter(|n| (1..=8).contains(n))
}

/// The `keys = expr` of `#[partition]`.
#[derive(Default)]
pub(crate) struct PartitionArgs {
    /// The keys whose state is built at start.
    pub(crate) keys: Option<Expr>,
}

impl PartitionArgs {
    const KEYS: &'static [Key] = &[Key {
        name: "keys",
        takes_value: true,
        example: "keys = …",
    }];

    pub(crate) fn parse(tokens: TokenStream, errors: &mut Errors) -> Self {
        let mut out = PartitionArgs::default();
        for arg in parse("#[partition]", Self::KEYS, tokens, errors) {
            out.keys = arg.value;
        }
        out
    }
}

/// Parses the arguments of a macro that takes none (`#[encoder]`, `#[wallaroo::main]`).
pub(crate) fn none(attr: &str, tokens: TokenStream, errors: &mut Errors) {
    let _ = parse(attr, &[], tokens, errors);
}
