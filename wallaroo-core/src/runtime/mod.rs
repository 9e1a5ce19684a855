//! Starting, running and stopping an [`Application`].
//!
//! Start order: sinks, then the state partitions' workers (declared keys get their states),
//! then the sources, so no data arrives before its state is ready. Stop order is the
//! reverse, and is driven by the channels: a stopping source ends its reads and drops its
//! senders; a worker whose senders are all gone finishes its queue, flushes and ends; a
//! sink whose producers are all gone writes what it holds and ends.

use std::net::SocketAddr;
use std::sync::Arc;
use std::thread::JoinHandle;

use crate::app::Application;
use crate::args::Args;
pub use crate::context::RunError;
pub(crate) use crate::context::{Control, Ctx, Event, KafkaSettings};
use crate::http::{HttpServer, Served};
use crate::metrics::{Metrics, PipelineMetrics, StateMetrics, WorkerHandle};
use crate::poison::ErrorPolicy;
use crate::resilience::{DirLock, Resilience, SyncPolicy};
use crate::sink::SinkThread;
use crate::source::{SourceCounts, SourceHandle, SourceStats};
use crate::summary::Summary;
use crate::worker::WorkerStats;

/// Batches a worker's channel holds before senders wait (backpressure): with batches of
/// [`crate::routing::BATCH`] messages, 16 Ki messages per worker.
const WORKER_QUEUE: usize = 4;
/// Chunks a sink's channel holds before producers wait (backpressure).
const SINK_QUEUE: usize = 64;

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
    policy: Arc<ErrorPolicy>,
    /// The `--http` server, stopped first.
    http: Option<HttpServer>,
    /// The `--stats-interval` thread, stopped with it.
    summary: Option<Summary>,
    /// Each window state's count of late messages dropped, said at the stop.
    late: Vec<(String, Arc<std::sync::atomic::AtomicU64>)>,
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
        let flows: Vec<Arc<crate::link::FlowCounts>> = std::mem::take(&mut wiring.flows)
            .into_iter()
            .map(Arc::new)
            .collect();
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
        // Bound first: an address that cannot be served is a usage error, before anything
        // starts.
        let http_listener = match args.http() {
            Some(addr) => Some(crate::http::bind(addr).map_err(|e| {
                RunError::Usage(format!("error: --http {addr}: cannot listen there: {e}"))
            })?),
            None => None,
        };
        let (events_tx, events) = flume::unbounded();
        let control = Arc::new(Control::new(events_tx));
        let resilience = args.resilience();
        let lock = match &resilience {
            Some(r) => Some(DirLock::take(&r.dir)?),
            None => None,
        };
        let policy = Arc::new(ErrorPolicy::new(args).map_err(|source| RunError::Open {
            what: "--dead-letter".into(),
            path: match args.dead_letter() {
                Some(crate::args::DeadLetter::File(path)) => path.clone(),
                _ => "-".into(),
            },
            source,
        })?);

        let mut sink_senders: Vec<crate::sink::ChunkSender> = Vec::new();
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
            policy: Arc::clone(&policy),
            tcp: args.tcp_limits(),
            control: Arc::clone(&control),
            logged: resilience.is_some(),
            hold_output: matches!(
                resilience,
                Some(Resilience {
                    sync: SyncPolicy::BeforeOutput,
                    ..
                })
            ),
        });
        let mut states = Vec::new();
        for (partition, senders) in wiring.partitions.iter().zip(&ctx.partitions) {
            states.push(StateMetrics {
                name: partition.name().to_string(),
                workers: senders
                    .iter()
                    .map(|tx| WorkerHandle {
                        stats: Arc::new(WorkerStats::default()),
                        tx: tx.downgrade(),
                    })
                    .collect(),
                keys: partition.key_parser(),
                recovery: Arc::default(),
            });
        }
        let mut worker_threads = Vec::new();
        for (index, (partition, receivers)) in wiring
            .partitions
            .iter()
            .zip(partition_receivers)
            .enumerate()
        {
            let receivers = receivers
                .into_iter()
                .zip(states[index].workers.iter().map(|w| Arc::clone(&w.stats)))
                .collect();
            match partition.spawn(
                index,
                &ctx,
                receivers,
                resilience.as_ref(),
                &states[index].recovery,
                &control,
                &policy,
            ) {
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
        let sink_stats: Vec<_> = ctx.sinks.iter().map(|s| Arc::clone(&s.stats)).collect();
        drop(ctx);
        let stats: Vec<Arc<SourceStats>> = sources.iter().map(|s| Arc::clone(&s.stats)).collect();
        // Sinks are numbered as the pipelines declare them.
        let pipeline_metrics = || {
            let mut next_sink = 0;
            self.topology
                .pipelines
                .iter()
                .zip(&stats)
                .zip(&flows)
                .map(|((pipeline, source), flow)| {
                    let sinks = sink_stats
                        .iter()
                        .skip(next_sink)
                        .take(pipeline.sinks.len())
                        .cloned()
                        .collect();
                    next_sink += pipeline.sinks.len();
                    PipelineMetrics {
                        name: pipeline.name.clone(),
                        source: Arc::clone(source),
                        sinks,
                        flow: Arc::clone(flow),
                    }
                })
                .collect::<Vec<_>>()
        };
        let summary = args
            .stats_interval()
            .filter(|_| running_error.is_none())
            .map(|interval| Summary::start(interval, pipeline_metrics()));
        let mut http = None;
        if let (Some(listener), None) = (http_listener, &running_error) {
            let served = Served {
                topology: self.topology.to_json(),
                metrics: Metrics {
                    pipelines: pipeline_metrics(),
                    states,
                },
            };
            match HttpServer::start(listener, served) {
                Ok(server) => http = Some(server),
                Err(e) => {
                    running_error =
                        Some(RunError::Usage(format!("error: --http: cannot serve: {e}")))
                }
            }
        }
        let running = Running {
            control,
            events,
            sources,
            workers: worker_threads,
            sinks,
            stats,
            policy,
            http,
            summary,
            late: flows
                .iter()
                .flat_map(|flow| flow.windows.iter().cloned())
                .collect(),
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

    /// The address the `--http` server listens on (useful with port 0), if it was asked for.
    pub fn http_addr(&self) -> Option<SocketAddr> {
        self.http.as_ref().map(HttpServer::addr)
    }

    /// Counters of a source, by index in pipeline order.
    pub fn source_counts(&self, source: usize) -> Option<SourceCounts> {
        self.stats.get(source).map(|s| s.snapshot())
    }

    /// How many messages were skipped after a step panicked on them (`--on-error skip`).
    pub fn skipped(&self) -> u64 {
        self.policy.skipped()
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
    pub fn stop(mut self) -> Result<(), RunError> {
        self.control.stop();
        // Its weak senders keep no worker alive, but a query in flight would wait.
        drop(self.http.take());
        drop(self.summary.take());
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
        for (state, late) in &self.late {
            let late = late.load(std::sync::atomic::Ordering::Relaxed);
            if late > 0 {
                tracing::info!(
                    "window state \"{state}\": {late} late message{} dropped",
                    if late == 1 { "" } else { "s" }
                );
            }
        }
        let skipped = self.policy.skipped();
        if skipped > 0 {
            let to = match (self.policy.dead_letter_name(), skipped) {
                (Some(name), 1) => format!("its record is in {name}"),
                (Some(name), _) => format!("their records are in {name}"),
                (None, _) => "no --dead-letter was given to keep records".to_string(),
            };
            tracing::warn!(
                "{skipped} message{} skipped after a step panicked on {} (--on-error skip); {to}",
                if skipped == 1 { " was" } else { "s were" },
                if skipped == 1 { "it" } else { "them" },
            );
        }
        // An error that made a thread give up comes first: it is why the application stopped.
        let failure = self.control.take_failure();
        match failure.or(first_error) {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}
