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

/// Starts the sink for `output`, fed by `rx`.
pub(crate) fn start(
    output: &Output,
    rx: flume::Receiver<Vec<u8>>,
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
pub(crate) fn gather(
    first: Vec<u8>,
    rx: &flume::Receiver<Vec<u8>>,
    batch: &mut Vec<u8>,
    limit: usize,
) {
    batch.clear();
    batch.extend_from_slice(&first);
    while batch.len() < limit {
        match rx.try_recv() {
            Ok(chunk) => batch.extend_from_slice(&chunk),
            Err(_) => break,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gather_takes_what_is_ready_up_to_the_limit() {
        let (tx, rx) = flume::unbounded();
        for chunk in [b"bb".to_vec(), b"cc".to_vec(), b"dd".to_vec()] {
            tx.send(chunk).unwrap();
        }
        let mut batch = b"stale".to_vec();
        gather(b"aa".to_vec(), &rx, &mut batch, 5);
        assert_eq!(batch, b"aabbcc");
        gather(b"x".to_vec(), &rx, &mut batch, 100);
        assert_eq!(batch, b"xdd");
    }
}
