//! The resumable TCP source protocol: a sender names its stream when it connects, and the
//! application answers with the sequence number to send from, so that after a crash and a
//! restart every message is applied once.
//!
//! ```text
//! sender -> application   HELLO  = MAGIC (8 bytes) | name length (u16 BE) | name (UTF-8)
//! application -> sender   RESUME = MAGIC (8 bytes) | next sequence number (u64 BE)
//! sender -> application   frames in the source's usual framing; the first is message
//!                         number `next`, the one after it `next + 1`, and so on
//! ```
//!
//! Messages of a stream are numbered from 1, and the numbering must be the same on every
//! connection of the stream: message `n` is always the same message. `next - 1` is the
//! number up to which every message of the stream has been applied by every state
//! partition it reaches; the sender may forget the messages before `next`. A connection
//! that does not start with `MAGIC` is a plain framed stream. A stream name serves one
//! sender at a time: a second connection with the name waits for the first to end.

use std::io::{self, Read, Write};

/// The first 8 bytes of HELLO and RESUME. As a 4-byte length header it would declare a
/// frame of over 4 GiB, so a plain stream never starts with it.
pub const MAGIC: [u8; 8] = *b"\xffWALLRS1";

/// The longest stream name.
pub const MAX_NAME: usize = 1024;

/// The HELLO of stream `name`.
///
/// ```
/// use wallaroo_core::source::resume::{hello, MAGIC};
/// let h = hello("votes-1");
/// assert_eq!(&h[..8], &MAGIC);
/// assert_eq!(&h[8..10], &[0, 7]);
/// assert_eq!(&h[10..], b"votes-1");
/// ```
pub fn hello(name: &str) -> Vec<u8> {
    assert!(
        name.len() <= MAX_NAME,
        "a stream name is at most {MAX_NAME} bytes"
    );
    let mut out = MAGIC.to_vec();
    out.extend_from_slice(&(name.len() as u16).to_be_bytes());
    out.extend_from_slice(name.as_bytes());
    out
}

/// Sends HELLO for `name` and reads the RESUME answer: the number of the first message to
/// send.
pub fn connect(stream: &mut (impl Read + Write), name: &str) -> io::Result<u64> {
    stream.write_all(&hello(name))?;
    stream.flush()?;
    let mut answer = [0u8; 16];
    stream.read_exact(&mut answer)?;
    if answer[..8] != MAGIC {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "the application did not answer with RESUME: is it a wallaroo source?",
        ));
    }
    Ok(u64::from_be_bytes(answer[8..].try_into().expect("8 bytes")))
}

/// How a connection opened.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Opening {
    /// A plain framed stream; these bytes were read already and are its start.
    Plain(Vec<u8>),
    /// A resumable stream of this name.
    Resume(String),
}

/// Reads just enough of a new connection to tell a HELLO from a plain stream: it stops at
/// the first byte that differs from `MAGIC`, so a plain stream is never held back.
pub(crate) fn open(stream: &mut impl Read) -> io::Result<Opening> {
    let mut start = Vec::with_capacity(MAGIC.len());
    let mut byte = [0u8; 1];
    while start.len() < MAGIC.len() {
        if stream.read(&mut byte)? == 0 {
            return Ok(Opening::Plain(start));
        }
        start.push(byte[0]);
        if byte[0] != MAGIC[start.len() - 1] {
            return Ok(Opening::Plain(start));
        }
    }
    let mut length = [0u8; 2];
    stream.read_exact(&mut length)?;
    let length = u16::from_be_bytes(length) as usize;
    if length > MAX_NAME {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("HELLO names a stream of {length} bytes, over the {MAX_NAME}-byte limit"),
        ));
    }
    let mut name = vec![0u8; length];
    stream.read_exact(&mut name)?;
    String::from_utf8(name).map(Opening::Resume).map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            "HELLO names a stream that is not UTF-8",
        )
    })
}

/// The RESUME answer.
pub(crate) fn resume(next: u64) -> [u8; 16] {
    let mut out = [0u8; 16];
    out[..8].copy_from_slice(&MAGIC);
    out[8..].copy_from_slice(&next.to_be_bytes());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hello_is_recognised_and_a_plain_stream_is_not_held_back() {
        let mut bytes = hello("s");
        bytes.extend_from_slice(b"frames");
        let mut reader = &bytes[..];
        assert_eq!(open(&mut reader).unwrap(), Opening::Resume("s".into()));
        assert_eq!(reader, b"frames");

        let plain = [0u8, 0, 0, 5, b'a', 0, 0, 0, 1];
        let mut reader = &plain[..];
        assert_eq!(open(&mut reader).unwrap(), Opening::Plain(vec![0]));
        assert_eq!(reader.len(), 8);

        let almost = *b"\xffWAL";
        assert_eq!(
            open(&mut &almost[..]).unwrap(),
            Opening::Plain(almost.to_vec())
        );
    }

    #[test]
    fn connect_reads_the_resume_answer() {
        struct Peer {
            sent: Vec<u8>,
            answer: io::Cursor<Vec<u8>>,
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
        let mut peer = Peer {
            sent: Vec::new(),
            answer: io::Cursor::new(resume(42).to_vec()),
        };
        assert_eq!(connect(&mut peer, "votes").unwrap(), 42);
        assert_eq!(peer.sent, hello("votes"));
    }

    #[test]
    fn an_overlong_name_is_refused() {
        let mut bytes = MAGIC.to_vec();
        bytes.extend_from_slice(&u16::MAX.to_be_bytes());
        let err = open(&mut &bytes[..]).unwrap_err();
        assert!(
            err.to_string().contains("over the 1024-byte limit"),
            "{err}"
        );
    }

    /// Properties over arbitrary input: the handshake is the first thing a stranger sends.
    mod properties {
        use super::*;
        use proptest::prelude::*;

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(1024))]

            /// Any bytes open as a plain stream whose start they are, as a resumable stream
            /// whose HELLO they start with, or as an error; never a panic.
            #[test]
            fn any_opening_is_plain_resumable_or_refused(
                bytes in prop::collection::vec(any::<u8>(), 0..64),
                magic_prefix in 0usize..=8,
            ) {
                // Often the magic's start, so that the HELLO's fields are reached.
                let mut input = MAGIC[..magic_prefix].to_vec();
                input.extend_from_slice(&bytes);
                match open(&mut input.as_slice()) {
                    Ok(Opening::Plain(start)) => {
                        prop_assert!(input.starts_with(&start));
                        prop_assert!(start.len() <= MAGIC.len());
                    }
                    Ok(Opening::Resume(name)) => prop_assert!(input.starts_with(&hello(&name))),
                    Err(_) => prop_assert!(input.starts_with(&MAGIC)),
                }
            }

            /// Every name's HELLO opens as that name, and what follows it is left unread.
            #[test]
            fn every_hello_opens_as_its_name(name in "\\PC{0,40}", rest in prop::collection::vec(any::<u8>(), 0..16)) {
                let mut input = hello(&name);
                input.extend_from_slice(&rest);
                let mut reader = input.as_slice();
                prop_assert_eq!(open(&mut reader).unwrap(), Opening::Resume(name));
                prop_assert_eq!(reader, &rest[..]);
            }
        }
    }
}
