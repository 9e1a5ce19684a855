//! Sink connectors: how a pipeline writes to a system that wallaroo ships no sink for.
//!
//! A [`SinkConnector`] runs on a thread of its own and takes batches of encoded messages
//! from a [`SinkOutput`]: each message as the pipeline's `#[encoder]` wrote it, one at a
//! time, so that a connector can make each a record of its system.
//!
//! ```no_run
//! use std::io::Write;
//! use std::time::Duration;
//! use wallaroo_core::connector::{ConnectorError, ConnectorInfo, Received, SinkConnector, SinkOutput};
//!
//! /// Writes each message as one line of standard error.
//! struct Stderr;
//!
//! impl SinkConnector for Stderr {
//!     fn info(&self) -> ConnectorInfo {
//!         ConnectorInfo::new("stderr", "-")
//!     }
//!
//!     fn run(self: Box<Self>, mut output: SinkOutput) -> Result<(), ConnectorError> {
//!         let mut err = std::io::stderr().lock();
//!         loop {
//!             match output.recv(Duration::from_millis(100)) {
//!                 Received::Batch(batch) => {
//!                     for message in batch.messages() {
//!                         err.write_all(message).map_err(ConnectorError::io("write"))?;
//!                     }
//!                     output.done(batch);
//!                 }
//!                 Received::Idle => {}
//!                 Received::Ended => return Ok(()),
//!             }
//!         }
//!     }
//! }
//! ```

use std::sync::Arc;
use std::time::Duration;

use super::{Chunk, ChunkReceiver, SinkThread};
use crate::context::{Control, RunError};
use crate::endpoint::{ConnectorError, ConnectorInfo};

/// The trailer's count bit that says each message is a key and a value.
const KEYED: u32 = 1 << 31;

/// The end of a key that a message does not have.
pub(crate) const NO_KEY: u32 = u32::MAX;

/// Appends to a chunk of messages the trailer that says where each ends: each end's
/// offset, then their count, as little-endian `u32`s. In a `keyed` chunk each message is a
/// key and a value, with an end for each (the key's [`NO_KEY`] when it has none), and the
/// count's top bit is set.
///
/// ```text
/// chunk := message* | end: u32 LE (one per message, two when keyed) | count: u32 LE
/// ```
pub(crate) fn append_trailer(chunk: &mut Vec<u8>, ends: &[u32], keyed: bool) {
    chunk.reserve((ends.len() + 1) * 4);
    for end in ends {
        chunk.extend_from_slice(&end.to_le_bytes());
    }
    let count = if keyed {
        (ends.len() / 2) as u32 | KEYED
    } else {
        ends.len() as u32
    };
    chunk.extend_from_slice(&count.to_le_bytes());
}

/// A system a pipeline writes to. `run` is called once, on a thread of its own, when the
/// application starts; it takes what the pipelines encoded from `output` until
/// [`SinkOutput::recv`] says the application has ended, and makes sure every message it
/// took has reached its system before it returns.
///
/// Use it with `Sink::to_connector(connector, encoder)`.
pub trait SinkConnector: Send + 'static {
    /// What the connector writes to, for the topology and log lines.
    fn info(&self) -> ConnectorInfo;
    /// Writes, until the application ends.
    fn run(self: Box<Self>, output: SinkOutput) -> Result<(), ConnectorError>;
    /// Whether the connector takes each message with its key ([`SinkBatch::records`]): the
    /// key of the state whose computation produced it, as text (a key that serializes as a
    /// string is that string, any other its JSON). Off by default: keys cost a little.
    fn wants_keys(&self) -> bool {
        false
    }
}

/// What [`SinkOutput::recv`] found.
pub enum Received {
    /// Messages to write.
    Batch(SinkBatch),
    /// Nothing arrived in the time given: a chance to do periodic work.
    Idle,
    /// The application has stopped and every message was handed out.
    Ended,
}

/// Where a sink connector takes the encoded messages from.
pub struct SinkOutput {
    rx: ChunkReceiver,
    control: Arc<Control>,
}

impl SinkOutput {
    /// Waits up to `timeout` for the next batch of messages.
    pub fn recv(&mut self, timeout: Duration) -> Received {
        match self.rx.rx.recv_timeout(timeout) {
            Ok(chunk) => Received::Batch(SinkBatch { chunk }),
            Err(flume::RecvTimeoutError::Timeout) => Received::Idle,
            Err(flume::RecvTimeoutError::Disconnected) => Received::Ended,
        }
    }

    /// Says that `batch` is written, and hands its buffer back, so that the encoders reuse
    /// it. Its messages' latency (`wallaroo_latency_seconds`) ends now: call it once the
    /// batch is written to the connector's system (or handed to its client).
    pub fn done(&mut self, batch: SinkBatch) {
        self.rx.stats.written(batch.chunk.stamp());
        self.rx.give_back(batch.chunk.bytes);
    }

    /// Hands the buffer of a batch that was not written back, without observing its
    /// latency: its messages never left.
    #[cfg_attr(not(feature = "kafka"), allow(dead_code))]
    pub(crate) fn discard(&mut self, batch: SinkBatch) {
        self.rx.give_back(batch.chunk.bytes);
    }

    /// Whether the application is stopping: what is still to come will come, and
    /// [`SinkOutput::recv`] then says [`Received::Ended`].
    pub fn stopping(&self) -> bool {
        self.control.stopping()
    }
}

/// Messages as the pipeline's encoder wrote them, in order.
pub struct SinkBatch {
    chunk: Chunk,
}

impl SinkBatch {
    /// The messages, each as its encoder wrote it.
    pub fn messages(&self) -> Messages<'_> {
        Messages {
            records: self.records(),
        }
    }

    /// The messages with their keys, for a connector that [wants
    /// them](SinkConnector::wants_keys); otherwise every key is `None`.
    pub fn records(&self) -> Records<'_> {
        let (rest, count) = self.trailer();
        let keyed = count & KEYED != 0;
        let ends = (count & !KEYED) as usize * if keyed { 2 } else { 1 };
        let (bytes, ends) = rest.split_at(rest.len() - ends * 4);
        Records {
            bytes,
            ends: ends.chunks_exact(4),
            keyed,
            start: 0,
        }
    }

    /// How many messages the batch holds.
    pub fn len(&self) -> usize {
        (self.trailer().1 & !KEYED) as usize
    }

    /// Whether the batch holds no message.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn trailer(&self) -> (&[u8], u32) {
        let (rest, count) = self
            .chunk
            .bytes
            .split_last_chunk::<4>()
            .expect("a chunk's trailer");
        (rest, u32::from_le_bytes(*count))
    }
}

/// One message of a [`SinkBatch`] with the key of the state it came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Record<'a> {
    /// The key as text, when the message came from a state computation and the connector
    /// [wants keys](SinkConnector::wants_keys).
    pub key: Option<&'a [u8]>,
    /// The message as its encoder wrote it.
    pub value: &'a [u8],
}

/// The messages of a [`SinkBatch`] with their keys.
pub struct Records<'a> {
    bytes: &'a [u8],
    ends: std::slice::ChunksExact<'a, u8>,
    keyed: bool,
    start: usize,
}

impl<'a> Records<'a> {
    fn next_end(&mut self) -> Option<u32> {
        let end = self.ends.next()?;
        Some(u32::from_le_bytes(end.try_into().expect("4 bytes")))
    }

    fn take(&mut self, end: usize) -> &'a [u8] {
        let taken = &self.bytes[self.start..end];
        self.start = end;
        taken
    }
}

impl<'a> Iterator for Records<'a> {
    type Item = Record<'a>;

    fn next(&mut self) -> Option<Record<'a>> {
        let key = if self.keyed {
            match self.next_end()? {
                NO_KEY => None,
                end => Some(self.take(end as usize)),
            }
        } else {
            None
        };
        let end = self.next_end()? as usize;
        Some(Record {
            key,
            value: self.take(end),
        })
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = self.ends.len() / if self.keyed { 2 } else { 1 };
        (n, Some(n))
    }
}

impl ExactSizeIterator for Records<'_> {}

/// The messages of a [`SinkBatch`].
pub struct Messages<'a> {
    records: Records<'a>,
}

impl<'a> Iterator for Messages<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        self.records.next().map(|record| record.value)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.records.size_hint()
    }
}

impl ExactSizeIterator for Messages<'_> {}

/// Starts `connector` on a thread of its own, fed by `rx`.
pub(crate) fn start(
    connector: Box<dyn SinkConnector>,
    rx: ChunkReceiver,
    control: Arc<Control>,
) -> SinkThread {
    std::thread::Builder::new()
        .name("wallaroo-sink".into())
        .spawn(move || {
            let info = connector.info();
            tracing::info!("sink: writing to {} {}", info.kind, info.address);
            connector
                .run(SinkOutput { rx, control })
                .map_err(|error| RunError::Sink {
                    output: format!("{} {}", info.kind, info.address),
                    error,
                })
        })
        .expect("cannot spawn a sink thread")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_gives_back_each_message_as_written() {
        let mut chunk = Vec::new();
        let mut ends = Vec::new();
        for message in [&b"a => 1\n"[..], b"", b"bb => 22\n"] {
            chunk.extend_from_slice(message);
            ends.push(chunk.len() as u32);
        }
        append_trailer(&mut chunk, &ends, false);
        let batch = SinkBatch {
            chunk: Chunk::bytes(chunk),
        };
        assert_eq!(batch.len(), 3);
        let messages: Vec<&[u8]> = batch.messages().collect();
        assert_eq!(messages, [&b"a => 1\n"[..], b"", b"bb => 22\n"]);
        assert!(batch.records().all(|record| record.key.is_none()));

        let mut empty = Vec::new();
        append_trailer(&mut empty, &[], false);
        let batch = SinkBatch {
            chunk: Chunk::bytes(empty),
        };
        assert!(batch.is_empty());
        assert_eq!(batch.messages().count(), 0);
    }

    #[test]
    fn a_batchs_latency_ends_when_the_connector_says_it_is_done() {
        let (tx, rx) = super::super::chunk_channel(4, true, false);
        let stats = Arc::clone(&tx.stats);
        let (events, _) = flume::unbounded();
        let mut output = SinkOutput {
            rx,
            control: Arc::new(Control::new(events)),
        };
        let read_at = std::time::Instant::now();
        for _ in 0..2 {
            let mut bytes = b"a".to_vec();
            append_trailer(&mut bytes, &[1], false);
            let chunk = Chunk {
                bytes,
                messages: 1,
                read_at: Some(read_at),
            };
            tx.tx.send(chunk).unwrap();
        }
        let Received::Batch(batch) = output.recv(Duration::from_secs(1)) else {
            panic!("a batch");
        };
        std::thread::sleep(Duration::from_millis(50));
        assert_eq!(stats.latency.snapshot().count(), 0, "taken, not written");
        output.done(batch);
        let latency = stats.latency.snapshot();
        assert_eq!(latency.count(), 1);
        assert!(
            latency.sum >= 0.05,
            "the connector's time counts: {latency:?}"
        );
        // A batch given up on (never delivered) is not observed.
        let Received::Batch(batch) = output.recv(Duration::from_secs(1)) else {
            panic!("a batch");
        };
        output.discard(batch);
        assert_eq!(stats.latency.snapshot().count(), 1);
    }

    #[test]
    fn a_keyed_batch_gives_back_each_key_and_value() {
        let mut chunk = Vec::new();
        let mut ends = Vec::new();
        for (key, value) in [
            (Some(&b"a"[..]), &b"a => 1"[..]),
            (None, b"none"),
            (Some(b""), b""),
            (Some(b"[1,2]"), b"x"),
        ] {
            match key {
                Some(key) => {
                    chunk.extend_from_slice(key);
                    ends.push(chunk.len() as u32);
                }
                None => ends.push(NO_KEY),
            }
            chunk.extend_from_slice(value);
            ends.push(chunk.len() as u32);
        }
        append_trailer(&mut chunk, &ends, true);
        let batch = SinkBatch {
            chunk: Chunk::bytes(chunk),
        };
        assert_eq!(batch.len(), 4);
        assert_eq!(batch.records().len(), 4);
        let records: Vec<Record<'_>> = batch.records().collect();
        let expected = [
            (Some(&b"a"[..]), &b"a => 1"[..]),
            (None, b"none"),
            (Some(b""), b""),
            (Some(b"[1,2]"), b"x"),
        ];
        assert_eq!(records.len(), expected.len());
        for (record, (key, value)) in records.iter().zip(expected) {
            assert_eq!(record.key, key);
            assert_eq!(record.value, value);
        }
        let messages: Vec<&[u8]> = batch.messages().collect();
        assert_eq!(messages, [&b"a => 1"[..], b"none", b"", b"x"]);
    }
}
