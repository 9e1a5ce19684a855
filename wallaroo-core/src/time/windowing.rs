//! The windows of a partition on one worker: each message placed in its key's windows,
//! the windows a watermark closes fired, late messages dealt with as the step says.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use super::clock::Moved;
use super::combine::{Partial, Pre};
use super::runner::{due_at, Due, Op, Spec};
use super::window::{windows_of, Panes, Placed};
use super::{Aggregation, Fired, Kind, Late, Millis, Window};
use crate::link::{set_output_key, BoxLink};
use crate::state::Key;
use crate::worker::StateStore;

/// A window step on one worker.
pub(crate) struct WindowOp<A: Aggregation<In>, K, In> {
    spec: Spec,
    initial: Arc<A>,
    next: BoxLink<Fired<K, A::Out>>,
    /// Where late messages go, with a side output.
    late_sink: Option<BoxLink<In>>,
    out: Vec<Fired<K, A::Out>>,
    late_out: Vec<In>,
    /// When each key's windows are to be looked at again.
    due: Due<K>,
    /// Late messages dropped: counted here, added to the shared count once per flush.
    dropped: u64,
    dropped_total: Arc<AtomicU64>,
    /// Whether a sink down the chain keys its records by the state key.
    keyed: bool,
}

impl<A: Aggregation<In>, K, In> WindowOp<A, K, In> {
    pub(crate) fn new(
        spec: Spec,
        initial: Arc<A>,
        next: BoxLink<Fired<K, A::Out>>,
        late_sink: Option<BoxLink<In>>,
        dropped_total: Arc<AtomicU64>,
    ) -> Self {
        WindowOp {
            spec,
            initial,
            keyed: next.wants_keys(),
            next,
            late_sink,
            out: Vec::new(),
            late_out: Vec::new(),
            due: Due::new(),
            dropped: 0,
            dropped_total,
        }
    }
}

impl<A, K, In> WindowOp<A, K, In>
where
    A: Aggregation<In>,
    K: Key,
    In: Send + 'static,
{
    /// Places one message, of event time `time`, at watermark `wm`; whether the key's
    /// windows changed.
    fn one(&mut self, msg: In, time: Millis, wm: Millis, key: &K, panes: &mut Panes<A>) -> bool {
        let WindowOp {
            spec,
            initial,
            due,
            out,
            late_out,
            dropped,
            ..
        } = self;
        let initial: &A = initial;
        let mut timer = |t: Millis| due_at(due, t, key);
        let mut fire = gather(key, out);
        let kind = match spec.kind {
            Kind::Count { size } => {
                panes.count(size, initial, &msg, &mut timer, &mut fire);
                return true;
            }
            Kind::Running => {
                panes.running(initial, &msg, &mut fire);
                return true;
            }
            kind => kind,
        };
        match panes.place(
            kind,
            spec.lateness,
            initial,
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
                    *dropped += 1;
                    false
                }
                Late::FirePerMessage => {
                    let mut alone = initial.clone();
                    alone.update(&msg);
                    windows_of(kind, time, |window| fire(window, &alone, true));
                    false
                }
                Late::PlaceInOldest => {
                    let placed = panes.place_in_oldest(&msg, &mut fire);
                    if !placed {
                        *dropped += 1;
                    }
                    placed
                }
            },
        }
    }

    /// Combines a partial of `window`'s messages, combined before the exchange, at
    /// watermark `wm`; whether the key's windows changed. A partial the watermark finds late
    /// is its messages coming together.
    fn partial(&mut self, partial: Partial<K, A>, wm: Millis, panes: &mut Panes<A>) -> bool {
        let WindowOp {
            spec,
            initial,
            due,
            out,
            dropped,
            ..
        } = self;
        let key = &partial.key;
        let mut timer = |t: Millis| due_at(due, t, key);
        let mut fire = gather(key, out);
        let placed = panes.combine_into::<In>(
            partial.window,
            spec.lateness,
            initial,
            &partial.acc,
            wm,
            &mut timer,
            &mut fire,
        );
        match (placed, spec.late) {
            (Placed::Applied, _) => true,
            (Placed::Late, Late::Drop) => {
                *dropped += partial.count;
                false
            }
            (Placed::Late, Late::FirePerMessage) => {
                fire(partial.window, &partial.acc, true);
                false
            }
            (Placed::Late, Late::PlaceInOldest) => {
                let placed = panes.combine_in_oldest::<In>(&partial.acc, &mut fire);
                if !placed {
                    *dropped += partial.count;
                }
                placed
            }
        }
    }
}

/// A window step whose messages were combined before the exchange
/// ([`super::TimeWindows::pre_aggregate`]): it takes partials beside messages.
pub(crate) struct CombinedWindowOp<A: Aggregation<In>, K, In>(pub(crate) WindowOp<A, K, In>);

impl<A, K, In> Op<K, Pre<In, K, A>> for CombinedWindowOp<A, K, In>
where
    A: Aggregation<In>,
    K: Key,
    In: Send + 'static,
{
    type State = Panes<A>;

    fn name(&self) -> &'static str {
        self.0.name()
    }

    fn recovered(&mut self, store: &StateStore<K, Panes<A>>) {
        self.0.recovered(store);
    }

    fn moved(&mut self, moved: Moved, wm: Millis, store: &mut StateStore<K, Panes<A>>) {
        self.0.moved(moved, wm, store);
    }

    fn message(
        &mut self,
        msg: Pre<In, K, A>,
        time: Millis,
        wm: Millis,
        key: &K,
        panes: &mut Panes<A>,
    ) -> bool {
        match msg {
            Pre::One(msg) => self.0.one(msg, time, wm, key, panes),
            Pre::Part(partial) => self.0.partial(partial, wm, panes),
        }
    }

    fn pass_on(&mut self) {
        self.0.pass_on();
    }

    fn flush(&mut self) {
        self.0.flush();
    }
}

/// A fire callback that gathers [`Fired`] outputs of `key` into `out`.
fn gather<'o, K: Clone, A: Aggregation<In>, In>(
    key: &'o K,
    out: &'o mut Vec<Fired<K, A::Out>>,
) -> impl FnMut(Window, &A, bool) + 'o {
    move |window, acc, late| {
        out.push(Fired {
            key: key.clone(),
            window,
            value: acc.output(),
            late,
        });
    }
}

impl<A, K, In> Op<K, In> for WindowOp<A, K, In>
where
    A: Aggregation<In>,
    K: Key,
    In: Send + 'static,
{
    type State = Panes<A>;

    fn name(&self) -> &'static str {
        A::info().name
    }

    fn recovered(&mut self, store: &StateStore<K, Panes<A>>) {
        let (due, lateness) = (&mut self.due, self.spec.lateness);
        store.each(|key, panes| panes.timers(lateness, |t| due_at(due, t, key)));
    }

    fn moved(&mut self, moved: Moved, wm: Millis, store: &mut StateStore<K, Panes<A>>) {
        let lateness = self.spec.lateness;
        let (due, out) = (&mut self.due, &mut self.out);
        match moved {
            Moved::Still => {}
            Moved::To(_) => {
                while let Some(entry) = due.first_entry() {
                    if *entry.key() > wm {
                        break;
                    }
                    for key in entry.remove() {
                        store.update(&key, |key, panes| {
                            panes.fire_due(
                                wm,
                                lateness,
                                &mut |t| due_at(due, t, key),
                                &mut gather(key, out),
                            )
                        });
                    }
                }
            }
            Moved::Ended => {
                for key in std::mem::take(due).into_values().flatten() {
                    store.update(&key, |key, panes| panes.fire_all(&mut gather(key, out)));
                }
            }
        }
    }

    fn message(
        &mut self,
        msg: In,
        time: Millis,
        wm: Millis,
        key: &K,
        panes: &mut Panes<A>,
    ) -> bool {
        self.one(msg, time, wm, key, panes)
    }

    fn pass_on(&mut self) {
        if !self.out.is_empty() {
            if self.keyed {
                for fired in self.out.drain(..) {
                    set_output_key(Some(&fired.key));
                    self.next.emit(fired);
                }
                set_output_key::<K>(None);
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
}
