//! Partitioned state: the [`State`] a state computation owns per key, the [`Partition`]
//! function that gives a message its key, and the [`Key`] bounds.

use std::borrow::Borrow;
use std::hash::{BuildHasher, Hash};

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::component::ComponentInfo;

/// A state object: one instance per partition key, owned by one worker thread.
///
/// Implemented by `#[state]`, which also derives serde's traits so that the state can be
/// saved with `postcard`.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a state",
    label = "annotate this type with `#[state]`",
    note = "a state is a struct annotated with `#[state]`; it is built with its `Default` or `#[state(builder = path)]`"
)]
pub trait State: Serialize + DeserializeOwned + Send + 'static {
    /// The version of the state's serialized form, `#[state(version = N)]`. Saved with the
    /// state; recovery refuses states saved by another version, since `postcard` is not
    /// self-describing and a changed struct would be misread.
    const VERSION: u32 = 0;
    /// The state's registry entry.
    fn info() -> &'static ComponentInfo;
    /// Builds the state of a key seen for the first time (the state builder).
    fn build() -> Self;
}

/// What a partition key must be: hashed to pick a worker, compared in the worker's table,
/// and serialized with the state it keys.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be a partition key",
    label = "a key must be `Hash + Eq + Clone + Send + Sync + Serialize + DeserializeOwned + 'static`",
    note = "integers, `String`, `char`, tuples of them, or a struct deriving `Hash, Eq, Clone, Serialize, Deserialize`"
)]
pub trait Key: Hash + Eq + Clone + Send + Sync + Serialize + DeserializeOwned + 'static {}

impl<K> Key for K where K: Hash + Eq + Clone + Send + Sync + Serialize + DeserializeOwned + 'static {}

/// A partition function: the key of a message, and the keys to create up front.
///
/// Implemented by `#[partition]` on `fn(&In) -> K`, with `#[partition(keys = expr)]` to
/// declare keys whose state is built at start. A partition function may also return a
/// borrow of the key, `fn(&In) -> &Q` (`&str` for a `String` key): then no key is built per
/// message, and the key's owned form (`Q::Owned`) is made only for a key seen the first time.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a partition function of `{In}`",
    label = "the state computation takes `{In}`, which this partition function does not",
    note = "write `#[partition] fn by_key(msg: &{In}) -> Key`"
)]
pub trait Partition<In>: Send + Sync + 'static {
    /// The partition key: what states are filed and saved under.
    type Key: Key;
    /// What travels with a message to the worker that owns its key, so that the worker
    /// finds the key's state: the key itself, or `()` when the worker can borrow the key
    /// from the message again.
    type Carried: Send + 'static;
    /// The function's registry entry.
    fn info(&self) -> &'static ComponentInfo;
    /// The key of `msg`, owned.
    fn key(&self, msg: &In) -> Self::Key;
    /// The hash of `msg`'s key by `hasher` (the hash of [`Partition::key`]'s result), and
    /// what travels with `msg`.
    fn route<H: BuildHasher>(&self, msg: &In, hasher: &H) -> (u64, Self::Carried);
    /// Whether `key` is the key of `msg`, which travelled with `carried`.
    fn is_key(&self, msg: &In, carried: &Self::Carried, key: &Self::Key) -> bool;
    /// Keys whose state is built when the application starts.
    fn initial_keys(&self) -> Vec<Self::Key> {
        Vec::new()
    }
}

/// [`Partition::route`] of a partition function that returns its key: the key travels.
// Why through `P`: the bounds come from the trait, so a key type that is not a `Key` gets
// the one error at the partition function's return type, not one more per use.
#[inline]
pub fn route_owned<P, In, H>(partition: &P, msg: &In, hasher: &H) -> (u64, P::Key)
where
    P: Partition<In>,
    H: BuildHasher,
{
    let key = partition.key(msg);
    (hasher.hash_one(&key), key)
}

/// [`Partition::is_key`] of a partition function that returns its key.
#[inline]
pub fn is_owned_key<P: Partition<In>, In>(carried: &P::Key, key: &P::Key) -> bool {
    carried == key
}

/// [`Partition::route`] of a partition function that returns a borrow of its key: nothing
/// travels but the hash.
#[inline]
pub fn route_borrowed<Q: Hash + ?Sized, H: BuildHasher>(key: &Q, hasher: &H) -> (u64, ()) {
    (hasher.hash_one(key), ())
}

/// [`Partition::is_key`] of a partition function that returns a borrow of its key.
#[inline]
pub fn is_borrowed_key<K: Borrow<Q>, Q: Eq + ?Sized>(key: &K, borrowed: &Q) -> bool {
    key.borrow() == borrowed
}

/// Builds a state with its `Default`; the builder `#[state]` uses unless told otherwise.
#[inline]
pub fn default_state<S: DefaultBuilder>() -> S {
    S::build_default()
}

/// A state type that can be built with `Default`.
#[diagnostic::on_unimplemented(
    message = "`{Self}` has no state builder",
    label = "derive or implement `Default` for `{Self}`, or name a builder with `#[state(builder = path)]`"
)]
pub trait DefaultBuilder {
    /// Builds the default state.
    fn build_default() -> Self;
}

impl<T: Default> DefaultBuilder for T {
    #[inline]
    fn build_default() -> Self {
        T::default()
    }
}

/// Collects the `keys = expr` of a `#[partition]` into the key list.
pub fn collect_keys<K, I>(keys: I) -> Vec<K>
where
    I: IntoIterator,
    I::Item: Into<K>,
{
    keys.into_iter().map(Into::into).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_convert_on_collection() {
        let keys: Vec<u64> = collect_keys([1u8, 2, 3]);
        assert_eq!(keys, vec![1, 2, 3]);
        let names: Vec<String> = collect_keys(["a", "b"]);
        assert_eq!(names, vec!["a".to_string(), "b".to_string()]);
    }

    #[test]
    fn a_borrowed_key_hashes_and_compares_as_its_owned_form() {
        // States are filed (and recovered) under the owned key's hash; messages are routed by
        // the borrowed key's: the two must agree, or a key would have two states.
        let hasher = crate::routing::key_hasher();
        for name in ["", "ant", "a longer name than sixteen bytes"] {
            assert_eq!(
                route_borrowed(name, &hasher).0,
                hasher.hash_one(name.to_string())
            );
            assert!(is_borrowed_key(&name.to_string(), name));
        }
        assert!(!is_borrowed_key(&"ant".to_string(), "bee"));
        let bytes: &[u8] = b"ab";
        assert_eq!(
            route_borrowed(bytes, &hasher).0,
            hasher.hash_one(bytes.to_vec())
        );
    }

    #[test]
    fn default_builder_uses_default() {
        let v: Vec<u8> = default_state();
        assert!(v.is_empty());
        assert_eq!(default_state::<u32>(), 0);
    }
}
