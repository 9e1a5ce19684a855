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

/// A key borrowed from the message: the state's key is the owned `String`.
#[partition(keys = ["eu"])]
pub fn by_name(event: &(u32, String)) -> &str {
    &event.1
}

fn main() {
    assert_eq!(by_letter(&"wallaroo".to_owned()), b'w');
    assert_eq!(by_letter.initial_keys().len(), 26);
    assert_eq!(by_region.initial_keys(), ["eu", "us"]);
    assert_eq!(by_user.key(&(7, String::new())), 7);
    assert!(by_user.initial_keys().is_empty());

    let event = (7, "ann".to_string());
    let key: String = by_name.key(&event);
    assert_eq!(key, "ann");
    assert_eq!(by_name.initial_keys(), ["eu"]);
    // Nothing but the hash travels, and it is the hash of the owned key, by which states
    // are filed and recovered.
    let hasher = std::hash::BuildHasherDefault::<std::collections::hash_map::DefaultHasher>::default();
    let (hash, ()) = by_name.route(&event, &hasher);
    assert_eq!(hash, std::hash::BuildHasher::hash_one(&hasher, &key));
    assert!(by_name.is_key(&event, &(), &"ann".to_string()));
    assert!(!by_name.is_key(&event, &(), &"bob".to_string()));
    // A returned key travels with its message.
    let (hash, carried) = by_user.route(&event, &hasher);
    assert_eq!((hash, carried), (std::hash::BuildHasher::hash_one(&hasher, 7u32), 7));
    assert!(by_user.is_key(&event, &7, &7) && !by_user.is_key(&event, &7, &8));
}
