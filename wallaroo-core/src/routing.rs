//! Routing by partition key: each message's key is hashed once, the hash picks the worker
//! that owns the key, and the worker's state table reuses the same hash.
//!
//! Messages are gathered per worker and sent as batches, one channel send per
//! [`BATCH`] messages (or per flush, when the input runs dry).

use std::any::Any;
use std::cell::Cell;
use std::hash::BuildHasher;
use std::marker::PhantomData;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::link::Link;
use crate::resilience::record::Origin;
use crate::state::Partition;
use crate::step::Emit;

/// Messages gathered per worker before a send.
pub(crate) const BATCH: usize = 1024;

/// What a worker receives: the index of the pipeline entry into its partition, and a
/// `Vec<Keyed<K, In>>` of that entry's input type.
pub(crate) type WorkerMsg = (usize, Box<dyn Any + Send>);

/// The entry index of a marker: a `(stream, seq)` saying that every message of a replayable
/// stream up to `seq` has been sent to this worker.
pub(crate) const MARKER: usize = usize::MAX;

/// How often a router tells its workers how far a replayable stream has come.
const MARKER_INTERVAL: Duration = Duration::from_millis(5);

/// A batch as it crosses the (type-erased) worker channel.
// Why the box around a Vec: the channel carries `Box<dyn Any>`; recycling the box with
// the vector saves its allocation too.
#[allow(clippy::box_collection)]
pub(crate) type Batch<K, T> = Box<Vec<Keyed<K, T>>>;

/// Emptied batches the workers of one pipeline entry hand back to its routers, so that
/// routing does not allocate a batch per send.
pub(crate) type Spares<K, T> = (flume::Sender<Batch<K, T>>, flume::Receiver<Batch<K, T>>);

/// Emptied batches kept per pipeline entry.
const SPARE_BATCHES: usize = 64;

/// The channel that emptied batches come back on.
pub(crate) fn spares<K, T>() -> Spares<K, T> {
    flume::bounded(SPARE_BATCHES)
}

/// A message with its key, the key's hash, and where it came from.
pub(crate) struct Keyed<K, T> {
    pub(crate) hash: u64,
    pub(crate) key: K,
    pub(crate) origin: Origin,
    pub(crate) msg: T,
}

thread_local! {
    /// The origin of the input message this thread is working on, set by sources that
    /// can replay; read by the router that hands the message (or what it became) to a
    /// state partition.
    static CURRENT_ORIGIN: Cell<Origin> = const { Cell::new(Origin::NONE) };
}

/// Marks the messages emitted from now on, on this thread, as coming from `origin`.
#[inline]
pub(crate) fn set_origin(origin: Origin) {
    CURRENT_ORIGIN.with(|o| o.set(origin));
}

/// The hasher for keys: fixed, so that a key maps to the same worker in every run.
pub(crate) fn key_hasher() -> foldhash::fast::FixedState {
    foldhash::fast::FixedState::with_seed(0x7761_6c6c_6172_6f6f)
}

/// The id of a replayable stream, from its name: the same in every run, never 0.
pub(crate) fn stream_id(name: &str) -> u64 {
    key_hasher().hash_one(name).max(1)
}

/// The worker that owns a key's hash, out of `workers` (multiply-shift: no division, and
/// it uses the hash's high bits).
#[inline]
pub(crate) fn worker_of(hash: u64, workers: usize) -> usize {
    ((u128::from(hash) * workers as u128) >> 64) as usize
}

/// Routes messages to the workers of one state partition.
// Why the alignment: links are built on one thread and used on another; a link sharing a
// cache line with other hot data slows every message down (false sharing).
#[repr(align(128))]
pub(crate) struct Router<P: Partition<In>, In> {
    partition: Arc<P>,
    entry: usize,
    hasher: foldhash::fast::FixedState,
    senders: Vec<flume::Sender<WorkerMsg>>,
    buffers: Vec<Vec<Keyed<P::Key, In>>>,
    spares: flume::Receiver<Batch<P::Key, In>>,
    /// The last origin routed, and how many messages it has fanned out into so far.
    last: Origin,
    /// The last marker sent, and when.
    marked: (u64, Instant),
    _in: PhantomData<fn(In)>,
}

impl<P: Partition<In>, In: Send + 'static> Router<P, In> {
    pub(crate) fn new(
        partition: Arc<P>,
        entry: usize,
        senders: Vec<flume::Sender<WorkerMsg>>,
        spares: flume::Receiver<Batch<P::Key, In>>,
    ) -> Self {
        let buffers = senders.iter().map(|_| Vec::new()).collect();
        Router {
            partition,
            entry,
            hasher: key_hasher(),
            senders,
            buffers,
            spares,
            last: Origin::NONE,
            marked: (0, Instant::now()),
            _in: PhantomData,
        }
    }

    fn send(&mut self, worker: usize) {
        let mut batch = self
            .spares
            .try_recv()
            .unwrap_or_else(|_| Box::new(Vec::with_capacity(BATCH)));
        std::mem::swap(&mut *batch, &mut self.buffers[worker]);
        // A send blocks while the worker's channel is full: that is the backpressure that
        // slows the source down to what the workers can take.
        if self.senders[worker].send((self.entry, batch)).is_err() {
            tracing::error!(worker, "partition worker stopped; batch dropped");
        }
    }
}

impl<P: Partition<In>, In: Send + 'static> Emit<In> for Router<P, In> {
    #[inline]
    fn emit(&mut self, msg: In) {
        let key = self.partition.key(&msg);
        let hash = self.hasher.hash_one(&key);
        let worker = worker_of(hash, self.senders.len());
        let mut origin = CURRENT_ORIGIN.with(Cell::get);
        if origin.is_some() {
            // One input can fan out into several messages: number them, so that each is
            // recognised on replay.
            if (origin.stream, origin.seq) == (self.last.stream, self.last.seq) {
                origin.sub = self.last.sub + 1;
            }
            self.last = origin;
        }
        let buffer = &mut self.buffers[worker];
        if buffer.capacity() == 0 {
            buffer.reserve_exact(BATCH);
        }
        buffer.push(Keyed {
            hash,
            key,
            origin,
            msg,
        });
        if buffer.len() >= BATCH {
            self.send(worker);
        }
    }
}

impl<P: Partition<In>, In: Send + 'static> Router<P, In> {
    /// Tells every worker how far the replayable stream this thread reads has come: every
    /// message up to the current one was sent before the marker.
    fn mark(&mut self, force: bool) {
        let current = CURRENT_ORIGIN.with(Cell::get);
        if !current.is_some() || current.seq <= self.marked.0 {
            return;
        }
        if !force && self.marked.1.elapsed() < MARKER_INTERVAL {
            return;
        }
        self.marked = (current.seq, Instant::now());
        for sender in &self.senders {
            let _ = sender.send((MARKER, Box::new((current.stream, current.seq))));
        }
    }
}

impl<P: Partition<In>, In: Send + 'static> Link<In> for Router<P, In> {
    fn flush(&mut self) {
        for worker in 0..self.buffers.len() {
            if !self.buffers[worker].is_empty() {
                self.send(worker);
            }
        }
        self.mark(false);
    }
}

impl<P: Partition<In>, In> Drop for Router<P, In> {
    fn drop(&mut self) {
        // The stream ends here (its connection or file is done): say how far it came.
        let current = CURRENT_ORIGIN.with(Cell::get);
        if current.is_some() && current.seq > self.marked.0 {
            for sender in &self.senders {
                let _ = sender.send((MARKER, Box::new((current.stream, current.seq))));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn worker_of_spreads_and_stays_in_range() {
        let hasher = key_hasher();
        for workers in 1..=8 {
            let mut seen = vec![0usize; workers];
            for key in 0u32..10_000 {
                let w = worker_of(hasher.hash_one(key), workers);
                assert!(w < workers);
                seen[w] += 1;
            }
            // Every worker gets a fair share (within 20% of even).
            for count in seen {
                assert!(
                    count * workers > 8_000 && count * workers < 12_000,
                    "{count}"
                );
            }
        }
    }

    #[test]
    fn the_same_key_always_hashes_the_same() {
        assert_eq!(key_hasher().hash_one("a"), key_hasher().hash_one("a"));
    }
}
