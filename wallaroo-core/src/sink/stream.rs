//! Sinks that write to a stream that stays open: a file, or standard output.

use std::io::Write;

use crate::runtime::RunError;

/// Writes every chunk from `rx` to `out`, flushing when the channel runs dry.
pub(super) fn run(name: &str, out: impl Write, rx: &super::ChunkReceiver) -> Result<(), RunError> {
    let mut out = std::io::BufWriter::with_capacity(256 * 1024, out);
    let fail = |source: std::io::Error| RunError::Write {
        output: name.to_string(),
        source,
    };
    while let Ok(chunk) = rx.rx.recv() {
        out.write_all(&chunk).map_err(fail)?;
        rx.give_back(chunk);
        while let Ok(chunk) = rx.rx.try_recv() {
            out.write_all(&chunk).map_err(fail)?;
            rx.give_back(chunk);
        }
        out.flush().map_err(fail)?;
    }
    out.flush().map_err(fail)
}
