//! End-to-end latency: when the messages a thread handles were read, and a histogram of how
//! long they took to leave.
//!
//! A source stamps each read (one clock read per read, not per message) on its thread; a
//! router puts the stamp of the first message of each batch on the batch; a worker takes the
//! stamp of the batch it runs; a sink link puts the stamp of the first message of each
//! chunk it encodes on the chunk (`Chunk`), which carries it to the sink's
//! thread. The clock stops there, once the chunk is written: when the write call that took
//! its bytes (to the file, standard output or the TCP socket; for an acknowledging
//! receiver, the write, not its acknowledgement) returns, or when a sink connector says
//! the batch is done. The sink observes the chunk's age then, once for all its messages,
//! with one clock read for all the chunks of a write. So the latency of a message is
//! measured from the read of the oldest message of its chunk to its write, waits in the
//! sink's channel and for its receiver included: an upper bound, and no clock, atomic or
//! lock per message.
//!
//! The waits of a thread for room in a full channel (to a sink, or to a worker of a later
//! state partition) are counted on the thread ([`add_blocked`]); a worker publishes its
//! count as its backpressured time.

use std::cell::Cell;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

thread_local! {
    /// When the messages this thread handles now were read.
    static READ_AT: Cell<Option<Instant>> = const { Cell::new(None) };
    /// Nanoseconds this thread has waited for room in a full channel to a sink or to a
    /// worker (by a router on a worker's thread).
    static BLOCKED: Cell<u64> = const { Cell::new(0) };
}

/// Sends `msg` on `tx`, blocking while the channel is full: whether it was taken, and the
/// nanoseconds it waited for room (0 when there was room). Tried first without blocking, so
/// that a channel with room costs no clock read.
#[inline]
pub(crate) fn send_timed<T>(tx: &flume::Sender<T>, msg: T) -> (bool, u64) {
    match tx.try_send(msg) {
        Ok(()) => (true, 0),
        Err(flume::TrySendError::Full(msg)) => send_waiting(tx, msg),
        Err(flume::TrySendError::Disconnected(_)) => (false, 0),
    }
}

/// [`send_timed`] to a full channel.
#[cold]
#[inline(never)]
fn send_waiting<T>(tx: &flume::Sender<T>, msg: T) -> (bool, u64) {
    let began = Instant::now();
    let sent = tx.send(msg).is_ok();
    let nanos = u64::try_from(began.elapsed().as_nanos()).unwrap_or(u64::MAX);
    (sent, nanos.max(1))
}

/// Adds `nanos` to the time this thread waited on a full channel.
pub(crate) fn add_blocked(nanos: u64) {
    BLOCKED.with(|b| b.set(b.get().saturating_add(nanos)));
}

/// The time this thread has waited on full channels, in nanoseconds.
pub(crate) fn blocked() -> u64 {
    BLOCKED.with(Cell::get)
}

/// Notes that the messages this thread handles from now on were read at `at`.
#[inline]
pub(crate) fn set_read_at(at: Option<Instant>) {
    READ_AT.with(|r| r.set(at));
}

/// When the messages this thread handles now were read, if a source said.
#[inline]
pub(crate) fn read_at() -> Option<Instant> {
    READ_AT.with(Cell::get)
}

/// The upper bounds of the histogram's buckets, in seconds (the last bucket, `+Inf`, is
/// implied).
pub(crate) const BUCKETS: [f64; 16] = [
    0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
    1.0, 2.5, 10.0,
];

/// A latency histogram, observed into once per chunk of output.
#[derive(Debug, Default)]
pub(crate) struct Histogram {
    /// Per bucket (and `+Inf` last), the observations that fell in it (not cumulative).
    counts: [AtomicU64; BUCKETS.len() + 1],
    /// The sum of the observations, in nanoseconds.
    sum_nanos: AtomicU64,
}

/// A histogram as read: cumulative bucket counts, the count and the sum in seconds.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct HistogramSnapshot {
    /// Per bucket of [`BUCKETS`] and then `+Inf`, the observations at most its bound.
    pub(crate) cumulative: Vec<u64>,
    /// The sum of the observations, in seconds.
    pub(crate) sum: f64,
}

impl HistogramSnapshot {
    /// Adds another histogram's observations to this one's.
    pub(crate) fn merge(&mut self, other: &HistogramSnapshot) {
        if self.cumulative.is_empty() {
            self.cumulative = vec![0; BUCKETS.len() + 1];
        }
        for (a, b) in self.cumulative.iter_mut().zip(&other.cumulative) {
            *a += b;
        }
        self.sum += other.sum;
    }

    /// The number of observations.
    pub(crate) fn count(&self) -> u64 {
        self.cumulative.last().copied().unwrap_or(0)
    }
}

impl Histogram {
    /// Observes `messages` messages that took `nanos` nanoseconds each.
    pub(crate) fn observe(&self, nanos: u64, messages: u64) {
        let seconds = nanos as f64 / 1e9;
        let bucket = BUCKETS
            .iter()
            .position(|&bound| seconds <= bound)
            .unwrap_or(BUCKETS.len());
        self.counts[bucket].fetch_add(messages, Ordering::Relaxed);
        self.sum_nanos
            .fetch_add(nanos.saturating_mul(messages), Ordering::Relaxed);
    }

    /// Observes `messages` messages read at `read` and leaving at `left`.
    pub(crate) fn observe_between(&self, read: Instant, left: Instant, messages: u64) {
        let nanos =
            u64::try_from(left.saturating_duration_since(read).as_nanos()).unwrap_or(u64::MAX);
        self.observe(nanos, messages);
    }

    /// The histogram now.
    pub(crate) fn snapshot(&self) -> HistogramSnapshot {
        let mut total = 0;
        let cumulative = self
            .counts
            .iter()
            .map(|c| {
                total += c.load(Ordering::Relaxed);
                total
            })
            .collect();
        HistogramSnapshot {
            cumulative,
            sum: self.sum_nanos.load(Ordering::Relaxed) as f64 / 1e9,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn observations_fall_in_the_first_bucket_that_holds_them_and_add_up() {
        let h = Histogram::default();
        h.observe(40_000, 3); // 40 µs: the first bucket
        h.observe(1_000_000, 2); // exactly 1 ms: the bucket of 0.001
        h.observe(20_000_000_000, 1); // 20 s: +Inf
        let s = h.snapshot();
        assert_eq!(s.cumulative[0], 3);
        assert_eq!(s.cumulative[3], 3);
        assert_eq!(s.cumulative[4], 5);
        assert_eq!(s.cumulative[BUCKETS.len() - 1], 5);
        assert_eq!(s.count(), 6);
        assert!((s.sum - (3.0 * 40e-6 + 2.0 * 1e-3 + 20.0)).abs() < 1e-9);
        let mut merged = HistogramSnapshot::default();
        merged.merge(&s);
        merged.merge(&s);
        assert_eq!(merged.count(), 12);
    }
}
