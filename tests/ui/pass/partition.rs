//! `#[partition]` with and without initial keys.
#![deny(warnings, missing_docs, missing_debug_implementations)]

use wallaroo::prelude::*;
use wallaroo::Partition;

/// A key per letter, all created at start.
#[partition(keys = b'a'..=b'z')]
pub fn by_letter(word: &String) -> u8 {
    word.as_bytes().first().copied().unwrap_or(b'a')
}

/// String keys from string literals.
#[partition(keys = ["eu", "us"])]
pub fn by_region(order: &(String, u64)) -> String {
    order.0.clone()
}

/// Keys created as messages arrive.
#[partition]
pub fn by_user(event: &(u32, String)) -> u32 {
    event.0
}

fn main() {
    assert_eq!(by_letter(&"wallaroo".to_owned()), b'w');
    assert_eq!(by_letter.initial_keys().len(), 26);
    assert_eq!(by_region.initial_keys(), ["eu", "us"]);
    assert_eq!(by_user.key(&(7, String::new())), 7);
    assert!(by_user.initial_keys().is_empty());
}
