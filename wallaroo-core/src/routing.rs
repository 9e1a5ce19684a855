//! Routing by partition key: each message's key is hashed once, the hash picks the worker
//! that owns the key, and the worker's state table reuses the same hash.
//!
//! Messages are gathered per worker and sent as batches, one channel send per
//! [`BATCH`] messages (or per flush, when the input runs dry).

use std::cell::Cell;
use std::hash::BuildHasher;
use std::marker::PhantomData;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::cache::prefetch_ahead;
use crate::link::Link;
use crate::pool::Pool;
use crate::resilience::record::Origin;
use crate::shard::shard_of;
use crate::state::Partition;
use crate::step::Emit;

/// Messages gathered per worker before a send.
pub(crate) const BATCH: usize = 4096;

pub(crate) use crate::context::WorkerMsg;

/// The entry index of a marker: a `(stream, seq)` saying that every message of a replayable
/// stream up to `seq` has been sent to this worker.
pub(crate) const MARKER: usize = usize::MAX;

/// How often a router tells its workers how far a replayable stream has come.
const MARKER_INTERVAL: Duration = Duration::from_millis(5);

/// Messages on their way to one worker, as they cross the (type-erased) worker channel.
///
/// A message carries only what the worker needs: 32 bits of its key's hash, what its
/// partition function carries (the key, or nothing when the key is borrowed from the
/// message), and the message (24 bytes for Alphabet's). Origins ride beside them, and only
/// for messages of replayable sources: every byte of a message crosses from one core's
/// cache to another's.
pub(crate) struct Batch<C, T> {
    pub(crate) msgs: Vec<Keyed<C, T>>,
    /// Where each message came from, in step with `msgs`; empty when none of them came
    /// from a source that can replay.
    pub(crate) origins: Vec<Origin>,
    /// When its first message was read, if its source said (for the latency histogram).
    pub(crate) read_at: Option<std::time::Instant>,
}

impl<C, T> Batch<C, T> {
    fn with_capacity(capacity: usize) -> Self {
        Batch {
            msgs: Vec::with_capacity(capacity),
            origins: Vec::new(),
            read_at: None,
        }
    }

    fn is_empty(&self) -> bool {
        self.msgs.is_empty()
    }

    #[inline]
    fn push(&mut self, keyed: Keyed<C, T>, origin: Origin) {
        if origin.is_some() || !self.origins.is_empty() {
            if self.origins.len() < self.msgs.len() {
                self.origins.resize(self.msgs.len(), Origin::NONE);
            }
            self.origins.push(origin);
        }
        self.msgs.push(keyed);
    }
}

/// Emptied batches the workers of one pipeline entry hand back to its routers, so that
/// routing does not allocate a batch per send.
pub(crate) type Spares<C, T> = Pool<Box<Batch<C, T>>>;

/// Emptied batches kept per pipeline entry.
const SPARE_BATCHES: usize = 64;

/// The pool that emptied batches come back to.
pub(crate) fn spares<C, T>() -> Spares<C, T> {
    Pool::new(SPARE_BATCHES)
}

/// A message with the part of its key's hash that its worker's table uses, and what its
/// partition function carries to the worker ([`Partition::Carried`]).
pub(crate) struct Keyed<C, T> {
    pub(crate) hash: u32,
    pub(crate) carried: C,
    pub(crate) msg: T,
}

thread_local! {
    /// How the routers on this thread treat the shards of their keys ([`ShardMode`]).
    static SHARD_MODE: Cell<ShardMode> = const { Cell::new(ShardMode::OFF) };
    /// The shards that the messages routed in [`ShardMode::probe`] would go to.
    static PROBED: std::cell::RefCell<Vec<u32>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// How the routers of a thread treat the shard ([`shard_of`]) of each message's key, for a
/// source whose input is shared by several processes; messages without an origin are
/// routed as usual.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct ShardMode {
    /// How many shards there are; 0: every message is routed.
    shards: u32,
    /// Whether messages are only looked at: their shards are noted ([`take_probed`]), and
    /// nothing is routed.
    probe: bool,
    /// The one shard whose messages are routed, when not probing.
    shard: u32,
    /// The input record the messages come from: a message's number among those of its
    /// origin counts from 0 again for each record, even of the same origin.
    record: u64,
}

impl ShardMode {
    /// Every message is routed.
    pub(crate) const OFF: ShardMode = ShardMode {
        shards: 0,
        probe: false,
        shard: 0,
        record: 0,
    };

    /// Nothing is routed; the shards of `shards` that messages would go to are noted.
    #[cfg_attr(not(feature = "kafka"), allow(dead_code))]
    pub(crate) fn probe(shards: u32) -> ShardMode {
        ShardMode {
            shards,
            probe: true,
            ..ShardMode::OFF
        }
    }

    /// Only messages of shard `shard` out of `shards` are routed; `record` tells one input
    /// record from the next.
    #[cfg_attr(not(feature = "kafka"), allow(dead_code))]
    pub(crate) fn only(shard: u32, shards: u32, record: u64) -> ShardMode {
        ShardMode {
            shards,
            probe: false,
            shard,
            record,
        }
    }
}

/// Sets how the routers of this thread treat shards.
#[cfg_attr(not(feature = "kafka"), allow(dead_code))]
pub(crate) fn set_shard_mode(mode: ShardMode) {
    SHARD_MODE.with(|m| m.set(mode));
}

/// The shards noted since the last call, in probe mode, each once, sorted.
#[cfg_attr(not(feature = "kafka"), allow(dead_code))]
pub(crate) fn take_probed(into: &mut Vec<u32>) {
    into.clear();
    PROBED.with(|p| into.append(&mut p.borrow_mut()));
    into.sort_unstable();
    into.dedup();
}

/// The hasher for keys: fixed, so that a key maps to the same worker in every run.
pub(crate) fn key_hasher() -> foldhash::fast::FixedState {
    foldhash::fast::FixedState::with_seed(0x7761_6c6c_6172_6f6f)
}

/// The id of a replayable stream, from its name: the same in every run, never 0.
pub(crate) fn stream_id(name: &str) -> u64 {
    key_hasher().hash_one(name).max(1)
}

/// The hash of a key, as routing uses it: the high bits pick the worker
/// ([`worker_of`]), the low 32 bits travel with the message for the worker's table
/// ([`table_hash`]).
#[inline]
pub(crate) fn key_hash<K: std::hash::Hash>(hasher: &foldhash::fast::FixedState, key: &K) -> u64 {
    hasher.hash_one(key)
}

/// The part of a key's hash that travels with a message.
#[inline]
pub(crate) fn short_hash(hash: u64) -> u32 {
    hash as u32
}

/// The hash a worker's state table files a key under, from the part that travelled: a
/// multiply spreads its bits over the 64 that the table looks at (the top ones pick the
/// control byte, the low ones the bucket).
#[inline]
pub(crate) fn table_hash(short: u32) -> u64 {
    u64::from(short).wrapping_mul(0x9e37_79b9_7f4a_7c15)
}

/// The hash a worker's state table files `key` under, computed from the key.
#[inline]
pub(crate) fn key_table_hash<K: std::hash::Hash>(
    hasher: &foldhash::fast::FixedState,
    key: &K,
) -> u64 {
    table_hash(short_hash(key_hash(hasher, key)))
}

/// The worker that owns a key's hash, out of `workers` (multiply-shift: no division, and
/// it uses the hash's high bits).
#[inline]
pub(crate) fn worker_of(hash: u64, workers: usize) -> usize {
    ((u128::from(hash) * workers as u128) >> 64) as usize
}

/// Entries ahead of the next write whose cache line the router asks for.
// Why: an emptied batch comes back from the worker that read it, on another core; each of
// its lines must come over before the router can write to it, and writing without asking
// ahead stalls the source thread on every line (the hottest instruction of the router in
// the profile). Asked ahead, the transfers overlap the routing of the messages before.
// Measured with `cargo bench --bench e2e -- --section compare --systems wallaroo-2
// --rate 0`, alternating builds with and without, both built with
// `-C llvm-args=-align-loops=64` so that code placement does not decide: medians
// 20.3-20.4 -> 22.5 M msg/s (8 runs each); 8 and 48 ahead did no better than 16.
const PREFETCH_AHEAD: usize = 16;

/// Routes messages to the workers of one state partition.
// Why the alignment: links are built on one thread and used on another; a link sharing a
// cache line with other hot data slows every message down (false sharing).
#[repr(align(128))]
pub(crate) struct Router<P: Partition<In>, In> {
    partition: Arc<P>,
    entry: usize,
    hasher: foldhash::fast::FixedState,
    senders: Vec<flume::Sender<WorkerMsg>>,
    // Why boxed: the box is what crosses the channel (as `Box<dyn Any>`) and comes back
    // through the spares; keeping it saves an allocation per send.
    #[allow(clippy::vec_box)]
    buffers: Vec<Box<Batch<P::Carried, In>>>,
    spares: Spares<P::Carried, In>,
    /// The last origin routed, and how many messages it has fanned out into so far.
    last: Origin,
    /// The last origin of each replayable stream the chain's source reads, as it said
    /// ([`Link::positions`]), for the markers; empty for a source that does not say, whose
    /// last origin routed (`last`) is how far its stream came.
    positions: Vec<Origin>,
    /// The input record of `last`, in a [`ShardMode`].
    last_record: u64,
    /// Whether this router's partition has its shards shared out by a source of this
    /// thread: only then is the thread's [`ShardMode`] looked at.
    pub(crate) sharded: bool,
    /// Where to add the time a send waits for room in a full worker channel: the source's
    /// count, for the router on a source's threads; `None` for a router on a worker's
    /// thread (to a later state partition), whose waits are the worker's backpressured
    /// time ([`crate::latency::add_blocked`]).
    pub(crate) blocked: Option<Arc<std::sync::atomic::AtomicU64>>,
    /// Per stream, the last marker sent; and when one was last sent.
    marked: Vec<(u64, u64)>,
    marked_at: Instant,
    _in: PhantomData<fn(In)>,
}

impl<P: Partition<In>, In: Send + 'static> Router<P, In> {
    pub(crate) fn new(
        partition: Arc<P>,
        entry: usize,
        senders: Vec<flume::Sender<WorkerMsg>>,
        spares: Spares<P::Carried, In>,
    ) -> Self {
        let buffers = senders
            .iter()
            .map(|_| Box::new(Batch::with_capacity(0)))
            .collect();
        Router {
            partition,
            entry,
            hasher: key_hasher(),
            senders,
            buffers,
            spares,
            last: Origin::NONE,
            positions: Vec::new(),
            last_record: 0,
            sharded: false,
            blocked: None,
            marked: Vec::new(),
            marked_at: Instant::now(),
            _in: PhantomData,
        }
    }

    /// Gives each empty batch the read time of the messages at hand: the first message it
    /// takes next is one of them. Once per run of messages, not per message.
    fn stamp_empty(&mut self) {
        let read_at = crate::latency::read_at();
        for buffer in &mut self.buffers {
            if buffer.msgs.is_empty() {
                buffer.read_at = read_at;
            }
        }
    }

    fn send(&mut self, worker: usize) {
        let spare = self
            .spares
            .take()
            .unwrap_or_else(|| Box::new(Batch::with_capacity(BATCH)));
        let batch = std::mem::replace(&mut self.buffers[worker], spare);
        // The next messages for this worker come from the read at hand (a run of
        // messages re-stamps the batches it finds empty, see `stamp_empty`).
        self.buffers[worker].read_at = crate::latency::read_at();
        // A send blocks while the worker's channel is full: that is the backpressure that
        // slows the source down to what the workers can take.
        let (sent, waited) = crate::latency::send_timed(&self.senders[worker], (self.entry, batch));
        self.waited(waited);
        if !sent {
            tracing::error!(worker, "partition worker stopped; batch dropped");
        }
    }
}

impl<P: Partition<In>, In: Send + 'static> Router<P, In> {
    /// The worker that owns `msg`'s key, and `msg` as it travels there; asks for the cache
    /// line the worker's batch will be written at next.
    #[inline(always)]
    fn keyed(&mut self, msg: In) -> (usize, Keyed<P::Carried, In>) {
        let (hash, carried) = self.partition.route(&msg, &self.hasher);
        let worker = worker_of(hash, self.senders.len());
        prefetch_ahead(&self.buffers[worker].msgs, PREFETCH_AHEAD);
        let keyed = Keyed {
            hash: short_hash(hash),
            carried,
            msg,
        };
        (worker, keyed)
    }

    /// Files `msg`, of `origin`, into the batch of the worker that owns its key.
    #[inline(always)]
    fn route(&mut self, msg: In, origin: Origin) {
        let (worker, keyed) = self.keyed(msg);
        let buffer = &mut self.buffers[worker];
        if buffer.msgs.is_empty() {
            buffer.read_at = crate::latency::read_at();
        }
        buffer.push(keyed, origin);
        if buffer.msgs.len() >= BATCH {
            self.send(worker);
        }
    }

    /// [`Router::route`] for a message without an origin into batches without origins.
    // Why apart: `Batch::push` checks for origins on every message; here nothing rides
    // beside the message, and its count is kept in a register across the push. With the
    // lazy first allocation that both paths used to check for per message gone, the
    // router went from 49 to 37 instructions a message (callgrind, Alphabet, 1 M frames).
    #[inline(always)]
    fn route_plain(&mut self, msg: In) {
        let (worker, keyed) = self.keyed(msg);
        let msgs = &mut self.buffers[worker].msgs;
        let len = msgs.len();
        msgs.push(keyed);
        if len + 1 >= BATCH {
            self.send(worker);
        }
    }

    /// The origin a message of the input at `origin` travels with: the input's, numbered
    /// after the messages it has fanned out into so far.
    #[inline]
    fn number(&mut self, mut origin: Origin) -> Origin {
        if origin.is_some() {
            // One input can fan out into several messages: number them, so that each is
            // recognised on replay.
            if (origin.stream, origin.seq) == (self.last.stream, self.last.seq) {
                origin.sub = self.last.sub + 1;
            }
            self.last = origin;
        }
        origin
    }
}

impl<P: Partition<In>, In: Send + 'static> Router<P, In> {
    /// [`Link::emit_from`] in a [`ShardMode`]: notes the message's shard, or routes it if
    /// it is the shard routed.
    #[inline(never)]
    fn emit_sharded(&mut self, origin: Origin, msg: In, mode: ShardMode) {
        if mode.record != self.last_record {
            self.last = Origin::NONE;
            self.last_record = mode.record;
        }
        let origin = self.number(origin);
        let (hash, _) = self.partition.route(&msg, &self.hasher);
        let shard = shard_of(hash, mode.shards);
        if mode.probe {
            PROBED.with(|p| p.borrow_mut().push(shard));
        } else if shard == mode.shard {
            self.route(msg, origin);
        }
    }
}

impl<P: Partition<In>, In: Send + 'static> Emit<In> for Router<P, In> {
    /// A message without an origin: routed as usual in any [`ShardMode`].
    #[inline]
    fn emit(&mut self, msg: In) {
        self.route(msg, Origin::NONE);
    }
}

impl<P: Partition<In>, In> Router<P, In> {
    /// Tells every worker how far each replayable stream the chain's source reads has
    /// come: every message up to its last origin was sent before the marker.
    fn mark(&mut self, force: bool) {
        if !force && self.marked_at.elapsed() < MARKER_INTERVAL {
            return;
        }
        let last = [self.last];
        let positions = match &self.positions[..] {
            [] if self.last.is_some() => &last[..],
            positions => positions,
        };
        let mut sent = false;
        for &current in positions {
            let marked = match self.marked.iter_mut().find(|(s, _)| *s == current.stream) {
                Some((_, seq)) => seq,
                None => {
                    self.marked.push((current.stream, 0));
                    &mut self.marked.last_mut().expect("just pushed").1
                }
            };
            if current.seq <= *marked {
                continue;
            }
            *marked = current.seq;
            sent = true;
            for sender in &self.senders {
                let _ = sender.send((MARKER, Box::new((current.stream, current.seq))));
            }
        }
        if sent {
            self.marked_at = Instant::now();
        }
    }
}

impl<P: Partition<In>, In> Router<P, In> {
    /// Sends `make()` to every worker of the partition, on this router's entry, behind
    /// what was sent to each before: for what concerns every worker (how far event time
    /// has come on this input). Call after [`Link::flush`], so that nothing buffered is
    /// overtaken.
    pub(crate) fn broadcast<X: Send + 'static>(&mut self, make: impl Fn() -> X) {
        for sender in &self.senders {
            let msg: Box<dyn std::any::Any + Send> = Box::new(make());
            let (_, waited) = crate::latency::send_timed(sender, (self.entry, msg));
            self.waited(waited);
        }
    }

    /// Counts `nanos` waited for room in a full worker channel: as the source's wait, or,
    /// for a worker's router, as the worker's (it publishes its thread's waits per round).
    fn waited(&self, nanos: u64) {
        if nanos > 0 {
            match &self.blocked {
                Some(blocked) => {
                    blocked.fetch_add(nanos, std::sync::atomic::Ordering::Relaxed);
                }
                None => crate::latency::add_blocked(nanos),
            }
        }
    }
}

impl<P: Partition<In>, In: Send + 'static> Link<In> for Router<P, In> {
    #[inline]
    fn emit_from(&mut self, origin: Origin, msg: In) {
        // Why a field first: the shard mode's thread-local costs 11 instructions a message
        // on the path of every source with positions (callgrind, Alphabet from a file with
        // a resilience directory, 1 M frames); the field, a load and a branch.
        if self.sharded {
            let mode = SHARD_MODE.with(Cell::get);
            if mode.shards != 0 {
                self.emit_sharded(origin, msg, mode);
                return;
            }
        }
        let origin = self.number(origin);
        self.route(msg, origin);
    }

    fn emit_all(&mut self, msgs: &mut Vec<In>) {
        self.stamp_empty();
        if self.buffers.iter().all(|b| b.origins.is_empty()) {
            // Messages of a source that cannot replay, into batches without origins (the
            // spares that replace sent batches have none either): no numbering, and
            // nothing beside each message.
            for msg in msgs.drain(..) {
                self.route_plain(msg);
            }
        } else {
            for msg in msgs.drain(..) {
                self.route(msg, Origin::NONE);
            }
        }
    }

    fn positions(&mut self, positions: &[Origin]) {
        self.positions.clear();
        self.positions.extend_from_slice(positions);
    }

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
        self.mark(true);
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
    fn origins_ride_beside_messages_only_once_a_batch_has_one() {
        let keyed = |key: u8| Keyed {
            hash: 0,
            carried: key,
            msg: (),
        };
        let mut batch = Batch::with_capacity(4);
        batch.push(keyed(1), Origin::NONE);
        batch.push(keyed(2), Origin::NONE);
        assert!(batch.origins.is_empty(), "no origin, no space spent");
        let replayed = Origin {
            stream: 7,
            seq: 3,
            sub: 0,
        };
        batch.push(keyed(3), replayed);
        batch.push(keyed(4), Origin::NONE);
        assert_eq!(batch.msgs.len(), batch.origins.len());
        let seqs: Vec<u64> = batch.origins.iter().map(|o| o.seq).collect();
        assert_eq!(
            seqs,
            [Origin::NONE.seq, Origin::NONE.seq, 3, Origin::NONE.seq]
        );
        assert!(batch.origins[2].is_some() && !batch.origins[3].is_some());
    }

    struct ByValue;

    impl Partition<u32> for ByValue {
        type Key = u32;
        type Carried = u32;
        fn info(&self) -> &'static crate::component::ComponentInfo {
            unimplemented!("not used by these tests")
        }
        fn key(&self, msg: &u32) -> u32 {
            *msg
        }
        fn route<H: BuildHasher>(&self, msg: &u32, hasher: &H) -> (u64, u32) {
            (hasher.hash_one(msg), *msg)
        }
        fn is_key(&self, _: &u32, carried: &u32, key: &u32) -> bool {
            carried == key
        }
    }

    /// Routes one message into a worker channel that holds one batch, with the channel
    /// already full and emptied only after 50 ms: the nanoseconds the router's send waited,
    /// as this thread counts them and as `blocked` (the source's count, if given) does.
    fn wait_on_a_full_channel(blocked: Option<Arc<std::sync::atomic::AtomicU64>>) -> (u64, u64) {
        let (tx, rx) = flume::bounded(1);
        let mut router = Router::new(Arc::new(ByValue), 0, vec![tx], spares());
        router.blocked.clone_from(&blocked);
        let before = crate::latency::blocked();
        router.emit(1);
        router.flush();
        assert_eq!(crate::latency::blocked(), before, "the channel had room");
        let taker = std::thread::spawn(move || {
            std::thread::sleep(std::time::Duration::from_millis(50));
            (rx.recv().unwrap().0, rx.recv().unwrap().0)
        });
        router.emit(2);
        router.flush();
        assert_eq!(taker.join().unwrap(), (0, 0), "two batches to entry 0");
        let source = blocked.map_or(0, |b| b.load(std::sync::atomic::Ordering::Relaxed));
        (crate::latency::blocked() - before, source)
    }

    #[test]
    fn a_workers_router_counts_its_wait_for_room_as_the_workers_backpressure() {
        let (thread, _) = wait_on_a_full_channel(None);
        assert!(thread >= 10_000_000, "waited {thread} ns");
    }

    #[test]
    fn a_sources_router_counts_its_wait_as_the_sources() {
        let source = Arc::default();
        let (thread, counted) = wait_on_a_full_channel(Some(source));
        assert_eq!(thread, 0, "not the thread's: no worker publishes it");
        assert!(counted >= 10_000_000, "waited {counted} ns");
    }

    /// Routes 0..20 as the messages of one record, in `mode`; what the worker received: each
    /// message with its number among the record's messages.
    fn route_in(mode: ShardMode) -> Vec<(u32, u32)> {
        let (tx, rx) = flume::unbounded();
        let mut router = Router::new(Arc::new(ByValue), 0, vec![tx], spares());
        router.sharded = true;
        let origin = Origin {
            stream: 5,
            seq: 1,
            sub: 0,
        };
        set_shard_mode(mode);
        for msg in 0..20u32 {
            router.emit_from(origin, msg);
        }
        router.flush();
        set_shard_mode(ShardMode::OFF);
        let mut got = Vec::new();
        for (entry, batch) in rx.drain() {
            if entry == MARKER {
                continue;
            }
            let batch = batch.downcast::<Batch<u32, u32>>().unwrap();
            for (keyed, origin) in batch.msgs.iter().zip(&batch.origins) {
                got.push((keyed.msg, origin.sub));
            }
        }
        got
    }

    #[test]
    fn a_probe_notes_shards_and_routes_nothing_while_only_one_shard_is_routed() {
        let shard = |msg: u32| shard_of(key_hasher().hash_one(msg), 4);
        let mut expected: Vec<u32> = (0..20).map(shard).collect();
        expected.sort_unstable();
        expected.dedup();
        assert!(route_in(ShardMode::probe(4)).is_empty());
        let mut probed = Vec::new();
        take_probed(&mut probed);
        assert_eq!(probed, expected);

        // Only shard `s`'s messages, numbered among all the record's messages, and from 0
        // again for the next record even of the same origin.
        for record in 1..=2 {
            for s in 0..4 {
                let want: Vec<(u32, u32)> =
                    (0..20).filter(|m| shard(*m) == s).map(|m| (m, m)).collect();
                assert_eq!(
                    route_in(ShardMode::only(s, 4, record * 10 + u64::from(s))),
                    want
                );
            }
        }
    }

    /// A message a worker received, with its origin's `(stream, seq, sub)` if it has one.
    type Received = (u32, Option<(u64, u64, u32)>);

    /// The markers a router sent to its worker, and the messages.
    fn received(rx: &flume::Receiver<WorkerMsg>) -> (Vec<(u64, u64)>, Vec<Received>) {
        let (mut markers, mut msgs) = (Vec::new(), Vec::new());
        for (entry, sent) in rx.drain() {
            if entry == MARKER {
                markers.push(*sent.downcast::<(u64, u64)>().unwrap());
                continue;
            }
            let batch = sent.downcast::<Batch<u32, u32>>().unwrap();
            for (i, keyed) in batch.msgs.iter().enumerate() {
                let origin = batch.origins.get(i).filter(|o| o.is_some());
                msgs.push((keyed.msg, origin.map(|o| (o.stream, o.seq, o.sub))));
            }
        }
        (markers, msgs)
    }

    #[test]
    fn messages_keep_the_origin_they_were_given_and_a_marker_says_the_last() {
        let (tx, rx) = flume::unbounded();
        let mut router = Router::new(Arc::new(ByValue), 0, vec![tx], spares());
        let at = |seq| Origin {
            stream: 5,
            seq,
            sub: 0,
        };
        router.emit_from(at(3), 1);
        router.emit_from(at(3), 2);
        router.emit(3);
        router.emit_from(at(4), 4);
        router.emit_all(&mut vec![5]);
        router.flush();
        drop(router);
        let (markers, msgs) = received(&rx);
        assert_eq!(
            msgs,
            [
                (1, Some((5, 3, 0))),
                (2, Some((5, 3, 1))),
                (3, None),
                (4, Some((5, 4, 0))),
                (5, None)
            ]
        );
        assert_eq!(markers, [(5, 4)], "the last origin routed");
    }

    #[test]
    fn a_marker_says_the_positions_a_source_gave_over_the_last_origin_routed() {
        let (tx, rx) = flume::unbounded();
        let mut router = Router::new(Arc::new(ByValue), 0, vec![tx], spares());
        let at = |stream, seq| Origin {
            stream,
            seq,
            sub: 0,
        };
        router.emit_from(at(5, 3), 1);
        // Messages of 5 up to 7 were read, and refused or filtered out; 6 came as far as 9.
        router.positions(&[at(5, 7), at(6, 9)]);
        drop(router);
        let (markers, _) = received(&rx);
        assert_eq!(markers, [(5, 7), (6, 9)]);
    }

    #[test]
    fn the_same_key_always_hashes_the_same() {
        assert_eq!(key_hasher().hash_one("a"), key_hasher().hash_one("a"));
    }
}
