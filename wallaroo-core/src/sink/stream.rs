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
        super::give_back_all(rx, &mut batch);
        if rx.rx.is_empty() {
            out.flush().map_err(fail)?;
        }
    }
    out.flush().map_err(fail)
}
