//! The channel from the threads that encode a sink's messages to the sink's thread: chunks
//! of encoded bytes one way, emptied buffers the other, so that encoding does not allocate.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use crate::latency::Histogram;
use crate::pool::Pool;

/// Emptied chunk buffers kept for reuse, per sink.
const SPARE_CHUNKS: usize = 64;

/// A producer's end of a sink: where chunks go, and where emptied buffers come back, so
/// that encoding into a new chunk does not allocate.
#[derive(Clone)]
pub(crate) struct ChunkSender {
    pub(crate) tx: flume::Sender<Chunk>,
    pub(crate) spare: Pool<Vec<u8>>,
    /// Whether chunks say where each message ends (a trailer, see
    /// [`connector::append_trailer`]), for a connector that takes messages one at a time.
    pub(crate) framed: bool,
    /// Whether each message goes with its key ([`connector::SinkConnector::wants_keys`]).
    pub(crate) keyed: bool,
    /// What the producers handed to the sink, counted per chunk.
    pub(crate) stats: Arc<SinkStats>,
}

/// Encoded messages on their way to the sink's thread, with what it needs to observe their
/// latency once it has written them.
#[derive(Debug, Default, PartialEq)]
pub(crate) struct Chunk {
    /// The messages, as encoded (with a connector's trailer).
    pub(crate) bytes: Vec<u8>,
    /// How many messages `bytes` holds.
    pub(crate) messages: u64,
    /// When the first of them was read, if its source said: the chunk's latency is
    /// measured from it, for all of its messages.
    pub(crate) read_at: Option<Instant>,
}

impl Chunk {
    /// A chunk of `bytes` with no message counted and no read time, for tests.
    #[cfg(test)]
    pub(crate) fn bytes(bytes: Vec<u8>) -> Self {
        Chunk {
            bytes,
            messages: 0,
            read_at: None,
        }
    }

    /// The time stamp the sink observes once the chunk is written: its messages and when
    /// the first was read; none for a chunk without a read time or without messages.
    pub(crate) fn stamp(&self) -> Option<Stamp> {
        match self.read_at {
            Some(read_at) if self.messages > 0 => Some(Stamp {
                read_at,
                messages: self.messages,
            }),
            _ => None,
        }
    }
}

impl AsRef<[u8]> for Chunk {
    fn as_ref(&self) -> &[u8] {
        &self.bytes
    }
}

/// What a sink observes of a chunk once it has written it.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Stamp {
    /// When the chunk's first message was read.
    pub(crate) read_at: Instant,
    /// The chunk's messages.
    pub(crate) messages: u64,
}

/// Counters of a sink, added to once per chunk handed to it (never per message).
#[derive(Debug, Default)]
pub(crate) struct SinkStats {
    /// Messages encoded and handed to the sink.
    pub(crate) messages: AtomicU64,
    /// Their bytes, as encoded (with a connector's trailer).
    pub(crate) bytes: AtomicU64,
    /// How long they took from their read to the sink's write of them, observed by the
    /// sink's thread per chunk, once the write returned.
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

    /// Observes the latency of chunks just written: from each one's first read to now,
    /// for all of its messages. One clock read for them all.
    pub(crate) fn written(&self, stamps: impl IntoIterator<Item = Stamp>) {
        let mut now = None;
        for stamp in stamps {
            let now = *now.get_or_insert_with(Instant::now);
            self.latency
                .observe_between(stamp.read_at, now, stamp.messages);
        }
    }
}

/// The sink thread's end.
pub(crate) struct ChunkReceiver {
    pub(crate) rx: flume::Receiver<Chunk>,
    spare: Pool<Vec<u8>>,
    /// The producers' counters, which the sink adds its own to.
    pub(crate) stats: Arc<SinkStats>,
}

impl ChunkReceiver {
    /// Hands a written chunk's buffer back to the producers.
    pub(crate) fn give_back(&self, mut buffer: Vec<u8>) {
        buffer.clear();
        self.spare.give(buffer);
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
