//! Source connectors: how a pipeline reads from a system that wallaroo ships no source for.
//!
//! A [`SourceConnector`] runs on a thread of its own and hands what it reads to a
//! [`SourceInput`]: one payload per message (a record of a log, a row, a line), which the
//! pipeline's `#[decoder]` decodes, or a byte stream that the decoder's framing cuts into
//! payloads. A connector that can read its input again names its streams and gives each
//! payload its position; then every message is applied once by the state partitions,
//! whatever crashes and restarts there are, and [`SourceInput::resume_from`] tells the
//! connector where to start reading again.
//!
//! ```no_run
//! use std::io::BufRead;
//! use wallaroo_core::connector::{ConnectorError, ConnectorInfo, SourceConnector, SourceInput};
//!
//! /// Reads the lines of a file, each a message, each at its line number: read again after
//! /// a restart, lines that were applied are skipped.
//! struct Lines(std::path::PathBuf);
//!
//! impl SourceConnector for Lines {
//!     fn info(&self) -> ConnectorInfo {
//!         ConnectorInfo::new("lines", self.0.display().to_string())
//!     }
//!
//!     fn run(self: Box<Self>, mut input: SourceInput) -> Result<(), ConnectorError> {
//!         let file = std::fs::File::open(&self.0).map_err(ConnectorError::io("open"))?;
//!         let stream = input.stream(&format!("lines:{}", self.0.display()));
//!         let from = input.resume_from(&stream);
//!         for (number, line) in std::io::BufReader::new(file).lines().enumerate() {
//!             let line = line.map_err(ConnectorError::io("read"))?;
//!             if (number as u64) >= from {
//!                 input.push_at(&stream, number as u64, line.as_bytes());
//!             }
//!             if input.stopping() {
//!                 break;
//!             }
//!         }
//!         input.flush();
//!         Ok(())
//!     }
//! }
//! ```

use std::io::Read;
use std::sync::{Arc, Mutex};

use super::outlet::Outlet;
use super::{Framed, Pumped, Reader, SourceHandle, SourceStats, StreamEnd};
use crate::codec::Decoder;
use crate::context::{panic_message, Control, Ctx, Event, RunError};
use crate::endpoint::{ConnectorError, ConnectorInfo};
use crate::link::Downstream;
use crate::poison::take_panic_location;
use crate::resilience::progress::StreamProgress;
use crate::resilience::record::{name_stream, Origin};
use crate::routing::stream_id;

/// A system a pipeline reads from. `run` is called once, on a thread of its own, when the
/// application starts; it hands what it reads to `input` and returns when its input ends
/// (the pipeline's input is then done) or when [`SourceInput::stopping`] says so.
///
/// Use it with `Source::from_connector(connector, decoder)`.
pub trait SourceConnector: Send + 'static {
    /// What the connector reads, for the topology and log lines.
    fn info(&self) -> ConnectorInfo;
    /// Reads, until the input ends or the application stops.
    fn run(self: Box<Self>, input: SourceInput) -> Result<(), ConnectorError>;
}

/// A stream of a source that can be read again: its messages have positions, and a
/// message is applied once however often it is read.
#[derive(Clone, Debug)]
pub struct StreamId {
    id: u64,
    name: Arc<str>,
}

impl StreamId {
    /// The stream named `name` in pipeline `pipeline`: two pipelines that read the same
    /// stream (a topic's partition) keep apart how far each has applied it.
    fn new(pipeline: &str, name: &str) -> Self {
        let id = stream_id(&format!("{pipeline}\0{name}"));
        name_stream(id, name);
        StreamId {
            id,
            name: name.into(),
        }
    }

    /// The stream named `name` whatever the pipeline, as the file and TCP sources named
    /// their streams before names were scoped: what a resilience directory holds of them
    /// stays theirs.
    pub(crate) fn unscoped(name: &str) -> Self {
        let id = stream_id(name);
        name_stream(id, name);
        StreamId {
            id,
            name: name.into(),
        }
    }

    /// The stream's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The origin of the message at `position`.
    #[inline]
    pub(super) fn origin(&self, position: u64) -> Origin {
        Origin {
            stream: self.id,
            // Applied positions are counted from 1: 0 means nothing was.
            seq: position + 1,
            sub: 0,
        }
    }

    /// The stream's id, as origins carry it.
    #[cfg_attr(not(feature = "kafka"), allow(dead_code))]
    pub(crate) fn id(&self) -> u64 {
        self.id
    }
}

/// Where each stream of a source resumes; see [`SourceInput::resume_points`].
#[derive(Clone)]
pub struct ResumePoints {
    progress: Arc<StreamProgress>,
    pipeline: Arc<str>,
}

impl ResumePoints {
    /// The stream named `name`, as [`SourceInput::stream`] names it.
    pub fn stream(&self, name: &str) -> StreamId {
        StreamId::new(&self.pipeline, name)
    }

    /// The position to read `stream` from, as [`SourceInput::resume_from`] says it.
    pub fn resume_from(&self, stream: &StreamId) -> u64 {
        self.progress.applied(stream.id)
    }
}

/// Where a source connector hands what it reads: each payload is decoded by the
/// pipeline's decoder and sent down the pipeline. Owned by one thread; [`SourceInput::fork`]
/// gives another thread its own.
pub struct SourceInput {
    feed: Box<dyn Feed>,
    shared: Arc<Shared>,
}

/// What every `SourceInput` of one source shares.
pub(super) struct Shared {
    control: Arc<Control>,
    pub(super) ctx: Arc<Ctx>,
    /// The pipeline's name, for log lines.
    pipeline: String,
    wakers: Arc<Wakers>,
    pub(super) stats: Arc<SourceStats>,
}

/// A function that ends a read that blocks.
type Wake = Box<dyn FnOnce() + Send>;

/// What to call when the application stops, to end reads that block.
#[derive(Default)]
struct Wakers {
    /// The functions, and whether they were called (a function given later is called at
    /// once).
    inner: Mutex<(Vec<Wake>, bool)>,
}

impl Wakers {
    fn add(&self, wake: Wake) {
        let mut inner = self.inner.lock().expect("wakers lock");
        if inner.1 {
            drop(inner);
            wake();
        } else {
            inner.0.push(wake);
        }
    }

    fn wake(&self) {
        let wakers = {
            let mut inner = self.inner.lock().expect("wakers lock");
            inner.1 = true;
            std::mem::take(&mut inner.0)
        };
        for wake in wakers {
            wake();
        }
    }
}

/// Starts `connector` on a thread of its own, feeding `down` through `reader`'s decoder.
pub(crate) fn start<D: Decoder>(
    pipeline: String,
    connector: Box<dyn SourceConnector>,
    reader: Reader<D>,
    down: Downstream<D::Out>,
    ctx: Arc<Ctx>,
    control: Arc<Control>,
) -> SourceHandle {
    let shared = Shared::new(pipeline, ctx, control, Arc::clone(&reader.stats));
    let input = SourceInput::new(reader, down, Arc::clone(&shared));
    spawn(&shared, connector.info(), move || connector.run(input))
}

/// Runs `run`, a source connector of `info`, on a thread of its own: when it returns, the
/// source has read its input to the end (or the application is stopping); an error stops
/// the application, naming the pipeline and the connector.
pub(super) fn spawn(
    shared: &Shared,
    info: ConnectorInfo,
    run: impl FnOnce() -> Result<(), ConnectorError> + Send + 'static,
) -> SourceHandle {
    let (pipeline, control) = (shared.pipeline.clone(), Arc::clone(&shared.control));
    tracing::info!(
        "pipeline \"{pipeline}\": reading {} {}",
        info.kind,
        info.address
    );
    let thread = std::thread::Builder::new()
        .name("wallaroo-source".into())
        .spawn(move || match catch_panic(run) {
            Ok(()) if control.stopping() => {
                tracing::info!(
                    "pipeline \"{pipeline}\", {} {}: stopped",
                    info.kind,
                    info.address
                );
            }
            Ok(()) => {
                tracing::info!(
                    "pipeline \"{pipeline}\", {} {}: read to the end",
                    info.kind,
                    info.address
                );
                control.send(Event::SourceDone);
            }
            Err(error) => control.fail(RunError::Connector {
                pipeline,
                connector: format!("{} {}", info.kind, info.address),
                error,
            }),
        })
        .expect("cannot spawn a source thread");
    let wakers = Arc::clone(&shared.wakers);
    SourceHandle {
        thread,
        wake: Some(Box::new(move || wakers.wake())),
        local_addr: None,
        stats: Arc::clone(&shared.stats),
    }
}

/// Runs a source's `run`, a panic in it (its connector, the decoder, or a stateless step
/// fused into its thread) turned into an error that says so.
fn catch_panic(run: impl FnOnce() -> Result<(), ConnectorError>) -> Result<(), ConnectorError> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(run)).unwrap_or_else(|panic| {
        // Known when the panic hook left this thread's panics to the error policy.
        let at = take_panic_location().map_or(String::new(), |at| format!(" (at {at})"));
        Err(ConnectorError::new(format!(
            "panicked (in the connector, the decoder or a step on the source's thread): {}{at}",
            panic_message(&*panic)
        )))
    })
}

impl Shared {
    pub(super) fn new(
        pipeline: String,
        ctx: Arc<Ctx>,
        control: Arc<Control>,
        stats: Arc<SourceStats>,
    ) -> Arc<Shared> {
        Arc::new(Shared {
            control,
            ctx,
            pipeline,
            wakers: Arc::default(),
            stats,
        })
    }

    pub(super) fn stopping(&self) -> bool {
        self.control.stopping()
    }

    pub(super) fn on_stop(&self, wake: impl FnOnce() + Send + 'static) {
        self.wakers.add(Box::new(wake));
    }

    pub(super) fn stream(&self, name: &str) -> StreamId {
        StreamId::new(&self.pipeline, name)
    }

    pub(super) fn resume_from(&self, stream: &StreamId) -> u64 {
        self.ctx.progress.applied(stream.id)
    }
}

impl SourceInput {
    fn new<D: Decoder>(reader: Reader<D>, down: Downstream<D::Out>, shared: Arc<Shared>) -> Self {
        SourceInput {
            feed: Box::new(Feeder::new(reader, down, &shared.ctx)),
            shared,
        }
    }

    /// Whether the application is stopping: return from `run` soon (after
    /// [`SourceInput::flush`]).
    pub fn stopping(&self) -> bool {
        self.shared.stopping()
    }

    /// Has `wake` called once when the application stops, to end a read that blocks (close
    /// a socket, wake a poll).
    pub fn on_stop(&self, wake: impl FnOnce() + Send + 'static) {
        self.shared.on_stop(wake);
    }

    /// Names a stream that can be read again. The name must be the same in every run
    /// (`kafka:votes/3`, `lines:/data/votes.txt`), since what was applied is kept under it;
    /// it is the pipeline's own (another pipeline's stream of the same name is another).
    pub fn stream(&self, name: &str) -> StreamId {
        self.shared.stream(name)
    }

    /// The position to read `stream` from: every message before it has been applied by
    /// every state partition it reaches (0 when none has). With a resilience directory,
    /// this survives a restart; it is also what a connector may acknowledge to its system
    /// (commit an offset), since nothing before it will be needed again.
    pub fn resume_from(&self, stream: &StreamId) -> u64 {
        self.shared.resume_from(stream)
    }

    /// [`SourceInput::resume_from`] for code that runs apart from the connector's thread,
    /// such as a client library's callback when partitions are assigned.
    pub fn resume_points(&self) -> ResumePoints {
        ResumePoints {
            progress: Arc::clone(&self.shared.ctx.progress),
            pipeline: self.shared.pipeline.as_str().into(),
        }
    }

    /// Decodes `payload` and sends the message on: a message without a position (it is not
    /// recognised if it is read again).
    #[inline]
    pub fn push(&mut self, payload: &[u8]) {
        self.feed.push(None, payload);
    }

    /// Decodes `payload`, the message at `position` of `stream`, and sends it on.
    /// Positions increase along a stream (they need not be consecutive); a message whose
    /// position was applied already is skipped by the state partitions.
    ///
    /// A stream is pushed from one thread, in order: a position pushed after a higher one
    /// of its stream counts as applied already.
    #[inline]
    pub fn push_at(&mut self, stream: &StreamId, position: u64, payload: &[u8]) {
        self.feed
            .push(Some((stream.origin(position), &stream.name)), payload);
    }

    /// Sends on what was pushed: call it when a read has given all it had, so that output
    /// does not wait for a full batch.
    pub fn flush(&mut self) {
        self.feed.flush();
    }

    /// Reads `bytes` to its end, cut into payloads by the decoder's framing (a length
    /// header, or lines), flushing whenever the bytes at hand are used up. `name` names
    /// the stream in log lines. Returns `false` if the stream ended with a framing or read
    /// error (logged), `true` at a clean end.
    pub fn read_framed(&mut self, bytes: &mut dyn Read, name: &str) -> bool {
        let origin = format!("pipeline \"{}\", {name}", self.shared.pipeline);
        self.feed.read_framed(bytes, &origin, None) == StreamEnd::Clean
    }

    /// [`SourceInput::read_framed`] for a stream that can be read again: the frames read
    /// have the positions `from`, `from + 1`, … of `stream` (a file read from its start
    /// has `from` 0; a stream resumed from [`SourceInput::resume_from`] has that), so
    /// that a frame read again is applied once.
    pub fn read_framed_at(
        &mut self,
        bytes: &mut dyn Read,
        name: &str,
        stream: &StreamId,
        from: u64,
    ) -> bool {
        let origin = format!("pipeline \"{}\", {name}", self.shared.pipeline);
        // Applied positions are counted from 1 (see `push_at`).
        let replay = Some((stream.id, from + 1));
        self.feed.read_framed(bytes, &origin, replay) == StreamEnd::Clean
    }

    /// Begins reading a stream that is read as its bytes arrive ([`SourceInput::read_ready`]):
    /// a non-blocking socket, whose first bytes, read already, are `start`. `name` names it
    /// in log lines; a resumable stream gives its id and the position it resumes from, as
    /// [`SourceInput::read_framed_at`] does.
    pub(crate) fn open_evented(
        &mut self,
        name: &str,
        resumed: Option<(&StreamId, u64)>,
        start: &[u8],
    ) {
        let origin = format!("pipeline \"{}\", {name}", self.shared.pipeline);
        let replay = resumed.map(|(stream, from)| (stream.id, from + 1));
        self.feed.open_evented(origin, replay, start);
    }

    /// Reads what the stream begun by [`SourceInput::open_evented`] has now, or its turn's
    /// worth: what it left (at its end, a framing or read error is logged).
    pub(crate) fn read_ready(&mut self, bytes: &mut dyn Read) -> Pumped {
        self.feed.read_ready(bytes)
    }

    /// Whether the evented stream is inside a frame (bytes of one came, not all).
    pub(crate) fn mid_frame(&self) -> bool {
        self.feed.mid_frame()
    }

    /// The pipeline's name.
    pub(crate) fn pipeline(&self) -> &str {
        &self.shared.pipeline
    }

    /// The source's counters.
    pub(crate) fn stats(&self) -> &SourceStats {
        &self.shared.stats
    }

    /// The stop flag, for a read that waits on it apart from this input.
    pub(crate) fn control(&self) -> Arc<Control> {
        Arc::clone(&self.shared.control)
    }

    /// The channel ends of the running application, for a source of this crate that
    /// tells state partitions about their shards.
    #[cfg_attr(not(feature = "kafka"), allow(dead_code))]
    pub(crate) fn ctx(&self) -> &Ctx {
        &self.shared.ctx
    }

    /// An input whose chain has no effect, for a source that runs messages through the
    /// pipeline only to learn where they would go ([`crate::routing::ShardMode::probe`]):
    /// its routers and sinks send to channels that [`Probe::drain`] empties, and it counts
    /// no message (the input that routes them does), only the payloads that do not decode.
    #[cfg_attr(not(feature = "kafka"), allow(dead_code))]
    pub(crate) fn probe(&self) -> Probe {
        let ctx = &self.shared.ctx;
        let mut workers = Vec::new();
        let partitions = ctx
            .partitions
            .iter()
            .map(|senders| {
                senders
                    .iter()
                    .map(|_| {
                        let (tx, rx) = flume::unbounded();
                        workers.push(rx);
                        tx
                    })
                    .collect()
            })
            .collect();
        let mut sinks = Vec::new();
        let probe_sinks = ctx
            .sinks
            .iter()
            .map(|sink| {
                let (tx, rx) = flume::unbounded();
                sinks.push(rx);
                crate::sink::ChunkSender {
                    tx,
                    spare: crate::pool::Pool::new(1),
                    framed: sink.framed,
                    keyed: sink.keyed,
                    // A probe's outputs are not the sink's: counted apart, and dropped.
                    stats: Arc::default(),
                }
            })
            .collect();
        let probe_ctx = Ctx {
            partitions,
            sinks: probe_sinks,
            hold_output: true,
            logged: ctx.logged,
            progress: Arc::default(),
            sharded: ctx.sharded.clone(),
            first_states: Default::default(),
            kafka: ctx.kafka.clone(),
            // The real chain runs these messages again: a skip here is not one to count.
            policy: Arc::new(ctx.policy.silent()),
            tcp: ctx.tcp,
            control: Arc::clone(&ctx.control),
        };
        Probe {
            input: SourceInput {
                feed: self.feed.probe(&probe_ctx),
                shared: Arc::clone(&self.shared),
            },
            workers,
            sinks,
        }
    }

    /// Another input for another thread of the same source (a connection of a listener,
    /// a partition read apart): it sends down a chain of its own.
    pub fn fork(&self) -> SourceInput {
        SourceInput {
            feed: self.feed.fork(&self.shared.ctx),
            shared: Arc::clone(&self.shared),
        }
    }
}

/// An input whose chain has no effect; see [`SourceInput::probe`].
#[cfg_attr(not(feature = "kafka"), allow(dead_code))]
pub(crate) struct Probe {
    pub(crate) input: SourceInput,
    workers: Vec<flume::Receiver<crate::routing::WorkerMsg>>,
    sinks: Vec<flume::Receiver<crate::sink::Chunk>>,
}

#[cfg_attr(not(feature = "kafka"), allow(dead_code))]
impl Probe {
    /// Drops what the chain sent.
    pub(crate) fn drain(&self) {
        for rx in &self.workers {
            rx.drain();
        }
        for rx in &self.sinks {
            rx.drain();
        }
    }
}

impl Drop for SourceInput {
    fn drop(&mut self) {
        self.feed.flush();
    }
}

/// A source's decoder and chain, whatever the message type.
trait Feed: Send {
    fn push(&mut self, origin: Option<(Origin, &str)>, payload: &[u8]);
    fn flush(&mut self);
    fn read_framed(
        &mut self,
        bytes: &mut dyn Read,
        origin: &str,
        replay: Option<(u64, u64)>,
    ) -> StreamEnd;
    fn open_evented(&mut self, origin: String, replay: Option<(u64, u64)>, start: &[u8]);
    fn read_ready(&mut self, bytes: &mut dyn Read) -> Pumped;
    fn mid_frame(&self) -> bool;
    fn fork(&self, ctx: &Ctx) -> Box<dyn Feed>;
    fn probe(&self, ctx: &Ctx) -> Box<dyn Feed>;
}

struct Feeder<D: Decoder> {
    reader: Reader<D>,
    down: Downstream<D::Out>,
    out: Outlet<D::Out>,
    /// Payloads the decoder refused.
    decode_errors: u64,
    /// Whether decoded messages are counted in the source's statistics.
    counting: bool,
    /// The stream read as its bytes arrive, once begun.
    evented: Option<Framed<D::Out>>,
}

impl<D: Decoder> Feeder<D> {
    fn new(reader: Reader<D>, down: Downstream<D::Out>, ctx: &Ctx) -> Self {
        Feeder {
            out: Outlet::new(down(ctx)),
            reader,
            down,
            decode_errors: 0,
            counting: true,
            evented: None,
        }
    }
}

impl<D: Decoder> Feed for Feeder<D> {
    #[inline]
    fn push(&mut self, origin: Option<(Origin, &str)>, payload: &[u8]) {
        match self.reader.decoder.decode(payload) {
            Ok(msg) => self.out.send(origin.map(|(origin, _)| origin), msg),
            Err(e) => {
                if let Some((origin, _)) = origin {
                    // Refused, but read: the stream has come this far.
                    self.out.position(origin);
                }
                self.decode_errors += 1;
                let at = match origin {
                    Some((origin, stream)) => format!("{stream} at position {}", origin.seq - 1),
                    None => "a message without a position".to_string(),
                };
                self.reader.record_failed(&at, self.decode_errors, &e);
            }
        }
    }

    fn flush(&mut self) {
        let decoded = self.out.flush();
        if decoded > 0 && self.counting {
            self.reader
                .stats
                .messages
                .fetch_add(decoded, std::sync::atomic::Ordering::Relaxed);
        }
    }

    fn read_framed(
        &mut self,
        mut bytes: &mut dyn Read,
        origin: &str,
        replay: Option<(u64, u64)>,
    ) -> StreamEnd {
        self.flush();
        let mut framed = self.reader.framed(origin.to_string(), replay, &[], false);
        self.reader
            .pump_to_end(&mut framed, &mut bytes, &mut self.out.chain)
    }

    fn open_evented(&mut self, origin: String, replay: Option<(u64, u64)>, start: &[u8]) {
        self.flush();
        self.evented = Some(self.reader.framed(origin, replay, start, true));
    }

    fn read_ready(&mut self, mut bytes: &mut dyn Read) -> Pumped {
        let framed = self
            .evented
            .as_mut()
            .expect("an evented stream is begun before it is read");
        self.reader.pump(framed, &mut bytes, &mut self.out.chain)
    }

    fn mid_frame(&self) -> bool {
        self.evented.as_ref().is_some_and(Framed::mid_frame)
    }

    fn fork(&self, ctx: &Ctx) -> Box<dyn Feed> {
        Box::new(Feeder::new(
            self.reader.clone(),
            Arc::clone(&self.down),
            ctx,
        ))
    }

    fn probe(&self, ctx: &Ctx) -> Box<dyn Feed> {
        let mut feeder = Feeder::new(self.reader.clone(), Arc::clone(&self.down), ctx);
        feeder.counting = false;
        Box::new(feeder)
    }
}
