//! What a TCP sink holds of its stream: the chunks taken from its channel and not yet
//! acknowledged, to resend after a reconnect; and where to resend from when a receiver
//! says how far it has the stream.

use std::collections::VecDeque;

use super::ack::Position;

/// The held bytes of a stream, as the chunks they came in.
#[derive(Default)]
pub(super) struct Window {
    chunks: VecDeque<Vec<u8>>,
    /// Bytes at the front of the first chunk that are no longer held.
    skip: usize,
    /// The stream offset of the first byte held.
    start: u64,
    /// The stream offset after the last byte taken.
    end: u64,
    /// The capacity of the chunks held: the memory the window takes.
    memory: usize,
}

impl Window {
    /// Takes the next chunk of the stream. A chunk that fits in the room left in the last
    /// one is copied there and its buffer goes to `give_back`, so that many small chunks
    /// (output at a low rate) do not each hold a buffer of their capacity.
    pub(super) fn push(&mut self, chunk: Vec<u8>, give_back: impl FnOnce(Vec<u8>)) {
        self.end += chunk.len() as u64;
        match self.chunks.back_mut() {
            Some(last) if last.capacity() - last.len() >= chunk.len() => {
                last.extend_from_slice(&chunk);
                give_back(chunk);
            }
            _ if chunk.is_empty() => give_back(chunk),
            _ => {
                self.memory += chunk.capacity();
                self.chunks.push_back(chunk);
            }
        }
    }

    /// The memory of the chunks held, which [`super::ack::DEFAULT_WINDOW`] bounds.
    pub(super) fn memory(&self) -> usize {
        self.memory
    }

    /// The stream offset of the first byte held.
    pub(super) fn start(&self) -> u64 {
        self.start
    }

    /// The stream offset after the last byte taken: the bytes taken in all.
    pub(super) fn end(&self) -> u64 {
        self.end
    }

    /// The bytes held.
    pub(super) fn held(&self) -> u64 {
        self.end - self.start
    }

    /// Whether every byte taken is released.
    pub(super) fn is_empty(&self) -> bool {
        self.start == self.end
    }

    /// Stops holding the bytes before `offset` (at most [`Window::end`]); the buffers of
    /// chunks wholly released go to `give_back`.
    pub(super) fn release(&mut self, offset: u64, mut give_back: impl FnMut(Vec<u8>)) {
        let offset = offset.min(self.end);
        while self.start < offset {
            let front = self.chunks.front().expect("held bytes are in chunks");
            let left = (front.len() - self.skip) as u64;
            if self.start + left <= offset {
                self.start += left;
                self.skip = 0;
                let chunk = self.chunks.pop_front().expect("a front chunk");
                self.memory -= chunk.capacity();
                give_back(chunk);
            } else {
                self.skip += (offset - self.start) as usize;
                self.start = offset;
            }
        }
    }

    /// The held bytes from stream offset `offset` (from [`Window::start`] to
    /// [`Window::end`]) to the end, in order.
    pub(super) fn from(&self, offset: u64) -> Vec<&[u8]> {
        assert!(
            (self.start..=self.end).contains(&offset),
            "offset {offset} is not held ({}..{})",
            self.start,
            self.end
        );
        let mut skip = (offset - self.start) as usize + self.skip;
        let mut slices = Vec::with_capacity(self.chunks.len());
        for chunk in &self.chunks {
            if skip >= chunk.len() {
                skip -= chunk.len();
                continue;
            }
            slices.push(&chunk[skip..]);
            skip = 0;
        }
        slices
    }
}

/// Where a sink resends from when a receiver says how far it has the stream.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Resume {
    /// From this offset, where the receiver's copy ends: nothing lost, nothing twice.
    From(u64),
    /// From the window's start, which is past where the receiver's copy ends: the bytes
    /// between cannot be resent.
    Gap {
        /// Where the resent bytes start.
        from: u64,
        /// Bytes the receiver does not have and will not get.
        bytes: u64,
        /// The messages in them, when known: when the window starts where the receiver
        /// last acknowledged, they are the messages it had acknowledged and lost.
        messages: Option<u64>,
    },
    /// The receiver claims more of the stream than was ever sent: it is not this stream's
    /// copy.
    Ahead,
}

/// Where to resend from when the receiver has `claimed` of a stream of which `window`
/// holds what is not released, `acked` being the last acknowledgement.
pub(super) fn resume(window: &Window, acked: Position, claimed: Position) -> Resume {
    if claimed.bytes > window.end() {
        Resume::Ahead
    } else if claimed.bytes >= window.start() {
        Resume::From(claimed.bytes)
    } else {
        Resume::Gap {
            from: window.start(),
            bytes: window.start() - claimed.bytes,
            messages: (acked.bytes == window.start())
                .then(|| acked.messages.saturating_sub(claimed.messages)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn window(chunks: &[&[u8]]) -> Window {
        let mut window = Window::default();
        for chunk in chunks {
            window.push(chunk.to_vec(), |c| assert!(c.is_empty()));
        }
        window
    }

    #[test]
    fn released_bytes_go_and_the_rest_are_resent_from_any_offset() {
        let mut w = window(&[b"a1\nb1\n", b"", b"a2\n", b"c1\nc2\n"]);
        assert_eq!((w.start(), w.end(), w.held()), (0, 15, 15));
        assert_eq!(w.from(0).concat(), b"a1\nb1\na2\nc1\nc2\n");
        assert_eq!(w.from(7).concat(), b"2\nc1\nc2\n");
        let mut back = Vec::new();
        w.release(3, |c| back.push(c));
        assert!(back.is_empty(), "a chunk partly held stays");
        assert_eq!(w.from(3).concat(), b"b1\na2\nc1\nc2\n");
        w.release(9, |c| back.push(c));
        assert_eq!(back, [b"a1\nb1\n".to_vec(), b"a2\n".to_vec()]);
        assert_eq!((w.start(), w.held()), (9, 6));
        assert_eq!(w.from(12), [b"c2\n"]);
        assert!(w.from(15).is_empty());
        // Releasing again, or past the end, is harmless.
        w.release(4, |_| panic!("released already"));
        w.release(99, |c| back.push(c));
        assert!(w.is_empty());
        assert_eq!(back.len(), 3);
        w.push(b"d1\n".to_vec(), |_| {});
        assert_eq!((w.start(), w.end()), (15, 18));
        assert_eq!(w.from(15), [b"d1\n"]);
    }

    #[test]
    fn small_chunks_share_a_buffer_and_memory_counts_capacities() {
        let mut w = Window::default();
        let mut back = Vec::new();
        let mut big = Vec::with_capacity(100);
        big.extend_from_slice(b"a1\n");
        w.push(big, |c| back.push(c));
        for line in [&b"b1\n"[..], b"c1\n"] {
            let mut small = Vec::with_capacity(100);
            small.extend_from_slice(line);
            w.push(small, |c| back.push(c));
        }
        assert_eq!(back.len(), 2, "copied into the first buffer");
        assert_eq!(w.memory(), 100);
        assert_eq!(w.from(3).concat(), b"b1\nc1\n");
        w.push(vec![b'x'; 98], |c| back.push(c));
        assert_eq!(w.memory(), 198);
        w.release(9, |c| back.push(c));
        assert_eq!(w.memory(), 98);
        assert_eq!(w.held(), 98);
    }

    #[test]
    #[should_panic(expected = "offset 2 is not held")]
    fn an_offset_released_cannot_be_resent() {
        let mut w = window(&[b"abcd"]);
        w.release(3, |_| {});
        w.from(2);
    }

    #[test]
    fn a_receiver_is_resent_what_it_lacks_or_told_what_it_lost() {
        let mut w = window(&[b"a1\nb1\n", b"a2\nc1\n"]);
        let at = |bytes, messages| Position { bytes, messages };
        assert_eq!(resume(&w, at(0, 0), at(0, 0)), Resume::From(0));
        assert_eq!(resume(&w, at(0, 0), at(9, 3)), Resume::From(9));
        assert_eq!(resume(&w, at(0, 0), at(12, 4)), Resume::From(12));
        assert_eq!(resume(&w, at(0, 0), at(13, 4)), Resume::Ahead);
        // Acknowledged up to 9 (3 messages): a receiver that comes back with 1 message
        // lost 2 it had acknowledged.
        w.release(9, |_| {});
        assert_eq!(
            resume(&w, at(9, 3), at(3, 1)),
            Resume::Gap {
                from: 9,
                bytes: 6,
                messages: Some(2)
            }
        );
        assert_eq!(resume(&w, at(9, 3), at(9, 3)), Resume::From(9));
        // Bytes written to a plain receiver were released unacknowledged: their messages
        // are not known.
        w.release(12, |_| {});
        assert_eq!(
            resume(&w, at(9, 3), at(0, 0)),
            Resume::Gap {
                from: 12,
                bytes: 12,
                messages: None
            }
        );
    }
}
