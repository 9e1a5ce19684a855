//! Event time: timestamps, watermarks, windows and aggregations.
//!
//! A pipeline says what time a message is of with [`Pipeline::event_time`](crate::Pipeline::event_time)
//! (a timestamp function and a [`Watermarks`] policy) and aggregates it per key over
//! [`Windows`] with `.to_window(windows, initial, "state name", partition)`, where `initial`
//! is the empty accumulator of an [`Aggregation`]. Each window that closes sends a
//! [`Fired`] down the pipeline: the key, the [`Window`] and the aggregation's output.
//!
//! How time moves, apart from the data path that carries it:
//!
//! - On the source's thread, the link before the router stamps each message with its event
//!   time and the watermark of its input at that message: the largest event time seen so
//!   far on the input, minus the bound of out-of-orderness. The stamp travels with the
//!   message in its batch entry (`Stamped`), so each worker sees the watermark move in the
//!   input's order, message by message: the results do not depend on thread timing. When
//!   the input runs dry the link tells every worker how far its watermark came; when it
//!   ends, that it ended.
//! - On a worker, a clock keeps the watermark of each input and the partition's: the
//!   smallest over the inputs that are neither ended nor idle (no message for the idle
//!   timeout, when one is set), and never going back. The windows whose end it reaches
//!   fire, per key in order of their start; when every input has ended, every open window
//!   fires.
//! - Per key, the open windows and their accumulators are the key's state ([`Panes`]): they
//!   are logged and recovered with a resilience directory as any state is.

pub(crate) mod clock;
pub(crate) mod combine;
pub(crate) mod keyed;
mod process;
pub(crate) mod runner;
pub(crate) mod stamp;
mod window;
pub(crate) mod windowing;

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::state::State;

pub use process::{Process, Timer, TimerKind, Timers, WithTimers};
pub use window::Panes;

/// An aggregation over the messages of a window (or of a key): the accumulator type itself.
///
/// Its shape is Wallaroo's: the initial value is the accumulator the pipeline is given
/// (cloned for each new window), [`update`](Aggregation::update) adds a message,
/// [`combine`](Aggregation::combine) merges two partial results (session windows merge
/// with it when a message bridges two sessions), and [`output`](Aggregation::output) is
/// what a fired window sends on. Annotate the struct with `#[aggregation]`, which makes it
/// serializable (window contents are saved with a resilience directory) and names it in the
/// topology.
///
/// The `wallaroo` crate's documentation (Event time) has an example.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not an aggregation of `{In}`",
    label = "the window takes `{In}`, which `{Self}` does not aggregate",
    note = "an aggregation is a `#[aggregation] #[derive(Clone, Default)] struct` with `impl Aggregation<{In}> for …` (update, combine, output)"
)]
pub trait Aggregation<In>: Accumulator + Clone + Sync {
    /// What a fired window sends on.
    type Out: Send + 'static;
    /// Adds one message.
    fn update(&mut self, msg: &In);
    /// Adds what another accumulator of the same key holds.
    fn combine(&mut self, other: &Self);
    /// The window's result.
    fn output(&self) -> Self::Out;
}

/// What `#[aggregation]` says of a struct: it is the accumulator of windows, and a
/// [`State`] (serializable, so that the windows holding it are saved with a resilience
/// directory). `#[aggregation]` implements it; there is nothing in it to write by hand.
///
/// It stands between [`Aggregation`] and [`State`] for the error message: an
/// `impl Aggregation<…>` for a struct without `#[aggregation]` is reported as "not an
/// aggregation: annotate it with `#[aggregation]`", rather than as not a state, whose message
/// asks for `#[state]`, which does not make an aggregation.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not an aggregation: annotate it with `#[aggregation]`",
    label = "`{Self}` needs `#[aggregation]` on its struct",
    note = "an aggregation is a `#[aggregation] #[derive(Clone, Default)] struct`; `#[aggregation]` makes it serializable, so that the windows holding it are saved with a resilience directory"
)]
pub trait Accumulator: State {}

/// An event time, in milliseconds (since the Unix epoch, or any origin the input uses).
pub type Millis = i64;

/// How far event time has come on an input: its watermark.
///
/// A watermark `w` says that no message earlier than `w` is expected any more; a window
/// `[start, end)` closes once the watermark reaches `end`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Watermarks {
    /// How much later than the latest event time seen a message may come.
    pub(crate) bound: Millis,
    /// After how long without a message an input no longer holds the watermark back.
    pub(crate) idle: Option<Duration>,
}

impl Watermarks {
    /// A watermark that trails the largest event time seen on the input by `bound`
    /// (bounded out-of-orderness): a message up to `bound` older than the latest is in time.
    pub fn bounded(bound: Duration) -> Watermarks {
        Watermarks {
            bound: millis(bound),
            idle: None,
        }
    }

    /// Leaves an input that sent nothing for `timeout` (of wall-clock time) out of the
    /// partition's watermark, so that a quiet input does not hold every window open; it
    /// counts again with its next message. Without it, an input holds the watermark back
    /// until it sends or ends.
    pub fn idle_after(mut self, timeout: Duration) -> Watermarks {
        self.idle = Some(timeout);
        self
    }
}

/// Windows of event time, per key: tumbling, sliding or session (see [`Windows`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TimeWindows {
    pub(crate) kind: Kind,
    pub(crate) lateness: Millis,
    pub(crate) late: Late,
    pub(crate) pre_aggregate: bool,
}

/// Windows of a count of messages, or one running window, per key (see [`Windows::count`]
/// and [`Windows::running`]); they need no event time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CountWindows {
    pub(crate) kind: Kind,
}

/// The kinds of windows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    /// `[k * size, (k + 1) * size)`.
    Tumbling { size: Millis },
    /// `[k * slide, k * slide + size)`: every window that holds the time.
    Sliding { size: Millis, slide: Millis },
    /// Messages less than `gap` apart, in one window `[first, last + gap)`.
    Session { gap: Millis },
    /// `size` messages in arrival order.
    Count { size: u64 },
    /// Every message of the key, in one window that never closes and fires with each.
    Running,
}

/// What becomes of a message that comes after every window it belongs to has closed (and
/// its allowed lateness passed). To send such messages to a sink of their own instead,
/// see `Timed::late_to_sink` (`.late_to_sink(sink)` after `.event_time(…)`).
// Not a link: this module is below the builder (`app` imports it), and a link counts as an
// import in tests/layering.rs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Late {
    /// It is counted (`wallaroo_window_late_total`) and dropped.
    #[default]
    Drop,
    /// It fires a window of its own, holding only it ([`Fired::late`] set).
    FirePerMessage,
    /// It is added to the oldest window of its key still open, which fires with it (again,
    /// if it fired already); with none open, it is dropped and counted.
    PlaceInOldest,
}

impl Late {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Late::Drop => "drop",
            Late::FirePerMessage => "fire_per_message",
            Late::PlaceInOldest => "place_in_oldest_window",
        }
    }
}

/// The windows a pipeline's `.to_window(…)` can keep.
///
/// ```
/// use std::time::Duration;
/// use wallaroo_core::time::{Late, Windows}; // in an application: `wallaroo::time`
///
/// let minute = Windows::tumbling(Duration::from_secs(60));
/// let sliding = Windows::sliding(Duration::from_secs(60), Duration::from_secs(10))
///     .allowed_lateness(Duration::from_secs(5))
///     .late(Late::FirePerMessage);
/// let sessions = Windows::session(Duration::from_secs(30 * 60));
/// let hundreds = Windows::count(100);
/// # let _ = (minute, sliding, sessions, hundreds);
/// ```
pub struct Windows;

impl Windows {
    /// Back-to-back windows of `size`, aligned to time 0: `[0, size)`, `[size, 2 size)`, …
    ///
    /// # Panics
    /// If `size` is zero.
    pub fn tumbling(size: Duration) -> TimeWindows {
        let size = positive(size, "a tumbling window's size");
        TimeWindows::of(Kind::Tumbling { size })
    }

    /// Windows of `size` starting every `slide`, aligned to time 0: a message belongs to
    /// every window that holds its time (`size / slide` of them when `slide` divides
    /// `size`).
    ///
    /// # Panics
    /// If `size` or `slide` is zero, or `slide` is larger than `size`.
    pub fn sliding(size: Duration, slide: Duration) -> TimeWindows {
        let size = positive(size, "a sliding window's size");
        let slide = positive(slide, "a sliding window's slide");
        assert!(
            slide <= size,
            "a sliding window's slide ({slide} ms) is larger than its size ({size} ms): some messages would be in no window"
        );
        TimeWindows::of(Kind::Sliding { size, slide })
    }

    /// One window per burst of a key's messages: messages less than `gap` apart in event
    /// time share a window `[first, last + gap)`; a message that bridges two merges them.
    ///
    /// # Panics
    /// If `gap` is zero.
    pub fn session(gap: Duration) -> TimeWindows {
        let gap = positive(gap, "a session window's gap");
        TimeWindows::of(Kind::Session { gap })
    }

    /// Windows of `size` messages of a key, in the order they arrive; at the end of the
    /// input a window not yet full fires with what it has.
    ///
    /// # Panics
    /// If `size` is zero.
    pub fn count(size: u64) -> CountWindows {
        assert!(size > 0, "a count window's size must be at least 1");
        CountWindows {
            kind: Kind::Count { size },
        }
    }

    /// The aggregation over a whole key: one window per key that never closes and fires
    /// with every message, sending the aggregate so far (Kafka Streams' `aggregate`). Its
    /// [`Window`] spans all time.
    pub fn running() -> CountWindows {
        CountWindows {
            kind: Kind::Running,
        }
    }
}

impl TimeWindows {
    fn of(kind: Kind) -> TimeWindows {
        TimeWindows {
            kind,
            lateness: 0,
            late: Late::Drop,
            pre_aggregate: false,
        }
    }

    /// Keeps each window for `lateness` after it fired: a message that comes in that time
    /// is added, and the window fires again with it.
    pub fn allowed_lateness(mut self, lateness: Duration) -> TimeWindows {
        self.lateness = millis(lateness);
        self
    }

    /// What becomes of a message that comes too late for all its windows (see [`Late`];
    /// [`Late::Drop`] unless said).
    pub fn late(mut self, policy: Late) -> TimeWindows {
        self.late = policy;
        self
    }

    /// Combines the messages of a key and window into one partial accumulator on the
    /// source's thread, before they cross to the worker that owns the key, which combines
    /// the partials ([`Aggregation::combine`]): one entry crosses per key and window instead
    /// of one per message. For tumbling and sliding windows; a session's extent depends on
    /// what other threads read, so a session window cannot be combined early (the
    /// application reports it at start), nor can windows whose late messages go to a sink
    /// of their own.
    ///
    /// The results are those of the messages one by one when `combine` merges as `update`
    /// adds: associative and commutative (counts, sums, minima, maxima, but a float sum may
    /// differ in its last bits, being added in another order), with the initial accumulator
    /// adding nothing when combined (each partial starts from it, as each session does). A partial crosses before the
    /// input's watermark passes its window, so with one input what is late is what it was;
    /// messages the input's watermark finds late still cross one by one, as do the messages
    /// of a source that can replay when states are logged (a resilience directory logs each
    /// by its position, for exactly once), and those of a Kafka source (applied once across
    /// its consumer group by their positions). With several inputs, a
    /// partial that its worker finds late counts as its messages coming together: dropped
    /// and counted, fired once, or placed at once. An input flushes its partials when its
    /// watermark passes their window and when it ends; when it runs dry too, if its
    /// watermarks have an idle timeout (a quiet input must not hold messages back from the
    /// others' windows).
    pub fn pre_aggregate(mut self) -> TimeWindows {
        self.pre_aggregate = true;
        self
    }
}

/// One window: event times `start <= t < end` (for count windows, the message numbers).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Window {
    /// The first time in the window.
    pub start: Millis,
    /// The first time after it.
    pub end: Millis,
}

/// What a window sends on when it fires: the key, the window and the aggregation's output.
#[derive(Clone, Debug, PartialEq)]
pub struct Fired<K, O> {
    /// The key whose window fired.
    pub key: K,
    /// The window.
    pub window: Window,
    /// The aggregation's output.
    pub value: O,
    /// Whether the window is a late message's own ([`Late::FirePerMessage`]), or fired again
    /// for a message within its allowed lateness.
    pub late: bool,
}

/// Whole milliseconds of `d`, saturating.
fn millis(d: Duration) -> Millis {
    Millis::try_from(d.as_millis()).unwrap_or(Millis::MAX)
}

fn positive(d: Duration, what: &str) -> Millis {
    let ms = millis(d);
    assert!(ms > 0, "{what} must be at least 1 ms");
    ms
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::component::{ComponentInfo, ComponentKind};

    /// An accumulator for the tests of windows: sums and counts (each module aggregates its
    /// own messages with it).
    #[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
    pub(crate) struct Sum {
        pub(crate) sum: i64,
        pub(crate) n: u64,
    }

    pub(crate) static SUM: ComponentInfo = ComponentInfo {
        kind: ComponentKind::Aggregation,
        name: "Sum",
        ident: "Sum",
        module_path: "",
        file: "",
        line: 0,
        input: None,
        output: None,
        state: None,
    };

    impl State for Sum {
        fn info() -> &'static ComponentInfo {
            &SUM
        }
        fn build() -> Self {
            Sum::default()
        }
    }

    impl Accumulator for Sum {}
}
