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
                // What was gathered came first: it goes first.
                if !self.pending.is_empty() {
                    self.chain.emit_all(&mut self.pending);
                }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::link::Link;
    use crate::step::Emit;

    /// Notes what it is given: each message with its position's `seq` (0 for none).
    #[derive(Default)]
    struct Noted(std::sync::Arc<std::sync::Mutex<Vec<(u32, u64)>>>);

    impl Emit<u32> for Noted {
        fn emit(&mut self, msg: u32) {
            self.0.lock().unwrap().push((msg, 0));
        }
    }

    impl Link<u32> for Noted {
        fn emit_from(&mut self, origin: Origin, msg: u32) {
            self.0.lock().unwrap().push((msg, origin.seq));
        }
        fn emit_all(&mut self, msgs: &mut Vec<u32>) {
            for msg in msgs.drain(..) {
                self.emit(msg);
            }
        }
        fn flush(&mut self) {}
    }

    #[test]
    fn messages_with_and_without_positions_go_down_the_chain_in_the_order_sent() {
        let noted = Noted::default();
        let got = std::sync::Arc::clone(&noted.0);
        let mut outlet = Outlet::new(Box::new(noted));
        let at = |seq| Origin {
            stream: 1,
            seq,
            sub: 0,
        };
        outlet.send(None, 1);
        outlet.send(None, 2);
        outlet.send(Some(at(7)), 3);
        outlet.send(None, 4);
        assert_eq!(outlet.flush(), 4);
        assert_eq!(*got.lock().unwrap(), [(1, 0), (2, 0), (3, 7), (4, 0)]);
    }
}
