//! The TCP source: listens on its address and reads its connections on a few event loops
//! (`mio`), whatever their number: a connection costs a socket and a buffer, not a thread.
//!
//! One loop accepts, and hands each connection to the loop that holds the fewest. A loop
//! reads a connection when the kernel says it has bytes, cuts them into frames, and sends
//! the decoded messages down the connection's own chain, as a thread of its own would. A
//! connection is either a plain stream of frames, or a resumable one ([`super::resume`])
//! whose frames are positions of a named stream.
//!
//! Limits ([`TcpLimits`]): beyond `max_connections` open at once, a new connection is closed
//! as it is accepted, with a log line; a connection that sends nothing for `idle_timeout`
//! while inside a frame (or its opening) is closed; the listen backlog is [`BACKLOG`].

use std::collections::HashSet;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token, Waker};

use super::connector::{SourceConnector, SourceInput, StreamId};
use super::resume::{self, Opening};
use super::{Pumped, StreamEnd};
use crate::args::TcpLimits;
use crate::context::{Control, RunError};
use crate::endpoint::{ConnectorError, ConnectorInfo};

/// How often a loop looks at its connections for timeouts, streams waiting for their
/// name, and a stop in progress.
const TICK: Duration = Duration::from_millis(100);
/// How long a connection may be quiet after a stop before it is taken to have sent all.
const QUIET_AFTER_STOP: Duration = Duration::from_millis(100);
/// How long a stopping application goes on reading connections that still send.
const STOP_GRACE: Duration = Duration::from_secs(5);
/// The listen backlog: connections the kernel completes before they are accepted, so that
/// a burst of connects does not stall (the kernel caps it at `net.core.somaxconn`).
pub(crate) const BACKLOG: i32 = 4096;
/// The most event loops a source reads its connections on.
const MAX_LOOPS: usize = 4;
/// The most bytes a connection's opening takes: a HELLO with the longest name.
const OPENING: usize = resume::MAGIC.len() + 2 + resume::MAX_NAME;

const WAKE: Token = Token(usize::MAX);
const LISTENER: Token = Token(usize::MAX - 1);

/// A listener whose connections are read on a few event loops.
pub(super) struct TcpConnector {
    listener: std::net::TcpListener,
    local: SocketAddr,
    limits: TcpLimits,
}

impl TcpConnector {
    /// Listens on `address` for `pipeline`, or says why it cannot.
    pub(super) fn bind(pipeline: &str, address: &str, limits: TcpLimits) -> Result<Self, RunError> {
        let error = |source| RunError::Listen {
            pipeline: pipeline.to_string(),
            address: address.to_string(),
            source,
        };
        let listener = listen(address).map_err(error)?;
        let local = listener.local_addr().map_err(error)?;
        tracing::info!("pipeline \"{pipeline}\": listening on {local}");
        Ok(TcpConnector {
            listener,
            local,
            limits,
        })
    }

    /// The address it listens on.
    pub(super) fn local(&self) -> SocketAddr {
        self.local
    }
}

/// A non-blocking listener on the first address `address` resolves to that binds, with a
/// backlog of [`BACKLOG`].
fn listen(address: &str) -> io::Result<std::net::TcpListener> {
    let mut last = None;
    for addr in address.to_socket_addrs()? {
        let socket = socket2::Socket::new(
            socket2::Domain::for_address(addr),
            socket2::Type::STREAM,
            Some(socket2::Protocol::TCP),
        )?;
        // A restarted application binds its port again at once, whatever connections of
        // the last run linger in TIME_WAIT.
        socket.set_reuse_address(true)?;
        match socket
            .bind(&addr.into())
            .and_then(|()| socket.listen(BACKLOG))
        {
            Ok(()) => {
                socket.set_nonblocking(true)?;
                return Ok(socket.into());
            }
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            "the address resolves to nothing",
        )
    }))
}

impl SourceConnector for TcpConnector {
    fn info(&self) -> ConnectorInfo {
        ConnectorInfo::new("tcp", self.local.to_string())
    }

    fn run(self: Box<Self>, input: SourceInput) -> Result<(), ConnectorError> {
        let loops = std::thread::available_parallelism()
            .map_or(1, |n| n.get())
            .clamp(1, MAX_LOOPS);
        let common = Arc::new(Common {
            pipeline: input.pipeline().to_string(),
            local: self.local,
            limits: self.limits,
            control: input.control(),
            named: Arc::default(),
            open: AtomicUsize::new(0),
        });
        let mut first = EventLoop::new(input.fork(), Arc::clone(&common))
            .map_err(ConnectorError::io("start an event loop"))?;
        let mut others = Vec::new();
        let mut threads = Vec::new();
        for index in 1..loops {
            let (tx, rx) = flume::unbounded();
            let mut other = EventLoop::new(input.fork(), Arc::clone(&common))
                .map_err(ConnectorError::io("start an event loop"))?;
            other.incoming = Some(rx);
            others.push(Peer {
                tx,
                waker: Arc::clone(&other.waker),
                load: Arc::clone(&other.load),
            });
            threads.push(
                std::thread::Builder::new()
                    .name(format!("wallaroo-tcp-{index}"))
                    .spawn(move || other.run())
                    .map_err(ConnectorError::io("start an event loop's thread"))?,
            );
        }
        let wakers: Vec<Arc<Waker>> = std::iter::once(Arc::clone(&first.waker))
            .chain(others.iter().map(|p| Arc::clone(&p.waker)))
            .collect();
        input.on_stop(move || {
            for waker in wakers {
                let _ = waker.wake();
            }
        });
        drop(input);
        let mut listener = TcpListener::from_std(self.listener);
        first
            .poll
            .registry()
            .register(&mut listener, LISTENER, Interest::READABLE)
            .map_err(ConnectorError::io("watch the listener"))?;
        first.acceptor = Some(Acceptor {
            listener,
            others,
            retry: false,
            refused: 0,
            refusals_logged: None,
        });
        first.run();
        for thread in threads {
            if thread.join().is_err() {
                tracing::error!(
                    "pipeline \"{}\": an event loop of {} panicked",
                    common.pipeline,
                    common.local
                );
            }
        }
        Ok(())
    }
}

/// What the loops of one listener share.
struct Common {
    pipeline: String,
    local: SocketAddr,
    limits: TcpLimits,
    control: Arc<Control>,
    /// The names of the resumable streams being read: one connection per name at a time.
    named: Arc<Mutex<HashSet<String>>>,
    /// Connections open, over all loops.
    open: AtomicUsize,
}

/// A stream name in use; freed when dropped.
struct Claim {
    named: Arc<Mutex<HashSet<String>>>,
    name: String,
}

impl Claim {
    /// Takes stream `name`, unless another connection reads it.
    fn take(named: &Arc<Mutex<HashSet<String>>>, name: &str) -> Option<Claim> {
        named
            .lock()
            .expect("stream names lock")
            .insert(name.to_string())
            .then(|| Claim {
                named: Arc::clone(named),
                name: name.to_string(),
            })
    }
}

impl Drop for Claim {
    fn drop(&mut self) {
        self.named
            .lock()
            .expect("stream names lock")
            .remove(&self.name);
    }
}

/// Another loop, as the accepting loop hands it connections.
struct Peer {
    tx: flume::Sender<(TcpStream, SocketAddr)>,
    waker: Arc<Waker>,
    load: Arc<AtomicUsize>,
}

/// What the accepting loop has besides its connections.
struct Acceptor {
    listener: TcpListener,
    others: Vec<Peer>,
    /// An accept failed (out of file descriptors): try again at the next tick.
    retry: bool,
    /// Connections refused since the last log line about them, and when that was.
    refused: u64,
    refusals_logged: Option<Instant>,
}

/// Where a connection is in its life.
enum Phase {
    /// Its first bytes, until they tell a HELLO from a plain stream.
    Opening(Vec<u8>),
    /// A resumable stream whose name another connection still reads; the bytes after its
    /// HELLO.
    Waiting { name: String, rest: Vec<u8> },
    /// Frames; the stream name it holds, if resumable.
    Reading { _claim: Option<Claim> },
}

struct Conn {
    stream: TcpStream,
    /// `connection PEER -> LOCAL`, for log lines.
    name: String,
    input: SourceInput,
    phase: Phase,
    /// When its last bytes came.
    heard: Instant,
    /// Whether it is in its loop's list of connections with more to read.
    queued: bool,
    /// Whether the peer closed its end (or the connection failed): its bytes are read to
    /// the end, not only until a read leaves room.
    closed: bool,
}

/// A reader that notes whether a read brought bytes.
struct Heard<'a> {
    stream: &'a TcpStream,
    got: bool,
}

impl Read for Heard<'_> {
    #[inline]
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = (&*self.stream).read(buf)?;
        self.got |= n > 0;
        Ok(n)
    }
}

/// What to do with a connection after it was read.
enum After {
    /// Wait for its next bytes.
    Keep,
    /// It has more to read: read it again after the others had their turn.
    More,
    Close,
}

struct EventLoop {
    poll: Poll,
    waker: Arc<Waker>,
    /// Connections, by token; `None` where one was closed.
    conns: Vec<Option<Conn>>,
    free: Vec<usize>,
    /// Connections that had their turn with bytes left to read, in turn.
    more: Vec<usize>,
    /// Connections this loop holds, for the acceptor to balance loops.
    load: Arc<AtomicUsize>,
    /// Connections the accepting loop hands this one.
    incoming: Option<flume::Receiver<(TcpStream, SocketAddr)>>,
    /// The listener, on the accepting loop.
    acceptor: Option<Acceptor>,
    /// Forked for each connection.
    input: SourceInput,
    common: Arc<Common>,
}

impl EventLoop {
    fn new(input: SourceInput, common: Arc<Common>) -> io::Result<Self> {
        let poll = Poll::new()?;
        let waker = Arc::new(Waker::new(poll.registry(), WAKE)?);
        Ok(EventLoop {
            poll,
            waker,
            conns: Vec::new(),
            free: Vec::new(),
            more: Vec::new(),
            load: Arc::default(),
            incoming: None,
            acceptor: None,
            input,
            common,
        })
    }

    fn run(&mut self) {
        let mut events = Events::with_capacity(1024);
        let mut next_tick = Instant::now() + TICK;
        let mut turn = Vec::new();
        loop {
            let timeout = if self.more.is_empty() {
                next_tick.saturating_duration_since(Instant::now())
            } else {
                Duration::ZERO
            };
            if let Err(e) = self.poll.poll(&mut events, Some(timeout)) {
                if e.kind() != io::ErrorKind::Interrupted {
                    tracing::error!(
                        "pipeline \"{}\", {}: waiting for connections failed: {e}",
                        self.common.pipeline,
                        self.common.local
                    );
                    std::thread::sleep(TICK);
                }
            }
            for event in events.iter() {
                match event.token() {
                    WAKE => {}
                    LISTENER => self.accept(),
                    Token(index) => {
                        if event.is_read_closed() || event.is_error() {
                            self.peer_closed(index);
                        }
                        self.serve(index);
                    }
                }
            }
            // The connections that had more, once each; a stream that still has more goes
            // to the end of the list.
            std::mem::swap(&mut turn, &mut self.more);
            for index in turn.drain(..) {
                if let Some(Some(conn)) = self.conns.get_mut(index) {
                    conn.queued = false;
                }
                self.serve(index);
            }
            self.take_incoming();
            if Instant::now() >= next_tick {
                next_tick = Instant::now() + TICK;
                if self.tick() {
                    return;
                }
            }
        }
    }

    /// Looks at every connection: the ones that stalled inside a frame, the resumable ones
    /// waiting for their name, and, once stopping, the ones that have sent all. Returns
    /// whether the loop is done (stopping, and nothing left to read).
    fn tick(&mut self) -> bool {
        let now = Instant::now();
        let stopping = self.common.control.stopping_since();
        if let Some(acceptor) = &mut self.acceptor {
            if stopping.is_some() {
                // Stopping: no new connection; the other loops end once they have read
                // theirs.
                let _ = self.poll.registry().deregister(&mut acceptor.listener);
                for other in &acceptor.others {
                    let _ = other.waker.wake();
                }
                self.acceptor = None;
            } else {
                if acceptor.retry {
                    self.accept();
                }
                self.log_refusals(now);
            }
        }
        for index in 0..self.conns.len() {
            let Some(conn) = &mut self.conns[index] else {
                continue;
            };
            if let Some(since) = stopping {
                let quiet = now.saturating_duration_since(conn.heard.max(since));
                if since.elapsed() > STOP_GRACE || quiet > QUIET_AFTER_STOP {
                    // All it sent is read (or the grace is over): what it read is flushed
                    // as its input is dropped.
                    self.close(index);
                }
                continue;
            }
            match &conn.phase {
                Phase::Waiting { name, .. } => {
                    if let Some(claim) = Claim::take(&self.common.named, name) {
                        let after = self.resume(index, claim);
                        self.then(index, after);
                    }
                }
                Phase::Opening(start) if !start.is_empty() => self.time_out(index, now),
                Phase::Reading { .. } if conn.input.mid_frame() => self.time_out(index, now),
                _ => {}
            }
        }
        stopping.is_some()
            && self.acceptor.is_none()
            && self.conns.iter().all(Option::is_none)
            && self
                .incoming
                .as_ref()
                .is_none_or(|rx| rx.is_disconnected() && rx.is_empty())
    }

    /// Closes connection `index` if it has sent nothing for the idle timeout.
    fn time_out(&mut self, index: usize, now: Instant) {
        let Some(conn) = &self.conns[index] else {
            return;
        };
        let limit = self.common.limits.idle_timeout;
        if now.saturating_duration_since(conn.heard) > limit {
            tracing::warn!(
                "pipeline \"{}\", {}: sent nothing for {} s inside a frame; closing the connection \
                 (--idle-timeout)",
                self.common.pipeline,
                conn.name,
                limit.as_secs()
            );
            self.close(index);
        }
    }

    /// Accepts every connection waiting, up to the limit.
    fn accept(&mut self) {
        loop {
            let Some(acceptor) = &mut self.acceptor else {
                return;
            };
            acceptor.retry = false;
            let (stream, peer) = match acceptor.listener.accept() {
                Ok(accepted) => accepted,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    // Out of file descriptors and the like: the connection waits in the
                    // backlog, and is tried again at the next tick.
                    tracing::error!(
                        "pipeline \"{}\": accept on {} failed: {e}; trying again",
                        self.common.pipeline,
                        self.common.local
                    );
                    acceptor.retry = true;
                    return;
                }
            };
            let max = self.common.limits.max_connections;
            if self.common.open.load(Ordering::Relaxed) >= max {
                acceptor.refused += 1;
                if acceptor.refusals_logged.is_none() {
                    tracing::warn!(
                        "pipeline \"{}\": refused connection {peer} -> {}: {max} connections are \
                         open (--max-connections)",
                        self.common.pipeline,
                        self.common.local
                    );
                    acceptor.refused = 0;
                    acceptor.refusals_logged = Some(Instant::now());
                }
                self.input.stats().refused.fetch_add(1, Ordering::Relaxed);
                drop(stream);
                continue;
            }
            self.common.open.fetch_add(1, Ordering::Relaxed);
            self.input
                .stats()
                .connections
                .fetch_add(1, Ordering::Relaxed);
            // To the loop that holds the fewest connections (this one on a tie).
            let own = self.load.load(Ordering::Relaxed);
            let target = acceptor
                .others
                .iter()
                .enumerate()
                .map(|(i, p)| (p.load.load(Ordering::Relaxed), i))
                .filter(|&(load, _)| load < own)
                .min();
            match target {
                Some((_, i)) => {
                    let other = &acceptor.others[i];
                    other.load.fetch_add(1, Ordering::Relaxed);
                    if other.tx.send((stream, peer)).is_ok() {
                        let _ = other.waker.wake();
                    }
                }
                None => self.add(stream, peer),
            }
        }
    }

    /// Logs how many connections were refused since the last line, at most once a second.
    fn log_refusals(&mut self, now: Instant) {
        let Some(acceptor) = &mut self.acceptor else {
            return;
        };
        let Some(logged) = acceptor.refusals_logged else {
            return;
        };
        if now.saturating_duration_since(logged) < Duration::from_secs(1) {
            return;
        }
        if acceptor.refused > 0 {
            tracing::warn!(
                "pipeline \"{}\": refused {} more connections to {} in the last {} ms: {} are \
                 open (--max-connections)",
                self.common.pipeline,
                acceptor.refused,
                self.common.local,
                now.saturating_duration_since(logged).as_millis(),
                self.common.limits.max_connections
            );
            acceptor.refused = 0;
            acceptor.refusals_logged = Some(now);
        } else {
            acceptor.refusals_logged = None;
        }
    }

    /// Takes the connections the accepting loop handed over.
    fn take_incoming(&mut self) {
        let Some(rx) = &self.incoming else {
            return;
        };
        let handed: Vec<_> = rx.try_iter().collect();
        for (stream, peer) in handed {
            // Counted by the acceptor already.
            self.load.fetch_sub(1, Ordering::Relaxed);
            self.add(stream, peer);
        }
    }

    /// Watches a new connection, and reads what it has sent already.
    fn add(&mut self, mut stream: TcpStream, peer: SocketAddr) {
        let name = format!("connection {peer} -> {}", self.common.local);
        let index = self.free.pop().unwrap_or_else(|| {
            self.conns.push(None);
            self.conns.len() - 1
        });
        if let Err(e) = self
            .poll
            .registry()
            .register(&mut stream, Token(index), Interest::READABLE)
        {
            tracing::error!(
                "pipeline \"{}\", {name}: cannot watch the connection: {e}; closing it",
                self.common.pipeline
            );
            self.free.push(index);
            self.common.open.fetch_sub(1, Ordering::Relaxed);
            self.input.stats().closed.fetch_add(1, Ordering::Relaxed);
            return;
        }
        tracing::debug!("pipeline \"{}\", {name}: connected", self.common.pipeline);
        self.load.fetch_add(1, Ordering::Relaxed);
        self.conns[index] = Some(Conn {
            stream,
            name,
            input: self.input.fork(),
            phase: Phase::Opening(Vec::new()),
            heard: Instant::now(),
            queued: false,
            closed: false,
        });
        self.serve(index);
    }

    /// Notes that the peer of connection `index` closed its end.
    fn peer_closed(&mut self, index: usize) {
        if let Some(Some(conn)) = self.conns.get_mut(index) {
            conn.closed = true;
        }
    }

    /// Reads connection `index`, which the kernel says is ready.
    fn serve(&mut self, index: usize) {
        let after = match self.conns.get_mut(index) {
            Some(Some(conn)) => match conn.phase {
                Phase::Opening(_) => self.open(index),
                // Read once it has its name.
                Phase::Waiting { .. } => After::Keep,
                Phase::Reading { .. } => read(conn),
            },
            _ => After::Keep,
        };
        self.then(index, after);
    }

    /// Does what a read of connection `index` left to do.
    fn then(&mut self, index: usize, after: After) {
        match after {
            After::Keep => {}
            After::More => {
                if let Some(Some(conn)) = self.conns.get_mut(index) {
                    if !conn.queued {
                        conn.queued = true;
                        self.more.push(index);
                    }
                }
            }
            After::Close => self.close(index),
        }
    }

    /// Reads a connection's first bytes until they say what it is, then goes on as that.
    fn open(&mut self, index: usize) -> After {
        let Some(conn) = self.conns[index].as_mut() else {
            return After::Keep;
        };
        let Phase::Opening(start) = &mut conn.phase else {
            return After::Keep;
        };
        let mut buf = [0u8; OPENING];
        loop {
            match (&conn.stream).read(&mut buf[..OPENING - start.len()]) {
                // A stream that ends before it says what it is: a plain stream of its bytes.
                Ok(0) => break,
                Ok(n) => {
                    conn.heard = Instant::now();
                    start.extend_from_slice(&buf[..n]);
                    match resume::recognise(start) {
                        Ok(None) => continue,
                        Ok(Some(_)) => break,
                        Err(e) => {
                            tracing::warn!(
                                "pipeline \"{}\", {}: {e}; closing the connection",
                                self.common.pipeline,
                                conn.name
                            );
                            return After::Close;
                        }
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return After::Keep,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    tracing::warn!(
                        "pipeline \"{}\", {}: read failed: {e}; closing the connection",
                        self.common.pipeline,
                        conn.name
                    );
                    return After::Close;
                }
            }
        }
        let start = std::mem::take(start);
        let opening = match resume::recognise(&start) {
            Ok(Some(opening)) => opening,
            _ => Opening::Plain,
        };
        match opening {
            Opening::Plain => {
                conn.input.open_evented(&conn.name, None, &start);
                conn.phase = Phase::Reading { _claim: None };
                // The rest it sent, or its end.
                read(conn)
            }
            Opening::Resume { name, hello } => {
                let rest = start[hello..].to_vec();
                conn.phase = Phase::Waiting {
                    name: name.clone(),
                    rest,
                };
                match Claim::take(&self.common.named, &name) {
                    Some(claim) => self.resume(index, claim),
                    None => {
                        tracing::info!(
                            "pipeline \"{}\", {}: stream \"{name}\" is still being read by an \
                             earlier connection; waiting for it to end",
                            self.common.pipeline,
                            conn.name
                        );
                        After::Keep
                    }
                }
            }
        }
    }

    /// Answers a resumable stream's HELLO with where it resumes, then reads its frames.
    fn resume(&mut self, index: usize, claim: Claim) -> After {
        let Some(conn) = self.conns[index].as_mut() else {
            return After::Keep;
        };
        let Phase::Waiting { name, rest } =
            std::mem::replace(&mut conn.phase, Phase::Reading { _claim: None })
        else {
            return After::Keep;
        };
        let id = StreamId::unscoped(&format!("tcp:{name}"));
        let from = conn.input.resume_from(&id);
        let next = from + 1;
        // 16 bytes to a socket that has sent only its HELLO: its send buffer has room.
        match (&conn.stream).write(&resume::resume(next)) {
            Ok(16) => {}
            Ok(_) | Err(_) => {
                tracing::warn!(
                    "pipeline \"{}\", {}: cannot answer the stream's HELLO; closing the connection",
                    self.common.pipeline,
                    conn.name
                );
                return After::Close;
            }
        }
        tracing::info!(
            "pipeline \"{}\", {}: stream \"{name}\" resumes at message {next}",
            self.common.pipeline,
            conn.name
        );
        conn.input
            .open_evented(&conn.name, Some((&id, from)), &rest);
        conn.phase = Phase::Reading {
            _claim: Some(claim),
        };
        // What came while it waited raised no event of its own.
        read(conn)
    }

    /// Closes connection `index`: what its input read is flushed as the input is dropped.
    fn close(&mut self, index: usize) {
        let Some(mut conn) = self.conns[index].take() else {
            return;
        };
        let _ = self.poll.registry().deregister(&mut conn.stream);
        drop(conn.input);
        self.free.push(index);
        self.load.fetch_sub(1, Ordering::Relaxed);
        self.common.open.fetch_sub(1, Ordering::Relaxed);
        self.input.stats().closed.fetch_add(1, Ordering::Relaxed);
        tracing::debug!(
            "pipeline \"{}\", {}: closed",
            self.common.pipeline,
            conn.name
        );
    }
}

/// Reads what a connection has: its frames go down its chain.
fn read(conn: &mut Conn) -> After {
    let mut heard = Heard {
        stream: &conn.stream,
        got: false,
    };
    let mut pumped = conn.input.read_ready(&mut heard);
    // A read that left room took all the bytes there were, but the end that came with
    // them raises no event of its own: a closed connection is read to its end.
    while conn.closed && pumped == Pumped::Drained {
        pumped = conn.input.read_ready(&mut heard);
    }
    if heard.got {
        conn.heard = Instant::now();
    }
    match pumped {
        Pumped::Drained => After::Keep,
        Pumped::More => After::More,
        Pumped::End(end) => {
            if end == StreamEnd::Clean {
                tracing::debug!("{}: closed by the peer", conn.name);
            }
            After::Close
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_of_connects_waits_in_the_backlog_instead_of_stalling() {
        let listener = listen("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        // The kernel caps the backlog at net.core.somaxconn.
        let cap: usize = std::fs::read_to_string("/proc/sys/net/core/somaxconn")
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(128);
        let burst = cap.min(1000);
        assert!(
            burst > 200,
            "net.core.somaxconn is {cap}: no backlog can hold a burst of connects"
        );
        // Nothing is accepted: every connect completes in the backlog, where a backlog of
        // 128 would leave the 130th waiting a second for its SYN to be sent again.
        let conns: Vec<_> = (0..burst)
            .map(|i| {
                std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(500))
                    .unwrap_or_else(|e| panic!("connect #{} of {burst}: {e}", i + 1))
            })
            .collect();
        assert_eq!(conns.len(), burst);
    }

    #[test]
    fn an_address_that_is_taken_or_resolves_to_nothing_is_an_error() {
        let taken = listen("127.0.0.1:0").unwrap();
        let addr = taken.local_addr().unwrap().to_string();
        assert_eq!(listen(&addr).unwrap_err().kind(), io::ErrorKind::AddrInUse);
        assert!(listen("not an address").is_err());
    }
}
