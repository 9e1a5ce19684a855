//! Worker threads of a state partition: each owns the states of the keys routed to it and
//! runs the state computations on them, in the order the messages arrived.

use std::any::{Any, TypeId};
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

use hashbrown::HashTable;

use crate::context::{panic_message, Control, Ctx, RunError};
use crate::gather::Gather;
use crate::link::{set_output_key, BoxLink};
use crate::poison::{quiet_panics_here, take_panic_location, ErrorPolicy, Poisoned, Within};
use crate::resilience::log::WorkerLog;
use crate::resilience::progress::StreamProgress;
use crate::resilience::record::{FileKind, Origin};
use crate::resilience::recovery::{self, encode_snapshot, Progress};
use crate::resilience::stats::{LogStats, RecoveryStats};
use crate::resilience::Resilience;
use crate::routing::{
    key_hash, key_hasher, key_table_hash, short_hash, table_hash, worker_of, Batch, Keyed, Spares,
    WorkerMsg, MARKER,
};
use crate::shard::{
    shard_of, ChangelogHeader, ChangelogRecords, ChangelogWriter, ShardBy, ShardControl,
    ShardRecords, CONTROL,
};
use crate::state::{Key, Partition, State};
use crate::step::StateComputation;

/// Batches a worker takes from its channel before it flushes what it produced, so that a
/// busy worker still sends its output on regularly.
const DRAIN_LIMIT: usize = 64;

/// Outputs of state computations gathered before they are sent on together.
// Why gathered: the state updates of many messages run back to back, so with many keys
// their cache misses overlap instead of waiting between two encodings; why only 256:
// the gathered outputs stay in the L1 cache.
const OUTPUTS_AT_ONCE: usize = 256;

/// The entry index of a [`StateQuery`] on a worker's channel.
pub(crate) const QUERY: usize = usize::MAX - 2;

/// What a worker answers a [`StateQuery`] with: the key's state as JSON, `None` for a key
/// without state, or why the state could not be written as JSON.
pub(crate) type QueryAnswer = Result<Option<serde_json::Value>, String>;

/// A question for the worker that owns a key: its state, asked beside the batches on the
/// worker's own channel, so that the states take no lock.
pub(crate) struct StateQuery {
    /// The key, of the partition's key type.
    pub(crate) key: Box<dyn Any + Send>,
    /// Where the answer goes.
    pub(crate) reply: flume::Sender<QueryAnswer>,
}

/// Counters a worker publishes once per round of batches, for the metrics.
#[derive(Debug, Default)]
pub(crate) struct WorkerStats {
    /// Keys with a state on this worker.
    pub(crate) keys: AtomicU64,
    /// Messages of the batches this worker took (before any is skipped as a replay).
    pub(crate) messages: AtomicU64,
    /// Nanoseconds spent on rounds of batches (running, committing, handing on; waiting
    /// on a full sink channel included), not waiting for a batch.
    pub(crate) busy_nanos: AtomicU64,
    /// Nanoseconds of those rounds spent waiting for room in a full sink channel, or in a
    /// full channel to a worker of a later state partition (backpressure).
    pub(crate) blocked_nanos: AtomicU64,
    /// What the worker's state log counts (zeros without a resilience directory).
    pub(crate) log: Arc<LogStats>,
}

/// Turns a key given as JSON into the partition's key type, and names the worker that owns
/// it: what a [`StateQuery`] is made of.
pub(crate) trait KeyParser: Send + Sync {
    /// The key of `json` and its worker out of `workers`, or why `json` is not such a key.
    fn parse(&self, json: &str, workers: usize) -> Result<(usize, Box<dyn Any + Send>), String>;
}

/// The [`KeyParser`] of keys of type `K`.
struct JsonKeys<K>(std::marker::PhantomData<fn() -> K>);

impl<K: Key> KeyParser for JsonKeys<K> {
    fn parse(&self, json: &str, workers: usize) -> Result<(usize, Box<dyn Any + Send>), String> {
        let key: K = serde_json::from_str(json)
            .map_err(|e| format!("the key is not a JSON {}: {e}", std::any::type_name::<K>()))?;
        let worker = worker_of(key_hash(&key_hasher(), &key), workers.max(1));
        Ok((worker, Box::new(key)))
    }
}

/// One key's state, and the replayed messages it has already applied.
pub(crate) struct Slot<K, S> {
    key: K,
    state: S,
    progress: Progress,
}

/// The states of the keys one worker owns, and the log of their changes.
pub(crate) struct StateStore<K, S> {
    table: HashTable<Slot<K, S>>,
    hasher: foldhash::fast::FixedState,
    log: Option<WorkerLog>,
    /// Per replayable stream, how far this worker has applied it (from markers).
    streams: HashMap<u64, u64>,
    /// Markers logged since the last commit, published once the commit is written.
    pending: Vec<(u64, u64)>,
    /// Where changes go beside the log, when the state's shards move between processes.
    changelog: Option<Box<dyn ChangelogWriter>>,
    /// Whether changes are kept: there is a log or a changelog.
    keeps_changes: bool,
    /// Keys changed since the last commit, and the shards of keys, for the changelog.
    dirty: Dirty<K>,
    /// How many shards keys are spread over, once a changelog is attached.
    shard_count: u32,
    /// The shards this process holds, and the epoch each is written under.
    shards: HashMap<u32, u64>,
    /// This worker's index, and how many workers the partition has: a restored shard's
    /// keys are spread over them as routing does.
    worker: usize,
    workers: usize,
    /// The state partition's name, for errors.
    name: String,
    /// The hash [`StateStore::apply`] was last given: after a panic, it finds the key of
    /// the message that failed.
    applying: u64,
    /// Messages of the batches taken, published to the worker's stats once per round.
    pub(crate) taken: u64,
}

impl<K: Key, S: State> StateStore<K, S> {
    fn new() -> Self {
        StateStore {
            table: HashTable::new(),
            hasher: key_hasher(),
            log: None,
            streams: HashMap::new(),
            pending: Vec::new(),
            changelog: None,
            keeps_changes: false,
            dirty: Dirty::default(),
            shard_count: 0,
            shards: HashMap::new(),
            worker: 0,
            workers: 1,
            name: String::new(),
            applying: 0,
            taken: 0,
        }
    }

    /// The slot of `key` (filed under `hash`, its [`table_hash`]), built on first use.
    fn slot(&mut self, hash: u64, key: K) -> &mut Slot<K, S> {
        slot_in(
            &mut self.table,
            &self.hasher,
            hash,
            |k| *k == key,
            || key.clone(),
        )
    }

    /// The state of `key` (filed under `hash`, its [`table_hash`]), built on first use.
    #[cfg(test)]
    pub(crate) fn get_or_build(&mut self, hash: u64, key: K) -> &mut S {
        &mut self.slot(hash, key).state
    }

    /// Runs `compute` on `msg` and the state of its key (filed under `hash`, its
    /// [`table_hash`]; `is_key` tells whether a key is `msg`'s, `new_key` makes it for a key
    /// seen the first time), unless the message (of `origin`) is a replay that the key has
    /// applied already; logs the state when `compute` says it changed.
    #[inline]
    pub(crate) fn apply<M>(
        &mut self,
        hash: u64,
        msg: M,
        is_key: impl Fn(&M, &K) -> bool,
        new_key: impl FnOnce(&M) -> K,
        origin: Origin,
        compute: impl FnOnce(M, &mut S) -> bool,
    ) {
        self.apply_keyed(hash, msg, is_key, new_key, origin, |msg, _, state| {
            compute(msg, state)
        });
    }

    /// [`StateStore::apply`] for a computation that is given the key too.
    #[inline(always)]
    pub(crate) fn apply_keyed<M>(
        &mut self,
        hash: u64,
        msg: M,
        is_key: impl Fn(&M, &K) -> bool,
        new_key: impl FnOnce(&M) -> K,
        origin: Origin,
        compute: impl FnOnce(M, &K, &mut S) -> bool,
    ) {
        // A plain store, read only after a panic: the one cost of naming the key then.
        self.applying = hash;
        let slot = slot_in(
            &mut self.table,
            &self.hasher,
            hash,
            |k| is_key(&msg, k),
            || new_key(&msg),
        );
        if origin.is_some() {
            if slot.progress.seen(origin) {
                return;
            }
            slot.progress.record(origin);
        }
        // Why one flag for both: a changed state is checked for once, as before there was
        // a changelog (2.1 instructions a message fewer, callgrind, Alphabet, 1 M frames).
        if compute(msg, &slot.key, &mut slot.state) && self.keeps_changes {
            if let Some(log) = &mut self.log {
                log.put(&slot.key, &slot.state, origin);
            }
            if self.changelog.is_some() {
                self.dirty.mark(&slot.key, origin, &self.name);
            }
        }
    }

    /// Runs `change` on the state of `key`, if it has one, without a message (a window that
    /// time closes); logs the state when `change` says it changed.
    pub(crate) fn update(&mut self, key: &K, change: impl FnOnce(&K, &mut S) -> bool) {
        let hash = key_table_hash(&self.hasher, key);
        let Some(slot) = self.table.find_mut(hash, |slot| slot.key == *key) else {
            return;
        };
        if change(&slot.key, &mut slot.state) && self.keeps_changes {
            if let Some(log) = &mut self.log {
                log.put(&slot.key, &slot.state, Origin::NONE);
            }
            if self.changelog.is_some() {
                self.dirty.mark(&slot.key, Origin::NONE, &self.name);
            }
        }
    }

    /// Calls `each` with every key and its state.
    pub(crate) fn each(&self, mut each: impl FnMut(&K, &S)) {
        for slot in &self.table {
            each(&slot.key, &slot.state);
        }
    }

    /// The slot of the message whose state computation panicked: the key [`StateStore::apply`]
    /// was last given, and whose progress holds `origin` when there is one.
    fn poisoned_slot(&self, origin: Origin) -> Option<&Slot<K, S>> {
        let (hash, hasher) = (self.applying, &self.hasher);
        // The table compares 7 bits of the hash before it asks: the whole is checked here.
        self.table.find(hash, |slot| {
            key_table_hash(hasher, &slot.key) == hash
                && (!origin.is_some() || slot.progress.seen(origin))
        })
    }

    /// The key of the message whose state computation panicked, as JSON.
    #[cold]
    fn poisoned_key(&self, origin: Origin) -> Option<serde_json::Value> {
        serde_json::to_value(&self.poisoned_slot(origin)?.key).ok()
    }

    /// Makes the skipped message of `origin` count as applied: its key's state is logged as
    /// it is now (what the computation changed before it panicked included, so that a
    /// recovered state is the one later messages saw), with the message's origin, so that
    /// a replay does not apply it again.
    #[cold]
    fn skipped(&mut self, origin: Origin) {
        if !self.keeps_changes {
            return;
        }
        let Some(key) = self.poisoned_slot(origin).map(|slot| slot.key.clone()) else {
            return;
        };
        let hash = self.applying;
        let Some(slot) = self.table.find(hash, |slot| slot.key == key) else {
            return;
        };
        if let Some(log) = &mut self.log {
            log.put(&slot.key, &slot.state, origin);
        }
        if self.changelog.is_some() {
            self.dirty.mark(&slot.key, origin, &self.name);
        }
    }

    /// How far `stream` had come in the state recovered at start (or since).
    pub(crate) fn marked(&self, stream: u64) -> Option<u64> {
        self.streams.get(&stream).copied()
    }

    /// Notes that every message of `stream` up to `seq` routed to this worker is applied.
    pub(crate) fn marker(&mut self, stream: u64, seq: u64) {
        let at = self.streams.entry(stream).or_insert(0);
        if seq > *at {
            *at = seq;
            if let Some(log) = &mut self.log {
                log.marker::<K, S>(stream, seq);
            }
            self.pending.push((stream, seq));
        }
    }

    /// Writes the logged changes of the messages processed since the last commit, and
    /// compacts the log when it has grown. Returns the markers that the commit made
    /// durable (as far as the sync policy goes).
    fn commit(
        &mut self,
    ) -> Result<std::vec::Drain<'_, (u64, u64)>, crate::resilience::ResilienceError> {
        self.write_changelog()
            .map_err(|reason| crate::resilience::ResilienceError::Changelog {
                state: self.name.clone(),
                reason,
            })?;
        let Some(log) = &mut self.log else {
            return Ok(self.pending.drain(..));
        };
        log.commit()?;
        if log.wants_snapshot() {
            let header = log.snapshot_header();
            let bytes = encode_snapshot::<K, S>(
                &header,
                self.table
                    .iter()
                    .map(|slot| (&slot.key, &slot.state, &slot.progress)),
                self.streams.iter().map(|(s, q)| (*s, *q)),
            );
            log.rotate(bytes)?;
        }
        Ok(self.pending.drain(..))
    }

    /// Answers `query` with the state of its key.
    #[cold]
    fn answer(&self, query: StateQuery) {
        let answer = match query.key.downcast::<K>() {
            Ok(key) => self
                .table
                .find(key_table_hash(&self.hasher, &*key), |slot| slot.key == *key)
                .map(|slot| serde_json::to_value(&slot.state).map_err(|e| e.to_string()))
                .transpose(),
            Err(_) => Err("the key is not of the state partition's key type".into()),
        };
        // The asker may have given up waiting.
        let _ = query.reply.send(answer);
    }

    /// How many keys have a state here.
    pub(crate) fn len(&self) -> usize {
        self.table.len()
    }

    /// Hands the state of each key changed since the last commit to the changelog of its
    /// shard. The records become durable by [`StateStore::sync_changelog`], which the
    /// source asks for before it commits offsets or gives a shard up: the input positions
    /// committed never run ahead of the changelog. Outputs may (a record read again after
    /// a crash computes the same output again: a duplicate, never a contradiction).
    fn write_changelog(&mut self) -> Result<(), String> {
        let Some(changelog) = &mut self.changelog else {
            return Ok(());
        };
        if self.dirty.keys.is_empty() {
            return Ok(());
        }
        for key in std::mem::take(&mut self.dirty.keys) {
            let hash = key_hash(&self.hasher, &key);
            let Some(shard) = self.dirty.shard(&key, hash, self.shard_count) else {
                continue;
            };
            let Some(&epoch) = self.shards.get(&shard) else {
                // A key of a shard held elsewhere (declared up front, or fed by another
                // source): its state is not this process's to write.
                continue;
            };
            let Some(slot) = self
                .table
                .find(table_hash(short_hash(hash)), |slot| slot.key == key)
            else {
                continue;
            };
            let (key_bytes, value) = changelog_record(slot, epoch)?;
            changelog.put(shard, &key_bytes, &value)?;
        }
        Ok(())
    }

    /// The changelog records of every key of shard `shard`, as written now.
    fn shard_records(&self, shard: u32) -> Result<ShardRecords, String> {
        let Some(&epoch) = self.shards.get(&shard) else {
            return Ok(Vec::new());
        };
        let (hasher, count) = (&self.hasher, self.shard_count);
        self.table
            .iter()
            .filter(|slot| {
                self.dirty
                    .shard(&slot.key, key_hash(hasher, &slot.key), count)
                    == Some(shard)
            })
            .map(|slot| changelog_record(slot, epoch))
            .collect()
    }

    /// Returns once every change handed to the changelog is durable.
    fn sync_changelog(&mut self) -> Result<(), String> {
        match &mut self.changelog {
            Some(changelog) => changelog.flush(),
            None => Ok(()),
        }
    }

    /// Drops the keys of shard `shard`; returns how many there were.
    fn drop_shard(&mut self, shard: u32) -> usize {
        let before = self.table.len();
        let (hasher, count, dirty) = (&self.hasher, self.shard_count, &self.dirty);
        self.table.retain(|slot| {
            dirty.shard(&slot.key, key_hash(hasher, &slot.key), count) != Some(shard)
        });
        self.dirty.forget_shard(shard);
        self.shards.remove(&shard);
        before - self.table.len()
    }

    /// Makes shard `shard` this process's, under `epoch`, with the states of `records`
    /// whose keys this worker owns; returns how many.
    fn restore(
        &mut self,
        shard: u32,
        epoch: u64,
        records: &ChangelogRecords,
    ) -> Result<usize, String> {
        self.drop_shard(shard);
        let mut restored = 0;
        for (key_bytes, value) in records.iter() {
            let key: K = postcard::from_bytes(key_bytes)
                .map_err(|e| format!("a key of partition {shard} does not read back: {e}"))?;
            let hash = key_hash(&self.hasher, &key);
            if worker_of(hash, self.workers) != self.worker {
                continue;
            }
            let (header, rest): (ChangelogHeader, _) = postcard::take_from_bytes(value)
                .map_err(|e| format!("a record of partition {shard} does not read back: {e}"))?;
            if header.version != S::VERSION || header.layout != S::LAYOUT {
                return Err(format!(
                    "partition {shard} holds states of version {} {}, this build's are version {} {}: \
                     the same group must run one build of a state",
                    header.version,
                    header.layout,
                    S::VERSION,
                    S::LAYOUT
                ));
            }
            let (state, progress): (S, Progress) = postcard::from_bytes(rest)
                .map_err(|e| format!("a state of partition {shard} does not read back: {e}"))?;
            self.dirty.place(&key, shard);
            let slot = self.slot(table_hash(short_hash(hash)), key);
            slot.state = state;
            slot.progress = progress;
            restored += 1;
        }
        self.shards.insert(shard, epoch);
        Ok(restored)
    }

    /// Carries out what the source that shares the input with other processes says.
    fn control(&mut self, control: ShardControl) {
        match control {
            ShardControl::Attach {
                changelog,
                shards,
                by,
            } => {
                self.changelog = Some(changelog);
                self.keeps_changes = true;
                self.shard_count = shards;
                self.dirty.by_stream = match by {
                    ShardBy::Hash => None,
                    ShardBy::Stream(streams) => Some(streams),
                };
            }
            ShardControl::Restore {
                shard,
                epoch,
                records,
                done,
            } => {
                let _ = done.send(self.restore(shard, epoch, &records));
            }
            ShardControl::Release {
                shard,
                lost,
                copy,
                done,
            } => {
                let released = if lost {
                    Ok(self.drop_shard(shard))
                } else {
                    self.sync_changelog()
                        .and_then(|()| match copy {
                            Some(copy) => self
                                .shard_records(shard)
                                .map(|records| drop(copy.send(records))),
                            None => Ok(()),
                        })
                        .map(|()| self.drop_shard(shard))
                };
                let _ = done.send(released);
            }
            ShardControl::Sync { done } => {
                let _ = done.send(self.sync_changelog().map(|()| 0));
            }
        }
    }
}

/// The slot of the key (filed under `hash`, its [`table_hash`]) for which `is_key` holds, in
/// `table`, with a state built on first use for the key that `new_key` makes.
// Why a test and a maker rather than a key: a partition function that borrows its key from
// the message makes no key per message, only one per key seen the first time.
#[inline]
fn slot_in<'t, K: Key, S: State>(
    table: &'t mut HashTable<Slot<K, S>>,
    hasher: &foldhash::fast::FixedState,
    hash: u64,
    is_key: impl Fn(&K) -> bool,
    new_key: impl FnOnce() -> K,
) -> &'t mut Slot<K, S> {
    match table.find_entry(hash, |slot| is_key(&slot.key)) {
        Ok(slot) => slot.into_mut(),
        Err(absent) => new_slot(absent.into_table(), hasher, hash, new_key()),
    }
}

/// The changelog record of `slot`'s key and state, written under `epoch`: the key as
/// postcard, the value as [`ChangelogHeader`] then the state and its positions.
fn changelog_record<K: Key, S: State>(
    slot: &Slot<K, S>,
    epoch: u64,
) -> Result<(Vec<u8>, Vec<u8>), String> {
    let header = ChangelogHeader {
        epoch,
        version: S::VERSION,
        layout: S::LAYOUT,
    };
    let key = postcard::to_allocvec(&slot.key).map_err(|e| e.to_string())?;
    let value = postcard::to_allocvec(&(&header, &slot.state, &slot.progress))
        .map_err(|e| e.to_string())?;
    Ok((key, value))
}

/// The keys changed since the last commit, for the changelog, and the shard of each key
/// when shards are told apart by input stream ([`ShardBy::Stream`]).
struct Dirty<K> {
    keys: HashSet<K>,
    /// The shard of each input stream, for a co-partitioned input.
    by_stream: Option<HashMap<u64, u32>>,
    /// The shard of each key changed here or restored, for a co-partitioned input.
    placed: HashMap<K, u32>,
    /// Whether a key seen in two shards was reported.
    reported: bool,
}

impl<K> Default for Dirty<K> {
    fn default() -> Self {
        Dirty {
            keys: HashSet::new(),
            by_stream: None,
            placed: HashMap::new(),
            reported: false,
        }
    }
}

impl<K: Key> Dirty<K> {
    /// Notes that `key` changed by a message of `origin` since the last commit: out of line,
    /// so that the loop of a state without a changelog stays as small as before there was
    /// one.
    #[inline(never)]
    fn mark(&mut self, key: &K, origin: Origin, state: &str) {
        if !self.keys.contains(key) {
            self.keys.insert(key.clone());
        }
        let Some(by_stream) = &self.by_stream else {
            return;
        };
        let Some(&shard) = by_stream.get(&origin.stream) else {
            return;
        };
        // A key's shard is noted once, not at every change: a key is cloned once.
        let before = match self.placed.get_mut(key) {
            Some(placed) if *placed == shard => return,
            Some(placed) => std::mem::replace(placed, shard),
            None => {
                self.placed.insert(key.clone(), shard);
                return;
            }
        };
        if !self.reported {
            self.reported = true;
            tracing::error!(
                "state \"{state}\": a key came from input partitions {before} and {shard}: \
                 the input is declared co-partitioned with the state, but its record keys \
                 are not the state's keys; the key's state now follows partition {shard} \
                 (drop `.co_partitioned()` to send the input through a repartition topic)"
            );
        }
    }

    /// Makes `key`, restored from the changelog of `shard`, one of that shard's.
    fn place(&mut self, key: &K, shard: u32) {
        if self.by_stream.is_some() {
            self.placed.insert(key.clone(), shard);
        }
    }

    /// The shard of `key` (of hash `hash`) out of `shards`: none for a key of a
    /// co-partitioned input that was neither changed here nor restored.
    fn shard(&self, key: &K, hash: u64, shards: u32) -> Option<u32> {
        match &self.by_stream {
            None => Some(shard_of(hash, shards)),
            Some(_) => self.placed.get(key).copied(),
        }
    }

    /// Forgets the keys of `shard`.
    fn forget_shard(&mut self, shard: u32) {
        if self.by_stream.is_some() {
            self.placed.retain(|_, s| *s != shard);
        }
    }
}

/// Builds the state of a key seen for the first time: out of line, so that the lookup of
/// a known key (every message but the first of each key) stays small enough to inline.
#[cold]
#[inline(never)]
fn new_slot<'t, K: Key, S: State>(
    table: &'t mut HashTable<Slot<K, S>>,
    hasher: &foldhash::fast::FixedState,
    hash: u64,
    key: K,
) -> &'t mut Slot<K, S> {
    let slot = Slot {
        key,
        state: S::build(),
        progress: Progress::default(),
    };
    table
        .insert_unique(hash, slot, |slot| key_table_hash(hasher, &slot.key))
        .into_mut()
}

/// Runs the batches of one pipeline's entry into the partition.
pub(crate) trait EntryRunner<K, S>: Send {
    /// Runs a batch (a `Batch<K, In>` of this entry's input type). A message whose state
    /// computation panics goes to `panics`: skipped, the rest of the batch goes on;
    /// otherwise the batch ends there (its outputs so far passed on) and `false` says that
    /// nothing more is to be applied.
    fn run(
        &mut self,
        batch: Box<dyn Any + Send>,
        store: &mut StateStore<K, S>,
        panics: &mut Panics<'_>,
    ) -> bool;
    /// Sends on what the steps after the state computation buffered.
    fn flush(&mut self);
    /// The state computation's name.
    fn step(&self) -> &'static str;
    /// When the entry wants to run without a message (a wall-clock timer), if it does.
    fn deadline(&self) -> Option<std::time::Instant> {
        None
    }
    /// Runs what is due on the wall clock; `false` as [`EntryRunner::run`] says.
    fn on_time(&mut self, _store: &mut StateStore<K, S>, _panics: &mut Panics<'_>) -> bool {
        true
    }
}

/// What a worker does with a step's panic: asks the error policy, and keeps the error that
/// stops the application.
pub(crate) struct Panics<'p> {
    policy: &'p ErrorPolicy,
    state: &'p str,
    worker: usize,
    /// The error that stops the application, and whether what was applied before the
    /// message is committed and sent on: so after a state computation's panic, not after a
    /// panic in the chain its outputs went down (some of them may be lost).
    stop: Option<(RunError, bool)>,
}

impl Panics<'_> {
    /// After a panic in the chain of state computation `step` (`after`: past the state
    /// computation, while its outputs were passed on) on the message of `origin`: whether
    /// to skip the message and go on.
    #[cold]
    #[inline(never)]
    pub(crate) fn on_panic<K: Key, S: State>(
        &mut self,
        panic: Box<dyn Any + Send>,
        step: &'static str,
        after: bool,
        origin: Origin,
        store: &mut StateStore<K, S>,
    ) -> bool {
        let poisoned = Poisoned {
            step,
            stateless: false,
            after,
            key: store.poisoned_key(origin),
            origin,
            panic: panic_message(&*panic),
            location: take_panic_location(),
        };
        let within = Within::State(self.state, self.worker);
        match self.policy.on_panic(within, &poisoned) {
            Ok(()) => {
                store.skipped(origin);
                true
            }
            Err(stop) => {
                let error = RunError::from_stop(stop, within);
                self.stop.get_or_insert((error, !after));
                false
            }
        }
    }
}

/// Builds an entry's runner for one worker thread.
pub(crate) type EntryFactory<K, S> = Arc<dyn Fn(&Ctx) -> Box<dyn EntryRunner<K, S>> + Send + Sync>;

/// A state computation and the chain after it, on one worker.
// Why the alignment: links are built on one thread and used on another; a link sharing a
// cache line with other hot data slows every message down (false sharing).
#[repr(align(128))]
pub(crate) struct Entry<C: StateComputation<In>, P: Partition<In>, In> {
    step: Arc<C>,
    /// The partition function, to find each message's key in the worker's table.
    partition: Arc<P>,
    next: BoxLink<C::Out>,
    /// Outputs gathered, up to [`OUTPUTS_AT_ONCE`], to be passed on together.
    out: Vec<C::Out>,
    /// Where emptied batches go back to the routers.
    spares: Spares<P::Carried, In>,
    /// Whether a sink down the chain keys its records by the state key: then each
    /// message's outputs are passed on with its key ([`set_output_key`]).
    keyed: bool,
}

impl<C: StateComputation<In>, P: Partition<In>, In> Entry<C, P, In> {
    pub(crate) fn new(
        step: Arc<C>,
        partition: Arc<P>,
        next: BoxLink<C::Out>,
        spares: Spares<P::Carried, In>,
    ) -> Self {
        Entry {
            step,
            partition,
            keyed: next.wants_keys(),
            next,
            out: Vec::new(),
            spares,
        }
    }
}

impl<C, P, In> EntryRunner<P::Key, C::State> for Entry<C, P, In>
where
    C: StateComputation<In>,
    P: Partition<In>,
    In: Send + 'static,
{
    fn run(
        &mut self,
        batch: Box<dyn Any + Send>,
        store: &mut StateStore<P::Key, C::State>,
        panics: &mut Panics<'_>,
    ) -> bool {
        let mut batch = match batch.downcast::<Batch<P::Carried, In>>() {
            Ok(batch) => batch,
            // The router and the entry are built from the same typed builder call.
            Err(_) => unreachable!("a batch reached a partition entry of another type"),
        };
        store.taken += batch.msgs.len() as u64;
        // What this batch's outputs carry to the sinks' latency histograms.
        crate::latency::set_read_at(batch.read_at);
        if self.keyed {
            return self.run_keyed(batch, store, panics);
        }
        let (step, out, down) = (&self.step, &mut self.out, &mut self.next);
        let partition = &*self.partition;
        let Batch { msgs, origins, .. } = &mut *batch;
        let count = msgs.len();
        // Why taken outside the catch: after a panic, what is left says which message
        // failed, and holds the rest of the batch for a skip to go on with. A panic is
        // caught once per batch, not per message: nothing on each message's way but the
        // drain's position kept in memory.
        let mut todo = msgs.drain(..);
        let mut at = origins.iter();
        // Whether the outputs are being passed on: a panic then is a later step's.
        let mut passing = false;
        let go_on = loop {
            let ran = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                // Why two loops with the same body: zipping the messages with a repeated
                // `Origin::NONE` when no origins ride along costs 9 instructions a message
                // more, and the body as a closure that both loops call is not inlined: 37
                // more (callgrind, 1 M frames).
                // Why a gatherer: the outputs' count stays in a register instead of making
                // a store and a load per message; Entry::run 8.1 -> 6.5 ns a message
                // (medians of 3 alternating `perf` runs of the e2e bench). Made anew after
                // a panic: its drop gives the vector the outputs gathered so far.
                let mut gather = Gather::new(out);
                if at.len() == 0 {
                    for Keyed { hash, carried, msg } in &mut todo {
                        store.apply(
                            table_hash(hash),
                            msg,
                            |msg, key| partition.is_key(msg, &carried, key),
                            |msg| partition.key(msg),
                            Origin::NONE,
                            |msg, state| step.compute(msg, state, &mut gather),
                        );
                        if gather.len() >= OUTPUTS_AT_ONCE {
                            passing = true;
                            gather.pass_on(down);
                            passing = false;
                        }
                    }
                } else {
                    for (Keyed { hash, carried, msg }, &origin) in (&mut todo).zip(&mut at) {
                        store.apply(
                            table_hash(hash),
                            msg,
                            |msg, key| partition.is_key(msg, &carried, key),
                            |msg| partition.key(msg),
                            origin,
                            |msg, state| step.compute(msg, state, &mut gather),
                        );
                        if gather.len() >= OUTPUTS_AT_ONCE {
                            passing = true;
                            gather.pass_on(down);
                            passing = false;
                        }
                    }
                }
                passing = true;
                gather.pass_on(down);
            }));
            let Err(panic) = ran else {
                break true;
            };
            let failed = (count - todo.len()).saturating_sub(1);
            let origin = origins.get(failed).copied().unwrap_or(Origin::NONE);
            if !panics.on_panic(panic, step.info().name, passing, origin, store) {
                if !passing {
                    // Stopping: what the messages before it produced leaves with them.
                    down.emit_all(out);
                }
                break false;
            }
        };
        drop(todo);
        origins.clear();
        self.spares.give(batch);
        go_on
    }

    fn flush(&mut self) {
        self.next.flush();
    }

    fn step(&self) -> &'static str {
        self.step.info().name
    }
}

impl<C, P, In> Entry<C, P, In>
where
    C: StateComputation<In>,
    P: Partition<In>,
    In: Send + 'static,
{
    /// [`EntryRunner::run`] for a chain whose sink keys its records: each message's outputs
    /// are passed on at once, with the message's key.
    // Why out of line: inlined into `run`, it cost the loop of every other chain 3
    // instructions a message (callgrind, Alphabet over TCP, 1 M messages).
    #[cold]
    #[inline(never)]
    fn run_keyed(
        &mut self,
        mut batch: Box<Batch<P::Carried, In>>,
        store: &mut StateStore<P::Key, C::State>,
        panics: &mut Panics<'_>,
    ) -> bool {
        let (step, partition) = (&self.step, &*self.partition);
        let (out, next) = (&mut self.out, &mut self.next);
        let Batch { msgs, origins, .. } = &mut *batch;
        let count = msgs.len();
        // Taken outside the catch, as in `run`.
        let mut todo = msgs.drain(..);
        let mut at = origins.iter();
        let mut passing = false;
        let go_on = loop {
            let ran = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                for Keyed { hash, carried, msg } in &mut todo {
                    let key = partition.key(&msg);
                    let origin = at.next().copied().unwrap_or(Origin::NONE);
                    store.apply(
                        table_hash(hash),
                        msg,
                        |msg, key| partition.is_key(msg, &carried, key),
                        |_| key.clone(),
                        origin,
                        |msg, state| step.compute(msg, state, &mut *out),
                    );
                    if !out.is_empty() {
                        set_output_key(Some(&key));
                        passing = true;
                        next.emit_all(out);
                        passing = false;
                    }
                }
            }));
            let Err(panic) = ran else {
                break true;
            };
            let failed = (count - todo.len()).saturating_sub(1);
            let origin = origins.get(failed).copied().unwrap_or(Origin::NONE);
            let skip = panics.on_panic(panic, step.info().name, passing, origin, store);
            if !passing && !out.is_empty() {
                // What the step emitted before it panicked leaves, with its key.
                set_output_key(store.poisoned_slot(origin).map(|slot| &slot.key));
                next.emit_all(out);
            }
            if !skip {
                break false;
            }
        };
        drop(todo);
        origins.clear();
        set_output_key::<P::Key>(None);
        self.spares.give(batch);
        go_on
    }
}

/// One state partition as the builder declares it: its state and key types, the pipelines'
/// entries into it, and the keys created at start.
pub(crate) struct PartitionPlan<K, S> {
    name: String,
    entries: Vec<EntryFactory<K, S>>,
    initial_keys: Vec<K>,
}

impl<K: Key, S: State> PartitionPlan<K, S> {
    pub(crate) fn new(name: &str) -> Self {
        PartitionPlan {
            name: name.to_string(),
            entries: Vec::new(),
            initial_keys: Vec::new(),
        }
    }

    /// Adds a pipeline's entry; returns its index, which routers put on their batches.
    pub(crate) fn add_entry(&mut self, entry: EntryFactory<K, S>) -> usize {
        self.entries.push(entry);
        self.entries.len() - 1
    }

    /// Declares keys whose state is built at start.
    pub(crate) fn add_initial_keys(&mut self, keys: Vec<K>) {
        for key in keys {
            if !self.initial_keys.contains(&key) {
                self.initial_keys.push(key);
            }
        }
    }
}

/// A state partition whatever its types, as the runtime starts it.
pub(crate) trait AnyPartition: Send {
    /// The partition's state name.
    fn name(&self) -> &str;
    /// `TypeId`s of the key and the state, to check that every use agrees.
    fn types(&self) -> (TypeId, TypeId);
    /// For the builder, to add entries of the concrete types.
    fn as_any_mut(&mut self) -> &mut dyn Any;
    /// Keys declared up front.
    fn initial_key_count(&self) -> usize;
    /// Reads keys of the partition's type from JSON, for state queries.
    fn key_parser(&self) -> Arc<dyn KeyParser>;
    /// Recovers the partition's states (with a resilience directory), builds the states of
    /// the declared keys, and starts one worker thread per receiver, which publishes its
    /// counters in the stats beside it; what recovery did goes to `recovery`.
    #[allow(clippy::too_many_arguments)]
    fn spawn(
        &self,
        index: usize,
        ctx: &Ctx,
        receivers: Vec<(flume::Receiver<WorkerMsg>, Arc<WorkerStats>)>,
        resilience: Option<&Resilience>,
        recovery: &RecoveryStats,
        control: &Arc<Control>,
        policy: &Arc<ErrorPolicy>,
    ) -> Result<Vec<JoinHandle<()>>, RunError>;
}

impl<K: Key, S: State> AnyPartition for PartitionPlan<K, S> {
    fn name(&self) -> &str {
        &self.name
    }

    fn types(&self) -> (TypeId, TypeId) {
        (TypeId::of::<K>(), TypeId::of::<S>())
    }

    fn as_any_mut(&mut self) -> &mut dyn Any {
        self
    }

    fn initial_key_count(&self) -> usize {
        self.initial_keys.len()
    }

    fn key_parser(&self) -> Arc<dyn KeyParser> {
        Arc::new(JsonKeys::<K>(std::marker::PhantomData))
    }

    fn spawn(
        &self,
        partition_index: usize,
        ctx: &Ctx,
        receivers: Vec<(flume::Receiver<WorkerMsg>, Arc<WorkerStats>)>,
        resilience: Option<&Resilience>,
        recovery: &RecoveryStats,
        control: &Arc<Control>,
        policy: &Arc<ErrorPolicy>,
    ) -> Result<Vec<JoinHandle<()>>, RunError> {
        let started = std::time::Instant::now();
        let mut recovered_keys = 0;
        let workers = receivers.len();
        let hasher = key_hasher();
        let mut stores: Vec<StateStore<K, S>> = (0..workers)
            .map(|worker| {
                let mut store = StateStore::new();
                (store.worker, store.workers) = (worker, workers);
                store.name.clone_from(&self.name);
                store
            })
            .collect();
        let mut recovered_generation = None;
        let mut recovered_streams = HashMap::new();
        if let Some(resilience) = resilience {
            let recovered = recovery::recover::<K, S>(&resilience.dir, &self.name)?;
            let keys = recovered.states.len();
            recovered_keys = keys as u64;
            for (key, (state, progress)) in recovered.states {
                let hash = key_hash(&hasher, &key);
                let slot = stores[worker_of(hash, workers)].slot(table_hash(short_hash(hash)), key);
                slot.state = state;
                slot.progress = progress;
            }
            if recovered.files > 0 {
                tracing::info!(
                    "state partition \"{}\": recovered {keys} states from {} files of run {}",
                    self.name,
                    recovered.files,
                    recovered.generation
                );
            }
            recovered_generation = Some(recovered.generation);
            for store in &mut stores {
                store.streams = recovered.streams.clone();
            }
            recovered_streams = recovered.streams;
        }
        for key in &self.initial_keys {
            let hash = key_hash(&hasher, key);
            stores[worker_of(hash, workers)].slot(table_hash(short_hash(hash)), key.clone());
        }
        if let (Some(resilience), Some(last)) = (resilience, recovered_generation) {
            let generation = last + 1;
            let dir = recovery::start_generation::<K, S>(
                &resilience.dir,
                &self.name,
                generation,
                stores.iter().flat_map(|s| {
                    s.table
                        .iter()
                        .map(|slot| (&slot.key, &slot.state, &slot.progress))
                }),
                recovered_streams.iter().map(|(s, q)| (*s, *q)),
            )?;
            for (worker, store) in stores.iter_mut().enumerate() {
                store.log = Some(WorkerLog::open(
                    &dir,
                    worker,
                    generation,
                    recovery::header::<K, S>(&self.name, FileKind::Log),
                    resilience.sync,
                    Arc::clone(&receivers[worker].1.log),
                )?);
                store.keeps_changes = true;
            }
            recovery.finished(recovered_keys, started.elapsed());
        }
        ctx.progress
            .recovered(partition_index, workers, &recovered_streams);
        Ok(receivers
            .into_iter()
            .zip(stores)
            .enumerate()
            .map(|(index, ((rx, stats), store))| {
                // Built here, on the starting thread, so that the worker holds only the
                // channel ends its chains use and not the whole context.
                let entries: Vec<Box<dyn EntryRunner<K, S>>> =
                    self.entries.iter().map(|make| make(ctx)).collect();
                let name = format!("wallaroo-worker-{index}");
                let partition = self.name.clone();
                let control = Arc::clone(control);
                let policy = Arc::clone(policy);
                let progress = Arc::clone(&ctx.progress);
                let place = Place {
                    partition,
                    partition_index,
                    worker: index,
                    progress,
                    stats,
                };
                std::thread::Builder::new()
                    .name(name)
                    .spawn(move || run_worker(&place, rx, entries, store, &control, &policy))
                    .expect("cannot spawn a worker thread")
            })
            .collect())
    }
}

/// Where a worker is: for its log lines and the progress it publishes.
struct Place {
    partition: String,
    partition_index: usize,
    worker: usize,
    progress: Arc<StreamProgress>,
    /// What the metrics read.
    stats: Arc<WorkerStats>,
}

/// A worker's loop: take a batch, drain what else is ready, commit the state log, flush;
/// until every sender is gone, then commit and flush once more.
fn run_worker<K: Key, S: State>(
    place: &Place,
    rx: flume::Receiver<WorkerMsg>,
    mut entries: Vec<Box<dyn EntryRunner<K, S>>>,
    mut store: StateStore<K, S>,
    control: &Control,
    policy: &ErrorPolicy,
) {
    let (partition, worker) = (place.partition.as_str(), place.worker);
    tracing::debug!(partition, worker, keys = store.len(), "worker started");
    place
        .stats
        .keys
        .store(store.len() as u64, Ordering::Relaxed);
    if policy.skips() {
        quiet_panics_here();
    }
    // Whether nothing more is applied (the state can no longer be made durable, or a step
    // panicked and the policy is to stop), and whether the state is still to be closed
    // cleanly at the end (not after a failed write, nor after a panic that may have lost
    // outputs of what was applied).
    let (mut failed, mut closing) = (false, true);
    let mut panics = Panics {
        policy,
        state: partition,
        worker,
        stop: None,
    };
    /// Runs a batch or notes a marker; returns a shard's control, which is carried out
    /// after the commit of what came before it, and whether to go on.
    fn handle<K: Key, S: State>(
        (entry, batch): WorkerMsg,
        entries: &mut [Box<dyn EntryRunner<K, S>>],
        store: &mut StateStore<K, S>,
        panics: &mut Panics<'_>,
    ) -> (Option<Box<ShardControl>>, bool) {
        if entry == MARKER {
            if let Ok(marker) = batch.downcast::<(u64, u64)>() {
                store.marker(marker.0, marker.1);
            }
        } else if entry == CONTROL {
            return (batch.downcast::<ShardControl>().ok(), true);
        } else if entry == QUERY {
            if let Ok(query) = batch.downcast::<StateQuery>() {
                store.answer(*query);
            }
        } else {
            return (None, entries[entry].run(batch, store, panics));
        }
        (None, true)
    }
    // A step's panic is caught in its entry, per batch, and goes to the error policy; this
    // catches what panics around them (a marker, a shard's control).
    let guarded = |msg: WorkerMsg,
                   entries: &mut Vec<Box<dyn EntryRunner<K, S>>>,
                   store: &mut StateStore<K, S>,
                   panics: &mut Panics<'_>|
     -> (Option<Box<ShardControl>>, bool) {
        let step = entries.get(msg.0).map_or("?", |entry| entry.step());
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            handle(msg, entries, store, panics)
        }))
        .unwrap_or_else(|panic| {
            let error = RunError::StepPanicked {
                step: format!("the worker of state computation `{step}`"),
                within: Within::State(partition, worker).to_string(),
                at: format!("a batch (worker {worker})"),
                message: match take_panic_location() {
                    Some(location) => format!("{} (at {location})", panic_message(&*panic)),
                    None => panic_message(&*panic),
                },
            };
            panics.stop.get_or_insert((error, false));
            (None, false)
        })
    };
    let mut busy = std::time::Duration::ZERO;
    loop {
        // A step with wall-clock timers wakes the worker without a message; the others wait
        // on the channel alone (a call per entry per round, not per message).
        let deadline = if failed {
            None
        } else {
            entries.iter().filter_map(|entry| entry.deadline()).min()
        };
        let first = match deadline {
            None => match rx.recv() {
                Ok(msg) => Some(msg),
                Err(_) => break,
            },
            Some(deadline) => match rx.recv_deadline(deadline) {
                Ok(msg) => Some(msg),
                Err(flume::RecvTimeoutError::Timeout) => None,
                Err(flume::RecvTimeoutError::Disconnected) => break,
            },
        };
        // Two clock reads a round of up to `DRAIN_LIMIT` batches, not per message.
        let round = std::time::Instant::now();
        if failed {
            // The state can no longer be made durable, or a step panicked: nothing more is
            // applied.
            continue;
        }
        if deadline.is_some_and(|deadline| deadline <= round) {
            // Each entry with timers runs what of them is due by now.
            for entry in &mut entries {
                if entry.deadline().is_some() && !entry.on_time(&mut store, &mut panics) {
                    break;
                }
            }
        }
        // The batch received, and what else is ready (up to `DRAIN_LIMIT` more), until a
        // shard's control, which is carried out after the commit of what came before it.
        let mut next = first;
        let mut shard_control = None;
        for _ in 0..=DRAIN_LIMIT {
            let Some(msg) = next.take().or_else(|| rx.try_recv().ok()) else {
                break;
            };
            let (control, go_on) = guarded(msg, &mut entries, &mut store, &mut panics);
            if !go_on {
                break;
            }
            if control.is_some() {
                shard_control = control;
                break;
            }
        }
        // Once per round of batches, not per message; before the round's outputs leave, so
        // that the counts never lag behind what a sink has seen.
        place
            .stats
            .keys
            .store(store.len() as u64, Ordering::Relaxed);
        place.stats.messages.store(store.taken, Ordering::Relaxed);
        let stop = panics.stop.take();
        if let Some((_, false)) = &stop {
            // A panic after the state computation: what this round applied is neither
            // committed nor sent on (some of its outputs may be lost); a restart with a
            // source that replays applies it again.
            closing = false;
        } else {
            // Changes are written (and synced, if the policy says so) before their outputs
            // leave; after a state computation's panic, those of the messages before it.
            match store.commit() {
                Ok(markers) => {
                    for (stream, seq) in markers {
                        place
                            .progress
                            .publish(place.partition_index, worker, stream, seq);
                    }
                }
                Err(e) => {
                    if let Some((error, _)) = stop {
                        control.fail(error);
                    }
                    control.fail(RunError::Resilience(e));
                    (failed, closing) = (true, false);
                    continue;
                }
            }
            for entry in &mut entries {
                entry.flush();
            }
        }
        if let Some((error, _)) = stop {
            control.fail(error);
            failed = true;
            continue;
        }
        if let Some(shard_control) = shard_control {
            store.control(*shard_control);
        }
        busy += round.elapsed();
        place
            .stats
            .busy_nanos
            .store(busy.as_nanos() as u64, Ordering::Relaxed);
        place
            .stats
            .blocked_nanos
            .store(crate::latency::blocked(), Ordering::Relaxed);
    }
    if closing {
        for entry in &mut entries {
            entry.flush();
        }
        if let Err(reason) = store.sync_changelog() {
            control.fail(RunError::Resilience(
                crate::resilience::ResilienceError::Changelog {
                    state: partition.to_string(),
                    reason,
                },
            ));
        }
        if let Some(log) = store.log.take() {
            if let Err(e) = log.close() {
                control.fail(RunError::Resilience(e));
            }
        }
    }
    tracing::debug!(partition, worker, keys = store.len(), "worker stopped");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Default, serde::Serialize, serde::Deserialize)]
    struct Count(u64);

    impl State for Count {
        fn info() -> &'static crate::component::ComponentInfo {
            unimplemented!("not used by these tests")
        }
        fn build() -> Self {
            Count(100)
        }
    }

    #[test]
    fn states_are_built_once_per_key() {
        let mut store: StateStore<String, Count> = StateStore::new();
        let hasher = key_hasher();
        for (key, add) in [("a", 1), ("b", 2), ("a", 3)] {
            let hash = key_table_hash(&hasher, &key);
            store.get_or_build(hash, key.to_string()).0 += add;
        }
        assert_eq!(store.len(), 2);
        let a = key_table_hash(&hasher, &"a");
        assert_eq!(store.get_or_build(a, "a".to_string()).0, 104);
        // A replayed message is applied once.
        let origin = Origin {
            stream: 9,
            seq: 1,
            sub: 0,
        };
        for _ in 0..2 {
            store.apply(
                a,
                "a",
                |msg, key| key == msg,
                |msg| msg.to_string(),
                origin,
                |_, c| {
                    c.0 += 1;
                    true
                },
            );
        }
        assert_eq!(store.get_or_build(a, "a".to_string()).0, 105);
    }

    #[test]
    fn the_key_of_a_message_that_panicked_is_found_among_many() {
        let mut store: StateStore<String, Count> = StateStore::new();
        let keys: Vec<String> = (0..5000).map(|i| format!("k{i}")).collect();
        for (seq, key) in keys.iter().enumerate() {
            add(&mut store, key, seq as u64 + 1);
        }
        let hasher = key_hasher();
        for (i, key) in keys.iter().enumerate().step_by(7) {
            let hash = key_table_hash(&hasher, key);
            let origin = |seq: u64| Origin {
                stream: 9,
                seq,
                sub: 0,
            };
            let none = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                store.apply(
                    hash,
                    key.as_str(),
                    |msg, key| key == msg,
                    |msg| msg.to_string(),
                    Origin::NONE,
                    |_, _| panic!("poison"),
                );
            }));
            assert!(none.is_err());
            assert_eq!(
                store.poisoned_key(Origin::NONE),
                Some(serde_json::json!(key)),
                "without a position"
            );
            let at = origin(10_000 + i as u64);
            let replayed = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                store.apply(
                    hash,
                    key.as_str(),
                    |msg, key| key == msg,
                    |msg| msg.to_string(),
                    at,
                    |_, _| panic!("poison"),
                );
            }));
            assert!(replayed.is_err());
            assert_eq!(store.poisoned_key(at), Some(serde_json::json!(key)));
        }
    }

    /// A record put: its shard, key and value.
    type Put = (u32, Vec<u8>, Vec<u8>);

    /// A changelog in memory: what was put, and how many of those were flushed.
    #[derive(Clone, Default)]
    struct Memory(Arc<std::sync::Mutex<(Vec<Put>, usize)>>);

    impl ChangelogWriter for Memory {
        fn put(&mut self, shard: u32, key: &[u8], value: &[u8]) -> Result<(), String> {
            let mut inner = self.0.lock().unwrap();
            inner.0.push((shard, key.to_vec(), value.to_vec()));
            Ok(())
        }

        fn flush(&mut self) -> Result<(), String> {
            let mut inner = self.0.lock().unwrap();
            inner.1 = inner.0.len();
            Ok(())
        }
    }

    /// Adds 1 to `key`'s count, as a message of `origin` (stream 9, position `seq`).
    fn add(store: &mut StateStore<String, Count>, key: &str, seq: u64) {
        add_from(store, key, 9, seq);
    }

    /// Adds 1 to `key`'s count, by the message at `seq` of stream `stream`.
    fn add_from(store: &mut StateStore<String, Count>, key: &str, stream: u64, seq: u64) {
        let hash = key_table_hash(&key_hasher(), &key.to_string());
        let origin = Origin {
            stream,
            seq,
            sub: 0,
        };
        store.apply(
            hash,
            key,
            |msg, key| key == msg,
            |msg| msg.to_string(),
            origin,
            |_, c| {
                c.0 += 1;
                true
            },
        );
    }

    fn shard(key: &str, shards: u32) -> u32 {
        shard_of(key_hash(&key_hasher(), &key.to_string()), shards)
    }

    #[test]
    fn changes_of_held_shards_go_to_the_changelog_once_per_commit_and_come_back() {
        let memory = Memory::default();
        let mut store: StateStore<String, Count> = StateStore::new();
        store.control(ShardControl::Attach {
            changelog: Box::new(memory.clone()),
            shards: 4,
            by: ShardBy::Hash,
        });
        // Keys of two shards; this process holds only the first's.
        let keys: Vec<String> = (0..40).map(|i| format!("k{i}")).collect();
        let held = shard(&keys[0], 4);
        let other = keys.iter().find(|k| shard(k, 4) != held).unwrap().clone();
        let mine: Vec<&String> = keys.iter().filter(|k| shard(k, 4) == held).collect();
        let (tx, rx) = flume::unbounded();
        store.control(ShardControl::Restore {
            shard: held,
            epoch: 5,
            records: Arc::new(Vec::new()),
            done: tx.clone(),
        });
        assert_eq!(rx.recv().unwrap(), Ok(0));
        for seq in 1..=3 {
            add(&mut store, mine[0], seq);
            add(&mut store, &other, seq);
        }
        store.commit().unwrap();
        let written = memory.0.lock().unwrap().0.clone();
        // One record for the held key, written once for three changes; none for the other.
        assert_eq!(written.len(), 1, "{written:?}");
        assert_eq!(written[0].0, held);
        assert_eq!(memory.0.lock().unwrap().1, 0, "not flushed before a sync");
        store.control(ShardControl::Sync { done: tx.clone() });
        assert_eq!(rx.recv().unwrap(), Ok(0));
        assert_eq!(memory.0.lock().unwrap().1, 1, "flushed by the sync");

        // Released: the shard's keys are dropped, the other shard's kept; their records, as
        // the changelog has them, are handed over for a local copy first.
        let before = store.len();
        let (copy_tx, copy_rx) = flume::unbounded();
        store.control(ShardControl::Release {
            shard: held,
            lost: false,
            copy: Some(copy_tx),
            done: tx.clone(),
        });
        assert_eq!(rx.recv().unwrap(), Ok(1));
        assert_eq!(store.len(), before - 1);
        let copied = copy_rx.recv().unwrap();
        assert_eq!(copied, [(written[0].1.clone(), written[0].2.clone())]);

        // Restored from what was written: the count and the positions come back, so that
        // the message at position 3 read again is not applied twice.
        let records: ChangelogRecords =
            Arc::new(written.into_iter().map(|(_, k, v)| (k, v)).collect());
        store.control(ShardControl::Restore {
            shard: held,
            epoch: 6,
            records,
            done: tx.clone(),
        });
        assert_eq!(rx.recv().unwrap(), Ok(1));
        add(&mut store, mine[0], 3);
        let hash = key_table_hash(&key_hasher(), mine[0]);
        assert_eq!(store.get_or_build(hash, mine[0].clone()).0, 103);
        add(&mut store, mine[0], 4);
        assert_eq!(store.get_or_build(hash, mine[0].clone()).0, 104);
    }

    #[test]
    fn a_co_partitioned_inputs_keys_belong_to_the_shard_of_the_stream_they_come_from() {
        let memory = Memory::default();
        let mut store: StateStore<String, Count> = StateStore::new();
        // Streams 100 and 101 are shards 0 and 1: a key's hash says nothing of its shard.
        store.control(ShardControl::Attach {
            changelog: Box::new(memory.clone()),
            shards: 2,
            by: ShardBy::Stream([(100, 0), (101, 1)].into()),
        });
        let (tx, rx) = flume::unbounded();
        for shard in [0, 1] {
            store.control(ShardControl::Restore {
                shard,
                epoch: 3,
                records: Arc::new(Vec::new()),
                done: tx.clone(),
            });
            assert_eq!(rx.recv().unwrap(), Ok(0));
        }
        let keys: Vec<String> = (0..20).map(|i| format!("k{i}")).collect();
        for (i, key) in keys.iter().enumerate() {
            add_from(&mut store, key, 100 + (i % 2) as u64, 1);
        }
        store.commit().unwrap();
        let written = memory.0.lock().unwrap().0.clone();
        assert_eq!(written.len(), 20);
        for (shard, key, _) in &written {
            let key: String = postcard::from_bytes(key).unwrap();
            let i: usize = key[1..].parse().unwrap();
            assert_eq!(*shard, (i % 2) as u32, "{key}");
        }

        // Shard 1 released: its keys (the odd ones) go, shard 0's stay.
        store.control(ShardControl::Release {
            shard: 1,
            lost: false,
            copy: None,
            done: tx.clone(),
        });
        assert_eq!(rx.recv().unwrap(), Ok(10));
        assert_eq!(store.len(), 10);

        // Taken again from what was written: its keys are shard 1's again, so that a
        // second release drops them.
        let records: ChangelogRecords = Arc::new(
            written
                .into_iter()
                .filter(|(shard, _, _)| *shard == 1)
                .map(|(_, k, v)| (k, v))
                .collect(),
        );
        store.control(ShardControl::Restore {
            shard: 1,
            epoch: 4,
            records,
            done: tx.clone(),
        });
        assert_eq!(rx.recv().unwrap(), Ok(10));
        assert_eq!(store.len(), 20);
        store.control(ShardControl::Release {
            shard: 1,
            lost: true,
            copy: None,
            done: tx.clone(),
        });
        assert_eq!(rx.recv().unwrap(), Ok(10));

        // A key that comes from the other partition too (the input was not keyed by the
        // state key) follows the last one, and is written there.
        let before = memory.0.lock().unwrap().0.len();
        add_from(&mut store, "k0", 101, 2);
        store.commit().unwrap();
        let written = memory.0.lock().unwrap().0.clone();
        assert_eq!(
            written.len(),
            before,
            "shard 1 is not held: nothing written"
        );
        store.control(ShardControl::Release {
            shard: 0,
            lost: false,
            copy: None,
            done: tx.clone(),
        });
        assert_eq!(rx.recv().unwrap(), Ok(9), "k0 is no longer shard 0's");
    }

    #[test]
    fn a_restore_keeps_only_this_workers_keys_and_refuses_another_layout() {
        let header = ChangelogHeader {
            epoch: 1,
            version: Count::VERSION,
            layout: Count::LAYOUT,
        };
        let record = |key: &str, count: u64, header: &ChangelogHeader| {
            let key = postcard::to_allocvec(&key.to_string()).unwrap();
            let value =
                postcard::to_allocvec(&(header, &Count(count), &Progress::default())).unwrap();
            (key, value)
        };
        let keys: Vec<String> = (0..20).map(|i| format!("k{i}")).collect();
        let records: ChangelogRecords =
            Arc::new(keys.iter().map(|k| record(k, 7, &header)).collect());
        let mut restored = 0;
        for worker in 0..2 {
            let mut store: StateStore<String, Count> = StateStore::new();
            (store.worker, store.workers, store.shard_count) = (worker, 2, 1);
            restored += store.restore(0, 1, &records).unwrap();
            for key in &keys {
                let hash = key_hash(&key_hasher(), key);
                let mine = worker_of(hash, 2) == worker;
                let found = store
                    .table
                    .find(key_table_hash(&key_hasher(), key), |s| &s.key == key)
                    .map(|s| s.state.0);
                assert_eq!(found, mine.then_some(7), "{key} on worker {worker}");
            }
        }
        assert_eq!(restored, keys.len());

        let other = ChangelogHeader {
            epoch: 1,
            version: 3,
            layout: "{ other: u8 }",
        };
        let mut store: StateStore<String, Count> = StateStore::new();
        store.shard_count = 1;
        let records: ChangelogRecords = Arc::new(vec![record("k0", 1, &other)]);
        let error = store.restore(0, 1, &records).unwrap_err();
        assert!(error.contains("version 3 { other: u8 }"), "{error}");
    }
}
