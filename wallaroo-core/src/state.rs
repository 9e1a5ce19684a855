//! Partitioned state: the [`State`] a state computation owns per key, the [`Partition`]
//! function that gives a message its key, and the [`Key`] bounds.

use std::hash::Hash;

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
/// declare keys whose state is built at start.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a partition function of `{In}`",
    label = "the state computation takes `{In}`, which this partition function does not",
    note = "write `#[partition] fn by_key(msg: &{In}) -> Key`"
)]
pub trait Partition<In>: Send + Sync + 'static {
    /// The partition key.
    type Key: Key;
    /// The function's registry entry.
    fn info(&self) -> &'static ComponentInfo;
    /// The key of `msg`.
    fn key(&self, msg: &In) -> Self::Key;
    /// Keys whose state is built when the application starts.
    fn initial_keys(&self) -> Vec<Self::Key> {
        Vec::new()
    }
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
    fn default_builder_uses_default() {
        let v: Vec<u8> = default_state();
        assert!(v.is_empty());
        assert_eq!(default_state::<u32>(), 0);
    }
}
