//! What the unit tests of the protocols share.

use std::io::{self, Read, Write};

/// The other end of a connection in a test: it answers with fixed bytes, and keeps what it
/// is sent.
pub(crate) struct Peer {
    pub(crate) sent: Vec<u8>,
    answer: io::Cursor<Vec<u8>>,
}

impl Peer {
    /// A peer whose reads give `answer`, then the end.
    pub(crate) fn answering(answer: Vec<u8>) -> Peer {
        Peer {
            sent: Vec::new(),
            answer: io::Cursor::new(answer),
        }
    }
}

impl Read for Peer {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.answer.read(buf)
    }
}

impl Write for Peer {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.sent.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
