//! The logic of the `wallaroo-sender` and `wallaroo-receiver` binaries, kept here so that it
//! is unit-tested. Not a public API: it changes without notice.

pub mod receiver;
pub mod sender;

use std::fmt;
use std::io::Read;
use std::str::FromStr;
use std::time::Duration;

use clap::Arg;

/// How a byte stream is cut into messages: `--framing lines` or `--framing header:N`, as
/// the application's decoder reads them (`#[decoder(lines)]`, `#[decoder(header_length = N)]`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Framing {
    /// Newline-terminated lines.
    Lines,
    /// A big-endian length header of this many bytes (1 to 8), then the payload.
    LengthPrefixed(usize),
}

impl FromStr for Framing {
    type Err = String;

    /// `lines` or `header:N`, N from 1 to 8.
    ///
    /// ```
    /// use wallaroo::tools::Framing;
    /// assert_eq!("lines".parse(), Ok(Framing::Lines));
    /// assert_eq!("header:2".parse(), Ok(Framing::LengthPrefixed(2)));
    /// assert!("header:9".parse::<Framing>().is_err());
    /// ```
    fn from_str(text: &str) -> Result<Framing, String> {
        match text.split_once(':') {
            None if text == "lines" => Ok(Framing::Lines),
            Some(("header", bytes)) => match bytes.parse::<usize>() {
                Ok(bytes @ 1..=8) => Ok(Framing::LengthPrefixed(bytes)),
                _ => Err(format!("`{bytes}`: a length header has 1 to 8 bytes")),
            },
            _ => Err(format!(
                "`{text}` is not a framing: `lines` for newline-delimited text \
                 (`#[decoder(lines)]`), or `header:N` for an N-byte big-endian length header \
                 (`#[decoder(header_length = N)]`; `#[decoder]` alone is `header:4`)"
            )),
        }
    }
}

impl fmt::Display for Framing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Framing::Lines => f.write_str("lines"),
            Framing::LengthPrefixed(header) => write!(f, "header:{header}"),
        }
    }
}

/// The `--framing` flag both tools take; each adds its help and default.
fn framing_arg() -> Arg {
    Arg::new("framing")
        .long("framing")
        .value_name("lines|header:N")
        .value_parser(Framing::from_str)
}

impl Framing {
    /// The length of the first message of `bytes`, if it is whole.
    ///
    /// ```
    /// use wallaroo::tools::Framing;
    /// assert_eq!(Framing::Lines.first_message(b"ab\nc"), Some(3));
    /// assert_eq!(Framing::LengthPrefixed(2).first_message(&[0, 1, b'x', 0]), Some(3));
    /// assert_eq!(Framing::LengthPrefixed(2).first_message(&[0, 2, b'x']), None);
    /// ```
    pub fn first_message(self, bytes: &[u8]) -> Option<usize> {
        match self {
            Framing::Lines => bytes.iter().position(|&b| b == b'\n').map(|at| at + 1),
            Framing::LengthPrefixed(header) => {
                let length = usize::try_from(read_be(bytes.get(..header)?)).ok()?;
                let end = header.checked_add(length)?;
                (end <= bytes.len()).then_some(end)
            }
        }
    }

    /// The length of the longest prefix of `bytes` made of whole messages, and how many
    /// messages it holds.
    ///
    /// ```
    /// use wallaroo::tools::Framing;
    /// assert_eq!(Framing::Lines.whole_messages(b"a\nbc\nd"), (5, 2));
    /// assert_eq!(Framing::LengthPrefixed(1).whole_messages(&[1, b'x', 2, b'y']), (2, 1));
    /// ```
    pub fn whole_messages(self, bytes: &[u8]) -> (usize, u64) {
        match self {
            Framing::Lines => match bytes.iter().rposition(|&b| b == b'\n') {
                Some(last) => {
                    let whole = &bytes[..=last];
                    (
                        whole.len(),
                        whole.iter().filter(|&&b| b == b'\n').count() as u64,
                    )
                }
                None => (0, 0),
            },
            Framing::LengthPrefixed(_) => {
                let (mut at, mut count) = (0usize, 0u64);
                while let Some(length) = self.first_message(&bytes[at..]) {
                    at += length;
                    count += 1;
                }
                (at, count)
            }
        }
    }
}

/// Reads a big-endian unsigned integer of up to 8 bytes.
fn read_be(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0, |acc, &b| (acc << 8) | u64::from(b))
}

/// Appends `length` as a big-endian header of `header` bytes; `false` if it does not fit.
///
/// ```
/// let mut out = Vec::new();
/// assert!(wallaroo::tools::push_header(&mut out, 258, 2));
/// assert_eq!(out, [1, 2]);
/// assert!(!wallaroo::tools::push_header(&mut out, 256, 1));
/// ```
pub fn push_header(out: &mut Vec<u8>, length: usize, header: usize) -> bool {
    let length = length as u64;
    if header < 8 && length >> (8 * header) != 0 {
        return false;
    }
    out.extend_from_slice(&length.to_be_bytes()[8 - header..]);
    true
}

/// Messages per second over `elapsed`, rounded down.
pub fn per_second(messages: u64, elapsed: Duration) -> u64 {
    let seconds = elapsed.as_secs_f64();
    if seconds > 0.0 {
        (messages as f64 / seconds) as u64
    } else {
        0
    }
}

/// The whole of the file at `path`, or of standard input for `-`.
pub fn read_input(path: &str) -> Result<Vec<u8>, String> {
    let mut bytes = Vec::new();
    let result = if path == "-" {
        std::io::stdin().lock().read_to_end(&mut bytes)
    } else {
        std::fs::File::open(path).and_then(|mut file| file.read_to_end(&mut bytes))
    };
    match result {
        Ok(_) => Ok(bytes),
        Err(e) if path == "-" => Err(format!("cannot read standard input: {e}")),
        Err(e) => Err(format!("cannot read {path}: {e}")),
    }
}

/// Parses a positive number of seconds (`0.5`, `10`).
fn seconds(text: &str) -> Result<Duration, String> {
    match text.parse::<f64>() {
        Ok(s) if s.is_finite() && s > 0.0 => Ok(Duration::from_secs_f64(s)),
        _ => Err(format!("`{text}` is not a positive number of seconds")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whole_lines_stop_at_the_last_newline() {
        assert_eq!(Framing::Lines.whole_messages(b""), (0, 0));
        assert_eq!(Framing::Lines.whole_messages(b"partial"), (0, 0));
        assert_eq!(Framing::Lines.whole_messages(b"\n\nx"), (2, 2));
    }

    #[test]
    fn whole_frames_stop_before_a_partial_header_or_payload() {
        let framing = Framing::LengthPrefixed(4);
        let mut bytes = vec![0, 0, 0, 2, b'h', b'i', 0, 0, 0, 0];
        assert_eq!(framing.whole_messages(&bytes), (10, 2));
        bytes.extend_from_slice(&[0, 0, 0, 5, b'a']);
        assert_eq!(framing.whole_messages(&bytes), (10, 2));
        bytes.truncate(12);
        assert_eq!(framing.whole_messages(&bytes), (10, 2));
        let huge = [0xff; 8];
        assert_eq!(Framing::LengthPrefixed(8).whole_messages(&huge), (0, 0));
    }

    #[test]
    fn headers_of_every_width() {
        let mut out = Vec::new();
        assert!(push_header(&mut out, 255, 1));
        assert!(push_header(&mut out, 5, 8));
        assert!(push_header(&mut out, 65_535, 2));
        assert!(!push_header(&mut out, 65_536, 2));
        assert_eq!(out, [255, 0, 0, 0, 0, 0, 0, 0, 5, 255, 255]);
    }

    #[test]
    fn seconds_must_be_positive() {
        assert_eq!(seconds("0.5"), Ok(Duration::from_millis(500)));
        assert!(seconds("0").is_err());
        assert!(seconds("-1").is_err());
        assert!(seconds("soon").is_err());
    }
}
