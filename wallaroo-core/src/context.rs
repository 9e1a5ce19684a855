//! What the threads of a running application share: the channel ends their chains send to
//! ([`Ctx`]), the stop flag and the first error ([`Control`]), and the errors that end an
//! application ([`RunError`]). Below every component (links, workers, sources, sinks), so
//! that they need nothing of the runtime that starts them.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use crate::chunk::ChunkSender;
use crate::poison::{ErrorPolicy, Stop, Within};
use crate::resilience::progress::StreamProgress;

/// What a worker receives: the index of the pipeline entry into its partition, and a
/// `Batch<K, In>` of that entry's input type.
pub(crate) type WorkerMsg = (usize, Box<dyn std::any::Any + Send>);

/// The channel ends a thread's chain can send to, by partition and by sink.
pub struct Ctx {
    pub(crate) partitions: Vec<Vec<flume::Sender<WorkerMsg>>>,
    pub(crate) sinks: Vec<ChunkSender>,
    /// Output leaves only when a worker flushes (after its state log is synced).
    pub(crate) hold_output: bool,
    /// Whether states are logged (a resilience directory): a message's replay position
    /// then makes it applied once, whatever is read again after a restart.
    pub(crate) logged: bool,
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
    /// What a panic in a step does (`--on-error`).
    pub(crate) policy: Arc<ErrorPolicy>,
    /// What TCP sources allow their connections.
    pub(crate) tcp: crate::args::TcpLimits,
    /// Whether the application is stopping: an input that ends then has not ended (its
    /// windows stay open, and are kept with a resilience directory).
    pub(crate) control: Arc<Control>,
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
    /// Not stopping; `events` wakes the thread that waits on the application.
    pub(crate) fn new(events: flume::Sender<Event>) -> Self {
        Control {
            stopping: AtomicBool::new(false),
            since: OnceLock::new(),
            events,
            failure: std::sync::Mutex::new(None),
        }
    }

    /// The first error that made a thread give up, taken.
    pub(crate) fn take_failure(&self) -> Option<RunError> {
        self.failure.lock().expect("failure lock").take()
    }

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
    /// A state computation (or a step after it on its worker) panicked, and the error
    /// policy is to stop (`--on-error stop`, the default): the application stopped after
    /// writing what was done before the message.
    #[error(
        "{step} of {within} panicked on {at}: {message}; stopped: that message and those \
         after it were not applied, what came before it was written (a restart reads the \
         message again if its source replays; `--on-error skip` skips it)"
    )]
    StepPanicked {
        /// The step: ``state computation `add up` ``, or a step after it.
        step: String,
        /// Where it runs: `state partition "sums"`.
        within: String,
        /// The message: its key and its position in its stream, when it has one.
        at: String,
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
    /// The error that a panic of a step `within` (`state partition "sums"`) stops the
    /// application with.
    pub(crate) fn from_stop(stop: Stop, within: Within<'_>) -> RunError {
        match stop {
            Stop::Policy { step, at, message } => RunError::StepPanicked {
                step,
                within: within.to_string(),
                at,
                message,
            },
            Stop::DeadLetter { output, source } => RunError::Write { output, source },
        }
    }

    /// The process exit status for this error: 2 for usage errors, 1 otherwise.
    pub fn exit_code(&self) -> u8 {
        match self {
            RunError::Usage(_) => 2,
            _ => 1,
        }
    }
}
