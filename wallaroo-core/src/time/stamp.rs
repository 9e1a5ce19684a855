//! The source side of event time: the link before a window partition's router stamps each
//! message with its event time and its input's watermark, and tells every worker how far
//! the watermark came when the input runs dry, and when the input ends.

use std::hash::BuildHasher;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use super::clock::Bounded;
use super::Millis;
use crate::component::ComponentInfo;
use crate::context::Control;
use crate::link::Link;
use crate::resilience::record::Origin;
use crate::routing::Router;
use crate::state::Partition;
use crate::step::Emit;

/// A message on its way to a window partition, with what travels with it: its input, its
/// event time, and its input's watermark once the message was read.
pub(crate) struct Stamped<T> {
    pub(crate) input: u32,
    pub(crate) time: Millis,
    pub(crate) watermark: Millis,
    pub(crate) msg: T,
}

/// What an input tells every worker of a window partition: its watermark now, or that it
/// ended (its connection closed, its file was read to the end, the application stops).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Tick {
    pub(crate) input: u32,
    pub(crate) watermark: Millis,
    pub(crate) ended: bool,
}

/// Tells every worker of `router`'s partition that `input`'s watermark is `watermark`, if
/// it is past `told`, what it was told last: when an input runs dry, so that workers whose
/// keys it did not send to learn how far it came. Call after [`Link::flush`].
pub(crate) fn tell<P: Partition<M>, M: Send + 'static>(
    router: &mut Router<P, M>,
    input: u32,
    watermark: Millis,
    told: &mut Millis,
) {
    if watermark > *told {
        *told = watermark;
        router.broadcast(|| Tick {
            input,
            watermark,
            ended: false,
        });
    }
}

/// A partition function of `T`, applied to the message of a [`Stamped<T>`].
pub(crate) struct StampedPartition<P>(pub(crate) Arc<P>);

impl<P: Partition<In>, In> Partition<Stamped<In>> for StampedPartition<P> {
    type Key = P::Key;
    type Carried = P::Carried;

    fn info(&self) -> &'static ComponentInfo {
        self.0.info()
    }

    #[inline]
    fn key(&self, msg: &Stamped<In>) -> P::Key {
        self.0.key(&msg.msg)
    }

    #[inline]
    fn route<H: BuildHasher>(&self, msg: &Stamped<In>, hasher: &H) -> (u64, P::Carried) {
        self.0.route(&msg.msg, hasher)
    }

    #[inline]
    fn is_key(&self, msg: &Stamped<In>, carried: &P::Carried, key: &P::Key) -> bool {
        self.0.is_key(&msg.msg, carried, key)
    }

    fn initial_keys(&self) -> Vec<P::Key> {
        self.0.initial_keys()
    }
}

/// Numbers the inputs of every window partition: each chain gets its own.
static INPUTS: AtomicU32 = AtomicU32::new(1);

/// A number for a new input, of its own.
pub(crate) fn next_input() -> u32 {
    INPUTS.fetch_add(1, Ordering::Relaxed)
}

/// A pipeline's timestamp function.
pub(crate) type TimestampFn<T> = Arc<dyn Fn(&T) -> Millis + Send + Sync>;

/// How a pipeline's messages get their event time: `None` for a pipeline without event
/// time (count windows), whose watermark never moves.
pub(crate) type Timestamp<T> = Option<TimestampFn<T>>;

/// The link that stamps messages and routes them to a window partition's workers.
pub(crate) struct StampLink<P: Partition<T>, T: Send + 'static> {
    timestamp: Timestamp<T>,
    watermark: Bounded,
    input: u32,
    /// The watermark last told to every worker.
    told: Millis,
    /// Whether a message went through: a chain that never carried one (a source's spare
    /// chain, a connection that sent nothing) is no input, and its end is no news.
    carried: bool,
    stamped: Vec<Stamped<T>>,
    router: Router<StampedPartition<P>, Stamped<T>>,
    /// Says whether the application is stopping when the input goes.
    control: Arc<Control>,
}

impl<P: Partition<T>, T: Send + 'static> StampLink<P, T> {
    pub(crate) fn new(
        timestamp: Timestamp<T>,
        bound: Millis,
        router: Router<StampedPartition<P>, Stamped<T>>,
        control: Arc<Control>,
    ) -> Self {
        StampLink {
            timestamp,
            watermark: Bounded::new(bound),
            input: next_input(),
            told: Millis::MIN,
            carried: false,
            stamped: Vec::new(),
            router,
            control,
        }
    }

    #[inline]
    fn stamp(&mut self, msg: T) -> Stamped<T> {
        self.carried = true;
        let (time, watermark) = match &self.timestamp {
            Some(timestamp) => {
                let time = timestamp(&msg);
                (time, self.watermark.observe(time))
            }
            None => (0, Millis::MIN),
        };
        Stamped {
            input: self.input,
            time,
            watermark,
            msg,
        }
    }
}

impl<P: Partition<T>, T: Send + 'static> Emit<T> for StampLink<P, T> {
    #[inline]
    fn emit(&mut self, msg: T) {
        let stamped = self.stamp(msg);
        self.router.emit(stamped);
    }
}

impl<P: Partition<T>, T: Send + 'static> Link<T> for StampLink<P, T> {
    #[inline]
    fn emit_from(&mut self, origin: Origin, msg: T) {
        let stamped = self.stamp(msg);
        self.router.emit_from(origin, stamped);
    }

    fn emit_all(&mut self, msgs: &mut Vec<T>) {
        let mut stamped = std::mem::take(&mut self.stamped);
        stamped.extend(msgs.drain(..).map(|msg| self.stamp(msg)));
        self.router.emit_all(&mut stamped);
        self.stamped = stamped;
    }

    fn positions(&mut self, positions: &[Origin]) {
        self.router.positions(positions);
    }

    fn flush(&mut self) {
        self.router.flush();
        tell(
            &mut self.router,
            self.input,
            self.watermark.current(),
            &mut self.told,
        );
    }
}

impl<P: Partition<T>, T: Send + 'static> Drop for StampLink<P, T> {
    fn drop(&mut self) {
        // The input ends here: what it buffered goes first, then the news. An input that
        // goes because the application stops has not ended: its windows stay open (a
        // resilience directory keeps them for the next run).
        if !self.carried {
            return;
        }
        self.router.flush();
        let (input, watermark) = (self.input, self.watermark.current());
        let ended = !self.control.stopping();
        self.router.broadcast(|| Tick {
            input,
            watermark,
            ended,
        });
    }
}
