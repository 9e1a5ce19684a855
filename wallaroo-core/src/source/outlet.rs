//! The end of a source thread where its messages enter the pipeline: each message with
//! where it came from, or gathered with others that came from nowhere in particular.

use super::DECODED_BATCH;
use crate::link::BoxLink;
use crate::resilience::record::Origin;

/// Messages on their way down one thread's chain.
pub(super) struct Outlet<T> {
    pub(super) chain: BoxLink<T>,
    /// Messages without a position, gathered to pass down the chain in one call.
    pending: Vec<T>,
    /// Messages sent since the last flush.
    sent: u64,
    /// The last origin of each stream, for the routers' markers: told to the chain at each
    /// flush, as the messages passed on do not say it all (a refused payload, a message a
    /// step filtered out).
    positions: Vec<Origin>,
}

impl<T> Outlet<T> {
    pub(super) fn new(chain: BoxLink<T>) -> Self {
        Outlet {
            chain,
            pending: Vec::with_capacity(DECODED_BATCH),
            sent: 0,
            positions: Vec::new(),
        }
    }

    /// Sends `msg` on, from `origin` if it has one.
    #[inline]
    pub(super) fn send(&mut self, origin: Option<Origin>, msg: T) {
        self.sent += 1;
        match origin {
            Some(origin) => {
                self.position(origin);
                self.chain.emit_from(origin, msg);
            }
            None => {
                self.pending.push(msg);
                if self.pending.len() >= DECODED_BATCH {
                    self.chain.emit_all(&mut self.pending);
                }
            }
        }
    }

    /// Notes that a stream has come as far as `origin`: the origin of a message sent, or of
    /// a payload that was read but refused.
    #[inline]
    pub(super) fn position(&mut self, origin: Origin) {
        match self
            .positions
            .iter_mut()
            .find(|o| o.stream == origin.stream)
        {
            Some(last) => *last = origin,
            None => self.positions.push(origin),
        }
    }

    /// Passes on what is gathered and flushes the chain; returns how many messages were
    /// sent since the last flush.
    pub(super) fn flush(&mut self) -> u64 {
        if !self.pending.is_empty() {
            self.chain.emit_all(&mut self.pending);
        }
        if !self.positions.is_empty() {
            self.chain.positions(&self.positions);
        }
        self.chain.flush();
        std::mem::take(&mut self.sent)
    }
}
