//! The windows of one key: which windows a message belongs to, when it is late, and which
//! windows a watermark closes. Plain data and functions, apart from threads and channels.

use serde::{Deserialize, Serialize};

use super::{Aggregation, Kind, Millis, Window};
use crate::component::ComponentInfo;
use crate::state::State;

/// The open windows of one key and their accumulators: the state a window partition keeps
/// per key (what `/state/NAME?key=…` shows, and what a resilience directory saves).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Panes<A> {
    /// Open windows, in order of start (then end).
    panes: Vec<Pane<A>>,
    /// Count windows: messages taken so far.
    counted: u64,
}

/// One open window.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct Pane<A> {
    window: Window,
    /// Whether it fired already (it is kept for its allowed lateness).
    fired: bool,
    acc: A,
}

impl<A> Pane<A> {
    /// Fires the window, just changed, if the watermark has passed its end (within its
    /// allowed lateness): again, as a late firing, if it fired before; the first time, with
    /// a timer for the end of its lateness.
    fn fire_if_passed(
        &mut self,
        wm: Millis,
        lateness: Millis,
        timer: &mut impl FnMut(Millis),
        fire: &mut impl FnMut(Window, &A, bool),
    ) {
        if self.window.end <= wm {
            fire(self.window, &self.acc, self.fired);
            if !self.fired {
                self.fired = true;
                timer(self.window.end.saturating_add(lateness));
            }
        }
    }
}

// Why `do_not_recommend`: `Panes` is the runtime's, never a user's state; without it, every
// "not a state" error lists it among the types that are.
#[diagnostic::do_not_recommend]
impl<A: State + Clone> State for Panes<A> {
    // The windows' own layout is wallaroo's; what a user can change is the accumulator.
    const VERSION: u32 = A::VERSION;
    const LAYOUT: &'static str = A::LAYOUT;

    fn info() -> &'static ComponentInfo {
        A::info()
    }

    fn build() -> Self {
        Panes {
            panes: Vec::new(),
            counted: 0,
        }
    }
}

/// What became of a message given to [`Panes::place`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Placed {
    /// Added to its windows.
    Applied,
    /// Too late for every window it belongs to: not applied.
    Late,
}

/// The windows of `kind` that hold time `t`, in order of start.
pub(crate) fn windows_of(kind: Kind, t: Millis, mut each: impl FnMut(Window)) {
    match kind {
        Kind::Tumbling { size } => {
            let start = t.div_euclid(size) * size;
            each(Window {
                start,
                end: start.saturating_add(size),
            });
        }
        Kind::Sliding { size, slide } => {
            let last = t.div_euclid(slide) * slide;
            // The earliest window that still holds `t`: its start is above `t - size`.
            let mut start = last - (size - 1).div_euclid(slide) * slide;
            while start <= last {
                if start.saturating_add(size) > t {
                    each(Window {
                        start,
                        end: start.saturating_add(size),
                    });
                }
                start += slide;
            }
        }
        Kind::Session { gap } => each(Window {
            start: t,
            end: t.saturating_add(gap),
        }),
        Kind::Count { .. } | Kind::Running => unreachable!("count windows are not of time"),
    }
}

/// Whether a window is past its allowed lateness at watermark `wm`: it can take no more.
#[inline]
fn closed(window: Window, lateness: Millis, wm: Millis) -> bool {
    window.end.saturating_add(lateness) <= wm
}

impl<A: Clone> Panes<A> {
    /// Whether no window is open.
    #[cfg(test)]
    pub(crate) fn is_empty(&self) -> bool {
        self.panes.is_empty()
    }

    /// Adds `msg`, of event time `t`, to its windows of `kind` at watermark `wm`. A window
    /// opened calls `timer` with the time its key must be looked at again; a window that
    /// fired already (within its allowed lateness) fires again through `fire`, as does a
    /// new one that the watermark has passed.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn place<In>(
        &mut self,
        kind: Kind,
        lateness: Millis,
        initial: &A,
        msg: &In,
        t: Millis,
        wm: Millis,
        timer: &mut impl FnMut(Millis),
        fire: &mut impl FnMut(Window, &A, bool),
    ) -> Placed
    where
        A: Aggregation<In>,
    {
        if let Kind::Session { gap } = kind {
            return self.place_in_session(gap, lateness, initial, msg, t, wm, timer, fire);
        }
        let mut placed = Placed::Late;
        windows_of(kind, t, |window| {
            if closed(window, lateness, wm) {
                return;
            }
            placed = Placed::Applied;
            let pane = self.pane(window, initial, timer);
            pane.acc.update(msg);
            pane.fire_if_passed(wm, lateness, timer, fire);
        });
        placed
    }

    /// Combines `partial`, what the messages of one window held before they crossed to the
    /// worker, into that window at watermark `wm`: as if its messages came together (a window
    /// opened by it calls `timer`, and it fires if the watermark has passed its end).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn combine_into<In>(
        &mut self,
        window: Window,
        lateness: Millis,
        initial: &A,
        partial: &A,
        wm: Millis,
        timer: &mut impl FnMut(Millis),
        fire: &mut impl FnMut(Window, &A, bool),
    ) -> Placed
    where
        A: Aggregation<In>,
    {
        if closed(window, lateness, wm) {
            return Placed::Late;
        }
        let pane = self.pane(window, initial, timer);
        pane.acc.combine(partial);
        pane.fire_if_passed(wm, lateness, timer, fire);
        Placed::Applied
    }

    /// The pane of `window`, opened with `initial` (and a `timer` at its end) if it is not.
    fn pane(
        &mut self,
        window: Window,
        initial: &A,
        timer: &mut impl FnMut(Millis),
    ) -> &mut Pane<A> {
        let at = match self
            .panes
            .binary_search_by(|p| (p.window.start, p.window.end).cmp(&(window.start, window.end)))
        {
            Ok(at) => at,
            Err(at) => {
                self.panes.insert(
                    at,
                    Pane {
                        window,
                        fired: false,
                        acc: initial.clone(),
                    },
                );
                timer(window.end);
                at
            }
        };
        &mut self.panes[at]
    }

    /// [`Panes::place`] for session windows: the message's window `[t, t + gap)` merges
    /// with every open session it overlaps.
    #[allow(clippy::too_many_arguments)]
    fn place_in_session<In>(
        &mut self,
        gap: Millis,
        lateness: Millis,
        initial: &A,
        msg: &In,
        t: Millis,
        wm: Millis,
        timer: &mut impl FnMut(Millis),
        fire: &mut impl FnMut(Window, &A, bool),
    ) -> Placed
    where
        A: Aggregation<In>,
    {
        let mut window = Window {
            start: t,
            end: t.saturating_add(gap),
        };
        if closed(window, lateness, wm) {
            return Placed::Late;
        }
        // The sessions it overlaps are consecutive in order of start.
        let first = self
            .panes
            .iter()
            .position(|p| p.window.end > window.start && p.window.start < window.end);
        let mut pane = match first {
            None => Pane {
                window,
                fired: false,
                acc: initial.clone(),
            },
            Some(first) => {
                let mut merged = self.panes.remove(first);
                while first < self.panes.len()
                    && self.panes[first].window.start < window.end.max(merged.window.end)
                {
                    let next = self.panes.remove(first);
                    merged.acc.combine(&next.acc);
                    merged.window.end = merged.window.end.max(next.window.end);
                    merged.fired &= next.fired;
                }
                merged
            }
        };
        window = Window {
            start: pane.window.start.min(window.start),
            end: pane.window.end.max(window.end),
        };
        let grew = window != pane.window || first.is_none();
        pane.window = window;
        pane.acc.update(msg);
        if grew {
            timer(window.end);
        }
        // A session that fired already fires again with the message at once, as a window of
        // time does within its allowed lateness, even when the message moved its end past
        // the watermark: `fire_due` fires only sessions that have not fired, so it would
        // never send what the message added.
        if window.end <= wm || pane.fired {
            fire(window, &pane.acc, pane.fired);
            if !pane.fired || grew {
                pane.fired = true;
                timer(window.end.saturating_add(lateness));
            }
        }
        let at = self
            .panes
            .partition_point(|p| (p.window.start, p.window.end) < (window.start, window.end));
        self.panes.insert(at, pane);
        Placed::Applied
    }

    /// Adds `msg` to the key's count window of `size` messages; fires it once full. A
    /// window opened calls `timer` with [`Millis::MAX`]: its key is looked at again at the
    /// end of the input.
    pub(crate) fn count<In>(
        &mut self,
        size: u64,
        initial: &A,
        msg: &In,
        timer: &mut impl FnMut(Millis),
        fire: &mut impl FnMut(Window, &A, bool),
    ) where
        A: Aggregation<In>,
    {
        if self.panes.is_empty() {
            let start = Millis::try_from(self.counted).unwrap_or(Millis::MAX);
            self.panes.push(Pane {
                window: Window {
                    start,
                    end: start.saturating_add(Millis::try_from(size).unwrap_or(Millis::MAX)),
                },
                fired: false,
                acc: initial.clone(),
            });
            timer(Millis::MAX);
        }
        let pane = &mut self.panes[0];
        pane.acc.update(msg);
        self.counted += 1;
        if Millis::try_from(self.counted).unwrap_or(Millis::MAX) >= pane.window.end {
            fire(pane.window, &pane.acc, false);
            self.panes.clear();
        }
    }

    /// Adds `msg` to the key's running window, and fires it.
    pub(crate) fn running<In>(
        &mut self,
        initial: &A,
        msg: &In,
        fire: &mut impl FnMut(Window, &A, bool),
    ) where
        A: Aggregation<In>,
    {
        if self.panes.is_empty() {
            self.panes.push(Pane {
                window: Window {
                    start: Millis::MIN,
                    end: Millis::MAX,
                },
                fired: false,
                acc: initial.clone(),
            });
        }
        let pane = &mut self.panes[0];
        pane.acc.update(msg);
        fire(pane.window, &pane.acc, false);
    }

    /// Adds `msg` to the oldest open window (for [`Late::PlaceInOldest`](super::Late)); it
    /// fires again at once if it fired already. Whether there was one.
    pub(crate) fn place_in_oldest<In>(
        &mut self,
        msg: &In,
        fire: &mut impl FnMut(Window, &A, bool),
    ) -> bool
    where
        A: Aggregation<In>,
    {
        self.in_oldest(|acc| acc.update(msg), fire)
    }

    /// [`Panes::place_in_oldest`] for a partial accumulator of late messages.
    pub(crate) fn combine_in_oldest<In>(
        &mut self,
        partial: &A,
        fire: &mut impl FnMut(Window, &A, bool),
    ) -> bool
    where
        A: Aggregation<In>,
    {
        self.in_oldest(|acc| acc.combine(partial), fire)
    }

    fn in_oldest(
        &mut self,
        add: impl FnOnce(&mut A),
        fire: &mut impl FnMut(Window, &A, bool),
    ) -> bool {
        let Some(pane) = self.panes.first_mut() else {
            return false;
        };
        add(&mut pane.acc);
        if pane.fired {
            fire(pane.window, &pane.acc, true);
        }
        true
    }

    /// Fires, in order of start, every window that watermark `wm` closes and that has not
    /// fired; drops those past their allowed lateness. A window kept for its lateness calls
    /// `timer` with the time it is to be dropped. Whether anything changed.
    pub(crate) fn fire_due(
        &mut self,
        wm: Millis,
        lateness: Millis,
        timer: &mut impl FnMut(Millis),
        fire: &mut impl FnMut(Window, &A, bool),
    ) -> bool {
        let before = self.panes.len();
        let mut changed = false;
        for pane in &mut self.panes {
            if !pane.fired && pane.window.end <= wm {
                fire(pane.window, &pane.acc, false);
                pane.fired = true;
                changed = true;
                if !closed(pane.window, lateness, wm) {
                    timer(pane.window.end.saturating_add(lateness));
                }
            }
        }
        self.panes
            .retain(|pane| !(pane.fired && closed(pane.window, lateness, wm)));
        changed || self.panes.len() != before
    }

    /// Fires every window that has not fired, in order of start, and drops them all: the
    /// end of the input. Whether anything changed.
    pub(crate) fn fire_all(&mut self, fire: &mut impl FnMut(Window, &A, bool)) -> bool {
        for pane in &self.panes {
            if !pane.fired {
                fire(pane.window, &pane.acc, false);
            }
        }
        let changed = !self.panes.is_empty();
        self.panes.clear();
        changed
    }

    /// The times at which the key must be looked at again: each open window's end (or the
    /// end of its lateness, once fired).
    pub(crate) fn timers(&self, lateness: Millis, mut timer: impl FnMut(Millis)) {
        for pane in &self.panes {
            timer(if pane.fired {
                pane.window.end.saturating_add(lateness)
            } else {
                pane.window.end
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::Sum;
    use super::*;

    /// What `acc` holds, as the aggregation of `i64`s outputs it.
    fn out(acc: &Sum) -> (i64, u64) {
        Aggregation::<i64>::output(acc)
    }

    impl Aggregation<i64> for Sum {
        type Out = (i64, u64);
        fn update(&mut self, msg: &i64) {
            self.sum += msg;
            self.n += 1;
        }
        fn combine(&mut self, other: &Self) {
            self.sum += other.sum;
            self.n += other.n;
        }
        fn output(&self) -> (i64, u64) {
            (self.sum, self.n)
        }
    }

    fn all(kind: Kind, t: Millis) -> Vec<(Millis, Millis)> {
        let mut got = Vec::new();
        windows_of(kind, t, |w| got.push((w.start, w.end)));
        got
    }

    #[test]
    fn a_tumbling_window_holds_its_start_and_not_its_end() {
        let kind = Kind::Tumbling { size: 10 };
        assert_eq!(all(kind, 0), [(0, 10)]);
        assert_eq!(all(kind, 9), [(0, 10)]);
        assert_eq!(all(kind, 10), [(10, 20)]);
        assert_eq!(all(kind, -1), [(-10, 0)]);
        assert_eq!(all(kind, -10), [(-10, 0)]);
    }

    #[test]
    fn a_time_is_in_every_sliding_window_that_holds_it() {
        let kind = Kind::Sliding { size: 10, slide: 5 };
        assert_eq!(all(kind, 0), [(-5, 5), (0, 10)]);
        assert_eq!(all(kind, 4), [(-5, 5), (0, 10)]);
        assert_eq!(all(kind, 5), [(0, 10), (5, 15)]);
        assert_eq!(all(kind, 9), [(0, 10), (5, 15)]);
        // A slide that does not divide the size: 10 wide, every 3.
        let kind = Kind::Sliding { size: 10, slide: 3 };
        assert_eq!(all(kind, 9), [(0, 10), (3, 13), (6, 16), (9, 19)]);
        assert_eq!(all(kind, 10), [(3, 13), (6, 16), (9, 19)]);
        // A slide equal to the size is a tumbling window.
        assert_eq!(
            all(
                Kind::Sliding {
                    size: 10,
                    slide: 10
                },
                10
            ),
            [(10, 20)]
        );
    }

    type Fires = Vec<(Millis, Millis, (i64, u64), bool)>;

    fn place(
        panes: &mut Panes<Sum>,
        kind: Kind,
        lateness: Millis,
        t: Millis,
        wm: Millis,
        fires: &mut Fires,
    ) -> Placed {
        panes.place(
            kind,
            lateness,
            &Sum::default(),
            &t,
            t,
            wm,
            &mut |_| {},
            &mut |w, acc, late| fires.push((w.start, w.end, out(acc), late)),
        )
    }

    fn fire_due(panes: &mut Panes<Sum>, wm: Millis, lateness: Millis, fires: &mut Fires) {
        panes.fire_due(wm, lateness, &mut |_| {}, &mut |w, acc, late| {
            fires.push((w.start, w.end, out(acc), late));
        });
    }

    #[test]
    fn a_window_fires_when_the_watermark_reaches_its_end_and_not_before() {
        let kind = Kind::Tumbling { size: 10 };
        let (mut panes, mut fires) = (Panes::build(), Fires::new());
        place(&mut panes, kind, 0, 3, 0, &mut fires);
        place(&mut panes, kind, 0, 9, 0, &mut fires);
        place(&mut panes, kind, 0, 10, 0, &mut fires);
        fire_due(&mut panes, 9, 0, &mut fires);
        assert!(fires.is_empty(), "the watermark 9 closes nothing");
        fire_due(&mut panes, 10, 0, &mut fires);
        assert_eq!(fires, [(0, 10, (12, 2), false)]);
        // A message whose window's end the watermark has reached is late; one just inside
        // the next window is not.
        assert_eq!(place(&mut panes, kind, 0, 9, 10, &mut fires), Placed::Late);
        assert_eq!(
            place(&mut panes, kind, 0, 10, 10, &mut fires),
            Placed::Applied
        );
        fire_due(&mut panes, 20, 0, &mut fires);
        assert_eq!(fires[1], (10, 20, (20, 2), false));
        assert!(panes.is_empty());
    }

    #[test]
    fn allowed_lateness_keeps_a_window_and_fires_it_again_until_it_passes() {
        let kind = Kind::Tumbling { size: 10 };
        let (mut panes, mut fires) = (Panes::build(), Fires::new());
        place(&mut panes, kind, 5, 1, 0, &mut fires);
        fire_due(&mut panes, 10, 5, &mut fires);
        assert_eq!(fires, [(0, 10, (1, 1), false)]);
        // Watermark 14: the window takes a message and fires again with it.
        assert_eq!(
            place(&mut panes, kind, 5, 2, 14, &mut fires),
            Placed::Applied
        );
        assert_eq!(fires[1], (0, 10, (3, 2), true));
        fire_due(&mut panes, 14, 5, &mut fires);
        assert!(!panes.is_empty(), "kept until its end plus lateness");
        fire_due(&mut panes, 15, 5, &mut fires);
        assert!(panes.is_empty());
        assert_eq!(fires.len(), 2, "dropping a window fires nothing");
        // At 15 the lateness has passed: late.
        assert_eq!(place(&mut panes, kind, 5, 3, 15, &mut fires), Placed::Late);
        // A window opened within its lateness after its end fires at once.
        assert_eq!(
            place(&mut panes, kind, 5, 11, 22, &mut fires),
            Placed::Applied
        );
        assert_eq!(fires[2], (10, 20, (11, 1), false));
    }

    #[test]
    fn sessions_grow_merge_when_bridged_and_close_a_gap_after_their_last_message() {
        let kind = Kind::Session { gap: 10 };
        let (mut panes, mut fires) = (Panes::build(), Fires::new());
        place(&mut panes, kind, 0, 0, Millis::MIN, &mut fires);
        place(&mut panes, kind, 0, 9, Millis::MIN, &mut fires); // 9 apart: [0, 19)
        place(&mut panes, kind, 0, 27, Millis::MIN, &mut fires); // [27, 37)
        place(&mut panes, kind, 0, 37, Millis::MIN, &mut fires); // 10 apart: [37, 47)
        assert_eq!(panes.panes.len(), 3);
        // [18, 28) overlaps [0, 19) and [27, 37): one session [0, 37).
        place(&mut panes, kind, 0, 18, Millis::MIN, &mut fires);
        assert_eq!(panes.panes.len(), 2);
        fire_due(&mut panes, 36, 0, &mut fires);
        assert!(fires.is_empty());
        fire_due(&mut panes, 46, 0, &mut fires);
        assert_eq!(fires, [(0, 37, (54, 4), false)]);
        fire_due(&mut panes, 47, 0, &mut fires);
        assert_eq!(fires[1], (37, 47, (37, 1), false));
        assert!(panes.is_empty());
    }

    #[test]
    fn a_fired_session_that_a_message_within_its_lateness_extends_fires_again() {
        let kind = Kind::Session { gap: 10 };
        let (mut panes, mut fires) = (Panes::build(), Fires::new());
        place(&mut panes, kind, 5, 0, Millis::MIN, &mut fires);
        fire_due(&mut panes, 10, 5, &mut fires);
        assert_eq!(fires, [(0, 10, (0, 1), false)]);
        // Watermark 12: 3 is within the lateness, and moves the session's end to 13, past
        // the watermark. The session fires again with it, late, and is kept until 18.
        assert_eq!(
            place(&mut panes, kind, 5, 3, 12, &mut fires),
            Placed::Applied
        );
        fire_due(&mut panes, 13, 5, &mut fires);
        assert_eq!(fires[1..], [(0, 13, (3, 2), true)]);
        fire_due(&mut panes, 17, 5, &mut fires);
        assert!(!panes.is_empty(), "kept until its new end plus lateness");
        fire_due(&mut panes, 18, 5, &mut fires);
        assert!(panes.is_empty());
        assert_eq!(fires.len(), 2);
    }

    #[test]
    fn count_windows_fire_when_full_and_at_the_end_with_what_they_have() {
        let (mut panes, mut fires) = (Panes::<Sum>::build(), Fires::new());
        let mut timers = Vec::new();
        for m in 1..=5 {
            panes.count(
                2,
                &Sum::default(),
                &m,
                &mut |t| timers.push(t),
                &mut |w, acc, late| {
                    fires.push((w.start, w.end, out(acc), late));
                },
            );
        }
        assert_eq!(fires, [(0, 2, (3, 2), false), (2, 4, (7, 2), false)]);
        assert_eq!(timers, [Millis::MAX; 3]);
        panes.fire_all(&mut |w, acc, late| fires.push((w.start, w.end, out(acc), late)));
        assert_eq!(fires[2], (4, 6, (5, 1), false));
        assert!(panes.is_empty());
    }

    #[test]
    fn a_late_message_can_go_to_the_oldest_open_window() {
        let kind = Kind::Tumbling { size: 10 };
        let (mut panes, mut fires) = (Panes::build(), Fires::new());
        assert!(!panes.place_in_oldest(&1, &mut |_, _: &Sum, _| {}));
        place(&mut panes, kind, 0, 25, 0, &mut fires);
        place(&mut panes, kind, 0, 15, 0, &mut fires);
        assert!(panes.place_in_oldest(&1, &mut |_, _: &Sum, _| {}));
        fire_due(&mut panes, 30, 0, &mut fires);
        assert_eq!(fires, [(10, 20, (16, 2), false), (20, 30, (25, 1), false)]);
    }

    /// A partial of `n` messages of value 1 each.
    fn ones(n: u64) -> Sum {
        Sum { sum: n as i64, n }
    }

    #[test]
    fn a_partial_joins_its_window_as_its_messages_would_and_is_late_when_they_would_be() {
        let window = Window { start: 10, end: 20 };
        let (mut panes, mut fires) = (Panes::build(), Fires::new());
        let combine = |panes: &mut Panes<Sum>, partial: &Sum, lateness, wm, fires: &mut Fires| {
            panes.combine_into::<i64>(
                window,
                lateness,
                &Sum::default(),
                partial,
                wm,
                &mut |_| {},
                &mut |w, acc, late| fires.push((w.start, w.end, out(acc), late)),
            )
        };
        // Open: two partials and a message add up; nothing fires before the watermark.
        assert_eq!(
            combine(&mut panes, &ones(3), 0, 19, &mut fires),
            Placed::Applied
        );
        assert_eq!(
            combine(&mut panes, &ones(2), 0, 19, &mut fires),
            Placed::Applied
        );
        place(
            &mut panes,
            Kind::Tumbling { size: 10 },
            0,
            15,
            19,
            &mut fires,
        );
        assert!(fires.is_empty());
        fire_due(&mut panes, 20, 5, &mut fires);
        assert_eq!(fires, [(10, 20, (20, 6), false)]);
        // Within its lateness: it fires again with the partial, once.
        assert_eq!(
            combine(&mut panes, &ones(4), 5, 24, &mut fires),
            Placed::Applied
        );
        assert_eq!(fires[1], (10, 20, (24, 10), true));
        // At the end of its lateness, and on a key without it: late, not applied.
        assert_eq!(
            combine(&mut panes, &ones(1), 5, 25, &mut fires),
            Placed::Late
        );
        let mut other = Panes::build();
        assert_eq!(
            combine(&mut other, &ones(1), 0, 20, &mut fires),
            Placed::Late
        );
        assert!(other.is_empty());
        assert_eq!(fires.len(), 2);
    }

    #[test]
    fn a_late_partial_can_go_to_the_oldest_open_window() {
        let (mut panes, mut fires) = (Panes::<Sum>::build(), Fires::new());
        let mut record = |w: Window, acc: &Sum, late| fires.push((w.start, w.end, out(acc), late));
        assert!(!panes.combine_in_oldest::<i64>(&ones(2), &mut record));
        place(
            &mut panes,
            Kind::Tumbling { size: 10 },
            0,
            25,
            0,
            &mut Fires::new(),
        );
        assert!(panes.combine_in_oldest::<i64>(&ones(2), &mut record));
        panes.fire_all(&mut record);
        assert_eq!(fires, [(20, 30, (27, 3), false)]);
    }
}
