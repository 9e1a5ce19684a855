//! The TCP sink: connects to its receiver (which listens first, as in Wallaroo), retrying
//! with backoff until it is up, and reconnecting when it goes away.
//!
//! A receiver that speaks the acknowledging protocol ([`super::ack`]) says, on connect,
//! how far it has this run's output, and acknowledges as it writes. The sink holds what is
//! not acknowledged, up to its window ([`super::ack::DEFAULT_WINDOW`], 4 MiB of buffers; a
//! full window stops it taking chunks, so the application waits), and after a reconnect
//! resends from where the receiver's copy ends: nothing lost, nothing twice, across any
//! number of receiver restarts, as long as the receiver keeps what it acknowledged. While
//! the application stops, the sink waits for the receiver to acknowledge everything.
//!
//! A plain receiver (no OFFER within [`super::ack::OFFER_WAIT`]) gets the bytes and
//! nothing else. Output is held until a write of it succeeds: after a reconnect the batch
//! that failed is written again whole, but what the kernel had accepted before the
//! receiver died may be lost (no acknowledgement can say what arrived).
//!
//! While the application stops, the sink keeps trying for [`STOP_GRACE`], then gives up
//! and reports how many bytes it could not deliver.

use std::io;
use std::net::{Shutdown, TcpStream};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use super::ack::{self, Position};
use super::window::{self, Window};
use crate::context::{Control, RunError};

/// How long a stopping application waits for an unreachable receiver.
pub(crate) const STOP_GRACE: Duration = Duration::from_secs(10);
const FIRST_BACKOFF: Duration = Duration::from_millis(10);
const MAX_BACKOFF: Duration = Duration::from_secs(1);
/// Bytes gathered into one write.
const WRITE_BATCH: usize = 256 * 1024;
/// How long the sink waits for input or acknowledgements before it looks at the other.
const ACK_POLL: Duration = Duration::from_millis(10);
/// How long an acknowledging receiver has to say how far it has the stream.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);
/// Latency stamps a sink keeps for chunks not yet written, at most; past it, a chunk's
/// messages join the last stamp's.
// Why a bound: while no receiver is there, the window takes chunks until its memory is
// full, and small chunks (output at a low rate) share its buffers: a stamp each would
// take more memory than the window's bound.
const MAX_UNWRITTEN_STAMPS: usize = 1024;

/// What the thread reading a connection's acknowledgements has seen.
#[derive(Default)]
struct Acks {
    seen: Mutex<Seen>,
    changed: Condvar,
}

#[derive(Default)]
struct Seen {
    last: Position,
    /// Why the connection ended, once it has.
    ended: Option<io::Error>,
}

impl Acks {
    /// Reads ACKs from `stream` until it ends.
    fn read(&self, mut stream: TcpStream) {
        loop {
            let read = Position::read(&mut stream);
            let mut seen = self.seen.lock().expect("acks lock");
            match read {
                Ok(position) => seen.last = seen.last.max(position),
                Err(e) => {
                    seen.ended = Some(if e.kind() == io::ErrorKind::UnexpectedEof {
                        io::Error::new(e.kind(), "the receiver closed the connection")
                    } else {
                        e
                    });
                    self.changed.notify_all();
                    return;
                }
            }
            self.changed.notify_all();
        }
    }
}

enum Conn {
    Plain(TcpStream),
    Acknowledged { stream: TcpStream, acks: Arc<Acks> },
}

impl Conn {
    fn stream(&mut self) -> &mut TcpStream {
        match self {
            Conn::Plain(stream) | Conn::Acknowledged { stream, .. } => stream,
        }
    }
}

impl Drop for Conn {
    fn drop(&mut self) {
        // Ends the acknowledgements' reader too.
        let _ = self.stream().shutdown(Shutdown::Both);
    }
}

struct TcpSink<'a> {
    address: &'a str,
    /// The stream's name for this run ([`ack::stream_name`]).
    name: &'a str,
    rx: &'a super::ChunkReceiver,
    window: Window,
    /// The last acknowledgement.
    acked: Position,
    conn: Option<Conn>,
    /// The stream offset up to which the connection has been written.
    written: u64,
    /// The latency stamps of the chunks taken into the window and not yet written to any
    /// connection: observed once they are, by the first write (a resend is not observed
    /// again). Acknowledgements do not count: the write is where output leaves.
    unwritten: Vec<super::Stamp>,
}

pub(super) fn run(
    address: &str,
    name: &str,
    limit: usize,
    rx: &super::ChunkReceiver,
    control: &Control,
) -> Result<(), RunError> {
    let mut sink = TcpSink {
        address,
        name,
        rx,
        window: Window::default(),
        acked: Position::default(),
        conn: None,
        written: 0,
        unwritten: Vec::new(),
    };
    let mut batch = Vec::new();
    let mut input_open = true;
    let mut backoff = FIRST_BACKOFF;
    let mut warned = false;
    loop {
        sink.take_acks();
        if !input_open && sink.window.is_empty() {
            return Ok(());
        }
        if sink.conn.is_none() && !sink.window.is_empty() {
            match sink.connect() {
                Ok(()) => {
                    rx.stats
                        .connections
                        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    backoff = FIRST_BACKOFF;
                    warned = false;
                }
                Err(e) => {
                    if !warned {
                        tracing::warn!("sink {address}: cannot connect ({e}); retrying");
                        warned = true;
                    }
                    sink.give_up_if_late(control)?;
                    std::thread::sleep(backoff);
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                    continue;
                }
            }
        }
        if let Err(e) = sink.write() {
            tracing::warn!(
                "sink {address}: write failed ({e}); reconnecting to write again what the \
                 receiver may not have"
            );
            sink.conn = None;
            continue;
        }
        if !input_open || sink.window.memory() >= limit {
            // Only acknowledgements can move the sink on.
            if !input_open {
                sink.give_up_if_late(control)?;
            }
            sink.wait_acks();
            continue;
        }
        let first = if sink.window.is_empty() {
            rx.rx.recv().ok()
        } else {
            match rx.rx.recv_timeout(ACK_POLL) {
                Ok(chunk) => Some(chunk),
                Err(flume::RecvTimeoutError::Timeout) => continue,
                Err(flume::RecvTimeoutError::Disconnected) => None,
            }
        };
        match first {
            Some(first) => {
                super::gather(first, rx, &mut batch, WRITE_BATCH);
                for chunk in batch.drain(..) {
                    if let Some(stamp) = chunk.stamp() {
                        sink.hold_stamp(stamp);
                    }
                    sink.window.push(chunk.bytes, |c| rx.give_back(c));
                }
            }
            None => input_open = false,
        }
    }
}

impl TcpSink<'_> {
    /// Connects, learns whether the receiver acknowledges and, if it does, how far it has
    /// the stream.
    fn connect(&mut self) -> io::Result<()> {
        let address = self.address;
        let mut stream = TcpStream::connect(address)?;
        // Lines are small and latency matters; batching is done above.
        let _ = stream.set_nodelay(true);
        if !ack::wait_offer(&mut stream, Instant::now() + ack::OFFER_WAIT)? {
            stream.set_read_timeout(None)?;
            tracing::info!(
                "sink {address}: connected to a receiver that does not acknowledge: what the \
                 kernel accepts before it goes away can be lost"
            );
            // What is held is the batch whose write failed: written again whole.
            self.written = self.window.start();
            self.conn = Some(Conn::Plain(stream));
            return Ok(());
        }
        stream.set_read_timeout(Some(HANDSHAKE_TIMEOUT))?;
        std::io::Write::write_all(&mut stream, &ack::hello(self.name))?;
        let claimed = Position::read(&mut stream)?;
        let from = match window::resume(&self.window, self.acked, claimed) {
            window::Resume::From(offset) => {
                self.acked = claimed;
                let rx = self.rx;
                self.window.release(offset, |c| rx.give_back(c));
                offset
            }
            window::Resume::Gap {
                from,
                bytes,
                messages,
            } => {
                let messages = messages.map_or_else(
                    || "written to a receiver that did not acknowledge them".to_string(),
                    |m| format!("{m} messages it had acknowledged"),
                );
                tracing::error!(
                    "sink {address}: the receiver has stream \"{}\" up to byte {} ({} \
                     messages), but the sink holds it from byte {from} only: {bytes} bytes \
                     ({messages}) cannot be resent",
                    self.name,
                    claimed.bytes,
                    claimed.messages
                );
                from
            }
            window::Resume::Ahead => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!(
                        "the receiver claims {} bytes of stream \"{}\", but only {} were sent: \
                         it confuses this stream with another",
                        claimed.bytes,
                        self.name,
                        self.window.end()
                    ),
                ))
            }
        };
        std::io::Write::write_all(&mut stream, &ack::start(from))?;
        stream.set_read_timeout(None)?;
        let reader = stream.try_clone()?;
        let acks = Arc::new(Acks::default());
        let reading = Arc::clone(&acks);
        std::thread::Builder::new()
            .name("wallaroo-sink-acks".into())
            .spawn(move || reading.read(reader))?;
        tracing::info!(
            "sink {address}: connected; the receiver acknowledges, and has {} bytes ({} \
             messages) of this run's output; writing from byte {from} ({} bytes held)",
            claimed.bytes,
            claimed.messages,
            self.window.end() - from
        );
        self.written = from;
        self.conn = Some(Conn::Acknowledged { stream, acks });
        Ok(())
    }

    /// Writes what is held and not written on this connection; a plain receiver's bytes
    /// are released once written.
    fn write(&mut self) -> io::Result<()> {
        let Some(conn) = self.conn.as_mut() else {
            return Ok(());
        };
        if self.written < self.window.end() {
            super::write_chunks(conn.stream(), &self.window.from(self.written))?;
            self.written = self.window.end();
        }
        // Everything taken is written to the socket now: where the chunks' latency ends.
        if !self.unwritten.is_empty() {
            self.rx.stats.written(self.unwritten.drain(..));
        }
        if let Conn::Plain(_) = conn {
            let rx = self.rx;
            self.window.release(self.written, |c| rx.give_back(c));
        }
        Ok(())
    }

    /// Keeps the latency stamp of a chunk taken into the window, until it is written;
    /// past [`MAX_UNWRITTEN_STAMPS`], its messages join the last stamp's, measured from the
    /// earlier of the two reads: still an upper bound of their latency.
    fn hold_stamp(&mut self, stamp: super::Stamp) {
        let full = self.unwritten.len() >= MAX_UNWRITTEN_STAMPS;
        match self.unwritten.last_mut() {
            Some(last) if full => {
                last.messages += stamp.messages;
                last.read_at = last.read_at.min(stamp.read_at);
            }
            _ => self.unwritten.push(stamp),
        }
    }

    /// Releases what the receiver has acknowledged; drops a connection that ended.
    fn take_acks(&mut self) {
        let Some(Conn::Acknowledged { acks, .. }) = &self.conn else {
            return;
        };
        let (last, ended) = {
            let mut seen = acks.seen.lock().expect("acks lock");
            (seen.last, seen.ended.take())
        };
        if last.bytes > self.written {
            tracing::warn!(
                "sink {}: the receiver acknowledges {} bytes, but only {} were written to it; \
                 reconnecting",
                self.address,
                last.bytes,
                self.written
            );
            self.conn = None;
            return;
        }
        if last.bytes > self.acked.bytes {
            self.acked = last;
            let rx = self.rx;
            self.window.release(last.bytes, |c| rx.give_back(c));
        }
        if let Some(e) = ended {
            if self.window.is_empty() {
                tracing::info!(
                    "sink {}: the receiver's connection ended ({e}), with everything \
                     acknowledged; connecting again for more output",
                    self.address
                );
            } else {
                tracing::warn!(
                    "sink {}: the receiver's connection ended ({e}); reconnecting to resend \
                     the {} bytes it has not acknowledged",
                    self.address,
                    self.window.held()
                );
            }
            self.conn = None;
        }
    }

    /// Waits a little for an acknowledgement.
    fn wait_acks(&self) {
        match &self.conn {
            Some(Conn::Acknowledged { acks, .. }) => {
                let seen = acks.seen.lock().expect("acks lock");
                if seen.last.bytes <= self.acked.bytes && seen.ended.is_none() {
                    let _ = acks.changed.wait_timeout(seen, ACK_POLL);
                }
            }
            _ => std::thread::sleep(ACK_POLL),
        }
    }

    /// Gives up once the application has been stopping for [`STOP_GRACE`].
    fn give_up_if_late(&mut self, control: &Control) -> Result<(), RunError> {
        match control.stopping_since() {
            Some(since) if since.elapsed() > STOP_GRACE => {
                let mut lost = self.window.held();
                while let Ok(chunk) = self.rx.rx.try_recv() {
                    lost += chunk.bytes.len() as u64;
                }
                Err(RunError::Undelivered {
                    output: self.address.to_string(),
                    bytes: lost,
                })
            }
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_stamps_of_unwritten_chunks_are_bounded_and_keep_every_message() {
        let (_tx, rx) = super::super::chunk_channel(1, false, false);
        let mut sink = TcpSink {
            address: "-",
            name: "-",
            rx: &rx,
            window: Window::default(),
            acked: Position::default(),
            conn: None,
            written: 0,
            unwritten: Vec::new(),
        };
        let first = Instant::now();
        let later = first + Duration::from_millis(5);
        for i in 0..MAX_UNWRITTEN_STAMPS + 10 {
            // The last chunk's messages were read before the one it joins.
            let read_at = if i + 1 == MAX_UNWRITTEN_STAMPS + 10 {
                first
            } else {
                later
            };
            sink.hold_stamp(super::super::Stamp {
                read_at,
                messages: 2,
            });
        }
        assert_eq!(sink.unwritten.len(), MAX_UNWRITTEN_STAMPS);
        let messages: u64 = sink.unwritten.iter().map(|s| s.messages).sum();
        assert_eq!(messages, 2 * (MAX_UNWRITTEN_STAMPS as u64 + 10));
        let last = sink.unwritten.last().unwrap();
        assert_eq!((last.messages, last.read_at), (22, first));
    }
}
