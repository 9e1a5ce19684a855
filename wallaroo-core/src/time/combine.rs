//! Combining before the exchange ([`TimeWindows::pre_aggregate`](super::TimeWindows::pre_aggregate)):
//! on a source's thread, the messages of one key and window are aggregated into a partial
//! accumulator, and the partial crosses to the worker that owns the key instead of them.
//!
//! What keeps the results those of the messages one by one: a partial holds only messages
//! whose every window the input's watermark has not passed, and it crosses before the input
//! tells any worker a watermark that passes its window (before the message that moves the
//! watermark there, and before the tick of a flush). A message that the input's watermark
//! finds past one of its windows crosses alone, as do the messages of a source that can
//! replay: the worker logs each by its position.

use std::hash::BuildHasher;
use std::sync::Arc;

use hashbrown::HashTable;

use super::clock::Bounded;
use super::runner::Spec;
use super::stamp::{next_input, Stamped, StampedPartition, Tick, TimestampFn};
use super::window::windows_of;
use super::{Aggregation, Kind, Late, Millis, Window};
use crate::component::ComponentInfo;
use crate::context::Control;
use crate::link::Link;
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
            flush_when_dry: spec.idle.is_some(),
            oldest: spec.late == Late::PlaceInOldest,
            told: Millis::MIN,
            carried: false,
            router,
            control,
        }
    }

    /// Takes one message: into the partials of its windows, or across alone.
    #[inline]
    fn take(&mut self, msg: T) {
        self.carried = true;
        let time = (self.timestamp)(&msg);
        let before = self.watermark.current();
        let watermark = self.watermark.observe(time);
        if watermark >= self.due {
            // Stamped with the watermark before this message: the workers place them in
            // windows still open, and the message after them moves the watermark on.
            self.send_held(before, |held| held.window.end <= watermark);
        }
        let mut open = true;
        windows_of(self.kind, time, |window| open &= window.end > watermark);
        if !open {
            if self.oldest {
                // The oldest open window of the key, where a late message may go, may be one
                // held here: the worker must have every window the key has open.
                let (partition, hasher) = (Arc::clone(&self.partition), self.hasher.clone());
                let (_, carried) = partition.route(&msg, &hasher);
                self.send_held(before, |held| partition.is_key(&msg, &carried, &held.key));
            }
            let input = self.input;
            self.router.emit(Stamped {
                input,
                time,
                watermark,
                msg: Pre::One(msg),
            });
            return;
        }
        let CombineLink {
            partition,
            hasher,
            held,
            initial,
            due,
            ..
        } = self;
        let (hash, carried) = partition.route(&msg, hasher);
        windows_of(self.kind, time, |window| {
            let hash = hash ^ (window.start as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
            let found = held.find_mut(hash, |h| {
                h.partial.window == window && partition.is_key(&msg, &carried, &h.partial.key)
            });
            match found {
                Some(h) => {
                    h.partial.acc.update(&msg);
                    h.partial.count += 1;
                }
                None => {
                    let mut acc = A::clone(initial);
                    acc.update(&msg);
                    let partial = Partial {
                        key: partition.key(&msg),
                        window,
                        acc,
                        count: 1,
                    };
                    held.insert_unique(hash, Held { hash, partial }, |h| h.hash);
                    *due = (*due).min(window.end);
                }
            }
        });
        if self.held.len() >= MAX_HELD {
            self.send_held(watermark, |_| true);
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
        if watermark > self.told {
            self.told = watermark;
            let input = self.input;
            self.router.broadcast(|| Tick {
                input,
                watermark,
                ended: false,
            });
        }
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
