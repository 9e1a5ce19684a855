//! Sinks that write to a stream that stays open: a file, or standard output.

use std::io::Write;

use crate::context::RunError;

/// Bytes gathered into one write.
const WRITE_BATCH: usize = 256 * 1024;

/// Writes every chunk from `rx` to `out`, flushing when the channel runs dry.
pub(super) fn run(
    name: &str,
    mut out: impl Write,
    rx: &super::ChunkReceiver,
) -> Result<(), RunError> {
    let fail = |source: std::io::Error| RunError::Write {
        output: name.to_string(),
        source,
    };
    let mut batch = Vec::new();
    while let Ok(first) = rx.rx.recv() {
        super::gather(first, rx, &mut batch, WRITE_BATCH);
        super::write_chunks(&mut out, &batch).map_err(fail)?;
        // Written to the file or standard output: where the chunks' latency ends.
        super::written(rx, &mut batch);
        if rx.rx.is_empty() {
            out.flush().map_err(fail)?;
        }
    }
    out.flush().map_err(fail)
}

#[cfg(test)]
mod tests {
    use std::io;
    use std::time::{Duration, Instant};

    use super::super::{chunk_channel, Chunk};

    /// A writer whose every write takes 100 ms, as a full pipe or a slow disk would.
    struct Slow(Vec<u8>);

    impl io::Write for Slow {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            std::thread::sleep(Duration::from_millis(100));
            self.0.extend_from_slice(buf);
            Ok(buf.len())
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn the_latency_of_a_chunk_ends_when_its_write_returns() {
        let (tx, rx) = chunk_channel(4, false, false);
        let stats = std::sync::Arc::clone(&tx.stats);
        tx.tx
            .send(Chunk {
                bytes: b"a\nb\n".to_vec(),
                messages: 2,
                read_at: Some(Instant::now()),
            })
            .unwrap();
        // A chunk without a read time (a connector's `push`) is written, not observed.
        tx.tx.send(Chunk::bytes(b"c\n".to_vec())).unwrap();
        drop(tx);
        let mut out = Slow(Vec::new());
        super::run("slow", &mut out, &rx).unwrap();
        assert_eq!(out.0, b"a\nb\nc\n");
        let latency = stats.latency.snapshot();
        assert_eq!(latency.count(), 2, "once per chunk, for both its messages");
        assert!(
            latency.sum >= 2.0 * 0.1,
            "the slow write is counted: {latency:?}"
        );
    }
}
