//! The typed pipeline builder.
//!
//! ```text
//! Application::new("Alphabet")
//!     .pipeline("Alphabet", Source::new(args.input(0), decode))        // Pipeline<LetterAndVotes>
//!     .to_state_partition(add_votes, "running vote totals", by_letter) // Pipeline<LetterAndVotes>
//!     .to_sink(Sink::new(args.output(0), encode))                      // Application
//! ```
//!
//! `Pipeline<T>` carries the type of the messages its last step produces, so a step whose
//! input is not `T` does not compile, and the error points at that step.
//!
//! The builder records two things as it goes: the [`Topology`] (what `--topology` prints),
//! and the wiring that the runtime starts. Each pipeline's chain is composed from its end:
//! `to_sink` hands the sink link to the last step, which hands itself to the step before,
//! back to the source.

use std::any::TypeId;
use std::sync::Arc;

use crate::codec::{Decoder, Encoder};
use crate::component::{type_name_of, ComponentInfo};
use crate::context::Ctx;
use crate::endpoint::Output;
use crate::guard::GuardedStepLink;
use crate::link::BoxLink;
use crate::link::{sink_link, tee_link, Discard, Downstream, FlowCounts, StepCounts, StepLink};
use crate::routing::{self, Router};
use crate::sink::connector::SinkConnector;
use crate::sink::WriteTo;
pub use crate::source::generator::Generator;
use crate::source::messages::{MessageRuntime, MessageSource};
pub use crate::source::Source;
use crate::source::{AnySource, ReadFrom, SourceRuntime};
use crate::state::{Partition, State};
use crate::step::{Computation, StateComputation};
use crate::time::combine::{CombineLink, PrePartition};
use crate::time::keyed::ProcessOp;
use crate::time::runner::{Op, Spec, TimedEntry};
use crate::time::stamp::{StampLink, Stamped, StampedPartition, Timestamp, TimestampFn};
use crate::time::windowing::{CombinedWindowOp, WindowOp};
use crate::time::{
    Aggregation, CountWindows, Fired, Kind, Late, Millis, Process, TimeWindows, Watermarks,
};
use crate::topology::{
    PipelineTopology, SinkTopology, SourceTopology, StateTopology, StepTopology, Topology,
    WindowTopology,
};
use crate::worker::{AnyPartition, Entry, EntryFactory, PartitionPlan};

/// What a pipeline can start from: a framed [`Source`], or an in-process [`Generator`].
///
/// Not for outside implementations: its methods name runtime types that are private to this
/// crate.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a source",
    label = "a pipeline reads a `Source::new(args.input(0), decode)` with a `#[decoder]`, or a `Generator`"
)]
// Why the allow: the runtime types in the methods are never nameable outside the crate,
// which keeps the trait closed; one trait rather than a public one over a sealed one, so
// that a wrong argument to `.pipeline` is "not a source", with no sealed trait in the notes.
#[allow(private_interfaces)]
pub trait PipelineSource: Sized + 'static {
    /// The messages the source produces.
    type Out: Send + 'static;
    /// Its entry in the topology.
    #[doc(hidden)]
    fn describe(&self) -> SourceTopology;
    /// The source the runtime starts, feeding `down`.
    #[doc(hidden)]
    fn into_runtime(self, pipeline: String, down: Downstream<Self::Out>) -> Box<dyn AnySource>;
}

// Why `do_not_recommend` on the implementations: `Source::new(…, encode)` is reported at
// `Source::new` as "not a decoder"; at `.pipeline(…)` it is then "not a source", once,
// rather than the decoder's error a second time with a note into this file.
#[allow(private_interfaces)]
#[diagnostic::do_not_recommend]
impl<D: Decoder> PipelineSource for Source<D> {
    type Out = D::Out;

    fn describe(&self) -> SourceTopology {
        let framed = SourceTopology {
            kind: String::new(),
            address: String::new(),
            decoder: Some(self.decoder.info().name.to_string()),
            output: type_name_of::<D::Out>(),
            framing: Some(self.decoder.framing().to_string()),
            max_frame_length: Some(self.max_frame_length),
        };
        match &self.from {
            ReadFrom::Input(input) => SourceTopology {
                kind: input.kind().to_string(),
                address: input.to_string(),
                ..framed
            },
            // A connector hands its messages one at a time: no framing.
            ReadFrom::Connector(connector) => {
                let info = connector.info();
                SourceTopology {
                    kind: info.kind,
                    address: info.address,
                    framing: None,
                    max_frame_length: None,
                    ..framed
                }
            }
        }
    }

    fn into_runtime(self, pipeline: String, down: Downstream<D::Out>) -> Box<dyn AnySource> {
        Box::new(SourceRuntime::new(pipeline, self, down))
    }
}

#[allow(private_interfaces)]
#[diagnostic::do_not_recommend]
impl<T: Send + 'static> PipelineSource for Generator<T> {
    type Out = T;

    fn describe(&self) -> SourceTopology {
        made_topology::<T>(crate::connector::MessageConnector::info(self))
    }

    fn into_runtime(self, pipeline: String, down: Downstream<T>) -> Box<dyn AnySource> {
        Box::new(MessageRuntime::new(pipeline, Box::new(self), down))
    }
}

#[allow(private_interfaces)]
#[diagnostic::do_not_recommend]
impl<T: Send + 'static> PipelineSource for MessageSource<T> {
    type Out = T;

    fn describe(&self) -> SourceTopology {
        made_topology::<T>(self.connector.info())
    }

    fn into_runtime(self, pipeline: String, down: Downstream<T>) -> Box<dyn AnySource> {
        Box::new(MessageRuntime::new(pipeline, self.connector, down))
    }
}

/// The topology of a source that makes its messages of type `T` (no decoder, no framing).
fn made_topology<T>(info: crate::endpoint::ConnectorInfo) -> SourceTopology {
    SourceTopology {
        kind: info.kind,
        address: info.address,
        decoder: None,
        output: type_name_of::<T>(),
        framing: None,
        max_frame_length: None,
    }
}

/// Where a pipeline writes: an [`Output`] or a [`SinkConnector`], and an encoder.
pub struct Sink<E> {
    pub(crate) to: WriteTo,
    pub(crate) encoder: E,
}

impl<E> Sink<E> {
    /// A sink writing to `output` (usually `args.output(i)`), encoding with `encoder`.
    pub fn new(output: impl Into<Output>, encoder: E) -> Self {
        Sink {
            to: WriteTo::Output(output.into()),
            encoder,
        }
    }

    /// A sink handing each message, as `encoder` wrote it, to `connector`: for a system
    /// that wallaroo ships no sink for (see [`crate::connector`]).
    pub fn to_connector(connector: impl SinkConnector, encoder: E) -> Self {
        Sink {
            to: WriteTo::Connector(Box::new(connector)),
            encoder,
        }
    }
}

/// What the runtime starts: sources, state partitions, sinks.
#[derive(Default)]
pub(crate) struct Wiring {
    pub(crate) sources: Vec<Box<dyn AnySource>>,
    pub(crate) partitions: Vec<Box<dyn AnyPartition>>,
    pub(crate) sinks: Vec<WriteTo>,
    /// Per pipeline, in declaration order, what it counts of its flow.
    pub(crate) flows: Vec<FlowCounts>,
}

/// A stream-processing application: one or more pipelines.
pub struct Application {
    pub(crate) topology: Topology,
    pub(crate) wiring: Wiring,
    /// Mistakes that only show once the whole application is known (a state name used
    /// with two state types, …); reported when it starts.
    pub(crate) errors: Vec<String>,
}

impl Application {
    /// An application with no pipelines yet.
    pub fn new(name: impl Into<String>) -> Self {
        Application {
            topology: Topology {
                name: name.into(),
                pipelines: Vec::new(),
                states: Vec::new(),
            },
            wiring: Wiring::default(),
            errors: Vec::new(),
        }
    }

    /// The application's name.
    pub fn name(&self) -> &str {
        &self.topology.name
    }

    /// Starts a pipeline that reads `source`. Continue it with [`Pipeline::to`],
    /// [`Pipeline::to_state_partition`], and end it with [`Pipeline::to_sink`] or
    /// [`Pipeline::done`].
    pub fn pipeline<S: PipelineSource>(
        mut self,
        name: impl Into<String>,
        source: S,
    ) -> Pipeline<S::Out> {
        let name = name.into();
        if self.topology.pipelines.iter().any(|p| p.name == name) {
            self.errors.push(format!(
                "two pipelines are named \"{name}\"; pipeline names must differ"
            ));
        }
        let topology = PipelineTopology {
            name: name.clone(),
            source: source.describe(),
            steps: Vec::new(),
            sinks: Vec::new(),
        };
        Pipeline {
            app: self,
            topology,
            attach: Box::new(move |wiring: &mut Wiring, down: Downstream<S::Out>| {
                wiring.sources.push(source.into_runtime(name, down));
            }),
            flow: FlowCounts::default(),
        }
    }

    /// What this application is made of, as `--topology` prints it.
    pub fn topology(&self) -> &Topology {
        &self.topology
    }

    /// Mistakes in how the pipelines fit together, found while building; the application
    /// refuses to start while there are any.
    pub fn errors(&self) -> &[String] {
        &self.errors
    }

    /// The index of state partition `name` of key `K` and state `S`, declared on first use.
    fn partition<K: crate::state::Key, S: State>(
        &mut self,
        name: &str,
        pipeline: &str,
    ) -> Option<usize> {
        if let Some(index) = self.wiring.partitions.iter().position(|p| p.name() == name) {
            let state = &mut self.topology.states[index];
            if !state.pipelines.iter().any(|p| p == pipeline) {
                state.pipelines.push(pipeline.to_string());
            }
            if self.wiring.partitions[index].types() != (TypeId::of::<K>(), TypeId::of::<S>()) {
                self.errors.push(format!(
                    "state partition \"{name}\" is used with state {} and key {} in pipeline \"{pipeline}\", \
                     but was declared with state {} and key {}; a state name stands for one state type and one key type",
                    type_name_of::<S>(),
                    type_name_of::<K>(),
                    state.state_type,
                    state.key,
                ));
                return None;
            }
            return Some(index);
        }
        self.wiring
            .partitions
            .push(Box::new(PartitionPlan::<K, S>::new(name)));
        self.topology.states.push(StateTopology {
            name: name.to_string(),
            state_type: type_name_of::<S>(),
            key: type_name_of::<K>(),
            initial_keys: 0,
            pipelines: vec![pipeline.to_string()],
        });
        Some(self.wiring.partitions.len() - 1)
    }

    fn plan<K: crate::state::Key, S: State>(
        wiring: &mut Wiring,
        index: usize,
    ) -> &mut PartitionPlan<K, S> {
        wiring.partitions[index]
            .as_any_mut()
            .downcast_mut::<PartitionPlan<K, S>>()
            .expect("partition types were checked when it was declared")
    }
}

/// What a setup function returns: an [`Application`], which a pipeline becomes when it
/// ends with [`Pipeline::to_sink`] or [`Pipeline::done`]. `#[wallaroo::main]` passes the
/// setup function's result through it, so that a pipeline left unended is reported with
/// what to write, at the expression that returns it.
#[doc(hidden)]
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not an `Application`: end the pipeline with `.to_sink(…)` or `.done()`",
    label = "end the pipeline with `.to_sink(Sink::new(args.output(0), encode))` or `.done()`",
    note = "a setup function returns the `Application` that `.to_sink(…)` (what the last step produces goes to a sink) or `.done()` (it is dropped) gives back"
)]
pub trait IntoApplication {
    /// The application.
    fn into_application(self) -> Application;
}

impl IntoApplication for Application {
    #[inline]
    fn into_application(self) -> Application {
        self
    }
}

/// A step's entry in the topology; `state` is the state partition's and the partition
/// function's names, for a state computation.
fn step_topology<In, Out>(info: &ComponentInfo, state: Option<(&str, &str)>) -> StepTopology {
    StepTopology {
        name: info.name.to_string(),
        kind: info.kind.as_str().to_string(),
        input: type_name_of::<In>(),
        output: type_name_of::<Out>(),
        state: state.map(|(name, _)| name.to_string()),
        partition: state.map(|(_, partition)| partition.to_string()),
        location: info.location(),
        window: None,
    }
}

/// Connects a pipeline's chain once what follows it is known.
type Attach<T> = Box<dyn FnOnce(&mut Wiring, Downstream<T>)>;

/// A pipeline under construction whose last step produces `T`.
#[must_use = "a pipeline does nothing until it ends with `to_sink` or `done`"]
pub struct Pipeline<T> {
    app: Application,
    topology: PipelineTopology,
    attach: Attach<T>,
    /// What the pipeline counts of its flow, for the metrics.
    flow: FlowCounts,
}

impl<T: Send + 'static> Pipeline<T> {
    /// Adds a stateless step.
    pub fn to<C: Computation<T>>(mut self, step: C) -> Pipeline<C::Out> {
        self.topology
            .steps
            .push(step_topology::<T, C::Out>(step.info(), None));
        let counts = Arc::new(StepCounts::default());
        self.flow
            .steps
            .push((step.info().name.to_string(), Arc::clone(&counts)));
        let step = Arc::new(step);
        let prev = self.attach;
        let pipeline: Arc<str> = self.topology.name.as_str().into();
        Pipeline {
            app: self.app,
            topology: self.topology,
            attach: Box::new(move |wiring, down: Downstream<C::Out>| {
                let here: Downstream<T> = Arc::new(move |ctx| {
                    let step = Arc::clone(&step);
                    let counts = Arc::clone(&counts);
                    if ctx.policy.skips() {
                        let (policy, pipeline) = (Arc::clone(&ctx.policy), Arc::clone(&pipeline));
                        Box::new(GuardedStepLink::new(
                            step,
                            down(ctx),
                            policy,
                            pipeline,
                            counts,
                        ))
                    } else {
                        Box::new(StepLink::new(step, down(ctx), counts))
                    }
                });
                prev(wiring, here);
            }),
            flow: self.flow,
        }
    }

    /// Adds a state computation on the state partition `state_name`: messages are routed by
    /// `partition`'s key to the worker that owns the key's state. Several pipelines may
    /// use the same state partition (same name, state type and key type).
    pub fn to_state_partition<C, P>(
        mut self,
        step: C,
        state_name: &str,
        partition: P,
    ) -> Pipeline<C::Out>
    where
        C: StateComputation<T>,
        P: Partition<T>,
    {
        // The router to the first state partition runs on the source's threads: its waits
        // are the source's.
        let source_blocked = self
            .topology
            .steps
            .iter()
            .all(|s| s.state.is_none())
            .then(|| Arc::clone(&self.flow.source_blocked_nanos));
        self.topology.steps.push(step_topology::<T, C::Out>(
            step.info(),
            Some((state_name, partition.info().name)),
        ));
        let index = self
            .app
            .partition::<P::Key, C::State>(state_name, &self.topology.name);
        if let Some(index) = index {
            let plan = Application::plan::<P::Key, C::State>(&mut self.app.wiring, index);
            plan.add_initial_keys(partition.initial_keys());
            self.app.topology.states[index].initial_keys =
                self.app.wiring.partitions[index].initial_key_count();
        }
        let step = Arc::new(step);
        let partition = Arc::new(partition);
        let prev = self.attach;
        Pipeline {
            app: self.app,
            topology: self.topology,
            attach: Box::new(move |wiring, down: Downstream<C::Out>| {
                let Some(index) = index else {
                    // Already reported as a build error; the application will not start.
                    prev(wiring, Arc::new(|_| Box::new(Discard)));
                    return;
                };
                let spares = routing::spares::<P::Carried, T>();
                let take_back = spares.clone();
                let to_entry = Arc::clone(&partition);
                let make_entry: EntryFactory<P::Key, C::State> = Arc::new(move |ctx| {
                    Box::new(Entry::<C, P, T>::new(
                        Arc::clone(&step),
                        Arc::clone(&to_entry),
                        down(ctx),
                        spares.clone(),
                    ))
                });
                let entry =
                    Application::plan::<P::Key, C::State>(wiring, index).add_entry(make_entry);
                let here: Downstream<T> = Arc::new(move |ctx| {
                    let mut router = Router::new(
                        Arc::clone(&partition),
                        entry,
                        ctx.partitions[index].clone(),
                        take_back.clone(),
                    );
                    router.sharded = ctx.sharded.contains(&index);
                    router.blocked.clone_from(&source_blocked);
                    Box::new(router)
                });
                prev(wiring, here);
            }),
            flow: self.flow,
        }
    }

    /// Gives the pipeline's messages an event time, for the windows of the next step:
    /// `timestamp` reads a message's time in milliseconds, and `watermarks` says how far
    /// behind the latest time a message may come ([`Watermarks::bounded`]).
    ///
    /// The `wallaroo` crate's documentation (Event time) has an example.
    pub fn event_time<F>(self, timestamp: F, watermarks: Watermarks) -> Timed<T>
    where
        F: Fn(&T) -> Millis + Send + Sync + 'static,
    {
        Timed {
            pipeline: self,
            timestamp: Arc::new(timestamp),
            timestamp_name: crate::component::type_name_of::<F>(),
            watermarks,
            late_sink: None,
        }
    }

    /// Aggregates the messages of each key over count windows (`Windows::count(n)`): every
    /// `n` messages of a key, in arrival order, fire one [`Fired`]; at the end of the input,
    /// a window not yet full fires with what it has. `initial` is the aggregation's empty
    /// accumulator, cloned for each window. Windows of time need event time first
    /// ([`Pipeline::event_time`]).
    pub fn to_window<W, A, P>(
        self,
        windows: W,
        initial: A,
        state_name: &str,
        partition: P,
    ) -> Pipeline<Fired<P::Key, A::Out>>
    where
        W: UntimedWindows,
        A: Aggregation<T>,
        P: Partition<T>,
    {
        let spec = Spec::of(windows.count_windows().windows(), false, None);
        self.window_step(spec, None, None, initial, state_name, partition)
    }

    /// The window step of [`Pipeline::to_window`] and [`Timed::to_window`].
    fn window_step<A, P>(
        mut self,
        spec: Spec,
        timestamp: Option<(TimestampFn<T>, String, Watermarks)>,
        late_sink: Option<(usize, Downstream<T>)>,
        initial: A,
        state_name: &str,
        partition: P,
    ) -> Pipeline<Fired<P::Key, A::Out>>
    where
        A: Aggregation<T>,
        P: Partition<T>,
    {
        let mut step = step_topology::<T, Fired<P::Key, A::Out>>(
            A::info(),
            Some((state_name, partition.info().name)),
        );
        step.kind = "window".to_string();
        step.window = Some(WindowTopology::of(
            &spec,
            timestamp.as_ref().map(|(_, name, w)| (name.as_str(), *w)),
        ));
        if let Some((sink, _)) = &late_sink {
            // The late messages leave the window step.
            self.topology.sinks[*sink].after = Some(self.topology.steps.len());
        }
        let dropped = Arc::new(std::sync::atomic::AtomicU64::new(0));
        self.flow
            .windows
            .push((state_name.to_string(), Arc::clone(&dropped)));
        let initial = Arc::new(initial);
        let late = late_sink.map(|(_, late)| late);
        let make_op = {
            let initial = Arc::clone(&initial);
            move |ctx: &Ctx, next| {
                WindowOp::new(
                    spec,
                    Arc::clone(&initial),
                    next,
                    late.as_ref().map(|late| late(ctx)),
                    Arc::clone(&dropped),
                )
            }
        };
        if spec.pre_aggregate {
            return self.combined_window_step(
                step, spec, timestamp, initial, state_name, partition, make_op,
            );
        }
        self.timed_step(
            step,
            state_name,
            Arc::new(partition),
            spec.idle,
            make_op,
            stamp_link(timestamp),
        )
    }

    /// [`Pipeline::window_step`] for windows combined before the exchange
    /// ([`TimeWindows::pre_aggregate`]): a [`CombineLink`] on the source's side, and on the
    /// workers the window step `make_op` builds, taking partials beside messages.
    #[allow(clippy::too_many_arguments)]
    fn combined_window_step<A, P>(
        mut self,
        step: StepTopology,
        spec: Spec,
        timestamp: Option<(TimestampFn<T>, String, Watermarks)>,
        initial: Arc<A>,
        state_name: &str,
        partition: P,
        make_op: impl Fn(&Ctx, BoxLink<Fired<P::Key, A::Out>>) -> WindowOp<A, P::Key, T>
            + Send
            + Sync
            + 'static,
    ) -> Pipeline<Fired<P::Key, A::Out>>
    where
        A: Aggregation<T>,
        P: Partition<T>,
    {
        // Only windows whose extent one thread knows, and whose late messages stay here.
        let refused = if spec.side_output {
            Some((
                "windows whose late messages go to a sink",
                "a partial holds no messages to send there; drop `.pre_aggregate()` or `.late_to_sink(…)`",
            ))
        } else if matches!(spec.kind, Kind::Session { .. }) {
            Some((
                "session windows",
                "a session's extent depends on what other threads read; drop `.pre_aggregate()`",
            ))
        } else {
            None
        };
        if let Some((what, why)) = refused {
            self.app.errors.push(format!(
                "window state \"{state_name}\": {what} cannot be combined before the exchange (`.pre_aggregate()`): {why}"
            ));
        }
        // Only `TimeWindows` combine early, and only `Timed::to_window` takes them.
        let (stamp, _, watermarks) = timestamp.expect("windows of time have event time");
        let partition = Arc::new(partition);
        let to_combine = Arc::clone(&partition);
        let pipeline: Arc<str> = Arc::from(self.topology.name.as_str());
        self.timed_step(
            step,
            state_name,
            Arc::new(PrePartition(partition)),
            spec.idle,
            move |ctx: &Ctx, next| CombinedWindowOp(make_op(ctx, next)),
            move |ctx: &Ctx, router| -> BoxLink<T> {
                Box::new(CombineLink::new(
                    Arc::clone(&stamp),
                    watermarks.bound,
                    &spec,
                    Arc::clone(&initial),
                    Arc::clone(&to_combine),
                    router,
                    Arc::clone(&ctx.control),
                    ctx.policy
                        .skips()
                        .then(|| (Arc::clone(&ctx.policy), Arc::clone(&pipeline))),
                    ctx.logged,
                ))
            },
        )
    }

    /// The process step of [`Pipeline::to_process`] and [`Timed::to_process`].
    fn process_step<C, P>(
        self,
        step: C,
        timestamp: Option<(TimestampFn<T>, String, Watermarks)>,
        state_name: &str,
        partition: P,
    ) -> Pipeline<C::Out>
    where
        C: Process<T>,
        P: Partition<T, Key = C::Key>,
    {
        let topology = StepTopology {
            name: step.name().to_string(),
            kind: "process".to_string(),
            input: type_name_of::<T>(),
            output: type_name_of::<C::Out>(),
            state: Some(state_name.to_string()),
            partition: Some(partition.info().name.to_string()),
            location: <C::State as State>::info().location(),
            window: None,
        };
        let idle = timestamp.as_ref().and_then(|(_, _, w)| w.idle);
        let step = Arc::new(step);
        self.timed_step(
            topology,
            state_name,
            Arc::new(partition),
            idle,
            move |_, next| ProcessOp::new(Arc::clone(&step), next),
            stamp_link(timestamp),
        )
    }

    /// A step that keeps time over a state partition: on the source's side, `source_link`
    /// stamps the messages (of type `M` as they cross, partitioned by `partition`) and
    /// routes them to the workers, where `make_op` builds what the step does.
    #[allow(clippy::too_many_arguments)]
    fn timed_step<P, M, O, Out>(
        mut self,
        step: StepTopology,
        state_name: &str,
        partition: Arc<P>,
        idle: Option<std::time::Duration>,
        make_op: impl Fn(&Ctx, BoxLink<Out>) -> O + Send + Sync + 'static,
        source_link: impl Fn(&Ctx, Router<StampedPartition<P>, Stamped<M>>) -> BoxLink<T>
            + Send
            + Sync
            + 'static,
    ) -> Pipeline<Out>
    where
        P: Partition<M>,
        M: Send + 'static,
        O: Op<P::Key, M> + 'static,
        Out: Send + 'static,
    {
        let source_blocked = self
            .topology
            .steps
            .iter()
            .all(|s| s.state.is_none())
            .then(|| Arc::clone(&self.flow.source_blocked_nanos));
        self.topology.steps.push(step);
        let index = self
            .app
            .partition::<P::Key, O::State>(state_name, &self.topology.name);
        if let Some(index) = index {
            if self.app.topology.states[index].pipelines.len() > 1 {
                self.app.errors.push(format!(
                    "state \"{state_name}\" of a step that keeps time is used by two pipelines; it keeps the time of one pipeline: give each its own state name"
                ));
            }
        }
        let prev = self.attach;
        Pipeline {
            app: self.app,
            topology: self.topology,
            attach: Box::new(move |wiring, down: Downstream<Out>| {
                let Some(index) = index else {
                    // Already reported as a build error; the application will not start.
                    prev(wiring, Arc::new(|_| Box::new(Discard)));
                    return;
                };
                let spares = routing::spares::<P::Carried, Stamped<M>>();
                let take_back = spares.clone();
                let to_entry = Arc::clone(&partition);
                let make_entry: EntryFactory<P::Key, O::State> = Arc::new(move |ctx| {
                    Box::new(TimedEntry::<O, P, M>::new(
                        make_op(ctx, down(ctx)),
                        Arc::clone(&to_entry),
                        idle,
                        spares.clone(),
                    ))
                });
                let entry =
                    Application::plan::<P::Key, O::State>(wiring, index).add_entry(make_entry);
                let here: Downstream<T> = Arc::new(move |ctx| {
                    let mut router = Router::new(
                        Arc::new(StampedPartition(Arc::clone(&partition))),
                        entry,
                        ctx.partitions[index].clone(),
                        take_back.clone(),
                    );
                    router.sharded = ctx.sharded.contains(&index);
                    router.blocked.clone_from(&source_blocked);
                    source_link(ctx, router)
                });
                prev(wiring, here);
            }),
            flow: self.flow,
        }
    }

    /// Runs a [`Process`] step over the state of each key: its messages and the timers it
    /// sets. Without event time ([`Pipeline::event_time`]) its event-time timers fire only
    /// at the end of the input; its wall-clock timers fire when due.
    pub fn to_process<C, P>(self, step: C, state_name: &str, partition: P) -> Pipeline<C::Out>
    where
        C: Process<T>,
        P: Partition<T, Key = C::Key>,
    {
        self.process_step(step, None, state_name, partition)
    }

    /// Sends what the last step produces to `sink` too, and goes on: a pipeline can write to
    /// several sinks. The message is encoded by reference, not cloned.
    pub fn also_to_sink<E: Encoder<T>>(mut self, sink: Sink<E>) -> Pipeline<T> {
        let (index, encoder) = self.add_sink(sink);
        let prev = self.attach;
        Pipeline {
            app: self.app,
            topology: self.topology,
            attach: Box::new(move |wiring, down: Downstream<T>| {
                let here: Downstream<T> = Arc::new(move |ctx| {
                    tee_link(
                        Arc::clone(&encoder),
                        ctx.sinks[index].clone(),
                        ctx.hold_output,
                        down(ctx),
                    )
                });
                prev(wiring, here);
            }),
            flow: self.flow,
        }
    }

    /// Declares `sink`; returns its index and its encoder.
    fn add_sink<E: Encoder<T>>(&mut self, sink: Sink<E>) -> (usize, Arc<E>) {
        let (kind, address) = sink.to.describe();
        self.topology.sinks.push(SinkTopology {
            kind,
            address,
            encoder: sink.encoder.info().name.to_string(),
            input: type_name_of::<T>(),
            after: self.topology.steps.len().checked_sub(1),
        });
        self.app.wiring.sinks.push(sink.to);
        (self.app.wiring.sinks.len() - 1, Arc::new(sink.encoder))
    }

    /// Ends the pipeline in a sink.
    pub fn to_sink<E: Encoder<T>>(mut self, sink: Sink<E>) -> Application {
        let (index, encoder) = self.add_sink(sink);
        let down: Downstream<T> = Arc::new(move |ctx| {
            sink_link(
                Arc::clone(&encoder),
                ctx.sinks[index].clone(),
                ctx.hold_output,
            )
        });
        self.finish(down)
    }

    /// Ends the pipeline without a sink: what its last step produces is dropped.
    pub fn done(self) -> Application {
        self.finish(Arc::new(|_| Box::new(Discard)))
    }

    fn finish(self, down: Downstream<T>) -> Application {
        let mut app = self.app;
        (self.attach)(&mut app.wiring, down);
        app.wiring.flows.push(self.flow);
        app.topology.pipelines.push(self.topology);
        app
    }
}

/// The source side of a timed step whose messages cross one by one: a [`StampLink`] with
/// the pipeline's timestamp function (none without event time).
fn stamp_link<T: Send + 'static, P: Partition<T>>(
    timestamp: Option<(TimestampFn<T>, String, Watermarks)>,
) -> impl Fn(&Ctx, Router<StampedPartition<P>, Stamped<T>>) -> BoxLink<T> + Send + Sync + 'static {
    let bound = timestamp.as_ref().map_or(0, |(_, _, w)| w.bound);
    let timestamp: Timestamp<T> = timestamp.map(|(stamp, _, _)| stamp);
    move |ctx, router| {
        Box::new(StampLink::new(
            timestamp.clone(),
            bound,
            router,
            Arc::clone(&ctx.control),
        ))
    }
}

/// A pipeline whose messages have an event time ([`Pipeline::event_time`]): what it can do
/// next is keep windows of that time.
#[must_use = "a pipeline with event time goes on with `.to_window(…)`"]
pub struct Timed<T> {
    pipeline: Pipeline<T>,
    timestamp: TimestampFn<T>,
    timestamp_name: String,
    watermarks: Watermarks,
    /// The sink of late messages: its index in the pipeline's topology, and its chain.
    late_sink: Option<(usize, Downstream<T>)>,
}

impl<T: Send + 'static> Timed<T> {
    /// Sends the messages that come too late for every window they belong to (after
    /// their allowed lateness) to `sink`, instead of the windows' [`Late`] policy: the side
    /// output of late data.
    pub fn late_to_sink<E: Encoder<T>>(mut self, sink: Sink<E>) -> Timed<T> {
        let (index, encoder) = self.pipeline.add_sink(sink);
        // `index` counts the application's sinks; the topology's are the pipeline's own.
        let in_topology = self.pipeline.topology.sinks.len() - 1;
        self.late_sink = Some((
            in_topology,
            Arc::new(move |ctx| {
                sink_link(
                    Arc::clone(&encoder),
                    ctx.sinks[index].clone(),
                    ctx.hold_output,
                )
            }),
        ));
        self
    }

    /// Aggregates each key's messages over `windows` of event time ([`Windows`](crate::time::Windows)):
    /// `initial` is the aggregation's empty accumulator, cloned for each window; the
    /// partition function gives each message its key; each window that the watermark
    /// closes sends one [`Fired`] on, per key in order of the windows' start. At the end of
    /// the input every open window fires.
    pub fn to_window<W, A, P>(
        self,
        windows: W,
        initial: A,
        state_name: &str,
        partition: P,
    ) -> Pipeline<Fired<P::Key, A::Out>>
    where
        W: AnyWindows,
        A: Aggregation<T>,
        P: Partition<T>,
    {
        let spec = Spec::of(
            windows.windows(),
            self.late_sink.is_some(),
            self.watermarks.idle,
        );
        let timestamp = Some((self.timestamp, self.timestamp_name, self.watermarks));
        self.pipeline.window_step(
            spec,
            timestamp,
            self.late_sink,
            initial,
            state_name,
            partition,
        )
    }
}

impl<T: Send + 'static> Timed<T> {
    /// Runs a [`Process`] step over the state of each key, with timers of event time: due
    /// when the partition's watermark reaches them, and at the end of the input.
    pub fn to_process<C, P>(self, step: C, state_name: &str, partition: P) -> Pipeline<C::Out>
    where
        C: Process<T>,
        P: Partition<T, Key = C::Key>,
    {
        let timestamp = Some((self.timestamp, self.timestamp_name, self.watermarks));
        self.pipeline
            .process_step(step, timestamp, state_name, partition)
    }
}

/// Windows that need no event time: count windows and the running window.
#[diagnostic::on_unimplemented(
    message = "windows of time need event time",
    label = "call `.event_time(timestamp, Watermarks::bounded(…))` on the pipeline before `.to_window(…)`",
    note = "only `Windows::count(n)` and `Windows::running()` work without event time"
)]
pub trait UntimedWindows {
    #[doc(hidden)]
    fn count_windows(self) -> CountWindows;
}

impl UntimedWindows for CountWindows {
    fn count_windows(self) -> CountWindows {
        self
    }
}

/// Any windows: of time ([`TimeWindows`]), or of a count or running ([`CountWindows`]).
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not windows",
    label = "give windows from `Windows`: `Windows::tumbling(size)`, `Windows::sliding(size, slide)`, `Windows::session(gap)`, `Windows::count(n)` or `Windows::running()`",
    note = "a window's size or gap is a `Duration` given to one of them: `Windows::tumbling(Duration::from_secs(10))`"
)]
pub trait AnyWindows {
    #[doc(hidden)]
    fn windows(self) -> TimeWindows;
}

impl AnyWindows for CountWindows {
    fn windows(self) -> TimeWindows {
        TimeWindows {
            kind: self.kind,
            lateness: 0,
            late: Late::Drop,
            pre_aggregate: false,
        }
    }
}

impl AnyWindows for TimeWindows {
    fn windows(self) -> TimeWindows {
        self
    }
}
