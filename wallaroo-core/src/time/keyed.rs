//! A process step on one worker: its messages, and the timers its keys set, fired when
//! the watermark or the wall clock reaches them.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::clock::Moved;
use super::process::{
    file, now_unix_ms, take_due, Process, SetTimers, Timer, TimerKind, Timers, WithTimers,
};
use super::runner::{due_at, Due, Op};
use super::Millis;
use crate::link::{set_output_key, BoxLink};
use crate::state::Key;
use crate::worker::StateStore;

/// How many times in a row a key's due timers are fired when each firing sets another that
/// is due already; past it, the rest wait for the clock to move again.
const ROUNDS: usize = 64;

/// A process step on one worker.
pub(crate) struct ProcessOp<C: Process<In>, In> {
    step: Arc<C>,
    parts: Parts<C::Key, C::Out>,
}

/// What calling the step works with, borrowed apart from the store.
struct Parts<K, Out> {
    next: BoxLink<Out>,
    out: Vec<Out>,
    set: SetTimers,
    /// When each key has an event-time timer, and a wall-clock one.
    event_due: Due<K>,
    wall_due: Due<K>,
    /// Whether a sink down the chain keys its records by the state key.
    keyed: bool,
}

impl<C: Process<In>, In> ProcessOp<C, In> {
    pub(crate) fn new(step: Arc<C>, next: BoxLink<C::Out>) -> Self {
        ProcessOp {
            step,
            parts: Parts {
                keyed: next.wants_keys(),
                next,
                out: Vec::new(),
                set: SetTimers::default(),
                event_due: Due::new(),
                wall_due: Due::new(),
            },
        }
    }
}

impl<K: Key, Out> Parts<K, Out> {
    /// Files the timers the step just set for `key`; whether any is new.
    fn file_set<S>(&mut self, key: &K, st: &mut WithTimers<S>) -> bool {
        let mut changed = false;
        for t in self.set.event.drain(..) {
            if file(&mut st.event, t) {
                due_at(&mut self.event_due, t, key);
                changed = true;
            }
        }
        for t in self.set.wall.drain(..) {
            if file(&mut st.wall, t) {
                due_at(&mut self.wall_due, t, key);
                changed = true;
            }
        }
        changed
    }

    /// Passes on the outputs of `key`'s call, with the key when the sink wants it.
    fn emitted(&mut self, key: &K) {
        if self.keyed && !self.out.is_empty() {
            set_output_key(Some(key));
            self.next.emit_all(&mut self.out);
            set_output_key::<K>(None);
        }
    }

    /// Fires `key`'s timers of `kind` up to `until`, in order, at watermark `wm`; whether
    /// the state changed.
    fn fire<C, In>(
        &mut self,
        step: &C,
        kind: TimerKind,
        until: Millis,
        wm: Millis,
        key: &K,
        st: &mut WithTimers<C::State>,
    ) -> bool
    where
        C: Process<In, Key = K, Out = Out>,
    {
        let mut changed = false;
        for _ in 0..ROUNDS {
            let times = match kind {
                TimerKind::EventTime => &mut st.event,
                TimerKind::ProcessingTime => &mut st.wall,
            };
            let due = take_due(times, until);
            if due.is_empty() {
                break;
            }
            changed = true;
            for time in due {
                let mut timers = Timers {
                    key,
                    watermark: wm,
                    set: &mut self.set,
                };
                step.on_timer(
                    Timer { time, kind },
                    &mut st.state,
                    &mut timers,
                    &mut self.out,
                );
                self.file_set(key, st);
                self.emitted(key);
            }
        }
        changed
    }
}

impl<C, In> Op<C::Key, In> for ProcessOp<C, In>
where
    C: Process<In>,
    In: Send + 'static,
{
    type State = WithTimers<C::State>;

    fn name(&self) -> &'static str {
        self.step.name()
    }

    fn recovered(&mut self, store: &StateStore<C::Key, Self::State>) {
        let parts = &mut self.parts;
        store.each(|key, st| {
            for &t in &st.event {
                due_at(&mut parts.event_due, t, key);
            }
            for &t in &st.wall {
                due_at(&mut parts.wall_due, t, key);
            }
        });
    }

    fn moved(&mut self, moved: Moved, wm: Millis, store: &mut StateStore<C::Key, Self::State>) {
        let (step, parts) = (&*self.step, &mut self.parts);
        let (until, wm) = match moved {
            Moved::Still => return,
            Moved::To(_) => (wm, wm),
            // The end of the input: the end of time, every event-time timer is due.
            Moved::Ended => (Millis::MAX, Millis::MAX),
        };
        while let Some(entry) = parts.event_due.first_entry() {
            if *entry.key() > until {
                break;
            }
            for key in entry.remove() {
                store.update(&key, |key, st| {
                    parts.fire(step, TimerKind::EventTime, until, wm, key, st)
                });
            }
        }
    }

    fn message(
        &mut self,
        msg: In,
        _time: Millis,
        wm: Millis,
        key: &C::Key,
        st: &mut Self::State,
    ) -> bool {
        let (step, parts) = (&*self.step, &mut self.parts);
        let mut timers = Timers {
            key,
            watermark: wm,
            set: &mut parts.set,
        };
        let mut changed = step.on_message(msg, &mut st.state, &mut timers, &mut parts.out);
        changed |= parts.file_set(key, st);
        parts.emitted(key);
        // A timer set at a time the watermark has passed is due at once.
        if st.event.first().is_some_and(|t| *t <= wm) {
            changed |= parts.fire(step, TimerKind::EventTime, wm, wm, key, st);
        }
        changed
    }

    fn pass_on(&mut self) {
        if !self.parts.out.is_empty() {
            self.parts.next.emit_all(&mut self.parts.out);
        }
    }

    fn flush(&mut self) {
        self.parts.next.flush();
    }

    fn deadline(&self) -> Option<Instant> {
        let (&due, _) = self.parts.wall_due.first_key_value()?;
        let wait = due.saturating_sub(now_unix_ms()).max(0);
        Some(Instant::now() + Duration::from_millis(wait as u64))
    }

    fn on_time(&mut self, wm: Millis, store: &mut StateStore<C::Key, Self::State>) {
        let now = now_unix_ms();
        let (step, parts) = (&*self.step, &mut self.parts);
        while let Some(entry) = parts.wall_due.first_entry() {
            if *entry.key() > now {
                break;
            }
            for key in entry.remove() {
                store.update(&key, |key, st| {
                    parts.fire(step, TimerKind::ProcessingTime, now, wm, key, st)
                });
            }
        }
    }
}
