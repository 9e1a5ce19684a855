//! Sinks: one thread per output, writing the bytes that the pipelines' threads encoded.
//!
//! Encoding happens on the threads that produce the messages (see the chain's sink link),
//! so a sink only moves bytes: it gathers the chunks that are ready, writes them, and
//! flushes when its channel runs dry, so output leaves promptly at low load and in large
//! writes at high load.

mod stream;
mod tcp;

use std::sync::Arc;
use std::thread::JoinHandle;

use crate::endpoint::Output;
use crate::runtime::{Control, RunError};

/// A started sink's thread; it ends when every producer is gone and its output is written.
pub(crate) type SinkThread = JoinHandle<Result<(), RunError>>;

/// Emptied chunk buffers kept for reuse, per sink.
const SPARE_CHUNKS: usize = 64;

/// A producer's end of a sink: where chunks go, and where emptied buffers come back, so
/// that encoding into a new chunk does not allocate.
#[derive(Clone)]
pub(crate) struct ChunkSender {
    pub(crate) tx: flume::Sender<Vec<u8>>,
    pub(crate) spare: flume::Receiver<Vec<u8>>,
}

/// The sink thread's end.
pub(crate) struct ChunkReceiver {
    pub(crate) rx: flume::Receiver<Vec<u8>>,
    spare: flume::Sender<Vec<u8>>,
}

impl ChunkReceiver {
    /// Hands a written chunk's buffer back to the producers.
    pub(crate) fn give_back(&self, mut chunk: Vec<u8>) {
        chunk.clear();
        let _ = self.spare.try_send(chunk);
    }
}

/// The channel of a sink, holding at most `queue` chunks (backpressure).
pub(crate) fn chunk_channel(queue: usize) -> (ChunkSender, ChunkReceiver) {
    let (tx, rx) = flume::bounded(queue);
    let (spare_tx, spare_rx) = flume::bounded(SPARE_CHUNKS);
    (
        ChunkSender {
            tx,
            spare: spare_rx,
        },
        ChunkReceiver {
            rx,
            spare: spare_tx,
        },
    )
}

/// Starts the sink for `output`, fed by `rx`.
pub(crate) fn start(
    output: &Output,
    rx: ChunkReceiver,
    control: Arc<Control>,
) -> Result<SinkThread, RunError> {
    let spawn = |name: &str, f: Box<dyn FnOnce() -> Result<(), RunError> + Send>| {
        std::thread::Builder::new()
            .name(name.into())
            .spawn(f)
            .expect("cannot spawn a sink thread")
    };
    match output.clone() {
        Output::Tcp(address) => Ok(spawn(
            "wallaroo-sink",
            Box::new(move || tcp::run(&address, &rx, &control)),
        )),
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
        Output::Missing { index } => Err(RunError::Usage(format!(
            "error: --out is missing address #{}",
            index + 1
        ))),
    }
}

/// Takes what is ready on `rx` after `first`, up to about `limit` bytes, into `batch`.
pub(crate) fn gather(first: Vec<u8>, rx: &ChunkReceiver, batch: &mut Vec<u8>, limit: usize) {
    batch.clear();
    batch.extend_from_slice(&first);
    rx.give_back(first);
    while batch.len() < limit {
        match rx.rx.try_recv() {
            Ok(chunk) => {
                batch.extend_from_slice(&chunk);
                rx.give_back(chunk);
            }
            Err(_) => break,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gather_takes_what_is_ready_up_to_the_limit() {
        let (tx, rx) = chunk_channel(10);
        for chunk in [b"bb".to_vec(), b"cc".to_vec(), b"dd".to_vec()] {
            tx.tx.send(chunk).unwrap();
        }
        let mut batch = b"stale".to_vec();
        gather(b"aa".to_vec(), &rx, &mut batch, 5);
        assert_eq!(batch, b"aabbcc");
        gather(b"x".to_vec(), &rx, &mut batch, 100);
        assert_eq!(batch, b"xdd");
        // The written chunks' buffers come back, empty.
        let spares: Vec<Vec<u8>> = tx.spare.try_iter().collect();
        assert_eq!(spares.len(), 5);
        assert!(spares.iter().all(Vec::is_empty));
    }
}
