//! Worker threads of a state partition: each owns the states of the keys routed to it and
//! runs the state computations on them, in the order the messages arrived.

use std::any::{Any, TypeId};
use std::hash::BuildHasher;
use std::marker::PhantomData;
use std::sync::Arc;
use std::thread::JoinHandle;

use hashbrown::HashTable;

use crate::link::BoxLink;
use crate::routing::{key_hasher, worker_of, Keyed, WorkerMsg};
use crate::runtime::Ctx;
use crate::state::{Key, State};
use crate::step::StateComputation;

/// Batches a worker takes from its channel before it flushes what it produced, so that a
/// busy worker still sends its output on regularly.
const DRAIN_LIMIT: usize = 64;

/// The states of the keys one worker owns.
pub(crate) struct StateStore<K, S> {
    table: HashTable<(K, S)>,
    hasher: foldhash::fast::FixedState,
}

impl<K: Key, S: State> StateStore<K, S> {
    fn new() -> Self {
        StateStore {
            table: HashTable::new(),
            hasher: key_hasher(),
        }
    }

    /// The state of `key` (whose hash is `hash`), built on first use.
    #[inline]
    pub(crate) fn get_or_build(&mut self, hash: u64, key: K) -> &mut S {
        let hasher = &self.hasher;
        let entry = self
            .table
            .entry(hash, |(k, _)| *k == key, |(k, _)| hasher.hash_one(k));
        &mut entry.or_insert_with(|| (key, S::build())).into_mut().1
    }

    /// How many keys have a state here.
    pub(crate) fn len(&self) -> usize {
        self.table.len()
    }
}

/// Runs the batches of one pipeline's entry into the partition.
pub(crate) trait EntryRunner<K, S>: Send {
    /// Runs a batch (a `Vec<Keyed<K, In>>` of this entry's input type).
    fn run(&mut self, batch: Box<dyn Any + Send>, store: &mut StateStore<K, S>);
    /// Sends on what the steps after the state computation buffered.
    fn flush(&mut self);
}

/// Builds an entry's runner for one worker thread.
pub(crate) type EntryFactory<K, S> = Arc<dyn Fn(&Ctx) -> Box<dyn EntryRunner<K, S>> + Send + Sync>;

/// A state computation and the chain after it, on one worker.
pub(crate) struct Entry<C: StateComputation<In>, In, K> {
    step: Arc<C>,
    next: BoxLink<C::Out>,
    _types: PhantomData<fn(In, K)>,
}

impl<C: StateComputation<In>, In, K> Entry<C, In, K> {
    pub(crate) fn new(step: Arc<C>, next: BoxLink<C::Out>) -> Self {
        Entry {
            step,
            next,
            _types: PhantomData,
        }
    }
}

impl<C, In, K> EntryRunner<K, C::State> for Entry<C, In, K>
where
    C: StateComputation<In>,
    In: Send + 'static,
    K: Key,
{
    fn run(&mut self, batch: Box<dyn Any + Send>, store: &mut StateStore<K, C::State>) {
        let batch = match batch.downcast::<Vec<Keyed<K, In>>>() {
            Ok(batch) => batch,
            // The router and the entry are built from the same typed builder call.
            Err(_) => unreachable!("a batch reached a partition entry of another type"),
        };
        for Keyed { hash, key, msg } in *batch {
            let state = store.get_or_build(hash, key);
            // Whether the state changed is what resilience will log; without it, nothing
            // more is to be done.
            let _changed = self.step.compute(msg, state, &mut self.next);
        }
    }

    fn flush(&mut self) {
        self.next.flush();
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
    /// Starts one thread per receiver; the states of the declared keys are built first.
    fn spawn(&self, ctx: &Ctx, receivers: Vec<flume::Receiver<WorkerMsg>>) -> Vec<JoinHandle<()>>;
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

    fn spawn(&self, ctx: &Ctx, receivers: Vec<flume::Receiver<WorkerMsg>>) -> Vec<JoinHandle<()>> {
        let workers = receivers.len();
        let hasher = key_hasher();
        let mut stores: Vec<StateStore<K, S>> = (0..workers).map(|_| StateStore::new()).collect();
        for key in &self.initial_keys {
            let hash = hasher.hash_one(key);
            stores[worker_of(hash, workers)].get_or_build(hash, key.clone());
        }
        receivers
            .into_iter()
            .zip(stores)
            .enumerate()
            .map(|(index, (rx, store))| {
                // Built here, on the starting thread, so that the worker holds only the
                // channel ends its chains use and not the whole context.
                let entries: Vec<Box<dyn EntryRunner<K, S>>> =
                    self.entries.iter().map(|make| make(ctx)).collect();
                let name = format!("wallaroo-worker-{index}");
                let partition = self.name.clone();
                std::thread::Builder::new()
                    .name(name)
                    .spawn(move || run_worker(&partition, index, rx, entries, store))
                    .expect("cannot spawn a worker thread")
            })
            .collect()
    }
}

/// A worker's loop: take a batch, drain what else is ready, flush; until every sender is
/// gone, then flush once more.
fn run_worker<K: Key, S: State>(
    partition: &str,
    index: usize,
    rx: flume::Receiver<WorkerMsg>,
    mut entries: Vec<Box<dyn EntryRunner<K, S>>>,
    mut store: StateStore<K, S>,
) {
    tracing::debug!(
        partition,
        worker = index,
        keys = store.len(),
        "worker started"
    );
    while let Ok((entry, batch)) = rx.recv() {
        entries[entry].run(batch, &mut store);
        for _ in 0..DRAIN_LIMIT {
            match rx.try_recv() {
                Ok((entry, batch)) => entries[entry].run(batch, &mut store),
                Err(_) => break,
            }
        }
        for entry in &mut entries {
            entry.flush();
        }
    }
    for entry in &mut entries {
        entry.flush();
    }
    tracing::debug!(
        partition,
        worker = index,
        keys = store.len(),
        "worker stopped"
    );
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
            let hash = hasher.hash_one(key);
            store.get_or_build(hash, key.to_string()).0 += add;
        }
        assert_eq!(store.len(), 2);
        let a = hasher.hash_one("a");
        assert_eq!(store.get_or_build(a, "a".to_string()).0, 104);
    }
}
