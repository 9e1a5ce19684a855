//! Timers: a step over a key's state that can ask to be called again at an event time (when
//! the watermark reaches it) or after a while of wall-clock time, whether or not a message
//! comes for the key then.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use super::Millis;
use crate::component::ComponentInfo;
use crate::state::State;
use crate::step::Emit;

/// A step over partitioned state with timers, as Flink's `KeyedProcessFunction`: each
/// message of a key comes to [`on_message`](Process::on_message) with the key's state, and
/// each timer the key set comes to [`on_timer`](Process::on_timer) when it is due. Both
/// may set more timers and emit outputs, and return whether the state changed.
///
/// Added to a pipeline with `.to_process(step, "state name", partition)`, after
/// [`Pipeline::event_time`](crate::Pipeline::event_time) for timers of event time. The
/// state and the timers a key has set are saved together with a resilience directory.
///
/// The `wallaroo` crate's documentation (Timers) has an example.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a process step that takes `{In}`",
    label = "the previous step produces `{In}`, which this step does not take",
    note = "a process step is a type with `impl Process<{In}> for …` (on_message, on_timer)"
)]
pub trait Process<In>: Send + Sync + 'static {
    /// The state it keeps per key.
    type State: State;
    /// The key type, the partition function's.
    type Key: crate::state::Key;
    /// What it sends on.
    type Out: Send + 'static;

    /// The step's name in the topology (the type's name unless said).
    fn name(&self) -> &'static str {
        let full = std::any::type_name::<Self>();
        full.rsplit("::").next().unwrap_or(full)
    }

    /// Takes one message of a key; returns whether the state changed.
    fn on_message(
        &self,
        msg: In,
        state: &mut Self::State,
        timers: &mut Timers<'_, Self::Key>,
        out: &mut impl Emit<Self::Out>,
    ) -> bool;

    /// Takes one due timer of a key; returns whether the state changed.
    fn on_timer(
        &self,
        timer: Timer,
        state: &mut Self::State,
        timers: &mut Timers<'_, Self::Key>,
        out: &mut impl Emit<Self::Out>,
    ) -> bool;
}

/// A timer that came due.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timer {
    /// What it was set for: an event time, or a wall-clock time in milliseconds since the
    /// Unix epoch.
    pub time: Millis,
    /// Which clock.
    pub kind: TimerKind,
}

/// The clock a timer follows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TimerKind {
    /// Due when the partition's watermark reaches its time (and at the end of the input).
    EventTime,
    /// Due when the wall clock reaches its time, whether or not messages come.
    ProcessingTime,
}

/// What a process step can do with its key's timers, and what it knows of time.
pub struct Timers<'a, K> {
    pub(crate) key: &'a K,
    pub(crate) watermark: Millis,
    pub(crate) set: &'a mut SetTimers,
}

impl<K> Timers<'_, K> {
    /// The key whose message or timer this is.
    pub fn key(&self) -> &K {
        self.key
    }

    /// The partition's watermark: no message earlier than it is expected.
    pub fn watermark(&self) -> Millis {
        self.watermark
    }

    /// Asks for [`Process::on_timer`] once the watermark reaches `time`. A time the
    /// watermark has reached already is due at once, after this call returns. Setting the
    /// same time twice sets one timer.
    pub fn at_event_time(&mut self, time: Millis) {
        self.set.event.push(time);
    }

    /// Asks for [`Process::on_timer`] `after` from now, on the wall clock, whether or not a
    /// message comes (kept across a restart as the wall-clock time it is due).
    pub fn after(&mut self, after: Duration) {
        let due = now_unix_ms()
            .saturating_add(Millis::try_from(after.as_millis()).unwrap_or(Millis::MAX));
        self.set.wall.push(due);
    }
}

/// Timers set during one call, to be filed by the runner.
#[derive(Debug, Default)]
pub(crate) struct SetTimers {
    pub(crate) event: Vec<Millis>,
    pub(crate) wall: Vec<Millis>,
}

/// The wall clock, in milliseconds since the Unix epoch.
pub(crate) fn now_unix_ms() -> Millis {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| {
        Millis::try_from(d.as_millis()).unwrap_or(Millis::MAX)
    })
}

/// A key's state and the timers it has set: what a process partition keeps per key, and
/// saves with a resilience directory.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WithTimers<S> {
    /// The step's state.
    pub state: S,
    /// Event times of the timers set, in order, each once.
    pub event: Vec<Millis>,
    /// Wall-clock times (ms since the Unix epoch) of the timers set, in order, each once.
    pub wall: Vec<Millis>,
}

// Why `do_not_recommend`: `WithTimers` is the runtime's, never a user's state; without it,
// every "not a state" error lists it among the types that are.
#[diagnostic::do_not_recommend]
impl<S: State> State for WithTimers<S> {
    const VERSION: u32 = S::VERSION;
    const LAYOUT: &'static str = S::LAYOUT;

    fn info() -> &'static ComponentInfo {
        S::info()
    }

    fn build() -> Self {
        WithTimers {
            state: S::build(),
            event: Vec::new(),
            wall: Vec::new(),
        }
    }
}

/// Files `time` into `times`, kept in order and each once; whether it was new.
pub(crate) fn file(times: &mut Vec<Millis>, time: Millis) -> bool {
    match times.binary_search(&time) {
        Ok(_) => false,
        Err(at) => {
            times.insert(at, time);
            true
        }
    }
}

/// Takes the times of `times` up to `until`, in order.
pub(crate) fn take_due(times: &mut Vec<Millis>, until: Millis) -> Vec<Millis> {
    let due = times.partition_point(|t| *t <= until);
    times.drain(..due).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timers_are_filed_in_order_once_and_taken_up_to_a_time() {
        let mut times = Vec::new();
        for t in [30, 10, 20, 10] {
            file(&mut times, t);
        }
        assert_eq!(times, [10, 20, 30]);
        assert_eq!(take_due(&mut times, 9), Vec::<Millis>::new());
        assert_eq!(take_due(&mut times, 20), [10, 20]);
        assert_eq!(times, [30]);
    }
}
