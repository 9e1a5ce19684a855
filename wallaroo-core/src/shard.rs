//! Shards of a state partition that move between processes: what a source that shares its
//! input with other processes (a Kafka consumer group) tells the workers of the state
//! partition it feeds.
//!
//! A shard is the set of keys of one partition of the state topic: [`shard_of`] their hash.
//! The source attaches a changelog to the workers, restores a shard's states from it before
//! it reads the shard's messages, and releases the shard (every message of it already
//! routed is applied and its changes are in the changelog) before it gives the partition
//! up.
//! The workers see only bytes: what the changelog is and where it lives is the source's.

// Only a Kafka source shares its input with other processes so far.
#![cfg_attr(not(feature = "kafka"), allow(dead_code))]

use std::sync::Arc;

/// The entry index of a [`ShardControl`] on a worker's channel.
pub(crate) const CONTROL: usize = usize::MAX - 1;

/// Where a worker writes each change of a key's state: one record per key and commit, the
/// key as postcard, the value as [`ChangelogValue`], to the changelog's partition of the
/// key's shard.
pub(crate) trait ChangelogWriter: Send {
    /// Hands one record to the changelog (it may be sent later).
    fn put(&mut self, shard: u32, key: &[u8], value: &[u8]) -> Result<(), String>;
    /// Returns once every record handed so far is durable, or says why it is not.
    fn flush(&mut self) -> Result<(), String>;
}

/// Records of a changelog partition, as `(key, value)`.
pub(crate) type ShardRecords = Vec<(Vec<u8>, Vec<u8>)>;

/// The records of a changelog partition, the last one of each key.
pub(crate) type ChangelogRecords = Arc<ShardRecords>;

/// What a worker is told about its shards, in order with the batches on its channel.
pub(crate) enum ShardControl {
    /// From now on, the changes of the keys of the shards this worker holds are written
    /// to this changelog too; keys are spread over `shards` shards, told apart `by`.
    Attach {
        changelog: Box<dyn ChangelogWriter>,
        shards: u32,
        by: ShardBy,
    },
    /// Shard `shard` is this process's now: its keys' states are these records' (the
    /// worker keeps the keys it owns); its changes are written under `epoch`.
    Restore {
        shard: u32,
        epoch: u64,
        records: ChangelogRecords,
        done: flume::Sender<Result<usize, String>>,
    },
    /// Shard `shard` goes to another process: every change before this is written to the
    /// changelog (unless `lost`: another process may have it already, and changes written
    /// now would only be ignored), and its keys are dropped; with `copy` (and not `lost`),
    /// their records as the changelog has them are sent there first, for a local copy.
    Release {
        shard: u32,
        lost: bool,
        copy: Option<flume::Sender<ShardRecords>>,
        done: flume::Sender<Result<usize, String>>,
    },
    /// Answers once every change before this is durable in the changelog.
    Sync {
        done: flume::Sender<Result<usize, String>>,
    },
}

/// How the keys of a shared state are told apart into shards.
pub(crate) enum ShardBy {
    /// By their hash ([`shard_of`]): a repartition hop sends each key's messages to the
    /// shard of its hash.
    Hash,
    /// By the input stream their messages come from (the shard of each stream's id): the
    /// input is co-partitioned with the state, every message of a key in one partition.
    Stream(std::collections::HashMap<u64, u32>),
}

/// The shard of a key's hash, out of `shards`: from the hash's low 32 bits, so that the
/// keys of one shard spread over the workers (which the high bits pick).
#[inline]
pub(crate) fn shard_of(hash: u64, shards: u32) -> u32 {
    (((hash & 0xffff_ffff) * u64::from(shards)) >> 32) as u32
}

/// The fixed part of a changelog record's value, before the state: the epoch of the
/// shard's owner that wrote it, and the state's layout and version, so that a process
/// running another layout refuses it instead of misreading.
///
/// An owner's epoch is the offset of the fence it wrote when it took the shard: a later
/// owner's is higher. A restore keeps, per key, the record of the highest epoch, so that
/// the late writes of a process that lost the shard without knowing (stalled past its
/// session) never override the new owner's.
#[derive(serde::Serialize, serde::Deserialize)]
pub(crate) struct ChangelogHeader<'a> {
    pub(crate) epoch: u64,
    pub(crate) version: u32,
    #[serde(borrow)]
    pub(crate) layout: &'a str,
}

/// The name of a state's internal topic of `kind` (`changelog`, `repartition`) in `group`:
/// `GROUP-STATE-KIND`, with the characters a topic name cannot hold (a space, …) as `_`.
pub(crate) fn internal_topic(group: &str, state: &str, kind: &str) -> String {
    let clean = |s: &str| -> String {
        s.chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                    c
                } else {
                    '_'
                }
            })
            .collect()
    };
    format!("{}-{}-{kind}", clean(group), clean(state))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The shards, out of 8, of the keys of [`a_keys_shard_is_the_same_in_every_build`].
    const PINNED: [u32; 6] = [1, 0, 6, 2, 7, 1];

    #[test]
    fn shards_spread_keys_independently_of_workers() {
        let hasher = crate::routing::key_hasher();
        let mut seen = [[0usize; 2]; 8];
        for key in 0u32..8000 {
            let hash = crate::routing::key_hash(&hasher, &key);
            let shard = shard_of(hash, 8);
            assert!(shard < 8);
            seen[shard as usize][crate::routing::worker_of(hash, 2)] += 1;
        }
        // Every shard has keys on both workers, about as many on each.
        for per_worker in seen {
            for count in per_worker {
                assert!((350..650).contains(&count), "{seen:?}");
            }
        }
    }

    /// Processes of one group must agree on every key's shard, across builds and upgrades:
    /// a hasher whose output changed (a new foldhash) would send keys to other shards than
    /// their states. These values are pinned so that such a change fails here first.
    #[test]
    fn a_keys_shard_is_the_same_in_every_build() {
        let hasher = crate::routing::key_hasher();
        let shards: Vec<u32> = ["a", "b", "votes", ""]
            .iter()
            .map(|k| shard_of(crate::routing::key_hash(&hasher, &k.to_string()), 8))
            .chain(
                [98u8, 33]
                    .iter()
                    .map(|k| shard_of(crate::routing::key_hash(&hasher, k), 8)),
            )
            .collect();
        assert_eq!(shards, PINNED);
    }

    #[test]
    fn changelog_topics_are_valid_topic_names() {
        assert_eq!(
            internal_topic("alphabet", "running vote totals", "changelog"),
            "alphabet-running_vote_totals-changelog"
        );
        assert_eq!(
            internal_topic("a/b", "é", "repartition"),
            "a_b-_-repartition"
        );
    }
}
