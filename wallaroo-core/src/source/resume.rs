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
    /// A plain framed stream: the bytes read so far are its start.
    Plain,
    /// A resumable stream of this name; its frames start after the HELLO's bytes.
    Resume {
        /// The stream's name.
        name: String,
        /// The length of the HELLO.
        hello: usize,
    },
}

/// Tells a HELLO from a plain stream by the first bytes of a connection: `None` while
/// `start` is too short to say (it is a part of a HELLO). A plain stream is told at its
/// first byte that differs from `MAGIC`, so it is never held back.
pub(crate) fn recognise(start: &[u8]) -> io::Result<Option<Opening>> {
    let magic = start.len().min(MAGIC.len());
    if start[..magic] != MAGIC[..magic] {
        return Ok(Some(Opening::Plain));
    }
    let Some(length) = start.get(MAGIC.len()..MAGIC.len() + 2) else {
        return Ok(None);
    };
    let length = u16::from_be_bytes([length[0], length[1]]) as usize;
    if length > MAX_NAME {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("HELLO names a stream of {length} bytes, over the {MAX_NAME}-byte limit"),
        ));
    }
    let hello = MAGIC.len() + 2 + length;
    let Some(name) = start.get(MAGIC.len() + 2..hello) else {
        return Ok(None);
    };
    match std::str::from_utf8(name) {
        Ok(name) => Ok(Some(Opening::Resume {
            name: name.to_string(),
            hello,
        })),
        Err(_) => Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "HELLO names a stream that is not UTF-8",
        )),
    }
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
    use crate::testing::Peer;

    #[test]
    fn a_hello_is_recognised_and_a_plain_stream_is_not_held_back() {
        let mut bytes = hello("s");
        bytes.extend_from_slice(b"frames");
        let opening = Opening::Resume {
            name: "s".into(),
            hello: 11,
        };
        assert_eq!(recognise(&bytes).unwrap(), Some(opening));
        // Any part of a HELLO waits for more.
        for end in 0..11 {
            assert_eq!(recognise(&bytes[..end]).unwrap(), None, "{end} bytes");
        }

        let plain = [0u8, 0, 0, 5, b'a', 0, 0, 0, 1];
        assert_eq!(recognise(&plain[..1]).unwrap(), Some(Opening::Plain));
        assert_eq!(recognise(b"\xffWAL!").unwrap(), Some(Opening::Plain));
    }

    #[test]
    fn connect_reads_the_resume_answer() {
        let mut peer = Peer::answering(resume(42).to_vec());
        assert_eq!(connect(&mut peer, "votes").unwrap(), 42);
        assert_eq!(peer.sent, hello("votes"));
    }

    #[test]
    fn an_overlong_name_is_refused() {
        let mut bytes = MAGIC.to_vec();
        bytes.extend_from_slice(&u16::MAX.to_be_bytes());
        let err = recognise(&bytes).unwrap_err();
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

            /// Any bytes open as a plain stream, as a resumable stream whose HELLO they
            /// start with, as an error, or wait for more when they are a HELLO's start;
            /// never a panic.
            #[test]
            fn any_opening_is_plain_resumable_or_refused(
                bytes in prop::collection::vec(any::<u8>(), 0..64),
                magic_prefix in 0usize..=8,
            ) {
                // Often the magic's start, so that the HELLO's fields are reached.
                let mut input = MAGIC[..magic_prefix].to_vec();
                input.extend_from_slice(&bytes);
                match recognise(&input) {
                    Ok(Some(Opening::Plain)) => {
                        prop_assert!(!input.starts_with(&MAGIC[..input.len().min(8)]));
                    }
                    Ok(Some(Opening::Resume { name, hello: length })) => {
                        prop_assert_eq!(&input[..length], &hello(&name)[..]);
                    }
                    Ok(None) => prop_assert!(MAGIC.starts_with(&input) || input.starts_with(&MAGIC)),
                    Err(_) => prop_assert!(input.starts_with(&MAGIC)),
                }
            }

            /// Every name's HELLO opens as that name, whatever follows it.
            #[test]
            fn every_hello_opens_as_its_name(name in "\\PC{0,40}", rest in prop::collection::vec(any::<u8>(), 0..16)) {
                let mut input = hello(&name);
                let length = input.len();
                input.extend_from_slice(&rest);
                prop_assert_eq!(
                    recognise(&input).unwrap(),
                    Some(Opening::Resume { name, hello: length })
                );
            }
        }
    }
}
