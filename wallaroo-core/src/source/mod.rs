//! Sources: read framed bytes, decode each frame, and feed the pipeline's chain.
//!
//! The TCP source listens and reads each connection on its own thread; the file source
//! reads a file or standard input once. Both share one read loop: bad input is logged with
//! where it came from and costs only what it must (a frame, or the one connection), never
//! the process.

pub mod connector;
mod declared;
mod file;
pub mod framing;
pub(crate) mod generator;
pub mod messages;
mod outlet;
pub mod resume;
mod tcp;

use std::io::Read;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use crate::codec::{Decoder, Framing};
use crate::context::{Control, Ctx, RunError};
use crate::endpoint::Input;
use crate::link::{BoxLink, Downstream};
use crate::resilience::record::Origin;
use crate::step::Emit;
pub(crate) use declared::ReadFrom;
pub use declared::Source;
use framing::{Fill, FramePos, FrameReader};

/// Counters of one source, shared with [`crate::Running`].
#[derive(Debug, Default)]
pub struct SourceStats {
    /// Frames decoded into messages.
    pub messages: AtomicU64,
    /// Frames the decoder refused (skipped).
    pub decode_errors: AtomicU64,
    /// Connections (or files) closed because of a framing error: an oversized frame, or a
    /// stream that ended inside a frame.
    pub framing_errors: AtomicU64,
    /// Connections accepted.
    pub connections: AtomicU64,
    /// Connections closed as they were accepted, over `--max-connections`.
    pub refused: AtomicU64,
    /// Connections accepted and closed since (open ones are `connections - closed`).
    pub closed: AtomicU64,
    /// Bytes read from framed streams (counted per read, not per frame).
    pub bytes: AtomicU64,
    /// A Kafka source's lag: per partition it holds, the records between the partition's
    /// high watermark and the next offset it reads. `None` for other sources; replaced
    /// whole by the source's thread at most once a second, read at a scrape.
    pub(crate) kafka_lag: std::sync::Mutex<Option<Vec<(i32, i64)>>>,
}

/// A snapshot of [`SourceStats`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SourceCounts {
    /// Frames decoded into messages.
    pub messages: u64,
    /// Frames the decoder refused.
    pub decode_errors: u64,
    /// Streams cut off by a framing error.
    pub framing_errors: u64,
    /// Connections accepted.
    pub connections: u64,
    /// Connections refused, over `--max-connections`.
    pub refused: u64,
    /// Connections accepted and closed since.
    pub closed: u64,
    /// Bytes read from framed streams.
    pub bytes: u64,
}

impl SourceStats {
    /// The counters now.
    pub fn snapshot(&self) -> SourceCounts {
        SourceCounts {
            messages: self.messages.load(Ordering::Relaxed),
            decode_errors: self.decode_errors.load(Ordering::Relaxed),
            framing_errors: self.framing_errors.load(Ordering::Relaxed),
            connections: self.connections.load(Ordering::Relaxed),
            refused: self.refused.load(Ordering::Relaxed),
            closed: self.closed.load(Ordering::Relaxed),
            bytes: self.bytes.load(Ordering::Relaxed),
        }
    }
}

/// A started source: its thread, and how to wake it when the application stops.
pub(crate) struct SourceHandle {
    pub(crate) thread: std::thread::JoinHandle<()>,
    pub(crate) wake: Option<Box<dyn FnOnce() + Send>>,
    pub(crate) local_addr: Option<std::net::SocketAddr>,
    pub(crate) stats: Arc<SourceStats>,
}

/// A source whatever its decoder, as the runtime starts it.
pub(crate) trait AnySource: Send {
    fn pipeline(&self) -> &str;
    /// The `--in` address this source needs but was not given (0-based), if any.
    fn missing_input(&self) -> Option<usize>;
    fn start(
        self: Box<Self>,
        ctx: Arc<Ctx>,
        control: Arc<Control>,
    ) -> Result<SourceHandle, RunError>;
}

/// A pipeline's source with its decoder and the chain it feeds.
pub(crate) struct SourceRuntime<D: Decoder> {
    pipeline: String,
    from: ReadFrom,
    decoder: Arc<D>,
    max_frame: usize,
    memory_budget: usize,
    #[cfg_attr(not(feature = "kafka"), allow(dead_code))]
    co_partitioned: bool,
    down: Downstream<D::Out>,
}

impl<D: Decoder> SourceRuntime<D> {
    pub(crate) fn new(pipeline: String, source: Source<D>, down: Downstream<D::Out>) -> Self {
        SourceRuntime {
            pipeline,
            from: source.from,
            decoder: Arc::new(source.decoder),
            max_frame: source.max_frame_length,
            memory_budget: source.memory_budget,
            co_partitioned: source.co_partitioned,
            down,
        }
    }
}

impl<D: Decoder> AnySource for SourceRuntime<D> {
    fn pipeline(&self) -> &str {
        &self.pipeline
    }

    fn missing_input(&self) -> Option<usize> {
        match self.from {
            ReadFrom::Input(Input::Missing { index }) => Some(index),
            _ => None,
        }
    }

    fn start(
        self: Box<Self>,
        ctx: Arc<Ctx>,
        control: Arc<Control>,
    ) -> Result<SourceHandle, RunError> {
        let reader = Reader {
            framing: self.decoder.framing(),
            decoder: self.decoder,
            max_frame: self.max_frame,
            budget: Arc::new(framing::MemoryBudget::new(self.memory_budget)),
            stats: Arc::new(SourceStats::default()),
        };
        let (connector, local): (Box<dyn connector::SourceConnector>, _) = match self.from {
            ReadFrom::Connector(connector) => (connector, None),
            ReadFrom::Input(Input::Tcp(address)) => {
                let connector = tcp::TcpConnector::bind(&self.pipeline, &address, ctx.tcp)?;
                let local = connector.local();
                (Box::new(connector), Some(local))
            }
            ReadFrom::Input(Input::File(path)) => (
                Box::new(file::FileConnector::open(&self.pipeline, path)?),
                None,
            ),
            ReadFrom::Input(Input::Stdin) => (Box::new(file::StdinConnector), None),
            #[cfg(feature = "kafka")]
            ReadFrom::Input(Input::Kafka(topic)) => {
                let what = format!("pipeline \"{}\" reads kafka:{topic}", self.pipeline);
                let mut source = crate::kafka::KafkaSource::new(topic, ctx.kafka.options(&what)?);
                if let Some((index, name)) = ctx.first_states.get(&self.pipeline) {
                    source =
                        source.sharding(*index, name, self.co_partitioned, ctx.kafka.local.clone());
                }
                (Box::new(source), None)
            }
            #[cfg(not(feature = "kafka"))]
            ReadFrom::Input(Input::Kafka(topic)) => {
                return Err(RunError::Usage(format!(
                    "error: pipeline \"{}\" reads kafka:{topic}, but this application was built \
                     without Kafka: build it with `--features kafka`",
                    self.pipeline
                )))
            }
            ReadFrom::Input(Input::Missing { index }) => {
                return Err(RunError::Usage(format!(
                    "error: --in is missing address #{} for pipeline \"{}\"",
                    index + 1,
                    self.pipeline
                )))
            }
        };
        let mut handle =
            connector::start(self.pipeline, connector, reader, self.down, ctx, control);
        handle.local_addr = local;
        Ok(handle)
    }
}

/// Decoder errors logged per stream before the log is thinned to one in
/// [`DECODE_ERROR_LOG_EVERY`].
const DECODE_ERRORS_LOGGED: u64 = 10;
const DECODE_ERROR_LOG_EVERY: u64 = 10_000;

/// Decoded messages a source thread gathers before it passes them down its chain.
const DECODED_BATCH: usize = 256;

/// What a source's threads share: the decoder, how to frame, and the counters.
pub(crate) struct Reader<D: Decoder> {
    decoder: Arc<D>,
    framing: Framing,
    max_frame: usize,
    /// What the streams' frames larger than a reader's initial buffer share.
    budget: Arc<framing::MemoryBudget>,
    pub(crate) stats: Arc<SourceStats>,
}

impl<D: Decoder> Clone for Reader<D> {
    fn clone(&self) -> Self {
        Reader {
            decoder: Arc::clone(&self.decoder),
            framing: self.framing,
            max_frame: self.max_frame,
            budget: Arc::clone(&self.budget),
            stats: Arc::clone(&self.stats),
        }
    }
}

/// Reads an evented stream takes before the other streams of its loop get their turn.
const READS_PER_TURN: usize = 8;

/// What a call of [`Reader::pump`] left.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Pumped {
    /// The stream has nothing more to read now: its next bytes wake its loop.
    Drained,
    /// It had its turn and has more to read.
    More,
    /// Its end.
    End(StreamEnd),
}

/// Why a stream stopped being read.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum StreamEnd {
    /// The end of the stream, at a frame boundary.
    Clean,
    /// A framing error or a read error; already logged.
    Broken,
}

impl<D: Decoder> Reader<D> {
    /// Counts a frame the decoder refused, and logs it (the first few on each stream, then
    /// one in [`DECODE_ERROR_LOG_EVERY`]); the first says which framing was expected.
    #[cold]
    fn decode_failed(&self, origin: &str, at: FramePos, so_far: u64, payload: &[u8], e: &D::Error) {
        self.stats.decode_errors.fetch_add(1, Ordering::Relaxed);
        if so_far <= DECODE_ERRORS_LOGGED || so_far.is_multiple_of(DECODE_ERROR_LOG_EVERY) {
            let hint = match so_far {
                1 => self.expected_framing(payload),
                _ => String::new(),
            };
            tracing::warn!(
                "{origin}: cannot decode frame #{} (ending at byte {}): {e}; frame skipped ({so_far} so far on this stream){hint}",
                at.number,
                at.end
            );
        }
    }

    /// `"; framing: …"`, for a log line about `payload` (a line; the payload of a frame
    /// carries no hint of its framing, its header does).
    fn expected_framing(&self, payload: &[u8]) -> String {
        let bytes = match self.framing {
            Framing::Lines => payload,
            Framing::LengthPrefixed { .. } => &[],
        };
        format!("; {}", framing::expected_framing(self.framing, bytes))
    }

    /// Counts a payload the decoder refused, and logs it as [`Reader::decode_failed`]
    /// does; `at` says where it was read.
    #[cold]
    fn record_failed(&self, at: &str, so_far: u64, e: &D::Error) {
        self.stats.decode_errors.fetch_add(1, Ordering::Relaxed);
        if so_far <= DECODE_ERRORS_LOGGED || so_far.is_multiple_of(DECODE_ERROR_LOG_EVERY) {
            tracing::warn!("cannot decode {at}: {e}; skipped ({so_far} so far)");
        }
    }

    /// A framed stream that `origin` names in log lines, whose first bytes, read already,
    /// are `start`. `replay` is the id of a stream that can be read again after a restart
    /// (a file, a resumable connection) and the number of its first message here: messages
    /// carry their numbers, so that state partitions apply each once. An `evented` stream
    /// is a non-blocking socket read when it is ready: [`Reader::pump`] returns when it has
    /// read what there was.
    pub(crate) fn framed(
        &self,
        origin: String,
        replay: Option<(u64, u64)>,
        start: &[u8],
        evented: bool,
    ) -> Framed<D::Out> {
        let mut frames =
            FrameReader::new(self.framing, self.max_frame).with_budget(Arc::clone(&self.budget));
        frames.preload(start);
        self.stats
            .bytes
            .fetch_add(start.len() as u64, Ordering::Relaxed);
        Framed {
            frames,
            decode_errors: 0,
            pending: Vec::with_capacity(if replay.is_some() { 0 } else { DECODED_BATCH }),
            origin,
            replay,
            evented,
        }
    }

    /// Reads `stream` to its end, decoding every frame into `chain`; see [`Reader::pump`].
    pub(crate) fn pump_to_end(
        &self,
        framed: &mut Framed<D::Out>,
        stream: &mut impl Read,
        chain: &mut BoxLink<D::Out>,
    ) -> StreamEnd {
        match self.pump(framed, stream, chain) {
            Pumped::End(end) => end,
            Pumped::Drained | Pumped::More => {
                tracing::warn!(
                    "{}: read failed: the stream would block; closing it",
                    framed.origin
                );
                StreamEnd::Broken
            }
        }
    }

    /// Reads `stream`, decoding every frame into `chain`, flushing the chain whenever the
    /// bytes at hand are used up so that output leaves without waiting for a full batch:
    /// to its end, or, for an evented stream, until it has nothing more to read now or has
    /// had its turn (the frame it is in stays in `framed` for the next call).
    pub(crate) fn pump(
        &self,
        framed: &mut Framed<D::Out>,
        stream: &mut impl Read,
        chain: &mut BoxLink<D::Out>,
    ) -> Pumped {
        // Taken out for the call, so that the loop works on locals of its own (on fields
        // behind `framed`, it runs 5 % more instructions a message).
        let mut frames = framed.frames.take();
        let mut pending = std::mem::take(&mut framed.pending);
        let mut decode_errors = framed.decode_errors;
        let (origin, replay, evented) = (framed.origin.as_str(), framed.replay, framed.evented);
        // Whether the last read took all the socket had: its next bytes will wake the loop.
        let mut drained = false;
        let mut reads = 0;
        let pumped = loop {
            // One clock read per read: when the frames decoded now arrived.
            crate::latency::set_read_at(Some(std::time::Instant::now()));
            let mut decoded = 0u64;
            let cut = frames.for_each_frame(|payload, at| match self.decoder.decode(payload) {
                Ok(msg) => {
                    decoded += 1;
                    if let Some((stream, first)) = replay {
                        // The same message has the same number in every run.
                        let origin = Origin {
                            stream,
                            seq: first + at.number - 1,
                            sub: 0,
                        };
                        chain.emit_from(origin, msg);
                    } else {
                        // Why gathered: one call down the chain per `DECODED_BATCH`
                        // messages, not one indirect call per message, so the next link's
                        // loop is compiled as one.
                        pending.push(msg);
                        if pending.len() >= DECODED_BATCH {
                            chain.emit_all(&mut pending);
                        }
                    }
                }
                Err(e) => {
                    decode_errors += 1;
                    self.decode_failed(origin, at, decode_errors, payload, &e);
                }
            });
            let end = match cut {
                Ok(()) => None,
                Err(e) => {
                    self.stats.framing_errors.fetch_add(1, Ordering::Relaxed);
                    tracing::error!("{origin}: {e}; closing the stream");
                    Some(StreamEnd::Broken)
                }
            };
            if !pending.is_empty() {
                chain.emit_all(&mut pending);
            }
            if let Some((stream, first)) = replay.filter(|_| frames.frames() > 0) {
                // How far the stream came, for the markers: its last frame read, passed on
                // or not (refused, or filtered out by a step).
                // Why here, once a read, from the frame count: noted per message in the
                // loop above, it cost an instruction a message even to streams that do not
                // replay (callgrind, the e2e bench's wallaroo-2, 1 M messages: 322.1 M
                // instructions, against 320.8-321.6 M here).
                chain.positions(&[Origin {
                    stream,
                    seq: first + frames.frames() - 1,
                    sub: 0,
                }]);
            }
            // Counted once handed on, so that the count never runs ahead of the pipeline.
            chain.flush();
            if decoded > 0 {
                self.stats.messages.fetch_add(decoded, Ordering::Relaxed);
            }
            if let Some(end) = end {
                break Pumped::End(end);
            }
            if drained {
                break Pumped::Drained;
            }
            if evented && reads == READS_PER_TURN {
                // The other streams of its loop get their turn.
                break Pumped::More;
            }
            reads += 1;
            match frames.fill(stream) {
                // A read that left room took all there was: on a socket read when ready,
                // reading again would only find it empty.
                Ok(Fill::Data(n)) => {
                    // One count per read, not per frame.
                    self.stats.bytes.fetch_add(n as u64, Ordering::Relaxed);
                    drained = evented && frames.spare() > 0;
                }
                Ok(Fill::End) => {
                    break Pumped::End(self.end_of_stream(&mut frames, chain, origin, replay))
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break Pumped::Drained,
                Err(e) => {
                    tracing::warn!("{origin}: read failed: {e}; closing the stream");
                    break Pumped::End(StreamEnd::Broken);
                }
            }
        };
        framed.frames = frames;
        framed.pending = pending;
        framed.decode_errors = decode_errors;
        pumped
    }

    /// At the end of a stream: decodes a last line without its line end, or reports a
    /// frame cut short.
    fn end_of_stream(
        &self,
        frames: &mut FrameReader,
        chain: &mut BoxLink<D::Out>,
        origin: &str,
        replay: Option<(u64, u64)>,
    ) -> StreamEnd {
        let last_seq = frames.frames() + 1;
        match frames.finish() {
            Ok(None) => StreamEnd::Clean,
            Ok(Some(last_line)) => {
                let at = replay.map(|(stream, first)| Origin {
                    stream,
                    seq: first + last_seq - 1,
                    sub: 0,
                });
                match self.decoder.decode(last_line) {
                    Ok(msg) => {
                        match at {
                            Some(at) => chain.emit_from(at, msg),
                            None => chain.emit(msg),
                        }
                        self.stats.messages.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(e) => {
                        self.stats.decode_errors.fetch_add(1, Ordering::Relaxed);
                        tracing::warn!(
                            "{origin}: cannot decode the last line: {e}; skipped{}",
                            self.expected_framing(last_line)
                        );
                    }
                }
                // Decoded or refused, the last line was read: the stream has come this far.
                if let Some(at) = at {
                    chain.positions(&[at]);
                }
                chain.flush();
                StreamEnd::Clean
            }
            Err(e) => {
                self.stats.framing_errors.fetch_add(1, Ordering::Relaxed);
                tracing::warn!("{origin}: {e}; the partial frame is discarded");
                StreamEnd::Broken
            }
        }
    }
}

/// A framed stream being read ([`Reader::framed`]): its frames so far, and what its log
/// lines and replay need.
pub(crate) struct Framed<T> {
    frames: FrameReader,
    /// Frames the decoder refused on this stream.
    decode_errors: u64,
    /// Decoded messages not yet handed down the chain.
    pending: Vec<T>,
    origin: String,
    replay: Option<(u64, u64)>,
    evented: bool,
}

impl<T> Framed<T> {
    /// Whether the stream is inside a frame: bytes of one arrived, not all of them.
    pub(crate) fn mid_frame(&self) -> bool {
        self.frames.buffered() > 0
    }
}
