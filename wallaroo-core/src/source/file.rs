//! Sources that read one stream to its end: a file of frames, or standard input.

use std::fs::File;
use std::io::Read;
use std::path::PathBuf;
use std::sync::Arc;

use super::connector::{SourceConnector, SourceInput, StreamId};
use crate::context::{Control, RunError};
use crate::endpoint::{ConnectorError, ConnectorInfo};
use crate::pool::Pool;

/// Stops a read as soon as the application is stopping.
struct UntilStopped<R> {
    inner: R,
    control: Arc<Control>,
}

impl<R: Read> Read for UntilStopped<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.control.stopping() {
            return Ok(0);
        }
        self.inner.read(buf)
    }
}

/// A file of frames, read once to its end. Its frames are numbered in every run alike, so
/// that a frame read again after a restart is recognised and applied once.
pub(super) struct FileConnector {
    path: PathBuf,
    file: File,
}

impl FileConnector {
    /// Opens `path` for `pipeline`, or says why it cannot.
    pub(super) fn open(pipeline: &str, path: PathBuf) -> Result<Self, RunError> {
        let file = File::open(&path).map_err(|source| RunError::Open {
            what: format!("pipeline \"{pipeline}\": input file"),
            path: path.clone(),
            source,
        })?;
        Ok(FileConnector { path, file })
    }
}

impl SourceConnector for FileConnector {
    fn info(&self) -> ConnectorInfo {
        ConnectorInfo::new("file", self.path.display().to_string())
    }

    fn run(self: Box<Self>, mut input: SourceInput) -> Result<(), ConnectorError> {
        let name = format!("file {}", self.path.display());
        let canonical = std::fs::canonicalize(&self.path).unwrap_or(self.path);
        let stream = StreamId::unscoped(&format!("file:{}", canonical.display()));
        let mut file = UntilStopped {
            inner: self.file,
            control: input.control(),
        };
        // A framing error is logged and ends the read, as the end of the file does.
        input.read_framed_at(&mut file, &name, &stream, 0);
        Ok(())
    }
}

/// Standard input, read once to its end.
pub(super) struct StdinConnector;

impl SourceConnector for StdinConnector {
    fn info(&self) -> ConnectorInfo {
        ConnectorInfo::new("stdin", "-")
    }

    fn run(self: Box<Self>, mut input: SourceInput) -> Result<(), ConnectorError> {
        let mut stdin = StdinChunks::start(input.control());
        input.read_framed(&mut stdin, "standard input");
        Ok(())
    }
}

/// Bytes of standard input read at once.
const STDIN_CHUNK: usize = 64 * 1024;
/// Chunks read ahead of the source, and spares kept.
const STDIN_CHUNKS: usize = 4;

/// Standard input read on a thread of its own: a blocked read of stdin cannot be
/// interrupted, so the source reads it through a channel that it can stop waiting on.
struct StdinChunks {
    rx: flume::Receiver<Vec<u8>>,
    /// Where read chunks go back to the reading thread, so that it does not allocate one
    /// per read.
    spare: Pool<Vec<u8>>,
    chunk: Vec<u8>,
    at: usize,
    control: Arc<Control>,
}

impl StdinChunks {
    fn start(control: Arc<Control>) -> Self {
        let (tx, rx) = flume::bounded::<Vec<u8>>(STDIN_CHUNKS);
        let spare: Pool<Vec<u8>> = Pool::new(STDIN_CHUNKS);
        let spares = spare.clone();
        let spawned = std::thread::Builder::new()
            .name("wallaroo-stdin".into())
            .spawn(move || {
                let mut stdin = std::io::stdin().lock();
                loop {
                    let mut chunk = spares.take().unwrap_or_default();
                    chunk.resize(STDIN_CHUNK, 0);
                    match stdin.read(&mut chunk) {
                        Ok(0) => break,
                        Ok(n) => {
                            chunk.truncate(n);
                            if tx.send(chunk).is_err() {
                                break;
                            }
                        }
                        Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                        Err(e) => {
                            tracing::error!("standard input: read failed: {e}");
                            break;
                        }
                    }
                }
            });
        if let Err(e) = spawned {
            tracing::error!("cannot start the standard input reader: {e}");
        }
        StdinChunks {
            rx,
            spare,
            chunk: Vec::new(),
            at: 0,
            control,
        }
    }
}

impl Read for StdinChunks {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.at == self.chunk.len() {
            if self.control.stopping() {
                return Ok(0);
            }
            match self.rx.recv_timeout(std::time::Duration::from_millis(100)) {
                Ok(chunk) => {
                    let read = std::mem::replace(&mut self.chunk, chunk);
                    self.spare.give(read);
                    self.at = 0;
                }
                Err(flume::RecvTimeoutError::Timeout) => {}
                Err(flume::RecvTimeoutError::Disconnected) => return Ok(0),
            }
        }
        let n = buf.len().min(self.chunk.len() - self.at);
        buf[..n].copy_from_slice(&self.chunk[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}
