//! The per-thread chain a message travels through: fused stateless steps, ending in a
//! router (to a state partition's workers), a sink encoder, or nothing.
//!
//! The builder composes the chain as [`Downstream`] factories; each thread that feeds a
//! pipeline (a source connection, a worker) instantiates its own chain, so buffers are
//! never shared and the hot path takes no lock.

use std::marker::PhantomData;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use crate::cache::prefetch_ahead;
use crate::codec::Encoder;
use crate::context::Ctx;
use crate::resilience::record::Origin;
use crate::sink::{Chunk, ChunkSender};
use crate::step::{Computation, Emit};

/// One link of a chain: takes messages, and passes on what it buffered when flushed.
///
/// Links sit behind pointers ([`BoxLink`]), so each call is an indirect one that the
/// compiler cannot inline; threads that have many messages at hand pass them all with one
/// [`Link::emit_all`] call, inside which the link's own work (the router's, the encoder's)
/// is inlined into one loop.
///
/// A message's replay position travels with it, as an argument: [`Emit::emit`] and
/// [`Link::emit_all`] take messages without one, [`Link::emit_from`] a message with one.
pub(crate) trait Link<T>: Emit<T> + Send {
    /// Takes `msg`, the message of a replayable stream at `origin`; the messages it
    /// becomes down the chain keep the origin, so that a state partition recognises each
    /// when the stream is replayed.
    fn emit_from(&mut self, origin: Origin, msg: T);
    /// Takes every message of `msgs`, in order, leaving it empty (its capacity is kept):
    /// messages without an origin.
    fn emit_all(&mut self, msgs: &mut Vec<T>);
    /// Notes how far each replayable stream this chain's source reads has come (the last
    /// origin of each, of messages passed on or not: a payload refused, a message a step
    /// filtered out), for the markers of the router at the chain's end. A chain without a
    /// router has nothing to mark.
    fn positions(&mut self, _positions: &[Origin]) {}
    /// Sends on whatever this link or the links after it have buffered.
    fn flush(&mut self);
    /// Whether a sink down this chain writes each message's key ([`set_output_key`]).
    fn wants_keys(&self) -> bool {
        false
    }
}

/// A chain link behind a pointer.
pub(crate) type BoxLink<T> = Box<dyn Link<T>>;

/// Builds, for one thread, the chain that takes messages of type `T`.
pub(crate) type Downstream<T> = Arc<dyn Fn(&Ctx) -> BoxLink<T> + Send + Sync>;

/// The messages a stateless step took and passed on, over every thread it runs on: each
/// thread's link counts into plain fields and adds them here once per flush.
#[derive(Debug, Default)]
pub(crate) struct StepCounts {
    /// Messages the step took.
    pub(crate) taken: AtomicU64,
    /// Messages the step passed on (none for a message it filtered out, several for one it
    /// fanned out).
    pub(crate) given: AtomicU64,
}

/// What a pipeline counts besides its source's and sinks' counters: its stateless steps'
/// messages in and out, and the time its source waited on full worker channels.
#[derive(Debug, Default)]
pub(crate) struct FlowCounts {
    /// Nanoseconds the router on the source's threads (to the pipeline's first state
    /// partition) waited for room in a full worker channel.
    pub(crate) source_blocked_nanos: Arc<AtomicU64>,
    /// The stateless steps, in order: their names and counts.
    pub(crate) steps: Vec<(String, Arc<StepCounts>)>,
    /// The window states, in order: their names and the late messages they dropped.
    pub(crate) windows: Vec<(String, Arc<AtomicU64>)>,
}

/// A step link's counts not yet added to its [`StepCounts`].
pub(crate) struct StepTally {
    counts: Arc<StepCounts>,
    pub(crate) taken: u64,
    pub(crate) given: u64,
}

impl StepTally {
    pub(crate) fn new(counts: Arc<StepCounts>) -> Self {
        StepTally {
            counts,
            taken: 0,
            given: 0,
        }
    }

    /// Adds what was counted since the last call to the shared counts: once per flush,
    /// not per message.
    pub(crate) fn publish(&mut self) {
        if self.taken != 0 || self.given != 0 {
            self.counts.taken.fetch_add(self.taken, Ordering::Relaxed);
            self.counts.given.fetch_add(self.given, Ordering::Relaxed);
            self.taken = 0;
            self.given = 0;
        }
    }
}

/// Passes messages on to `next`, counting them into a plain field.
struct Counting<'a, E: ?Sized> {
    next: &'a mut E,
    count: &'a mut u64,
}

impl<T, E: Emit<T> + ?Sized> Emit<T> for Counting<'_, E> {
    #[inline]
    fn emit(&mut self, msg: T) {
        *self.count += 1;
        self.next.emit(msg);
    }
}

/// Passes messages on to `next` as of `origin`, counting them into a plain field: the
/// outputs of a message with an origin.
struct CountingFrom<'a, E: ?Sized> {
    next: &'a mut E,
    origin: Origin,
    count: &'a mut u64,
}

impl<T, E: Link<T> + ?Sized> Emit<T> for CountingFrom<'_, E> {
    #[inline]
    fn emit(&mut self, msg: T) {
        *self.count += 1;
        self.next.emit_from(self.origin, msg);
    }
}

/// A stateless step fused into the chain.
pub(crate) struct StepLink<C: Computation<In>, In> {
    step: Arc<C>,
    next: BoxLink<C::Out>,
    /// The outputs of one [`Link::emit_all`], passed on together.
    out: Vec<C::Out>,
    /// Messages in and out since the last flush.
    tally: StepTally,
    _in: PhantomData<fn(In)>,
}

impl<C: Computation<In>, In> StepLink<C, In> {
    pub(crate) fn new(step: Arc<C>, next: BoxLink<C::Out>, counts: Arc<StepCounts>) -> Self {
        StepLink {
            step,
            next,
            out: Vec::new(),
            tally: StepTally::new(counts),
            _in: PhantomData,
        }
    }
}

impl<C: Computation<In>, In> Emit<In> for StepLink<C, In> {
    #[inline]
    fn emit(&mut self, msg: In) {
        self.tally.taken += 1;
        let mut next = Counting {
            next: &mut self.next,
            count: &mut self.tally.given,
        };
        self.step.compute(msg, &mut next);
    }
}

impl<C: Computation<In>, In> Link<In> for StepLink<C, In> {
    #[inline]
    fn emit_from(&mut self, origin: Origin, msg: In) {
        self.tally.taken += 1;
        let mut next = CountingFrom {
            next: &mut *self.next,
            origin,
            count: &mut self.tally.given,
        };
        self.step.compute(msg, &mut next);
    }

    fn emit_all(&mut self, msgs: &mut Vec<In>) {
        // Counted per run of messages, not per message.
        self.tally.taken += msgs.len() as u64;
        for msg in msgs.drain(..) {
            self.step.compute(msg, &mut self.out);
        }
        self.tally.given += self.out.len() as u64;
        self.next.emit_all(&mut self.out);
    }

    fn positions(&mut self, positions: &[Origin]) {
        self.next.positions(positions);
    }

    fn flush(&mut self) {
        self.tally.publish();
        self.next.flush();
    }

    fn wants_keys(&self) -> bool {
        self.next.wants_keys()
    }
}

/// The end of a pipeline without a sink: outputs are dropped.
pub(crate) struct Discard;

impl<T> Emit<T> for Discard {
    #[inline]
    fn emit(&mut self, _msg: T) {}
}

impl<T> Link<T> for Discard {
    fn emit_from(&mut self, _origin: Origin, _msg: T) {}

    fn emit_all(&mut self, msgs: &mut Vec<T>) {
        msgs.clear();
    }

    fn flush(&mut self) {}
}

/// The state key of the outputs a worker passes on now, as text; its buffer is kept from one
/// key to the next, so that keying outputs does not allocate.
struct OutputKey {
    text: Vec<u8>,
    /// Whether there is a key: outside a state computation's outputs there is none.
    set: bool,
}

thread_local! {
    /// The key of the outputs passed on now on this thread ([`set_output_key`]).
    static OUTPUT_KEY: std::cell::RefCell<OutputKey> = const {
        std::cell::RefCell::new(OutputKey { text: Vec::new(), set: false })
    };
}

/// Says that the outputs passed on from now on, on this thread, come from the state of
/// `key` (`None`: from no state), for sinks that key their records.
///
/// The key is written as text: a key that serializes as a string is that string, any other
/// its JSON (`7`, `[1,"a"]`).
pub(crate) fn set_output_key<K: serde::Serialize>(key: Option<&K>) {
    OUTPUT_KEY.with(|slot| {
        let slot = &mut *slot.borrow_mut();
        slot.text.clear();
        // A key that JSON cannot write (a map with keys other than strings): no key.
        slot.set = key.is_some_and(|key| serde_json::to_writer(&mut slot.text, key).is_ok());
        if slot.set && slot.text.first() == Some(&b'"') {
            if !slot.text.contains(&b'\\') {
                // No escape: the string is what is between the quotes.
                slot.text.pop();
                slot.text.remove(0);
            } else if let Ok(plain) = serde_json::from_slice::<String>(&slot.text) {
                slot.text.clear();
                slot.text.extend_from_slice(plain.as_bytes());
            }
        }
    });
}

/// Bytes a sink link gathers before it hands them to the sink thread.
pub(crate) const SINK_CHUNK: usize = 64 * 1024;

/// Bytes ahead of the encoder's next write whose cache line a sink link asks for.
// Why: a chunk's buffer comes back from the sink thread, on another core, whose write of it
// read every line; asked ahead, each line's transfer overlaps the encoding before it
// (the router does the same with its batches). Measured with `cargo bench --bench e2e --
// --section compare --systems wallaroo-2 --rate 0`, alternating builds with and without,
// both built with `-C llvm-args=-align-loops=64`: ratio of a pair's two runs, median 1.07
// (ahead in 10 of 14 pairs), and medians 22.5 -> 23.3 M msg/s in 10 more runs each.
const ENCODE_PREFETCH_AHEAD: usize = 256;

/// Encodes messages into a buffer owned by this thread and hands full buffers to the
/// sink's thread: one channel send per chunk, not per message.
// Why the alignment: links are built on one thread and used on another; a link sharing a
// cache line with other hot data slows every message down (false sharing).
// Why `KEYED` a parameter: a field checked per message cost 2 instructions a message on
// every chain (callgrind, Alphabet over TCP); as a constant, the check is compiled out.
#[repr(align(128))]
pub(crate) struct SinkLink<E, T, const KEYED: bool> {
    encoder: Arc<E>,
    buf: Vec<u8>,
    tx: ChunkSender,
    /// Hand off only when flushed (output must wait for the state log's sync).
    hold: bool,
    /// Whether the sink takes messages one at a time: then `ends` notes where each ends.
    framed: bool,
    /// Where each message of `buf` ends, for a sink that takes them one at a time; sent
    /// after them as the chunk's trailer ([`crate::sink::connector`]).
    ends: Vec<u32>,
    /// Messages in `buf`, counted into the sink's stats when it is handed off.
    count: u64,
    /// When the first message of `buf` was read, if its source said.
    first_read: Option<Instant>,
    _t: PhantomData<fn(T)>,
}

/// The link that encodes a chain's messages into the sink `tx`, holding output until
/// flushed if `hold`; one that writes each message's key when the sink wants keys
/// ([`SinkLink`]'s `KEYED`).
pub(crate) fn sink_link<E: Encoder<T>, T: Send + 'static>(
    encoder: Arc<E>,
    tx: ChunkSender,
    hold: bool,
) -> BoxLink<T> {
    if tx.keyed {
        Box::new(SinkLink::<E, T, true>::new(encoder, tx, hold))
    } else {
        Box::new(SinkLink::<E, T, false>::new(encoder, tx, hold))
    }
}

/// A [`TeeLink`] to the sink `tx`, then on to `next`; see [`sink_link`].
pub(crate) fn tee_link<E: Encoder<T>, T: Send + 'static>(
    encoder: Arc<E>,
    tx: ChunkSender,
    hold: bool,
    next: BoxLink<T>,
) -> BoxLink<T> {
    if tx.keyed {
        let sink = SinkLink::<E, T, true>::new(encoder, tx, hold);
        Box::new(TeeLink::new(sink, next))
    } else {
        let sink = SinkLink::<E, T, false>::new(encoder, tx, hold);
        Box::new(TeeLink::new(sink, next))
    }
}

impl<E: Encoder<T>, T, const KEYED: bool> SinkLink<E, T, KEYED> {
    fn new(encoder: Arc<E>, tx: ChunkSender, hold: bool) -> Self {
        SinkLink {
            encoder,
            buf: Vec::with_capacity(SINK_CHUNK),
            framed: tx.framed,
            tx,
            hold,
            ends: Vec::new(),
            count: 0,
            first_read: None,
            _t: PhantomData,
        }
    }

    fn hand_off(&mut self) {
        let spare = self
            .tx
            .spare
            .take()
            .unwrap_or_else(|| Vec::with_capacity(SINK_CHUNK));
        if self.framed {
            crate::sink::connector::append_trailer(&mut self.buf, &self.ends, KEYED);
            self.ends.clear();
        }
        let bytes = std::mem::replace(&mut self.buf, spare);
        self.tx.stats.chunk(self.count, bytes.len());
        // The latency is observed by the sink's thread once it has written the chunk, not
        // here: the wait in its channel and for its receiver is part of a message's latency.
        let chunk = Chunk {
            bytes,
            messages: self.count,
            read_at: self.first_read.take(),
        };
        let (sent, waited) = crate::latency::send_timed(&self.tx.tx, chunk);
        if waited > 0 {
            crate::latency::add_blocked(waited);
            self.tx.stats.blocked(waited);
        }
        self.count = 0;
        // The sink thread only goes away when the application stops; what is left then is
        // reported by the sink itself.
        if !sent {
            tracing::error!("sink stopped; output dropped");
        }
    }
}

impl<E: Encoder<T>, T, const KEYED: bool> SinkLink<E, T, KEYED> {
    #[inline]
    fn encode(&mut self, msg: &T) {
        if KEYED {
            self.put_key();
        }
        prefetch_ahead(&self.buf, ENCODE_PREFETCH_AHEAD);
        self.encoder.encode(msg, &mut self.buf);
        // Why after, not a length before: one call of the encoder, so that it stays inlined
        // (a second call for sink connectors cost 16 instructions a message, Alphabet).
        if self.framed {
            self.ends.push(self.buf.len() as u32);
        }
        if self.buf.len() >= SINK_CHUNK && !self.hold {
            self.hand_off();
        }
    }
}

impl<E, T, const KEYED: bool> SinkLink<E, T, KEYED> {
    /// Counts `n` messages about to be encoded; the first of a chunk notes when it was read.
    #[inline(always)]
    fn count_in(&mut self, n: u64) {
        if self.count == 0 {
            self.first_read = crate::latency::read_at();
        }
        self.count += n;
    }

    /// Writes the key of the message about to be encoded, and where it ends
    /// ([`crate::sink::connector::NO_KEY`] for a message without one).
    #[cold]
    fn put_key(&mut self) {
        let end = OUTPUT_KEY.with(|key| {
            let key = key.borrow();
            if key.set {
                self.buf.extend_from_slice(&key.text);
                self.buf.len() as u32
            } else {
                crate::sink::connector::NO_KEY
            }
        });
        self.ends.push(end);
    }
}

impl<E: Encoder<T>, T, const KEYED: bool> Emit<T> for SinkLink<E, T, KEYED> {
    #[inline]
    fn emit(&mut self, msg: T) {
        self.count_in(1);
        self.encode(&msg);
    }
}

impl<E: Encoder<T>, T: Send, const KEYED: bool> Link<T> for SinkLink<E, T, KEYED> {
    /// A sink writes what it is given; where it came from is no part of the output.
    #[inline]
    fn emit_from(&mut self, _origin: Origin, msg: T) {
        self.emit(msg);
    }

    fn emit_all(&mut self, msgs: &mut Vec<T>) {
        self.count_in(msgs.len() as u64);
        for msg in msgs.drain(..) {
            self.encode(&msg);
        }
    }

    fn flush(&mut self) {
        if !self.buf.is_empty() || !self.ends.is_empty() {
            self.hand_off();
        }
    }

    fn wants_keys(&self) -> bool {
        KEYED
    }
}

/// Encodes each message into a sink by reference, then passes it on.
pub(crate) struct TeeLink<E, T, const KEYED: bool> {
    sink: SinkLink<E, T, KEYED>,
    next: BoxLink<T>,
}

impl<E: Encoder<T>, T, const KEYED: bool> TeeLink<E, T, KEYED> {
    fn new(sink: SinkLink<E, T, KEYED>, next: BoxLink<T>) -> Self {
        TeeLink { sink, next }
    }
}

impl<E: Encoder<T>, T, const KEYED: bool> Emit<T> for TeeLink<E, T, KEYED> {
    #[inline]
    fn emit(&mut self, msg: T) {
        self.sink.count_in(1);
        self.sink.encode(&msg);
        self.next.emit(msg);
    }
}

impl<E: Encoder<T>, T: Send, const KEYED: bool> Link<T> for TeeLink<E, T, KEYED> {
    /// The sink writes the message; the links after it take it with its origin.
    #[inline]
    fn emit_from(&mut self, origin: Origin, msg: T) {
        self.sink.count_in(1);
        self.sink.encode(&msg);
        self.next.emit_from(origin, msg);
    }

    fn emit_all(&mut self, msgs: &mut Vec<T>) {
        self.sink.count_in(msgs.len() as u64);
        for msg in msgs.iter() {
            self.sink.encode(msg);
        }
        self.next.emit_all(msgs);
    }

    fn positions(&mut self, positions: &[Origin]) {
        self.next.positions(positions);
    }

    fn flush(&mut self) {
        self.sink.flush();
        self.next.flush();
    }

    fn wants_keys(&self) -> bool {
        KEYED || self.next.wants_keys()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key_text<K: serde::Serialize>(key: Option<&K>) -> Option<String> {
        set_output_key(key);
        OUTPUT_KEY.with(|k| {
            let k = k.borrow();
            k.set.then(|| String::from_utf8(k.text.clone()).unwrap())
        })
    }

    struct Bytes;

    impl Encoder<u8> for Bytes {
        fn info(&self) -> &'static crate::component::ComponentInfo {
            unimplemented!("not used by these tests")
        }
        fn encode(&self, msg: &u8, out: &mut Vec<u8>) {
            out.push(*msg);
        }
    }

    #[test]
    fn a_sink_link_counts_per_chunk_stamps_chunks_and_times_only_a_wait_for_room() {
        let (tx, rx) = crate::sink::chunk_channel(1, false, false);
        let stats = Arc::clone(&tx.stats);
        let mut link = sink_link(Arc::new(Bytes), tx, false);
        let read_at = Instant::now();
        crate::latency::set_read_at(Some(read_at));
        link.emit_all(&mut vec![1, 2, 3]);
        link.flush();
        // The channel had room: no wait.
        assert_eq!(
            stats
                .blocked_nanos
                .load(std::sync::atomic::Ordering::Relaxed),
            0
        );
        let taker = std::thread::spawn(move || {
            std::thread::sleep(std::time::Duration::from_millis(50));
            let first = rx.rx.recv().unwrap();
            let second = rx.rx.recv().unwrap();
            (first, second)
        });
        link.emit(4);
        link.flush();
        let (first, second) = taker.join().unwrap();
        assert_eq!(
            (&first.bytes[..], &second.bytes[..]),
            (&[1, 2, 3][..], &[4][..])
        );
        // Each chunk carries its messages and their read time to the sink's thread.
        assert_eq!((first.messages, first.read_at), (3, Some(read_at)));
        assert_eq!((second.messages, second.read_at), (1, Some(read_at)));
        let blocked = stats
            .blocked_nanos
            .load(std::sync::atomic::Ordering::Relaxed);
        assert!(blocked >= 10_000_000, "waited {blocked} ns");
        assert_eq!(crate::latency::blocked(), blocked, "the thread's own count");
        let ordering = std::sync::atomic::Ordering::Relaxed;
        assert_eq!(stats.messages.load(ordering), 4);
        assert_eq!(stats.bytes.load(ordering), 4);
        // The sink's thread observes the latency once it has written the chunks; the
        // hand-off does not.
        assert_eq!(stats.latency.snapshot().count(), 0);
    }

    #[test]
    fn an_output_key_is_its_string_or_its_json() {
        assert_eq!(key_text(Some(&"a")).as_deref(), Some("a"));
        assert_eq!(key_text(Some(&'z')).as_deref(), Some("z"));
        assert_eq!(
            key_text(Some(&"say \"hi\"\n")).as_deref(),
            Some("say \"hi\"\n")
        );
        assert_eq!(key_text(Some(&7u32)).as_deref(), Some("7"));
        assert_eq!(key_text(Some(&(1, "a"))).as_deref(), Some("[1,\"a\"]"));
        assert_eq!(key_text::<u32>(None), None);
        // A key JSON cannot write leaves the outputs without one.
        let map: std::collections::HashMap<(u8, u8), u8> = [((1, 2), 3)].into();
        assert_eq!(key_text(Some(&map)), None);
    }
}
