//! Decoders turn a frame's payload into a message; encoders turn a message into output bytes.
//!
//! Users write them as functions annotated with `#[decoder]` and `#[encoder]`; the macros
//! implement [`Decoder`] and [`Encoder`] for a unit struct of the function's name.

use std::borrow::Cow;
use std::fmt;

use crate::component::ComponentInfo;

pub mod text;
pub use text::PushText;

/// How a source cuts its byte stream into frames (wire format, ARCHITECTURE.md §4).
#[derive(Clone, Copy, Debug)]
pub enum Framing {
    /// A header of `header_length` bytes holding the payload's length, then the payload.
    LengthPrefixed {
        /// Bytes in the header (1 to 8).
        header_length: usize,
        /// Reads the payload length from the header; `None` reads it as a big-endian
        /// unsigned integer.
        payload_length: Option<fn(&[u8]) -> usize>,
    },
    /// Newline-delimited text: each line (without its `\n` or `\r\n`) is one payload.
    Lines,
}

impl Framing {
    /// The default framing: a 4-byte big-endian length header.
    pub const DEFAULT: Framing = Framing::LengthPrefixed {
        header_length: 4,
        payload_length: None,
    };

    /// Length-prefixed framing with a big-endian header of `header_length` bytes.
    pub const fn length_prefixed(header_length: usize) -> Framing {
        Framing::LengthPrefixed {
            header_length,
            payload_length: None,
        }
    }
}

impl fmt::Display for Framing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Framing::LengthPrefixed {
                header_length,
                payload_length: None,
            } => write!(f, "{header_length}-byte big-endian length header"),
            Framing::LengthPrefixed { header_length, .. } => {
                write!(f, "{header_length}-byte length header (custom)")
            }
            Framing::Lines => f.write_str("newline-delimited lines"),
        }
    }
}

/// Reads a big-endian unsigned integer of up to 8 bytes.
///
/// ```
/// assert_eq!(wallaroo_core::codec::read_be(&[0, 0, 1, 2]), 258);
/// ```
pub fn read_be(header: &[u8]) -> u64 {
    header
        .iter()
        .fold(0u64, |acc, &b| (acc << 8) | u64::from(b))
}

/// A decoder: the payload of one frame to one message.
///
/// Implemented by `#[decoder]` on `fn(&[u8]) -> Result<T, E>`.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a decoder",
    label = "expected a function annotated with `#[decoder]`",
    note = "write `#[decoder] fn decode(payload: &[u8]) -> Result<Message, DecodeError>`"
)]
pub trait Decoder: Send + Sync + 'static {
    /// The message a payload decodes to.
    type Out: Send + 'static;
    /// Why a payload could not be decoded.
    type Error: fmt::Display;
    /// The decoder's registry entry.
    fn info(&self) -> &'static ComponentInfo;
    /// How the byte stream is cut into frames.
    fn framing(&self) -> Framing {
        Framing::DEFAULT
    }
    /// Decodes one payload (the frame without its header).
    fn decode(&self, payload: &[u8]) -> Result<Self::Out, Self::Error>;
}

/// An encoder: one message to bytes appended to an output buffer.
///
/// Implemented by `#[encoder]` on `fn(&T, &mut Vec<u8>)` or `fn(&T) -> impl AsRef<[u8]>`.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not an encoder of `{In}`",
    label = "expected an `#[encoder]` that takes `&{In}`",
    note = "the pipeline's last step produces `{In}`; write `#[encoder] fn encode(msg: &{In}, out: &mut Vec<u8>)`"
)]
pub trait Encoder<In>: Send + Sync + 'static {
    /// The encoder's registry entry.
    fn info(&self) -> &'static ComponentInfo;
    /// Appends the encoding of `msg` to `out`.
    fn encode(&self, msg: &In, out: &mut Vec<u8>);
}

/// A decoding error with a message for the log.
///
/// ```
/// use wallaroo_core::codec::DecodeError;
/// let e = DecodeError::wrong_length(5, 3);
/// assert_eq!(e.to_string(), "expected a payload of 5 bytes, got 3");
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DecodeError {
    message: Cow<'static, str>,
}

impl DecodeError {
    /// An error with this message.
    pub fn new(message: impl Into<Cow<'static, str>>) -> Self {
        DecodeError {
            message: message.into(),
        }
    }

    /// The payload has the wrong length.
    pub fn wrong_length(expected: usize, actual: usize) -> Self {
        DecodeError::new(format!(
            "expected a payload of {expected} bytes, got {actual}"
        ))
    }
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for DecodeError {}

/// The return type of a `#[decoder]` function: a `Result` whose error can be displayed.
#[diagnostic::on_unimplemented(
    message = "a `#[decoder]` returns `Result<Message, Error>`, not `{Self}`",
    label = "return `Result<Message, DecodeError>` (or any error that implements `Display`)"
)]
pub trait DecodeResult {
    /// The decoded message.
    type Ok: Send + 'static;
    /// The error.
    type Err: fmt::Display;
    /// Converts into a plain `Result`.
    fn into_result(self) -> Result<Self::Ok, Self::Err>;
}

impl<T: Send + 'static, E: fmt::Display> DecodeResult for Result<T, E> {
    type Ok = T;
    type Err = E;
    #[inline]
    fn into_result(self) -> Result<T, E> {
        self
    }
}

/// Appends bytes returned by an `#[encoder]` of the form `fn(&T) -> impl AsRef<[u8]>`.
#[inline]
pub fn append_bytes(out: &mut Vec<u8>, bytes: impl AsRef<[u8]>) {
    out.extend_from_slice(bytes.as_ref());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn read_be_reads_every_width() {
        assert_eq!(read_be(&[7]), 7);
        assert_eq!(read_be(&[1, 0]), 256);
        assert_eq!(read_be(&[0xff; 8]), u64::MAX);
        assert_eq!(read_be(&[]), 0);
    }

    #[test]
    fn framing_describes_itself() {
        assert_eq!(
            Framing::DEFAULT.to_string(),
            "4-byte big-endian length header"
        );
        assert_eq!(Framing::Lines.to_string(), "newline-delimited lines");
    }

    #[test]
    fn append_bytes_takes_strings_and_vectors() {
        let mut out = b"x".to_vec();
        append_bytes(&mut out, "yz");
        append_bytes(&mut out, vec![b'!']);
        assert_eq!(out, b"xyz!");
    }
}
