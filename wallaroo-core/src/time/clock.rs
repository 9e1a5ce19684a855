//! Watermarks: the one an input makes from the event times it reads, and the one a worker
//! keeps for a partition from the watermarks of its inputs.

use std::time::{Duration, Instant};

use super::Millis;

/// The watermark of one input: the largest event time seen, minus the bound of
/// out-of-orderness; before any message, nothing (`Millis::MIN`).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Bounded {
    bound: Millis,
    max_seen: Millis,
}

impl Bounded {
    pub(crate) fn new(bound: Millis) -> Self {
        Bounded {
            bound,
            max_seen: Millis::MIN,
        }
    }

    /// Takes the event time of the next message; the watermark after it.
    #[inline]
    pub(crate) fn observe(&mut self, t: Millis) -> Millis {
        self.max_seen = self.max_seen.max(t);
        self.current()
    }

    /// The watermark now.
    #[inline]
    pub(crate) fn current(&self) -> Millis {
        self.max_seen.saturating_sub(self.bound)
    }
}

/// One input of a partition, as a worker sees it.
#[derive(Clone, Copy, Debug)]
struct Input {
    id: u32,
    watermark: Millis,
    /// When it last sent something.
    seen: Instant,
    ended: bool,
}

/// What a worker's clock says after an input moved.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Moved {
    /// The partition's watermark is where it was.
    Still,
    /// It reached this time.
    To(Millis),
    /// Every input has ended: every open window fires.
    Ended,
}

/// The watermark of a partition on one worker: the smallest of its inputs' watermarks,
/// leaving out the inputs that ended and, with an idle timeout, those that sent nothing
/// for that long; it never goes back.
#[derive(Debug)]
pub(crate) struct Clock {
    inputs: Vec<Input>,
    current: Millis,
    idle: Option<Duration>,
}

impl Clock {
    pub(crate) fn new(idle: Option<Duration>) -> Self {
        Clock {
            inputs: Vec::new(),
            current: Millis::MIN,
            idle,
        }
    }

    /// The partition's watermark.
    #[inline]
    pub(crate) fn current(&self) -> Millis {
        self.current
    }

    /// Starts from the watermark a previous run had reached: what was late then is late
    /// now, whatever the inputs say.
    pub(crate) fn restore(&mut self, watermark: Millis) {
        self.current = self.current.max(watermark);
    }

    fn input(&mut self, id: u32, now: Instant) -> &mut Input {
        let at = match self.inputs.iter().position(|i| i.id == id) {
            Some(at) => at,
            None => {
                self.inputs.push(Input {
                    id,
                    watermark: Millis::MIN,
                    seen: now,
                    ended: false,
                });
                self.inputs.len() - 1
            }
        };
        &mut self.inputs[at]
    }

    /// Notes that input `id` sent something at `now` (once per batch, not per message).
    pub(crate) fn touch(&mut self, id: u32, now: Instant) {
        let input = self.input(id, now);
        input.seen = now;
        input.ended = false;
    }

    /// Input `id`'s watermark is `watermark` now.
    #[inline]
    pub(crate) fn advance(&mut self, id: u32, watermark: Millis, now: Instant) -> Moved {
        let input = self.input(id, now);
        input.seen = now;
        if watermark <= input.watermark {
            return Moved::Still;
        }
        input.watermark = watermark;
        self.settle(now)
    }

    /// Input `id` has ended.
    pub(crate) fn end(&mut self, id: u32, now: Instant) -> Moved {
        self.input(id, now).ended = true;
        if self.inputs.iter().all(|i| i.ended) {
            // A later input (a new connection) starts from what was reached.
            self.inputs.clear();
            return Moved::Ended;
        }
        self.settle(now)
    }

    /// Looks again at which inputs are idle (once per batch).
    pub(crate) fn tick(&mut self, now: Instant) -> Moved {
        if self.idle.is_none() {
            return Moved::Still;
        }
        self.settle(now)
    }

    fn settle(&mut self, now: Instant) -> Moved {
        let idle = self.idle;
        let least = self
            .inputs
            .iter()
            .filter(|i| !i.ended && idle.is_none_or(|idle| now.duration_since(i.seen) < idle))
            .map(|i| i.watermark)
            .min();
        match least {
            Some(least) if least > self.current => {
                self.current = least;
                Moved::To(least)
            }
            _ => Moved::Still,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bounded_watermark_trails_the_largest_time_seen() {
        let mut w = Bounded::new(2_000);
        assert_eq!(w.current(), Millis::MIN);
        assert_eq!(w.observe(10_000), 8_000);
        assert_eq!(w.observe(9_000), 8_000, "an earlier time moves nothing");
        assert_eq!(w.observe(12_500), 10_500);
    }

    #[test]
    fn the_partition_follows_its_slowest_input_and_never_goes_back() {
        let now = Instant::now();
        let mut clock = Clock::new(None);
        assert_eq!(clock.advance(1, 100, now), Moved::To(100));
        clock.touch(2, now);
        assert_eq!(
            clock.advance(1, 200, now),
            Moved::Still,
            "input 2 has none yet"
        );
        assert_eq!(clock.advance(2, 150, now), Moved::To(150));
        assert_eq!(clock.advance(2, 300, now), Moved::To(200));
        assert_eq!(clock.end(1, now), Moved::To(300));
        // A new input behind the partition does not take it back.
        assert_eq!(clock.advance(3, 50, now), Moved::Still);
        assert_eq!(clock.current(), 300);
        assert_eq!(clock.end(2, now), Moved::Still);
        assert_eq!(clock.end(3, now), Moved::Ended);
    }

    #[test]
    fn an_idle_input_stops_holding_the_watermark_back_and_counts_again_when_it_sends() {
        let start = Instant::now();
        let mut clock = Clock::new(Some(Duration::from_secs(5)));
        assert_eq!(clock.advance(1, 100, start), Moved::To(100));
        assert_eq!(clock.advance(2, 10, start), Moved::Still);
        let later = start + Duration::from_secs(4);
        assert_eq!(
            clock.advance(1, 500, later),
            Moved::Still,
            "2 is not idle yet"
        );
        let idle = start + Duration::from_secs(5);
        assert_eq!(clock.tick(idle), Moved::To(500), "2 has been quiet for 5 s");
        clock.touch(2, idle);
        assert_eq!(
            clock.advance(1, 900, idle),
            Moved::Still,
            "2 is back, at 10"
        );
        assert_eq!(clock.advance(2, 700, idle), Moved::To(700));
    }
}
