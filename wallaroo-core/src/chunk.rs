//! The channel from the threads that encode a sink's messages to the sink's thread: chunks
//! of encoded bytes one way, emptied buffers the other, so that encoding does not allocate.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use crate::latency::Histogram;
use crate::pool::Pool;

/// Emptied chunk buffers kept for reuse, per sink.
const SPARE_CHUNKS: usize = 64;

/// A producer's end of a sink: where chunks go, and where emptied buffers come back, so
/// that encoding into a new chunk does not allocate.
#[derive(Clone)]
pub(crate) struct ChunkSender {
    pub(crate) tx: flume::Sender<Vec<u8>>,
    pub(crate) spare: Pool<Vec<u8>>,
    /// Whether chunks say where each message ends (a trailer, see
    /// [`connector::append_trailer`]), for a connector that takes messages one at a time.
    pub(crate) framed: bool,
    /// Whether each message goes with its key ([`connector::SinkConnector::wants_keys`]).
    pub(crate) keyed: bool,
    /// What the producers handed to the sink, counted per chunk.
    pub(crate) stats: Arc<SinkStats>,
}

/// Counters of a sink, added to once per chunk handed to it (never per message).
#[derive(Debug, Default)]
pub(crate) struct SinkStats {
    /// Messages encoded and handed to the sink.
    pub(crate) messages: AtomicU64,
    /// Their bytes, as encoded (with a connector's trailer).
    pub(crate) bytes: AtomicU64,
    /// How long they took from their read to their hand-off, observed per chunk.
    pub(crate) latency: Histogram,
    /// Nanoseconds producers waited for room in the sink's full channel.
    pub(crate) blocked_nanos: AtomicU64,
    /// Connections the sink made to its receiver (a TCP sink; the first one included).
    pub(crate) connections: AtomicU64,
}

impl SinkStats {
    /// Counts a chunk of `messages` messages and `bytes` bytes.
    pub(crate) fn chunk(&self, messages: u64, bytes: usize) {
        self.messages.fetch_add(messages, Ordering::Relaxed);
        self.bytes.fetch_add(bytes as u64, Ordering::Relaxed);
    }

    /// Counts a wait of `nanos` for room in the channel.
    pub(crate) fn blocked(&self, nanos: u64) {
        self.blocked_nanos.fetch_add(nanos, Ordering::Relaxed);
    }
}

/// The sink thread's end.
pub(crate) struct ChunkReceiver {
    pub(crate) rx: flume::Receiver<Vec<u8>>,
    spare: Pool<Vec<u8>>,
    /// The producers' counters, which the sink adds its own to.
    pub(crate) stats: Arc<SinkStats>,
}

impl ChunkReceiver {
    /// Hands a written chunk's buffer back to the producers.
    pub(crate) fn give_back(&self, mut chunk: Vec<u8>) {
        chunk.clear();
        self.spare.give(chunk);
    }
}

/// The channel of a sink, holding at most `queue` chunks (backpressure); `framed` for a
/// sink that takes messages one at a time, `keyed` for one that takes them with their keys.
pub(crate) fn chunk_channel(
    queue: usize,
    framed: bool,
    keyed: bool,
) -> (ChunkSender, ChunkReceiver) {
    let (tx, rx) = flume::bounded(queue);
    let spare = Pool::new(SPARE_CHUNKS);
    let stats: Arc<SinkStats> = Arc::default();
    (
        ChunkSender {
            tx,
            spare: spare.clone(),
            framed,
            keyed: framed && keyed,
            stats: Arc::clone(&stats),
        },
        ChunkReceiver { rx, spare, stats },
    )
}
