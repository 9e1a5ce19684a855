//! `#[encoder]` writing into the buffer or returning bytes.
#![deny(warnings, missing_docs, missing_debug_implementations)]

use wallaroo::prelude::*;
use wallaroo::Encoder;

/// Writes into the output buffer.
#[encoder]
pub fn encode(n: &u64, out: &mut Vec<u8>) {
    out.extend_from_slice(&n.to_be_bytes());
}

/// Returns a `String`.
#[encoder]
pub fn encode_text(n: &u64) -> String {
    format!("{n}\n")
}

/// Returns a static string.
#[encoder]
pub fn encode_flag(b: &bool) -> &'static str {
    if *b {
        "yes\n"
    } else {
        "no\n"
    }
}

/// Returns `impl AsRef<[u8]>`: called as `encode_any::call`, as no function pointer can
/// name that type.
#[encoder]
pub fn encode_any(s: &String) -> impl AsRef<[u8]> {
    s.clone().into_bytes()
}

/// The user's own inline hint replaces the one the macro gives encoders.
#[encoder]
#[inline(never)]
pub fn encode_out_of_line(n: &u8, out: &mut Vec<u8>) {
    out.push(*n);
}

fn main() {
    let mut out = Vec::new();
    encode.encode(&1, &mut out);
    encode_text.encode(&2, &mut out);
    encode_flag.encode(&true, &mut out);
    encode_any.encode(&"!".to_owned(), &mut out);
    encode_out_of_line.encode(&b'.', &mut out);
    assert_eq!(out, b"\0\0\0\0\0\0\0\x012\nyes\n!.");
    assert_eq!(encode_text(&3), "3\n");
    assert_eq!(encode_any::call(&"x".to_owned()).as_ref(), b"x");
}
