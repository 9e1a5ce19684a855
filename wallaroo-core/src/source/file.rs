//! Sources that read one stream to its end: a file of frames, or standard input.

use std::fs::File;
use std::io::Read;
use std::path::PathBuf;
use std::sync::Arc;

use super::{Reader, SourceHandle};
use crate::codec::Decoder;
use crate::link::Downstream;
use crate::pool::Pool;
use crate::runtime::{Control, Ctx, Event, RunError};

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

pub(super) fn start_file<D: Decoder>(
    pipeline: String,
    path: PathBuf,
    reader: Reader<D>,
    down: Downstream<D::Out>,
    ctx: &Ctx,
    control: Arc<Control>,
) -> Result<SourceHandle, RunError> {
    let file = File::open(&path).map_err(|source| RunError::Open {
        what: format!("pipeline \"{pipeline}\": input file"),
        path: path.clone(),
        source,
    })?;
    let origin = format!("pipeline \"{pipeline}\", file {}", path.display());
    // A file reads the same frames in every run: its frames can be recognised on replay.
    let canonical = std::fs::canonicalize(&path).unwrap_or(path);
    let replay = crate::routing::stream_id(&format!("file:{}", canonical.display()));
    spawn(origin, file, reader, down, ctx, control, Some((replay, 1)))
}

pub(super) fn start_stdin<D: Decoder>(
    pipeline: String,
    reader: Reader<D>,
    down: Downstream<D::Out>,
    ctx: &Ctx,
    control: Arc<Control>,
) -> Result<SourceHandle, RunError> {
    let origin = format!("pipeline \"{pipeline}\", standard input");
    let stdin = StdinChunks::start(Arc::clone(&control));
    spawn(origin, stdin, reader, down, ctx, control, None)
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

fn spawn<D: Decoder, R: Read + Send + 'static>(
    origin: String,
    input: R,
    reader: Reader<D>,
    down: Downstream<D::Out>,
    ctx: &Ctx,
    control: Arc<Control>,
    replay: Option<(u64, u64)>,
) -> Result<SourceHandle, RunError> {
    let mut chain = down(ctx);
    let stats = Arc::clone(&reader.stats);
    let thread = std::thread::Builder::new()
        .name("wallaroo-file".into())
        .spawn(move || {
            let mut input = UntilStopped {
                inner: input,
                control: Arc::clone(&control),
            };
            reader.pump(&mut input, &mut chain, &origin, replay);
            tracing::info!("{origin}: read to the end");
            drop(chain);
            control.send(Event::SourceDone);
        })
        .expect("cannot spawn a source thread");
    Ok(SourceHandle {
        thread,
        wake: None,
        local_addr: None,
        stats,
    })
}
