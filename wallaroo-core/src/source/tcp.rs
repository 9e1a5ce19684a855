//! The TCP source: listens on its address and reads every connection on its own thread.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use std::collections::HashSet;
use std::io::{self, Read, Write};
use std::sync::Condvar;

use super::connector::{SourceConnector, SourceInput, StreamId};
use super::resume::{self, Opening};
use crate::context::{Control, RunError};
use crate::endpoint::{ConnectorError, ConnectorInfo};

/// Open connections, so that stopping can end their reads.
type Live = Arc<Mutex<HashMap<u64, TcpStream>>>;

/// How long a connection's read waits before it looks whether the application is stopping.
const READ_WAKE: Duration = Duration::from_millis(100);
/// How long a stopping application goes on reading connections that still send.
const STOP_GRACE: Duration = Duration::from_secs(5);

/// A connection read until the peer closes it, or, once the application is stopping, until
/// the peer has sent nothing for [`READ_WAKE`] (everything the kernel had received, and
/// what was still on its way, is read) or [`STOP_GRACE`] has passed since the stop.
struct Draining<'a> {
    stream: &'a TcpStream,
    control: &'a Control,
}

impl Read for Draining<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            if self
                .control
                .stopping_since()
                .is_some_and(|since| since.elapsed() > STOP_GRACE)
            {
                return Ok(0);
            }
            match (&*self.stream).read(buf) {
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) =>
                {
                    if self.control.stopping() {
                        // Quiet since the stop: all that was sent is read.
                        return Ok(0);
                    }
                }
                other => return other,
            }
        }
    }
}

/// A listener whose every connection is read on a thread of its own: a plain stream of
/// frames, or a resumable one ([`super::resume`]) whose frames are positions of a named
/// stream.
pub(super) struct TcpConnector {
    listener: TcpListener,
    local: SocketAddr,
}

impl TcpConnector {
    /// Listens on `address` for `pipeline`, or says why it cannot.
    pub(super) fn bind(pipeline: &str, address: &str) -> Result<Self, RunError> {
        let error = |source| RunError::Listen {
            pipeline: pipeline.to_string(),
            address: address.to_string(),
            source,
        };
        let listener = TcpListener::bind(address).map_err(error)?;
        let local = listener.local_addr().map_err(error)?;
        tracing::info!("pipeline \"{pipeline}\": listening on {local}");
        Ok(TcpConnector { listener, local })
    }

    /// The address it listens on.
    pub(super) fn local(&self) -> SocketAddr {
        self.local
    }
}

impl SourceConnector for TcpConnector {
    fn info(&self) -> ConnectorInfo {
        ConnectorInfo::new("tcp", self.local.to_string())
    }

    fn run(self: Box<Self>, input: SourceInput) -> Result<(), ConnectorError> {
        let local = self.local;
        input.on_stop(move || wake_acceptor(local));
        accept_loop(self.listener, local, input);
        Ok(())
    }
}

/// The names of the resumable streams being read: one connection per name at a time.
#[derive(Default)]
struct Named {
    names: Mutex<HashSet<String>>,
    freed: Condvar,
}

/// A stream name in use; freed when dropped.
struct Claim<'a> {
    named: &'a Named,
    name: String,
}

impl Named {
    /// Waits until no other connection reads stream `name`, then takes it; `None` if the
    /// application stops first.
    fn claim(&self, name: &str, control: &Control) -> Option<Claim<'_>> {
        let mut names = self.names.lock().expect("stream names lock");
        while names.contains(name) {
            if control.stopping() {
                return None;
            }
            tracing::info!("stream \"{name}\" is still being read by an earlier connection; waiting for it to end");
            names = self
                .freed
                .wait_timeout(names, Duration::from_millis(100))
                .expect("stream names lock")
                .0;
        }
        names.insert(name.to_string());
        Some(Claim {
            named: self,
            name: name.to_string(),
        })
    }
}

impl Drop for Claim<'_> {
    fn drop(&mut self) {
        self.named
            .names
            .lock()
            .expect("stream names lock")
            .remove(&self.name);
        self.named.freed.notify_all();
    }
}

/// Unblocks `accept` by connecting to the listener once the stop flag is set.
fn wake_acceptor(local: SocketAddr) {
    let mut target = local;
    if target.ip().is_unspecified() {
        target.set_ip(match target.ip() {
            IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::LOCALHOST),
            IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::LOCALHOST),
        });
    }
    if let Err(e) = TcpStream::connect_timeout(&target, Duration::from_secs(1)) {
        tracing::warn!("cannot wake the listener on {local} to stop it: {e}");
    }
}

fn accept_loop(listener: TcpListener, local: SocketAddr, input: SourceInput) {
    let pipeline = input.pipeline().to_string();
    let control = input.control();
    let live: Live = Arc::default();
    let named: Arc<Named> = Arc::default();
    let mut threads: Vec<JoinHandle<()>> = Vec::new();
    let mut next_id = 0u64;
    for incoming in listener.incoming() {
        if control.stopping() {
            break;
        }
        let stream = match incoming {
            Ok(stream) => stream,
            Err(e) => {
                // Out of file descriptors and the like: wait, the other connections go on.
                tracing::error!("pipeline \"{pipeline}\": accept on {local} failed: {e}");
                std::thread::sleep(Duration::from_millis(50));
                continue;
            }
        };
        let peer = stream
            .peer_addr()
            .map_or_else(|_| "an unknown peer".to_string(), |a| a.to_string());
        let name = format!("connection {peer} -> {local}");
        let registered = match stream.try_clone() {
            Ok(clone) => clone,
            Err(e) => {
                tracing::error!(
                    "pipeline \"{pipeline}\", {name}: cannot register the connection: {e}; closing it"
                );
                continue;
            }
        };
        next_id += 1;
        let id = next_id;
        live.lock()
            .expect("live connections lock")
            .insert(id, registered);
        input
            .stats()
            .connections
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        tracing::debug!("pipeline \"{pipeline}\", {name}: connected");
        // The input is forked here so that the connection's thread holds only the channel
        // ends it sends to.
        let mut conn = input.fork();
        let live = Arc::clone(&live);
        let named = Arc::clone(&named);
        let control = Arc::clone(&control);
        let origin = format!("pipeline \"{pipeline}\", {name}");
        let spawned = std::thread::Builder::new()
            .name("wallaroo-conn".into())
            .spawn(move || {
                let stream = stream;
                // Reads wake up now and then, to see whether the application is stopping.
                if let Err(e) = stream.set_read_timeout(Some(READ_WAKE)) {
                    tracing::warn!("{origin}: cannot set a read timeout: {e}; a stop may cut its input");
                }
                let mut draining = Draining {
                    stream: &stream,
                    control: &control,
                };
                let clean = match resume::open(&mut draining) {
                    Ok(Opening::Plain(start)) => {
                        conn.read_framed(&mut io::Cursor::new(start).chain(draining), &name)
                    }
                    Ok(Opening::Resume(stream_name)) => match named.claim(&stream_name, &control) {
                        Some(_claim) => {
                            let id = StreamId::unscoped(&format!("tcp:{stream_name}"));
                            let from = conn.resume_from(&id);
                            let next = from + 1;
                            match (&stream).write_all(&resume::resume(next)) {
                                Ok(()) => {
                                    tracing::info!(
                                        "{origin}: stream \"{stream_name}\" resumes at message {next}"
                                    );
                                    conn.read_framed_at(&mut draining, &name, &id, from)
                                }
                                Err(e) => {
                                    tracing::warn!(
                                        "{origin}: cannot answer the stream's HELLO: {e}"
                                    );
                                    false
                                }
                            }
                        }
                        None => false,
                    },
                    Err(e) => {
                        tracing::warn!("{origin}: {e}; closing the connection");
                        false
                    }
                };
                drop(conn);
                live.lock().expect("live connections lock").remove(&id);
                if clean {
                    tracing::debug!("{origin}: closed by the peer");
                }
            });
        match spawned {
            Ok(handle) => threads.push(handle),
            Err(e) => tracing::error!("pipeline \"{pipeline}\": cannot start a reader thread: {e}"),
        }
        threads.retain(|t| !t.is_finished());
    }
    // Stopping: no new connection is accepted; each connection is read until its peer has
    // sent nothing more (see `Draining`), and what it read is processed and flushed by its
    // thread before it ends. A read that does not end within the grace (a peer that keeps
    // sending) is cut.
    drop(listener);
    let deadline = Instant::now() + STOP_GRACE + READ_WAKE * 2;
    while threads.iter().any(|t| !t.is_finished()) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    for stream in live.lock().expect("live connections lock").values() {
        let _ = stream.shutdown(Shutdown::Read);
    }
    drop(input);
    for thread in threads {
        if thread.join().is_err() {
            tracing::error!("pipeline \"{pipeline}\": a connection thread panicked");
        }
    }
}
