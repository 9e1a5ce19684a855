//! The acknowledging TCP sink protocol: a receiver that speaks it says, when the sink
//! connects, how far it has the sink's output, and acknowledges what it has written as it
//! goes, so that the sink resends what a dead connection lost and nothing else.
//!
//! ```text
//! receiver -> sink  OFFER    = MAGIC (8 bytes), once the new connection has been
//!                              silent for OFFER_DELAY (a sink waits for it)
//! sink -> receiver  HELLO    = MAGIC | name length (u16 BE) | name (UTF-8): the stream
//! receiver -> sink  POSITION = bytes (u64 BE) | messages (u64 BE): how far the receiver
//!                              has stream `name` (0, 0 for a stream it does not know)
//! sink -> receiver  START    = bytes (u64 BE): the stream offset of the data that
//!                              follows; POSITION's bytes, or more when the sink no longer
//!                              holds them (the receiver lost data it had acknowledged)
//! sink -> receiver  the stream's bytes from START on, as a plain receiver gets them
//! receiver -> sink  ACK      = bytes (u64 BE) | messages (u64 BE), cumulative: every
//!                              byte before `bytes` is written to the receiver's output,
//!                              `messages` whole messages in all
//! ```
//!
//! The receiver speaks first, so that a plain receiver (one that only reads, such as
//! `nc -l`) never sees a protocol byte: a sink that gets no OFFER within [`OFFER_WAIT`] of
//! connecting writes the plain byte stream, as it always has. A receiver offers only to a
//! peer that has sent nothing for [`OFFER_DELAY`]: a peer that sends first is a plain
//! sender (`wallaroo-sender`, `nc`, an older sink), and is never sent a byte, because a
//! peer that closes its socket with bytes unread makes its kernel reset the connection,
//! dropping what it had not sent yet. A receiver that reads something other than HELLO
//! after its OFFER takes it for the start of a plain stream.
//!
//! A stream is one run of one sink: its name holds the application's name, the sink's
//! number, its address and a run id drawn at start ([`stream_name`]), so that a restarted
//! application never continues the position of the run before it. Offsets count the
//! stream's bytes from its first; a receiver acknowledges only whole messages (it knows the
//! framing), so every position falls between two messages. `messages` counts what the
//! receiver has written of the stream; the sink keeps the last ACK's count so that it can
//! say how many messages a receiver lost when it comes back with less than it had
//! acknowledged.

use std::io::{self, Read, Write};
use std::time::{Duration, Instant};

/// The first 8 bytes of OFFER and HELLO. As the start of a line or of a 4-byte length
/// header (a frame of over 4 GiB) it is not the start of an application's output.
pub const MAGIC: [u8; 8] = *b"\xffWALLAK1";

/// The longest stream name.
pub const MAX_NAME: usize = 1024;

/// How long a receiver waits for a new connection's first byte before it offers
/// acknowledgements: a peer that sends within it is a plain sender.
pub const OFFER_DELAY: Duration = Duration::from_millis(20);

/// How long a sink waits for a receiver's OFFER after connecting before it takes the
/// receiver for a plain one. Longer than a round trip on a LAN; a receiver whose OFFER
/// comes later reads a plain stream, and so does the sink: nothing is confused.
pub const OFFER_WAIT: Duration = Duration::from_millis(250);

/// The bound of a sink's window: the memory of the chunks it keeps, written but not yet
/// acknowledged, to resend after a reconnect. A full window holds the sink back (and
/// through its bounded channel, the application).
pub const DEFAULT_WINDOW: usize = 4 * 1024 * 1024;

/// How many bytes a receiver writes before it acknowledges them, at most.
pub const ACK_BYTES: u64 = 64 * 1024;

/// How long a receiver waits before it acknowledges what it has written, at most.
pub const ACK_INTERVAL: Duration = Duration::from_millis(5);

/// How far a receiver has a stream: its bytes from the first, and the whole messages in
/// them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct Position {
    /// Bytes of the stream, from its first.
    pub bytes: u64,
    /// Whole messages in those bytes, as the receiver counted them.
    pub messages: u64,
}

impl Position {
    /// POSITION and ACK on the wire.
    ///
    /// ```
    /// use wallaroo_core::sink::ack::Position;
    /// let p = Position { bytes: 258, messages: 3 };
    /// assert_eq!(Position::decode(p.encode()), p);
    /// assert_eq!(p.encode()[6..8], [1, 2]);
    /// ```
    pub fn encode(self) -> [u8; 16] {
        let mut out = [0u8; 16];
        out[..8].copy_from_slice(&self.bytes.to_be_bytes());
        out[8..].copy_from_slice(&self.messages.to_be_bytes());
        out
    }

    /// A POSITION or ACK read off the wire.
    pub fn decode(bytes: [u8; 16]) -> Position {
        Position {
            bytes: u64::from_be_bytes(bytes[..8].try_into().expect("8 bytes")),
            messages: u64::from_be_bytes(bytes[8..].try_into().expect("8 bytes")),
        }
    }

    /// Reads one POSITION or ACK.
    pub fn read(stream: &mut impl Read) -> io::Result<Position> {
        let mut bytes = [0u8; 16];
        stream.read_exact(&mut bytes)?;
        Ok(Position::decode(bytes))
    }
}

/// The name of a sink's stream for this run: `"{app} sink {index} -> {address} run {id}"`,
/// where the id differs from one start of the application to the next.
pub fn stream_name(app: &str, index: usize, address: &str) -> String {
    use std::sync::OnceLock;
    static RUN: OnceLock<u64> = OnceLock::new();
    let run = *RUN.get_or_init(|| {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        nanos ^ (u64::from(std::process::id()) << 40)
    });
    let run = format!(" run {run:016x}");
    let mut name = format!("{app} sink {index} -> {address}");
    // A very long name is cut, not the run id, which tells runs apart.
    let mut keep = MAX_NAME - run.len();
    while !name.is_char_boundary(keep.min(name.len())) {
        keep -= 1;
    }
    name.truncate(keep);
    name.push_str(&run);
    name
}

/// The HELLO of stream `name`.
///
/// ```
/// use wallaroo_core::sink::ack::{hello, MAGIC};
/// let h = hello("s-1");
/// assert_eq!(&h[..8], &MAGIC);
/// assert_eq!(&h[8..10], &[0, 3]);
/// assert_eq!(&h[10..], b"s-1");
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

/// START on the wire.
pub fn start(bytes: u64) -> [u8; 8] {
    bytes.to_be_bytes()
}

/// Reads START.
pub fn read_start(stream: &mut impl Read) -> io::Result<u64> {
    let mut bytes = [0u8; 8];
    stream.read_exact(&mut bytes)?;
    Ok(u64::from_be_bytes(bytes))
}

/// The sink's side of the opening: waits until `deadline` for the receiver's OFFER.
/// `Ok(true)`: the receiver acknowledges; `Ok(false)`: it said nothing in time, or
/// something else (a plain receiver). The stream's read timeout is changed.
pub fn wait_offer(stream: &mut std::net::TcpStream, deadline: Instant) -> io::Result<bool> {
    let mut got = 0;
    let mut buf = [0u8; MAGIC.len()];
    while got < MAGIC.len() {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Ok(false);
        }
        stream.set_read_timeout(Some(left))?;
        match stream.read(&mut buf[got..]) {
            Ok(0) => {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "the receiver closed the connection",
                ))
            }
            Ok(n) => {
                got += n;
                if buf[..got] != MAGIC[..got] {
                    return Ok(false);
                }
            }
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                return Ok(false)
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(true)
}

/// How a connection to a receiver opened.
#[derive(Debug, PartialEq, Eq)]
pub enum Opening {
    /// A plain stream; these bytes were read already and are its start.
    Plain(Vec<u8>),
    /// An acknowledged stream of this name (its HELLO was read).
    Acknowledged(String),
}

/// The receiver's side: reads just enough of a new connection to tell a HELLO from a
/// plain stream; it stops at the first byte that differs from [`MAGIC`], so a plain
/// stream is never held back.
pub fn open(stream: &mut impl Read) -> io::Result<Opening> {
    let mut first = Vec::with_capacity(MAGIC.len());
    let mut byte = [0u8; 1];
    while first.len() < MAGIC.len() {
        if stream.read(&mut byte)? == 0 {
            return Ok(Opening::Plain(first));
        }
        first.push(byte[0]);
        if byte[0] != MAGIC[first.len() - 1] {
            return Ok(Opening::Plain(first));
        }
    }
    let mut length = [0u8; 2];
    stream.read_exact(&mut length).map_err(cut("HELLO"))?;
    let length = usize::from(u16::from_be_bytes(length));
    if length > MAX_NAME {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("HELLO names a stream of {length} bytes, over the {MAX_NAME}-byte limit"),
        ));
    }
    let mut name = vec![0u8; length];
    stream.read_exact(&mut name).map_err(cut("HELLO"))?;
    String::from_utf8(name)
        .map(Opening::Acknowledged)
        .map_err(|_| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                "HELLO names a stream that is not UTF-8",
            )
        })
}

/// Names the frame that a connection ended inside of.
fn cut(frame: &'static str) -> impl Fn(io::Error) -> io::Error {
    move |e| {
        if e.kind() == io::ErrorKind::UnexpectedEof {
            io::Error::new(e.kind(), format!("the connection ended inside {frame}"))
        } else {
            e
        }
    }
}

/// The receiver's side after HELLO: sends POSITION, reads START.
pub fn answer(stream: &mut (impl Read + Write), position: Position) -> io::Result<u64> {
    stream.write_all(&position.encode())?;
    stream.flush()?;
    read_start(stream).map_err(cut("START"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::Peer;

    #[test]
    fn a_hello_is_recognised_and_a_plain_stream_is_not_held_back() {
        let mut bytes = hello("out");
        bytes.extend_from_slice(b"rest");
        let mut reader = &bytes[..];
        assert_eq!(
            open(&mut reader).unwrap(),
            Opening::Acknowledged("out".into())
        );
        assert_eq!(reader, b"rest");

        let plain = b"a => 1\n";
        let mut reader = &plain[..];
        assert_eq!(open(&mut reader).unwrap(), Opening::Plain(b"a".to_vec()));
        assert_eq!(reader, b" => 1\n");

        let almost = *b"\xffWALLA";
        assert_eq!(
            open(&mut &almost[..]).unwrap(),
            Opening::Plain(almost.to_vec())
        );
        // The resumable source's HELLO is not this one's.
        assert_eq!(
            open(&mut &b"\xffWALLRS1"[..]).unwrap(),
            Opening::Plain(b"\xffWALLR".to_vec())
        );
    }

    #[test]
    fn bad_hellos_are_refused_with_what_is_wrong() {
        let mut long = MAGIC.to_vec();
        long.extend_from_slice(&2000u16.to_be_bytes());
        let err = open(&mut &long[..]).unwrap_err();
        assert!(err.to_string().contains("2000 bytes"), "{err}");

        let mut short = MAGIC.to_vec();
        short.extend_from_slice(&[0, 5, b'a']);
        let err = open(&mut &short[..]).unwrap_err();
        assert!(err.to_string().contains("inside HELLO"), "{err}");

        let mut bad = MAGIC.to_vec();
        bad.extend_from_slice(&[0, 1, 0xc3]);
        let err = open(&mut &bad[..]).unwrap_err();
        assert!(err.to_string().contains("not UTF-8"), "{err}");
    }

    #[test]
    fn the_receiver_answers_with_its_position_and_reads_start() {
        let mut peer = Peer::answering(start(70).to_vec());
        let position = Position {
            bytes: 60,
            messages: 6,
        };
        assert_eq!(answer(&mut peer, position).unwrap(), 70);
        assert_eq!(peer.sent, position.encode());
        let mut cut_short = Peer::answering(vec![0, 0, 1]);
        let err = answer(&mut cut_short, position).unwrap_err();
        assert!(err.to_string().contains("inside START"), "{err}");
    }

    #[test]
    fn stream_names_fit_and_keep_the_run_id() {
        let short = stream_name("Alphabet", 0, "127.0.0.1:7002");
        assert!(short.starts_with("Alphabet sink 0 -> 127.0.0.1:7002 run "));
        let run = short.rsplit(' ').next().unwrap();
        assert_eq!(run.len(), 16);
        let long = stream_name(&"é".repeat(2000), 1, "h:1");
        assert!(long.len() <= MAX_NAME);
        assert!(long.ends_with(run), "{long}");
        hello(&long);
    }

    #[test]
    fn a_sink_tells_an_offer_from_silence_and_from_other_bytes() {
        use std::net::{TcpListener, TcpStream};
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        for (said, offered) in [(&MAGIC[..], true), (b"hello", false), (b"", false)] {
            let mut sink = TcpStream::connect(addr).unwrap();
            let (mut receiver, _) = listener.accept().unwrap();
            // The offer in two pieces.
            let (a, b) = said.split_at(said.len() / 2);
            receiver.write_all(a).unwrap();
            let writer = std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(20));
                receiver.write_all(b).unwrap();
                receiver
            });
            let deadline = Instant::now() + Duration::from_millis(200);
            assert_eq!(
                wait_offer(&mut sink, deadline).unwrap(),
                offered,
                "{said:?}"
            );
            drop(writer.join().unwrap());
        }
    }

    /// Properties over arbitrary input: HELLO is the first thing a stranger sends.
    mod properties {
        use super::*;
        use proptest::prelude::*;

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(1024))]

            /// Any bytes open as a plain stream whose start they are, as an acknowledged
            /// stream whose HELLO they start with, or as an error; never a panic.
            #[test]
            fn any_opening_is_plain_acknowledged_or_refused(
                bytes in prop::collection::vec(any::<u8>(), 0..64),
                magic_prefix in 0usize..=8,
            ) {
                let mut input = MAGIC[..magic_prefix].to_vec();
                input.extend_from_slice(&bytes);
                match open(&mut input.as_slice()) {
                    Ok(Opening::Plain(first)) => {
                        prop_assert!(input.starts_with(&first));
                        prop_assert!(first.len() <= MAGIC.len());
                    }
                    Ok(Opening::Acknowledged(name)) => prop_assert!(input.starts_with(&hello(&name))),
                    Err(_) => prop_assert!(input.starts_with(&MAGIC)),
                }
            }

            /// Every name's HELLO opens as that name, and what follows is left unread.
            #[test]
            fn every_hello_opens_as_its_name(
                name in "\\PC{0,40}",
                rest in prop::collection::vec(any::<u8>(), 0..16),
            ) {
                let mut input = hello(&name);
                input.extend_from_slice(&rest);
                let mut reader = input.as_slice();
                prop_assert_eq!(open(&mut reader).unwrap(), Opening::Acknowledged(name));
                prop_assert_eq!(reader, &rest[..]);
            }

            /// Positions survive the wire, and any 16 bytes are some position.
            #[test]
            fn positions_round_trip(bytes in any::<u64>(), messages in any::<u64>(), raw in any::<[u8; 16]>()) {
                let p = Position { bytes, messages };
                prop_assert_eq!(Position::decode(p.encode()), p);
                prop_assert_eq!(Position::decode(raw).encode(), raw);
            }
        }
    }
}
