//! The worker side of a step that keeps time (windows, process steps with timers): takes
//! stamped messages and the inputs' ticks, moves the partition's clock, lets the step
//! act on what the watermark moving makes due, and hands each message to the step with
//! its key's state. What the step does with time is its own ([`Op`]).

use std::any::Any;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::clock::{Clock, Moved};
use super::stamp::{Stamped, Tick};
use super::{Kind, Late, Millis};
use crate::resilience::record::Origin;
use crate::routing::{table_hash, Batch, Keyed, Spares};
use crate::state::{Key, Partition, State};
use crate::worker::{EntryRunner, Panics, StateStore};

/// What a window partition keeps, as the builder declared it.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Spec {
    pub(crate) kind: Kind,
    pub(crate) lateness: Millis,
    pub(crate) late: Late,
    /// Whether late messages go to a sink of their own.
    pub(crate) side_output: bool,
    pub(crate) idle: Option<Duration>,
    /// Whether messages are combined before the exchange ([`super::TimeWindows::pre_aggregate`]).
    pub(crate) pre_aggregate: bool,
}

impl Spec {
    /// The spec of `windows`, with late messages to a sink of their own if `side_output`,
    /// and inputs left out of the watermark after `idle`.
    pub(crate) fn of(
        windows: super::TimeWindows,
        side_output: bool,
        idle: Option<Duration>,
    ) -> Spec {
        Spec {
            kind: windows.kind,
            lateness: windows.lateness,
            late: windows.late,
            side_output,
            idle,
            pre_aggregate: windows.pre_aggregate,
        }
    }
}

/// What a step that keeps time does, on one worker.
pub(crate) trait Op<K, In>: Send {
    /// The state it keeps per key.
    type State: State;
    /// Its name, for errors.
    fn name(&self) -> &'static str;
    /// Takes note of what the states recovered at start hold (their timers).
    fn recovered(&mut self, store: &StateStore<K, Self::State>);
    /// The partition's watermark moved to `wm`, or every input ended.
    fn moved(&mut self, moved: Moved, wm: Millis, store: &mut StateStore<K, Self::State>);
    /// Takes `msg`, of event time `time`, at watermark `wm`, with its key's state; whether
    /// the state changed.
    fn message(
        &mut self,
        msg: In,
        time: Millis,
        wm: Millis,
        key: &K,
        state: &mut Self::State,
    ) -> bool;
    /// Sends on what it gathered.
    fn pass_on(&mut self);
    /// Flushes the chains after it.
    fn flush(&mut self);
    /// When it wants to be woken without a message (a wall-clock timer).
    fn deadline(&self) -> Option<Instant> {
        None
    }
    /// The wall clock moved (the partition's watermark is `wm`): acts on what is due.
    fn on_time(&mut self, _wm: Millis, _store: &mut StateStore<K, Self::State>) {}
}

/// The stream id under which a worker logs its partition's watermark, beside the positions
/// of the replayable streams: recovered at start, so that a restarted run judges lateness as
/// the run before it did.
const WATERMARK: u64 = u64::MAX;

/// A watermark as a marker's sequence number: the same order, from 0 for `Millis::MIN`.
fn to_seq(watermark: Millis) -> u64 {
    (watermark as u64) ^ (1 << 63)
}

fn from_seq(seq: u64) -> Millis {
    (seq ^ (1 << 63)) as Millis
}

/// A timed step's entry on one worker.
pub(crate) struct TimedEntry<O, P: Partition<In>, In> {
    op: O,
    partition: Arc<P>,
    clock: Clock,
    /// Whether the state recovered at start was looked at.
    started: bool,
    /// The watermark last logged.
    logged: Millis,
    spares: Spares<P::Carried, Stamped<In>>,
}

impl<O, P: Partition<In>, In> TimedEntry<O, P, In> {
    pub(crate) fn new(
        op: O,
        partition: Arc<P>,
        idle: Option<Duration>,
        spares: Spares<P::Carried, Stamped<In>>,
    ) -> Self {
        TimedEntry {
            op,
            partition,
            clock: Clock::new(idle),
            started: false,
            logged: Millis::MIN,
            spares,
        }
    }
}

impl<O, P, In> TimedEntry<O, P, In>
where
    O: Op<P::Key, In>,
    P: Partition<In>,
    In: Send + 'static,
{
    /// Takes note of the recovered state, and of the watermark it was kept at.
    fn start(&mut self, store: &StateStore<P::Key, O::State>) {
        self.op.recovered(store);
        if let Some(seq) = store.marked(WATERMARK) {
            self.clock.restore(from_seq(seq));
            self.logged = self.clock.current();
        }
        self.started = true;
    }

    fn moved(&mut self, moved: Moved, store: &mut StateStore<P::Key, O::State>) {
        if moved != Moved::Still {
            self.op.moved(moved, self.clock.current(), store);
        }
    }

    /// Logs the partition's watermark, if it moved, with the changes it made: committed
    /// before the outputs it fired leave.
    fn log_watermark(&mut self, store: &mut StateStore<P::Key, O::State>) {
        let current = self.clock.current();
        if current > self.logged {
            self.logged = current;
            store.marker(WATERMARK, to_seq(current));
        }
    }

    fn tick(&mut self, tick: Tick, store: &mut StateStore<P::Key, O::State>) {
        let now = Instant::now();
        let moved = if tick.ended {
            self.clock.end(tick.input, now)
        } else {
            self.clock.touch(tick.input, now);
            self.clock.advance(tick.input, tick.watermark, now)
        };
        self.moved(moved, store);
        self.log_watermark(store);
        self.op.pass_on();
    }
}

impl<O, P, In> EntryRunner<P::Key, O::State> for TimedEntry<O, P, In>
where
    O: Op<P::Key, In>,
    P: Partition<In>,
    In: Send + 'static,
{
    fn run(
        &mut self,
        batch: Box<dyn Any + Send>,
        store: &mut StateStore<P::Key, O::State>,
        panics: &mut Panics<'_>,
    ) -> bool {
        if !self.started {
            self.start(store);
        }
        let step = self.op.name();
        let mut batch = match batch.downcast::<Tick>() {
            Ok(tick) => {
                let ticked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    self.tick(*tick, store);
                }));
                return match ticked {
                    Ok(()) => true,
                    Err(panic) => panics.on_panic(panic, step, false, Origin::NONE, store),
                };
            }
            Err(batch) => match batch.downcast::<Batch<P::Carried, Stamped<In>>>() {
                Ok(batch) => batch,
                // The router and the entry are built from the same typed builder call.
                Err(_) => unreachable!("a batch reached a timed entry of another type"),
            },
        };
        store.taken += batch.msgs.len() as u64;
        crate::latency::set_read_at(batch.read_at);
        let now = Instant::now();
        let partition = Arc::clone(&self.partition);
        let Batch { msgs, origins, .. } = &mut *batch;
        let count = msgs.len();
        // Taken outside the catch: after a panic, what is left says which message failed.
        let mut todo = msgs.drain(..);
        let mut at = origins.iter();
        let go_on = loop {
            let ran = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                let moved = self.clock.tick(now);
                self.moved(moved, store);
                for Keyed { hash, carried, msg } in &mut todo {
                    let origin = at.next().copied().unwrap_or(Origin::NONE);
                    let Stamped {
                        input,
                        time,
                        watermark,
                        msg,
                    } = msg;
                    let moved = self.clock.advance(input, watermark, now);
                    self.moved(moved, store);
                    let (op, wm) = (&mut self.op, self.clock.current());
                    store.apply_keyed(
                        table_hash(hash),
                        msg,
                        |msg, key| partition.is_key(msg, &carried, key),
                        |msg| partition.key(msg),
                        origin,
                        |msg, key, state| op.message(msg, time, wm, key, state),
                    );
                }
            }));
            let Err(panic) = ran else {
                break true;
            };
            let failed = (count - todo.len()).saturating_sub(1);
            let origin = origins.get(failed).copied().unwrap_or(Origin::NONE);
            if !panics.on_panic(panic, step, false, origin, store) {
                break false;
            }
        };
        drop(todo);
        origins.clear();
        self.spares.give(batch);
        self.log_watermark(store);
        self.op.pass_on();
        go_on
    }

    fn flush(&mut self) {
        self.op.flush();
    }

    fn step(&self) -> &'static str {
        self.op.name()
    }

    fn deadline(&self) -> Option<Instant> {
        self.op.deadline()
    }

    fn on_time(
        &mut self,
        store: &mut StateStore<P::Key, O::State>,
        panics: &mut Panics<'_>,
    ) -> bool {
        if !self.started {
            self.start(store);
        }
        let ran = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            self.op.on_time(self.clock.current(), store);
        }));
        self.op.pass_on();
        match ran {
            Ok(()) => true,
            Err(panic) => panics.on_panic(panic, self.op.name(), false, Origin::NONE, store),
        }
    }
}

/// Keys of a [`Key`] type by due time: the index of a step's timers on one worker. A key may
/// be listed more than once, and at times that find nothing to do: cheaper than keeping it
/// exact.
pub(crate) type Due<K> = std::collections::BTreeMap<Millis, Vec<K>>;

/// Files `key` under `time` in `due`.
pub(crate) fn due_at<K: Key>(due: &mut Due<K>, time: Millis, key: &K) {
    due.entry(time).or_default().push(key.clone());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_watermark_as_a_marker_keeps_its_order_and_comes_back() {
        let times = [Millis::MIN, -10_000, -1, 0, 1, 10_000, Millis::MAX];
        for pair in times.windows(2) {
            assert!(to_seq(pair[0]) < to_seq(pair[1]), "{pair:?}");
        }
        for t in times {
            assert_eq!(from_seq(to_seq(t)), t);
        }
        assert_eq!(to_seq(Millis::MIN), 0);
    }
}
