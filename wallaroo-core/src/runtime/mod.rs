//! Starting, running and stopping an [`Application`].
//!
//! Start order: sinks, then the state partitions' workers (declared keys get their states),
//! then the sources, so no data arrives before its state is ready. Stop order is the
//! reverse, and is driven by the channels: a stopping source ends its reads and drops its
//! senders; a worker whose senders are all gone finishes its queue, flushes and ends; a
//! sink whose producers are all gone writes what it holds and ends.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::thread::JoinHandle;
use std::time::Instant;

use crate::app::Application;
use crate::args::Args;
use crate::resilience::progress::StreamProgress;
use crate::resilience::{DirLock, Resilience, SyncPolicy};
use crate::routing::WorkerMsg;
use crate::sink::SinkThread;
use crate::source::{SourceCounts, SourceHandle, SourceStats};

/// Batches a worker's channel holds before senders wait (backpressure): with batches of
/// [`crate::routing::BATCH`] messages, 16 Ki messages per worker.
const WORKER_QUEUE: usize = 4;
/// Chunks a sink's channel holds before producers wait (backpressure).
const SINK_QUEUE: usize = 64;

/// The channel ends a thread's chain can send to, by partition and by sink.
pub struct Ctx {
    pub(crate) partitions: Vec<Vec<flume::Sender<WorkerMsg>>>,
    pub(crate) sinks: Vec<crate::sink::ChunkSender>,
    /// Output leaves only when a worker flushes (after its state log is synced).
    pub(crate) hold_output: bool,
    /// How far each replayable stream has been applied.
    pub(crate) progress: Arc<StreamProgress>,
    /// The state partitions whose shards a Kafka source shares out with the other processes
    /// of its group: their routers look at the thread's shard mode.
    pub(crate) sharded: Vec<usize>,
    /// Per pipeline, the first state partition it feeds (its index and name): the one whose
    /// shards follow the input's partitions when the input is shared by several processes.
    #[cfg_attr(not(feature = "kafka"), allow(dead_code))]
    pub(crate) first_states: std::collections::HashMap<String, (usize, String)>,
    /// The Kafka settings, for `kafka:` endpoints.
    #[cfg_attr(not(feature = "kafka"), allow(dead_code))]
    pub(crate) kafka: KafkaSettings,
}

/// The Kafka settings of a running application: the command line's, and the application's
/// name, its consumer group by default.
#[derive(Clone, Debug, Default)]
#[cfg_attr(not(feature = "kafka"), allow(dead_code))]
pub(crate) struct KafkaSettings {
    pub(crate) args: crate::args::KafkaArgs,
    pub(crate) app: String,
    /// The resilience directory, where a shared state's shards are copied for a warm start.
    pub(crate) local: Option<std::path::PathBuf>,
}

#[cfg(feature = "kafka")]
impl KafkaSettings {
    /// The client settings for `what`, or a usage error naming it.
    pub(crate) fn options(&self, what: &str) -> Result<crate::kafka::KafkaOptions, RunError> {
        self.args
            .options(&self.app, what)
            .map_err(|e| RunError::Usage(e.0))
    }
}

/// What the running application's threads tell the thread that waits on it.
pub(crate) enum Event {
    /// A source read its input to the end.
    SourceDone,
    /// Stop was asked for.
    Stop,
}

/// The stop flag, and the channel that wakes [`Running::wait`].
pub(crate) struct Control {
    stopping: AtomicBool,
    since: OnceLock<Instant>,
    events: flume::Sender<Event>,
    /// The first error that made a thread give up; the application stops and reports it.
    failure: std::sync::Mutex<Option<RunError>>,
}

impl Control {
    pub(crate) fn stopping(&self) -> bool {
        self.stopping.load(Ordering::Acquire)
    }

    pub(crate) fn stopping_since(&self) -> Option<Instant> {
        self.since.get().copied()
    }

    pub(crate) fn stop(&self) {
        let _ = self.since.set(Instant::now());
        if !self.stopping.swap(true, Ordering::AcqRel) {
            self.send(Event::Stop);
        }
    }

    /// Reports an error a thread cannot go on after, and stops the application.
    pub(crate) fn fail(&self, error: RunError) {
        tracing::error!("{error}; stopping");
        self.failure
            .lock()
            .expect("failure lock")
            .get_or_insert(error);
        self.stop();
    }

    pub(crate) fn send(&self, event: Event) {
        // The waiter may be gone already when the application is stopping.
        let _ = self.events.send(event);
    }
}

/// Why an application could not start or did not end cleanly.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The command line lacks something the application needs; exit status 2.
    #[error("{0}")]
    Usage(String),
    /// The pipelines do not fit together.
    #[error("the application is not well formed: {}", .0.join("; "))]
    Invalid(Vec<String>),
    /// A TCP source cannot listen.
    #[error("pipeline \"{pipeline}\": cannot listen on {address}: {source}")]
    Listen {
        /// The pipeline of the source.
        pipeline: String,
        /// The address it was given.
        address: String,
        /// Why.
        source: std::io::Error,
    },
    /// A file cannot be opened or created.
    #[error("{what}: cannot open {}: {source}", path.display())]
    Open {
        /// What the file is for.
        what: String,
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A sink could not write.
    #[error("sink {output}: write failed: {source}")]
    Write {
        /// The sink's output.
        output: String,
        /// Why.
        source: std::io::Error,
    },
    /// A sink gave up on an unreachable receiver while the application stopped.
    #[error("sink {output}: {bytes} bytes of output were not delivered: the receiver stayed unreachable")]
    Undelivered {
        /// The sink's output.
        output: String,
        /// Bytes not delivered.
        bytes: u64,
    },
    /// A source connector gave up.
    #[error("pipeline \"{pipeline}\", {connector}: {error}")]
    Connector {
        /// The pipeline of the source.
        pipeline: String,
        /// The connector, as its kind and address.
        connector: String,
        /// Why.
        error: crate::endpoint::ConnectorError,
    },
    /// A sink connector gave up.
    #[error("sink {output}: {error}")]
    Sink {
        /// The connector, as its kind and address.
        output: String,
        /// Why.
        error: crate::endpoint::ConnectorError,
    },
    /// A thread of the application panicked.
    #[error("{0} panicked")]
    Panicked(String),
    /// A state computation panicked: the application stopped after writing what was done
    /// before the batch of messages it failed in.
    #[error(
        "state computation `{step}` of state partition \"{state}\" panicked on a message of \
         {batch}: {message}; stopped (the messages of that batch and after it were not applied)"
    )]
    StepPanicked {
        /// The state computation's name.
        step: String,
        /// The state partition.
        state: String,
        /// Where the batch's messages came from: their input positions, when known.
        batch: String,
        /// The panic's message.
        message: String,
    },
    /// The resilience directory cannot be used, or state could not be saved.
    #[error(transparent)]
    Resilience(#[from] crate::resilience::ResilienceError),
}

/// The message a panic was given (`panic!("…")`, `assert!`, `unwrap`).
pub(crate) fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|m| m.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".into())
}

impl RunError {
    /// The process exit status for this error: 2 for usage errors, 1 otherwise.
    pub fn exit_code(&self) -> u8 {
        match self {
            RunError::Usage(_) => 2,
            _ => 1,
        }
    }
}

/// Stops a running application from another thread (a signal handler, a test).
#[derive(Clone)]
pub struct StopHandle(Arc<Control>);

impl StopHandle {
    /// Asks the application to stop: sources stop reading, what is in flight is processed,
    /// sinks are flushed.
    pub fn stop(&self) {
        self.0.stop();
    }
}

/// A started application.
pub struct Running {
    control: Arc<Control>,
    events: flume::Receiver<Event>,
    sources: Vec<SourceHandle>,
    workers: Vec<JoinHandle<()>>,
    sinks: Vec<SinkThread>,
    stats: Vec<Arc<SourceStats>>,
    _lock: Option<DirLock>,
}

impl Application {
    /// Starts the application: sinks, workers, then sources. Returns once every source
    /// listens (or reads), so a test can connect right away.
    pub fn start(self, args: &Args) -> Result<Running, RunError> {
        if !self.errors.is_empty() {
            return Err(RunError::Invalid(self.errors));
        }
        let mut wiring = self.wiring;
        for source in &wiring.sources {
            if let Some(index) = source.missing_input() {
                return Err(RunError::Usage(format!(
                    "error: --in is missing: pipeline \"{}\" reads input #{} (give --in HOST:PORT, file:PATH or -)",
                    source.pipeline(),
                    index + 1
                )));
            }
        }
        let workers = args.workers().max(1);
        let (events_tx, events) = flume::unbounded();
        let control = Arc::new(Control {
            stopping: AtomicBool::new(false),
            since: OnceLock::new(),
            events: events_tx,
            failure: std::sync::Mutex::new(None),
        });
        let resilience = args.resilience();
        let lock = match &resilience {
            Some(r) => Some(DirLock::take(&r.dir)?),
            None => None,
        };

        let mut sink_senders = Vec::new();
        let mut sinks = Vec::new();
        let kafka = KafkaSettings {
            args: args.kafka().clone(),
            app: self.topology.name.clone(),
            local: resilience.as_ref().map(|r| r.dir.clone()),
        };
        for to in std::mem::take(&mut wiring.sinks) {
            let (tx, rx) =
                crate::sink::chunk_channel(SINK_QUEUE, to.frames_messages(), to.wants_keys());
            sinks.push(crate::sink::start(to, rx, Arc::clone(&control), &kafka)?);
            sink_senders.push(tx);
        }

        let mut partition_senders = Vec::new();
        let mut partition_receivers = Vec::new();
        for _ in &wiring.partitions {
            let (txs, rxs): (Vec<_>, Vec<_>) =
                (0..workers).map(|_| flume::bounded(WORKER_QUEUE)).unzip();
            partition_senders.push(txs);
            partition_receivers.push(rxs);
        }
        let first_states = Application::first_states(&self.topology);
        Application::one_kafka_source_per_state(&self.topology, &first_states)?;
        let ctx = Arc::new(Ctx {
            partitions: partition_senders,
            sinks: sink_senders,
            progress: Arc::default(),
            kafka,
            sharded: self
                .topology
                .pipelines
                .iter()
                .filter(|p| p.source.kind == "kafka")
                .filter_map(|p| first_states.get(&p.name).map(|(index, _)| *index))
                .collect(),
            first_states,
            hold_output: matches!(
                resilience,
                Some(Resilience {
                    sync: SyncPolicy::BeforeOutput,
                    ..
                })
            ),
        });
        let mut worker_threads = Vec::new();
        for (index, (partition, receivers)) in wiring
            .partitions
            .iter()
            .zip(partition_receivers)
            .enumerate()
        {
            match partition.spawn(index, &ctx, receivers, resilience.as_ref(), &control) {
                Ok(threads) => worker_threads.extend(threads),
                Err(e) => {
                    // Workers already started end when the context's senders drop.
                    drop(ctx);
                    for thread in worker_threads {
                        let _ = thread.join();
                    }
                    drop(sinks);
                    return Err(e);
                }
            }
        }

        let mut sources = Vec::new();
        let mut running_error = None;
        for source in std::mem::take(&mut wiring.sources) {
            match source.start(Arc::clone(&ctx), Arc::clone(&control)) {
                Ok(handle) => sources.push(handle),
                Err(e) => {
                    running_error = Some(e);
                    break;
                }
            }
        }
        drop(ctx);
        let stats = sources.iter().map(|s| Arc::clone(&s.stats)).collect();
        let running = Running {
            control,
            events,
            sources,
            workers: worker_threads,
            sinks,
            stats,
            _lock: lock,
        };
        if let Some(e) = running_error {
            // Stop what did start, then report why.
            let _ = running.stop();
            return Err(e);
        }
        Ok(running)
    }

    /// Refuses a state partition whose shards a Kafka source shares out in its group if
    /// another pipeline feeds it too: a second Kafka source would share it out by its own
    /// partitions, and another source's keys would be dropped when a shard moves.
    fn one_kafka_source_per_state(
        topology: &crate::topology::Topology,
        first_states: &std::collections::HashMap<String, (usize, String)>,
    ) -> Result<(), RunError> {
        for pipeline in topology
            .pipelines
            .iter()
            .filter(|p| p.source.kind == "kafka")
        {
            let Some((_, state)) = first_states.get(&pipeline.name) else {
                continue;
            };
            let other = topology.pipelines.iter().find(|other| {
                other.name != pipeline.name
                    && other.steps.iter().any(|s| s.state.as_ref() == Some(state))
            });
            if let Some(other) = other {
                let why = if other.source.kind == "kafka" {
                    "two Kafka sources would each share its shards out by their own partitions"
                } else {
                    "its shards move between the processes of the group, and the keys another \
                     source fed would move with them or be dropped"
                };
                return Err(RunError::Invalid(vec![format!(
                    "state partition \"{state}\" is fed by pipeline \"{}\", which reads Kafka, \
                     and by pipeline \"{}\" too: {why}; give each its own state partition",
                    pipeline.name, other.name
                )]));
            }
        }
        Ok(())
    }

    /// Per pipeline, the first state partition it feeds: its index and name.
    fn first_states(
        topology: &crate::topology::Topology,
    ) -> std::collections::HashMap<String, (usize, String)> {
        topology
            .pipelines
            .iter()
            .filter_map(|pipeline| {
                let state = pipeline.steps.iter().find_map(|s| s.state.as_ref())?;
                let index = topology.states.iter().position(|s| &s.name == state)?;
                Some((pipeline.name.clone(), (index, state.clone())))
            })
            .collect()
    }

    /// Starts the application and runs it until its sources end or [`StopHandle::stop`]
    /// is called from `on_start`'s handle.
    pub fn run(self, args: &Args, on_start: impl FnOnce(StopHandle)) -> Result<(), RunError> {
        let running = self.start(args)?;
        on_start(running.stop_handle());
        running.wait()
    }
}

impl Running {
    /// The address a TCP source listens on (useful with port 0), by source index in
    /// pipeline order.
    pub fn local_addr(&self, source: usize) -> Option<SocketAddr> {
        self.sources.get(source).and_then(|s| s.local_addr)
    }

    /// Counters of a source, by index in pipeline order.
    pub fn source_counts(&self, source: usize) -> Option<SourceCounts> {
        self.stats.get(source).map(|s| s.snapshot())
    }

    /// A handle that stops the application from another thread.
    pub fn stop_handle(&self) -> StopHandle {
        StopHandle(Arc::clone(&self.control))
    }

    /// Waits until every source has read its input to the end (files, standard input) or
    /// a stop is asked for; then stops, draining what is in flight and flushing the sinks.
    pub fn wait(self) -> Result<(), RunError> {
        let total = self.sources.len();
        let mut finished = 0;
        while !self.control.stopping() && (total == 0 || finished < total) {
            match self.events.recv() {
                Ok(Event::SourceDone) => finished += 1,
                Ok(Event::Stop) | Err(_) => break,
            }
        }
        self.stop()
    }

    /// Stops now: sources stop reading, what is in flight is processed, sinks are flushed,
    /// and every thread is joined.
    pub fn stop(self) -> Result<(), RunError> {
        self.control.stop();
        let mut first_error = None;
        let mut note = |e: RunError| {
            tracing::error!("{e}");
            if first_error.is_none() {
                first_error = Some(e);
            }
        };
        for source in self.sources {
            if let Some(wake) = source.wake {
                wake();
            }
            if source.thread.join().is_err() {
                note(RunError::Panicked("a source thread".into()));
            }
        }
        for worker in self.workers {
            if worker.join().is_err() {
                note(RunError::Panicked("a worker thread".into()));
            }
        }
        for sink in self.sinks {
            match sink.join() {
                Ok(Ok(())) => {}
                Ok(Err(e)) => note(e),
                Err(_) => note(RunError::Panicked("a sink thread".into())),
            }
        }
        // An error that made a thread give up comes first: it is why the application stopped.
        let failure = self.control.failure.lock().expect("failure lock").take();
        match failure.or(first_error) {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}
