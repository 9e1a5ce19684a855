//! The worker side of a window partition: takes stamped messages and the inputs' ticks,
//! moves the partition's clock, fires the windows it closes, and places each message in
//! its key's windows.

use std::any::Any;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::clock::{Clock, Moved};
use super::stamp::{Stamped, Tick};
use super::window::{windows_of, Panes, Placed};
use super::{Aggregation, Fired, Kind, Late, Millis, Window};
use crate::link::{set_output_key, BoxLink};
use crate::resilience::record::Origin;
use crate::routing::{table_hash, Batch, Keyed, Spares};
use crate::state::Partition;
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

/// Per key, the times at which its windows are to be looked at again. A key may be listed
/// more than once (and at times that find nothing to do): cheaper than keeping it exact.
type Timers<K> = BTreeMap<Millis, Vec<K>>;

/// A window partition's entry on one worker.
pub(crate) struct WindowEntry<A: Aggregation<In>, P: Partition<In>, In> {
    spec: Spec,
    initial: Arc<A>,
    partition: Arc<P>,
    next: BoxLink<Fired<P::Key, A::Out>>,
    /// Where late messages go, with a side output.
    late_sink: Option<BoxLink<In>>,
    out: Vec<Fired<P::Key, A::Out>>,
    late_out: Vec<In>,
    clock: Clock,
    timers: Timers<P::Key>,
    /// Whether the timers of the states recovered at start are set.
    timed: bool,
    /// The watermark last logged.
    logged: Millis,
    spares: Spares<P::Carried, Stamped<In>>,
    /// Late messages dropped: counted here, added to the shared count once per flush.
    dropped: u64,
    dropped_total: Arc<AtomicU64>,
    /// Whether a sink down the chain keys its records by the state key.
    keyed: bool,
}

impl<A: Aggregation<In>, P: Partition<In>, In> WindowEntry<A, P, In> {
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        spec: Spec,
        initial: Arc<A>,
        partition: Arc<P>,
        next: BoxLink<Fired<P::Key, A::Out>>,
        late_sink: Option<BoxLink<In>>,
        spares: Spares<P::Carried, Stamped<In>>,
        dropped_total: Arc<AtomicU64>,
    ) -> Self {
        WindowEntry {
            spec,
            initial,
            partition,
            keyed: next.wants_keys(),
            next,
            late_sink,
            out: Vec::new(),
            late_out: Vec::new(),
            clock: Clock::new(spec.idle),
            timers: Timers::new(),
            timed: false,
            logged: Millis::MIN,
            spares,
            dropped: 0,
            dropped_total,
        }
    }
}

/// What placing a message and firing windows work with, borrowed apart from the store.
struct Firing<'e, A: Aggregation<In>, K, In> {
    spec: Spec,
    initial: &'e A,
    timers: &'e mut Timers<K>,
    out: &'e mut Vec<Fired<K, A::Out>>,
    late_out: &'e mut Vec<In>,
    dropped: &'e mut u64,
}

impl<A: Aggregation<In>, K: Clone, In> Firing<'_, A, K, In> {
    /// Places `msg`, of event time `time`, in the windows of `key` at watermark `wm`;
    /// whether the key's state changed.
    fn place(&mut self, msg: In, time: Millis, wm: Millis, key: &K, panes: &mut Panes<A>) -> bool {
        let Firing {
            spec,
            initial,
            timers,
            out,
            late_out,
            dropped,
        } = self;
        let mut timer = |t: Millis| timers.entry(t).or_default().push(key.clone());
        let mut fire = |window: Window, acc: &A, late: bool| {
            out.push(Fired {
                key: key.clone(),
                window,
                value: acc.output(),
                late,
            });
        };
        let kind = match spec.kind {
            Kind::Count { size } => {
                panes.count(size, *initial, &msg, &mut timer, &mut fire);
                return true;
            }
            kind => kind,
        };
        match panes.place(
            kind,
            spec.lateness,
            *initial,
            &msg,
            time,
            wm,
            &mut timer,
            &mut fire,
        ) {
            Placed::Applied => true,
            Placed::Late if spec.side_output => {
                late_out.push(msg);
                false
            }
            Placed::Late => match spec.late {
                Late::Drop => {
                    **dropped += 1;
                    false
                }
                Late::FirePerMessage => {
                    let mut alone = (*initial).clone();
                    alone.update(&msg);
                    windows_of(kind, time, |window| fire(window, &alone, true));
                    false
                }
                Late::PlaceInOldest => {
                    let placed = panes.place_in_oldest(&msg, &mut fire);
                    if !placed {
                        **dropped += 1;
                    }
                    placed
                }
            },
        }
    }
}

impl<A, P, In> WindowEntry<A, P, In>
where
    A: Aggregation<In>,
    P: Partition<In>,
    In: Send + 'static,
{
    /// Sets the timers of the windows that the states recovered at start hold, and the
    /// watermark they were kept at.
    fn set_recovered_timers(&mut self, store: &StateStore<P::Key, Panes<A>>) {
        let (timers, lateness) = (&mut self.timers, self.spec.lateness);
        store.each(|key, panes| {
            panes.timers(lateness, |t| timers.entry(t).or_default().push(key.clone()));
        });
        if let Some(seq) = store.marked(WATERMARK) {
            self.clock.restore(from_seq(seq));
            self.logged = self.clock.current();
        }
        self.timed = true;
    }

    /// Logs the partition's watermark, if it moved, with the changes it made: committed
    /// before the outputs it fired leave.
    fn log_watermark(&mut self, store: &mut StateStore<P::Key, Panes<A>>) {
        let current = self.clock.current();
        if current > self.logged {
            self.logged = current;
            store.marker(WATERMARK, to_seq(current));
        }
    }

    /// Fires what the partition's watermark moving closes.
    fn moved(&mut self, moved: Moved, store: &mut StateStore<P::Key, Panes<A>>) {
        let lateness = self.spec.lateness;
        let (timers, out) = (&mut self.timers, &mut self.out);
        match moved {
            Moved::Still => {}
            Moved::To(wm) => {
                while let Some(due) = timers.first_entry() {
                    if *due.key() > wm {
                        break;
                    }
                    for key in due.remove() {
                        store.update(&key, |key, panes| {
                            panes.fire_due(
                                wm,
                                lateness,
                                &mut |t| timers.entry(t).or_default().push(key.clone()),
                                &mut |window, acc, late| {
                                    out.push(Fired {
                                        key: key.clone(),
                                        window,
                                        value: acc.output(),
                                        late,
                                    });
                                },
                            )
                        });
                    }
                }
            }
            Moved::Ended => {
                for key in std::mem::take(timers).into_values().flatten() {
                    store.update(&key, |key, panes| {
                        panes.fire_all(&mut |window, acc, late| {
                            out.push(Fired {
                                key: key.clone(),
                                window,
                                value: acc.output(),
                                late,
                            });
                        })
                    });
                }
            }
        }
    }

    /// Sends on what fired and what came late.
    fn pass_on(&mut self) {
        if !self.out.is_empty() {
            if self.keyed {
                for fired in self.out.drain(..) {
                    set_output_key(Some(&fired.key));
                    self.next.emit(fired);
                }
                set_output_key::<P::Key>(None);
            } else {
                self.next.emit_all(&mut self.out);
            }
        }
        if let Some(late) = &mut self.late_sink {
            if !self.late_out.is_empty() {
                late.emit_all(&mut self.late_out);
            }
        }
    }

    fn tick(&mut self, tick: Tick, store: &mut StateStore<P::Key, Panes<A>>) {
        let now = Instant::now();
        let moved = if tick.ended {
            self.clock.end(tick.input, now)
        } else {
            self.clock.touch(tick.input, now);
            self.clock.advance(tick.input, tick.watermark, now)
        };
        self.moved(moved, store);
        self.log_watermark(store);
        self.pass_on();
    }
}

impl<A, P, In> EntryRunner<P::Key, Panes<A>> for WindowEntry<A, P, In>
where
    A: Aggregation<In>,
    P: Partition<In>,
    In: Send + 'static,
{
    fn run(
        &mut self,
        batch: Box<dyn Any + Send>,
        store: &mut StateStore<P::Key, Panes<A>>,
        panics: &mut Panics<'_>,
    ) -> bool {
        if !self.timed {
            self.set_recovered_timers(store);
        }
        let mut batch = match batch.downcast::<Tick>() {
            Ok(tick) => {
                self.tick(*tick, store);
                return true;
            }
            Err(batch) => match batch.downcast::<Batch<P::Carried, Stamped<In>>>() {
                Ok(batch) => batch,
                // The router and the entry are built from the same typed builder call.
                Err(_) => unreachable!("a batch reached a window entry of another type"),
            },
        };
        store.taken += batch.msgs.len() as u64;
        crate::latency::set_read_at(batch.read_at);
        let now = Instant::now();
        let moved = self.clock.tick(now);
        self.moved(moved, store);
        let step = A::info().name;
        let partition = Arc::clone(&self.partition);
        let Batch { msgs, origins, .. } = &mut *batch;
        let count = msgs.len();
        // Taken outside the catch: after a panic, what is left says which message failed.
        let mut todo = msgs.drain(..);
        let mut at = origins.iter();
        let go_on = loop {
            let ran = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                for Keyed { hash, carried, msg } in &mut todo {
                    let origin = at.next().copied().unwrap_or(Origin::NONE);
                    let Stamped {
                        input,
                        time,
                        watermark,
                        msg,
                    } = msg;
                    let moved = self.clock.advance(input, watermark, now);
                    if moved != Moved::Still {
                        self.moved(moved, store);
                    }
                    let wm = self.clock.current();
                    let mut firing = Firing {
                        spec: self.spec,
                        initial: &*self.initial,
                        timers: &mut self.timers,
                        out: &mut self.out,
                        late_out: &mut self.late_out,
                        dropped: &mut self.dropped,
                    };
                    store.apply_keyed(
                        table_hash(hash),
                        msg,
                        |msg, key| partition.is_key(msg, &carried, key),
                        |msg| partition.key(msg),
                        origin,
                        |msg, key, panes| firing.place(msg, time, wm, key, panes),
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
        self.pass_on();
        go_on
    }

    fn flush(&mut self) {
        self.next.flush();
        if let Some(late) = &mut self.late_sink {
            late.flush();
        }
        if self.dropped > 0 {
            self.dropped_total
                .fetch_add(std::mem::take(&mut self.dropped), Ordering::Relaxed);
        }
    }

    fn step(&self) -> &'static str {
        A::info().name
    }
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
