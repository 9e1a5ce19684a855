//! Combining before the exchange ([`TimeWindows::pre_aggregate`](super::TimeWindows::pre_aggregate)):
//! on a source's thread, the messages of one key and window are aggregated into a partial
//! accumulator, and the partial crosses to the worker that owns the key instead of them.
//!
//! What keeps the results those of the messages one by one: a partial holds only messages
//! whose every window the input's watermark has not passed, and it crosses before the input
//! tells any worker a watermark that passes its window (before the message that moves the
//! watermark there, and before the tick of a flush). A message that the input's watermark
//! finds past one of its windows crosses alone, as do the messages of a source that can
//! replay (they come with their position, [`Link::emit_from`]) when states are logged, so
//! that the worker logs each by it, or when the router routes only this process's shards.

use std::hash::BuildHasher;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;

use hashbrown::HashTable;

use super::clock::Bounded;
use super::runner::Spec;
use super::stamp::{next_input, tell, Stamped, StampedPartition, Tick, TimestampFn};
use super::window::windows_of;
use super::{Aggregation, Kind, Late, Millis, Window};
use crate::component::ComponentInfo;
use crate::context::{panic_message, Control};
use crate::guard::skip_poisoned;
use crate::link::Link;
use crate::poison::{quiet_panics_here, take_panic_location, ErrorPolicy, Poisoned};
use crate::resilience::record::Origin;
use crate::routing::{key_hasher, Router};
use crate::state::Partition;
use crate::step::Emit;

/// What crosses to a window partition whose messages are combined before the exchange.
pub(crate) enum Pre<T, K, A> {
    /// A message on its own.
    One(T),
    /// The partial accumulator of messages of one key and window.
    Part(Partial<K, A>),
}

/// Messages of one key and window, combined.
pub(crate) struct Partial<K, A> {
    pub(crate) key: K,
    pub(crate) window: Window,
    pub(crate) acc: A,
    /// How many messages it holds (for the count of late messages, should a worker find the
    /// window closed).
    pub(crate) count: u64,
}

/// A partition function of `T`, for [`Pre<T>`]: a partial is routed by the key it holds.
pub(crate) struct PrePartition<P>(pub(crate) Arc<P>);

impl<P: Partition<T>, T, A: Send + 'static> Partition<Pre<T, P::Key, A>> for PrePartition<P> {
    type Key = P::Key;
    /// A message's own; `None` for a partial, whose key travels in it.
    type Carried = Option<P::Carried>;

    fn info(&self) -> &'static ComponentInfo {
        self.0.info()
    }

    fn key(&self, msg: &Pre<T, P::Key, A>) -> P::Key {
        match msg {
            Pre::One(msg) => self.0.key(msg),
            Pre::Part(part) => part.key.clone(),
        }
    }

    #[inline]
    fn route<H: BuildHasher>(
        &self,
        msg: &Pre<T, P::Key, A>,
        hasher: &H,
    ) -> (u64, Option<P::Carried>) {
        match msg {
            Pre::One(msg) => {
                let (hash, carried) = self.0.route(msg, hasher);
                (hash, Some(carried))
            }
            // The hash of the key, as a message's route gives it (a borrowed key hashes as
            // its owner does).
            Pre::Part(part) => (hasher.hash_one(&part.key), None),
        }
    }

    #[inline]
    fn is_key(&self, msg: &Pre<T, P::Key, A>, carried: &Option<P::Carried>, key: &P::Key) -> bool {
        match (msg, carried) {
            (Pre::One(msg), Some(carried)) => self.0.is_key(msg, carried, key),
            (Pre::Part(part), _) => part.key == *key,
            (Pre::One(_), None) => false,
        }
    }

    fn initial_keys(&self) -> Vec<P::Key> {
        self.0.initial_keys()
    }
}

/// The router of what crosses to a window partition whose messages are combined.
pub(crate) type PreRouter<P, T, A> =
    Router<StampedPartition<PrePartition<P>>, Stamped<Pre<T, <P as Partition<T>>::Key, A>>>;

/// A partial a source's thread holds.
struct Held<K, A> {
    /// The hash of its key and window, in the table of partials.
    hash: u64,
    partial: Partial<K, A>,
}

/// Partials held on one thread past which they are all sent, whatever their windows: a
/// bound on its memory when keys are many.
const MAX_HELD: usize = 1 << 16;

/// The link that combines messages before the exchange, stamps what crosses, and routes it
/// to a window partition's workers; the counterpart of [`super::stamp::StampLink`].
pub(crate) struct CombineLink<P: Partition<T>, A: Send + 'static, T: Send + 'static> {
    timestamp: TimestampFn<T>,
    watermark: Bounded,
    input: u32,
    kind: Kind,
    initial: Arc<A>,
    partition: Arc<P>,
    hasher: foldhash::fast::FixedState,
    held: HashTable<Held<P::Key, A>>,
    /// The earliest end of a held partial's window; `Millis::MAX` with none.
    due: Millis,
    /// The tumbling window of the last message ([`CombineLink::tumbling`]).
    last: Window,
    /// Whether held partials go when the input runs dry (its watermarks have an idle
    /// timeout).
    flush_when_dry: bool,
    /// Whether late messages go to the oldest open window of their key ([`Late::PlaceInOldest`]).
    oldest: bool,
    /// The watermark last told to every worker.
    told: Millis,
    /// Whether a message went through (see `StampLink`).
    carried: bool,
    router: PreRouter<P, T, A>,
    control: Arc<Control>,
    /// With an error policy that skips: the policy, and the pipeline's name.
    guard: Option<(Arc<ErrorPolicy>, Arc<str>)>,
    /// Whether a message's replay position counts: states are logged, or the router routes
    /// only the keys of this process's shards.
    positioned: bool,
    /// Whether this thread's panics are reported by the policy yet.
    quiet: bool,
}

impl<P, A, T> CombineLink<P, A, T>
where
    P: Partition<T>,
    A: Aggregation<T> + Send + 'static,
    T: Send + 'static,
{
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        timestamp: TimestampFn<T>,
        bound: Millis,
        spec: &Spec,
        initial: Arc<A>,
        partition: Arc<P>,
        router: PreRouter<P, T, A>,
        control: Arc<Control>,
        guard: Option<(Arc<ErrorPolicy>, Arc<str>)>,
        logged: bool,
    ) -> Self {
        CombineLink {
            timestamp,
            watermark: Bounded::new(bound),
            input: next_input(),
            kind: spec.kind,
            initial,
            partition,
            hasher: key_hasher(),
            held: HashTable::new(),
            due: Millis::MAX,
            last: Window { start: 0, end: 0 },
            flush_when_dry: spec.idle.is_some(),
            oldest: spec.late == Late::PlaceInOldest,
            told: Millis::MIN,
            carried: false,
            positioned: logged || router.sharded,
            router,
            control,
            guard,
            quiet: false,
        }
    }

    /// Takes the event time of `msg`, and sends the partials whose window its watermark
    /// passes: the message's time, and the input's watermark before and after it.
    #[inline]
    fn advance(&mut self, msg: &T) -> (Millis, Millis, Millis) {
        self.carried = true;
        let time = (self.timestamp)(msg);
        let before = self.watermark.current();
        let watermark = self.watermark.observe(time);
        if watermark >= self.due {
            // Stamped with the watermark before this message: the workers place them in
            // windows still open, and the message after them moves the watermark on.
            self.send_held(before, |held| held.window.end <= watermark);
        }
        (time, before, watermark)
    }

    /// Takes one message without a position: into the partials of its windows, or across
    /// alone.
    #[inline]
    fn take(&mut self, msg: T) {
        let (time, before, watermark) = self.advance(&msg);
        let open = match self.kind {
            Kind::Tumbling { size } => self.tumbling(size, time).end > watermark,
            kind => {
                let mut open = true;
                windows_of(kind, time, |window| open &= window.end > watermark);
                open
            }
        };
        if !open {
            self.before_alone(&msg, before);
            let input = self.input;
            self.router.emit(Stamped {
                input,
                time,
                watermark,
                msg: Pre::One(msg),
            });
            return;
        }
        if self.guard.is_some() {
            self.aggregate_guarded(&msg, time);
        } else {
            self.aggregate(&msg, time);
        }
        if self.held.len() >= MAX_HELD {
            self.send_held(watermark, |_| true);
        }
    }

    /// The tumbling window of `size` that holds `time`: most often the last message's.
    #[inline]
    fn tumbling(&mut self, size: Millis, time: Millis) -> Window {
        // Why kept: the window is a division away, and consecutive messages mostly share one
        // (callgrind, window_average on 200 000 readings: about 100 instructions a reading less).
        if !(self.last.start <= time && time < self.last.end) {
            windows_of(Kind::Tumbling { size }, time, |window| self.last = window);
        }
        self.last
    }

    /// Adds `msg`, of event time `time`, to the partials of its windows, opening those
    /// not held yet. Of tumbling windows, the one [`CombineLink::tumbling`] gave last.
    #[inline]
    fn aggregate(&mut self, msg: &T, time: Millis) {
        let CombineLink {
            partition,
            hasher,
            held,
            initial,
            due,
            kind,
            last,
            ..
        } = self;
        let (hash, carried) = partition.route(msg, hasher);
        let mut place = |window: Window| {
            let hash = hash ^ (window.start as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
            let found = held.find_mut(hash, |h| {
                h.partial.window == window && partition.is_key(msg, &carried, &h.partial.key)
            });
            match found {
                Some(h) => {
                    h.partial.acc.update(msg);
                    h.partial.count += 1;
                }
                None => {
                    let mut acc = A::clone(initial);
                    acc.update(msg);
                    let partial = Partial {
                        key: partition.key(msg),
                        window,
                        acc,
                        count: 1,
                    };
                    held.insert_unique(hash, Held { hash, partial }, |h| h.hash);
                    *due = (*due).min(window.end);
                }
            }
        };
        match *kind {
            Kind::Tumbling { .. } => place(*last),
            kind => windows_of(kind, time, place),
        }
    }

    /// [`CombineLink::aggregate`] when the error policy skips: a panic of the aggregation
    /// (its `update`, on this thread now rather than on a worker) skips the message, as the
    /// policy says. What the panicking `update` did to its partial stays, as it would in the
    /// worker's window.
    fn aggregate_guarded(&mut self, msg: &T, time: Millis) {
        if !self.quiet {
            self.quiet = true;
            quiet_panics_here();
        }
        let ran = catch_unwind(AssertUnwindSafe(|| self.aggregate(msg, time)));
        let (Err(panic), Some((policy, pipeline))) = (ran, &self.guard) else {
            return;
        };
        let poisoned = Poisoned {
            step: A::info().name,
            stateless: false,
            after: false,
            key: serde_json::to_value(self.partition.key(msg)).ok(),
            origin: Origin::NONE,
            panic: panic_message(&*panic),
            location: take_panic_location(),
        };
        skip_poisoned(policy, pipeline, &poisoned);
    }

    /// Before `msg` crosses alone: with [`Late::PlaceInOldest`], the oldest open window of
    /// its key, where it goes if late, may be one held here, so the key's partials go first
    /// (stamped with `before`, the watermark before the message).
    fn before_alone(&mut self, msg: &T, before: Millis) {
        if self.oldest && !self.held.is_empty() {
            let (partition, hasher) = (Arc::clone(&self.partition), self.hasher.clone());
            let (_, carried) = partition.route(msg, &hasher);
            self.send_held(before, |held| partition.is_key(msg, &carried, &held.key));
        }
    }

    /// Sends the held partials that `which` picks, stamped with `watermark`.
    fn send_held(&mut self, watermark: Millis, which: impl Fn(&Partial<P::Key, A>) -> bool) {
        let mut due = Millis::MAX;
        let input = self.input;
        for held in self.held.extract_if(|h| {
            let go = which(&h.partial);
            if !go {
                due = due.min(h.partial.window.end);
            }
            go
        }) {
            self.router.emit(Stamped {
                input,
                time: held.partial.window.start,
                watermark,
                msg: Pre::Part(held.partial),
            });
        }
        self.due = due;
    }
}

impl<P, A, T> Emit<T> for CombineLink<P, A, T>
where
    P: Partition<T>,
    A: Aggregation<T> + Send + 'static,
    T: Send + 'static,
{
    #[inline]
    fn emit(&mut self, msg: T) {
        self.take(msg);
    }
}

impl<P, A, T> Link<T> for CombineLink<P, A, T>
where
    P: Partition<T>,
    A: Aggregation<T> + Send + 'static,
    T: Send + 'static,
{
    /// A message of a replayable stream crosses alone when its position counts (its worker
    /// logs it by it, which a partial of several would not have; or the position says
    /// whether this process routes it): else it is combined as any other.
    fn emit_from(&mut self, origin: Origin, msg: T) {
        if !self.positioned {
            self.take(msg);
            return;
        }
        let (time, before, watermark) = self.advance(&msg);
        self.before_alone(&msg, before);
        let input = self.input;
        self.router.emit_from(
            origin,
            Stamped {
                input,
                time,
                watermark,
                msg: Pre::One(msg),
            },
        );
    }

    fn positions(&mut self, positions: &[Origin]) {
        self.router.positions(positions);
    }

    fn emit_all(&mut self, msgs: &mut Vec<T>) {
        for msg in msgs.drain(..) {
            self.take(msg);
        }
    }

    fn flush(&mut self) {
        let watermark = self.watermark.current();
        if self.flush_when_dry && !self.held.is_empty() {
            self.send_held(watermark, |_| true);
        }
        self.router.flush();
        tell(&mut self.router, self.input, watermark, &mut self.told);
    }
}

impl<P: Partition<T>, A: Send + 'static, T: Send + 'static> Drop for CombineLink<P, A, T> {
    fn drop(&mut self) {
        if !self.carried {
            return;
        }
        // What is held goes first, whether the input ended or the application stops (the
        // windows keep it for the next run), then the news.
        let (input, watermark) = (self.input, self.watermark.current());
        for held in self.held.drain() {
            self.router.emit(Stamped {
                input,
                time: held.partial.window.start,
                watermark,
                msg: Pre::Part(held.partial),
            });
        }
        self.router.flush();
        let ended = !self.control.stopping();
        self.router.broadcast(|| Tick {
            input,
            watermark,
            ended,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{Sum, SUM};
    use super::*;
    use crate::routing::{spares, Batch, MARKER};

    /// A message: its key and event time.
    type Msg = (u32, Millis);

    impl Aggregation<Msg> for Sum {
        type Out = (u64, Millis);
        fn update(&mut self, msg: &Msg) {
            self.n += 1;
            self.sum += msg.1;
        }
        fn combine(&mut self, other: &Self) {
            self.n += other.n;
            self.sum += other.sum;
        }
        fn output(&self) -> (u64, Millis) {
            (self.n, self.sum)
        }
    }

    struct ByKey;

    impl Partition<Msg> for ByKey {
        type Key = u32;
        type Carried = u32;
        fn info(&self) -> &'static ComponentInfo {
            &SUM
        }
        fn key(&self, msg: &Msg) -> u32 {
            msg.0
        }
        fn route<H: BuildHasher>(&self, msg: &Msg, hasher: &H) -> (u64, u32) {
            (hasher.hash_one(msg.0), msg.0)
        }
        fn is_key(&self, _: &Msg, carried: &u32, key: &u32) -> bool {
            carried == key
        }
    }

    /// What crossed: a message alone with its position (`seq`, 0 for none), a partial
    /// (key, window start, count, sum), or a tick; each with the watermark it carried.
    #[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
    enum Crossed {
        One(Msg, u64, Millis),
        Part(u32, Millis, u64, Millis, Millis),
        Tick(Millis, bool),
    }

    type Entry = Stamped<Pre<Msg, u32, Sum>>;

    /// What crossed since the last call, in order, but for partials sent together, which
    /// leave a table in no order and are sorted.
    fn crossed(rx: &flume::Receiver<crate::routing::WorkerMsg>) -> Vec<Crossed> {
        let mut got = Vec::new();
        for (entry, msg) in rx.drain() {
            if entry == MARKER {
                continue;
            }
            let msg = match msg.downcast::<Tick>() {
                Ok(tick) => {
                    got.push(Crossed::Tick(tick.watermark, tick.ended));
                    continue;
                }
                Err(msg) => msg,
            };
            let batch = msg.downcast::<Batch<Option<u32>, Entry>>().unwrap();
            let mut entries: Vec<Crossed> = batch
                .msgs
                .iter()
                .enumerate()
                .map(|(at, keyed)| match &keyed.msg.msg {
                    Pre::One(msg) => {
                        let seq = batch.origins.get(at).map_or(0, |o| o.seq);
                        Crossed::One(*msg, seq, keyed.msg.watermark)
                    }
                    Pre::Part(p) => Crossed::Part(
                        p.key,
                        p.window.start,
                        p.count,
                        p.acc.sum,
                        keyed.msg.watermark,
                    ),
                })
                .collect();
            for run in entries
                .chunk_by_mut(|a, b| matches!((a, b), (Crossed::Part(..), Crossed::Part(..))))
            {
                run.sort();
            }
            got.extend(entries);
        }
        got
    }

    /// A combining link of tumbling windows of 10 over [`ByKey`], without out-of-orderness,
    /// to one worker, whose channel is returned; states logged if `logged`.
    fn link(
        logged: bool,
    ) -> (
        CombineLink<ByKey, Sum, Msg>,
        flume::Receiver<crate::routing::WorkerMsg>,
    ) {
        let (tx, rx) = flume::unbounded();
        let partition = Arc::new(ByKey);
        let router = Router::new(
            Arc::new(StampedPartition(Arc::new(PrePartition(Arc::clone(
                &partition,
            ))))),
            0,
            vec![tx],
            spares(),
        );
        let spec = Spec {
            kind: Kind::Tumbling { size: 10 },
            lateness: 0,
            late: Late::Drop,
            side_output: false,
            idle: None,
            pre_aggregate: true,
        };
        let (events, _) = flume::unbounded();
        let link = CombineLink::new(
            Arc::new(|msg: &Msg| msg.1),
            0,
            &spec,
            Arc::new(Sum::default()),
            partition,
            router,
            Arc::new(Control::new(events)),
            None,
            logged,
        );
        (link, rx)
    }

    fn at(seq: u64) -> Origin {
        Origin {
            stream: 3,
            seq,
            sub: 0,
        }
    }

    #[test]
    fn partials_cross_before_the_watermark_passes_their_window_and_positioned_messages_alone() {
        let (mut link, rx) = link(true);
        link.emit_all(&mut vec![(1, 1), (1, 5), (2, 3)]);
        link.emit_from(at(9), (1, 7));
        link.flush();
        // Held: key 1's two and key 2's one; the positioned message crossed alone.
        assert_eq!(
            crossed(&rx),
            [Crossed::One((1, 7), 9, 7), Crossed::Tick(7, false)]
        );
        // 10 moves the watermark past [0,10): its partials cross first, at the watermark
        // before; 10 itself opens [10,20), held. 4 is late for [0,10): it crosses alone.
        link.emit_all(&mut vec![(1, 10), (2, 4)]);
        link.flush();
        assert_eq!(
            crossed(&rx),
            [
                Crossed::Part(1, 0, 2, 6, 7),
                Crossed::Part(2, 0, 1, 3, 7),
                Crossed::One((2, 4), 0, 10),
                Crossed::Tick(10, false),
            ]
        );
        // At the end of the input what is held goes, then the news that it ended.
        drop(link);
        assert_eq!(
            crossed(&rx),
            [Crossed::Part(1, 10, 1, 10, 10), Crossed::Tick(10, true)]
        );
    }

    #[test]
    fn without_a_log_a_positioned_message_is_combined_as_any_other() {
        let (mut link, rx) = link(false);
        link.emit_all(&mut vec![(1, 1)]);
        link.emit_from(at(9), (1, 7));
        link.flush();
        assert_eq!(crossed(&rx), [Crossed::Tick(7, false)]);
        drop(link);
        assert_eq!(
            crossed(&rx),
            [Crossed::Part(1, 0, 2, 8, 7), Crossed::Tick(7, true)]
        );
    }

    #[test]
    fn past_so_many_partials_a_link_sends_them_all() {
        let (mut link, rx) = link(false);
        let keys = u32::try_from(MAX_HELD).unwrap();
        link.emit_all(&mut (0..keys - 1).map(|key| (key, 1)).collect());
        link.flush();
        assert_eq!(
            crossed(&rx),
            [Crossed::Tick(1, false)],
            "held, below the bound"
        );
        // One more key: every partial goes, its window still open.
        link.emit((keys, 2));
        link.flush();
        let got = crossed(&rx);
        assert!(link.held.is_empty());
        assert_eq!(got.len(), MAX_HELD + 1, "the partials and a tick");
        assert!(got[..MAX_HELD]
            .iter()
            .all(|c| matches!(c, Crossed::Part(_, 0, 1, _, 2))));
    }
}
