//! Sinks: one thread per output, writing the bytes that the pipelines' threads encoded.
//!
//! Encoding happens on the threads that produce the messages (see the chain's sink link),
//! so a sink only moves bytes: it gathers the chunks that are ready, writes them, and
//! flushes when its channel runs dry, so output leaves promptly at low load and in large
//! writes at high load.

pub mod ack;
pub mod connector;
mod stream;
mod tcp;
mod window;

use std::io::{self, IoSlice, Write};
use std::sync::Arc;
use std::thread::JoinHandle;

pub(crate) use crate::chunk::{chunk_channel, Chunk, ChunkReceiver, ChunkSender, SinkStats, Stamp};
use crate::context::{Control, KafkaSettings, RunError};
use crate::endpoint::Output;

/// A started sink's thread; it ends when every producer is gone and its output is written.
pub(crate) type SinkThread = JoinHandle<Result<(), RunError>>;

/// What a sink writes to.
pub(crate) enum WriteTo {
    /// An endpoint of the command line.
    Output(Output),
    /// A connector of the user's.
    Connector(Box<dyn connector::SinkConnector>),
}

impl WriteTo {
    /// The kind and address shown in the topology.
    pub(crate) fn describe(&self) -> (String, String) {
        match self {
            WriteTo::Output(output) => (output.kind().to_string(), output.to_string()),
            WriteTo::Connector(connector) => {
                let info = connector.info();
                (info.kind, info.address)
            }
        }
    }
}

impl WriteTo {
    /// Whether the sink takes messages one at a time: their encoders put each behind its
    /// length.
    pub(crate) fn frames_messages(&self) -> bool {
        matches!(
            self,
            WriteTo::Connector(_) | WriteTo::Output(Output::Kafka(_))
        )
    }

    /// Whether the sink takes each message with the key of the state it came from.
    pub(crate) fn wants_keys(&self) -> bool {
        match self {
            WriteTo::Connector(connector) => connector.wants_keys(),
            WriteTo::Output(output) => matches!(output, Output::Kafka(_)),
        }
    }
}

/// Starts the sink for `to`, fed by `rx`.
pub(crate) fn start(
    to: WriteTo,
    rx: ChunkReceiver,
    control: Arc<Control>,
    kafka: &KafkaSettings,
) -> Result<SinkThread, RunError> {
    let output = match to {
        WriteTo::Output(output) => output,
        WriteTo::Connector(connector) => return Ok(connector::start(connector, rx, control)),
    };
    let spawn = |name: &str, f: Box<dyn FnOnce() -> Result<(), RunError> + Send>| {
        std::thread::Builder::new()
            .name(name.into())
            .spawn(f)
            .expect("cannot spawn a sink thread")
    };
    match output {
        Output::Tcp(address) => {
            // Numbers the TCP sinks of the process, for their streams' names.
            static TCP_SINKS: std::sync::atomic::AtomicUsize =
                std::sync::atomic::AtomicUsize::new(0);
            let index = TCP_SINKS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let name = ack::stream_name(&kafka.app, index, &address);
            Ok(spawn(
                "wallaroo-sink",
                Box::new(move || tcp::run(&address, &name, ack::DEFAULT_WINDOW, &rx, &control)),
            ))
        }
        Output::File(path) => {
            let file = std::fs::File::create(&path).map_err(|source| RunError::Open {
                what: "output file".into(),
                path: path.clone(),
                source,
            })?;
            let name = format!("file:{}", path.display());
            Ok(spawn(
                "wallaroo-sink",
                Box::new(move || stream::run(&name, file, &rx)),
            ))
        }
        Output::Stdout => Ok(spawn(
            "wallaroo-sink",
            Box::new(move || stream::run("standard output", std::io::stdout(), &rx)),
        )),
        #[cfg(feature = "kafka")]
        Output::Kafka(topic) => Ok(connector::start(
            Box::new(crate::kafka::KafkaSink::new(
                topic.clone(),
                kafka.options(&format!("--out kafka:{topic}"))?,
            )),
            rx,
            control,
        )),
        #[cfg(not(feature = "kafka"))]
        Output::Kafka(topic) => Err(RunError::Usage(format!(
            "error: --out kafka:{topic}, but this application was built without Kafka: build it \
             with `--features kafka`"
        ))),
        Output::Missing { index } => Err(RunError::Usage(format!(
            "error: --out is missing address #{}",
            index + 1
        ))),
    }
}

/// Chunks written with one call at most (a `writev`'s vector).
const MAX_GATHERED: usize = 64;

/// Takes what is ready on `rx` after `first`, up to about `limit` bytes, into `batch`.
// Why chunks and not one buffer: the bytes are written where the encoders put them, with
// one vectored write, never copied again on this thread.
pub(crate) fn gather(first: Chunk, rx: &ChunkReceiver, batch: &mut Vec<Chunk>, limit: usize) {
    let mut bytes = first.bytes.len();
    batch.push(first);
    while bytes < limit && batch.len() < MAX_GATHERED {
        match rx.rx.try_recv() {
            Ok(chunk) => {
                bytes += chunk.bytes.len();
                batch.push(chunk);
            }
            Err(_) => break,
        }
    }
}

/// Writes every byte of `chunks`, in order, with as few (vectored) writes as it takes.
pub(crate) fn write_chunks<C: AsRef<[u8]>>(out: &mut impl Write, chunks: &[C]) -> io::Result<()> {
    let mut vector = [IoSlice::new(&[]); MAX_GATHERED];
    for chunks in chunks.chunks(MAX_GATHERED) {
        for (slot, chunk) in vector.iter_mut().zip(chunks) {
            *slot = IoSlice::new(chunk.as_ref());
        }
        let mut slices = &mut vector[..chunks.len()];
        IoSlice::advance_slices(&mut slices, 0);
        while !slices.is_empty() {
            match out.write_vectored(slices) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => IoSlice::advance_slices(&mut slices, n),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }
    Ok(())
}

/// Observes the latency of the chunks of `batch`, just written (the write call returned),
/// and hands their buffers back to the producers; leaves `batch` empty.
pub(crate) fn written(rx: &ChunkReceiver, batch: &mut Vec<Chunk>) {
    rx.stats.written(batch.iter().filter_map(Chunk::stamp));
    for chunk in batch.drain(..) {
        rx.give_back(chunk.bytes);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(batch: &[Chunk]) -> Vec<&[u8]> {
        batch.iter().map(|c| &c.bytes[..]).collect()
    }

    #[test]
    fn gather_takes_what_is_ready_up_to_the_limit() {
        let (tx, rx) = chunk_channel(10, false, false);
        for chunk in [b"bb".to_vec(), b"cc".to_vec(), b"dd".to_vec()] {
            tx.tx.send(Chunk::bytes(chunk)).unwrap();
        }
        let mut batch = Vec::new();
        gather(Chunk::bytes(b"aa".to_vec()), &rx, &mut batch, 5);
        assert_eq!(texts(&batch), [b"aa", b"bb", b"cc"]);
        written(&rx, &mut batch);
        assert!(batch.is_empty());
        gather(Chunk::bytes(b"x".to_vec()), &rx, &mut batch, 100);
        assert_eq!(texts(&batch), [&b"x"[..], b"dd"]);
        written(&rx, &mut batch);
        // The written chunks' buffers come back, empty.
        let spares: Vec<Vec<u8>> = std::iter::from_fn(|| tx.spare.take()).collect();
        assert_eq!(spares.len(), 5);
        assert!(spares.iter().all(Vec::is_empty));
    }

    /// A writer that takes at most `max` bytes per call, and fails once when asked to.
    struct Trickle {
        written: Vec<u8>,
        max: usize,
        interrupt: bool,
    }

    impl Write for Trickle {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            if std::mem::take(&mut self.interrupt) {
                return Err(io::ErrorKind::Interrupted.into());
            }
            let n = buf.len().min(self.max);
            self.written.extend_from_slice(&buf[..n]);
            Ok(n)
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn write_chunks_writes_every_byte_in_order_across_short_writes() {
        // More chunks than one vector holds, some empty, written 3 bytes at a time.
        let chunks: Vec<Vec<u8>> = (0..MAX_GATHERED as u8 + 10)
            .map(|i| vec![i; usize::from(i % 4)])
            .collect();
        let mut out = Trickle {
            written: Vec::new(),
            max: 3,
            interrupt: true,
        };
        write_chunks(&mut out, &chunks).unwrap();
        assert_eq!(out.written, chunks.concat());
    }

    #[test]
    fn write_chunks_reports_a_writer_that_takes_nothing() {
        let mut out = Trickle {
            written: Vec::new(),
            max: 0,
            interrupt: false,
        };
        let e = write_chunks(&mut out, &[b"abc".to_vec()]).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::WriteZero);
    }
}
