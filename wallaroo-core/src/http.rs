//! `--http HOST:PORT`: the metrics, the topology and the states of a running application,
//! served over HTTP from threads of its own.
//!
//! | path | answer |
//! | --- | --- |
//! | `GET /` | the live page (`http/page.html`, one file with its CSS and JavaScript): the topology drawn, each component's rate, latency and queue depth, read from `/topology` once and `/metrics` every second |
//! | `GET /metrics` | the Prometheus text format ([`crate::metrics`]) |
//! | `GET /topology` | the topology JSON, as `--topology json` prints it |
//! | `GET /state/STATE?key=JSON` | the state of one key as JSON; 404 for a key without state or an unknown state, 400 for a key that is not JSON of the key type |
//!
//! Any other path is a 404 and any other method a 405, each with a JSON error; a request
//! that is not HTTP is a 400. Every answer closes its connection (no keep-alive).
//!
//! The server is small and bounded, against a client that connects and stays silent, sends
//! a byte at a time, or opens hundreds of connections at once:
//!
//! - one thread accepts, and hands each connection to a fixed pool of
//!   [`MAX_CONNECTIONS`] threads, each of which reads one request, answers it and closes;
//!   the process never has more HTTP threads than that, whatever the clients do;
//! - a request's head must arrive whole within [`READ_TIMEOUT`] of a thread taking its
//!   connection and fit in [`MAX_HEAD`] bytes: a silent or slow client is dropped then;
//! - a connection accepted while every thread of the pool is busy takes the place of the
//!   connection that has waited longest for its request's head on a thread (closed at
//!   once), or else of the one queued longest for a thread: silent clients hold threads
//!   only while no one else asks, so a scrape is answered even behind hundreds of them.
//!   When every thread is answering, not reading, and none is queued (for
//!   [`PLACE_TRIES`] milliseconds, as a thread that is turning over from one connection to
//!   the next is neither), the new connection is answered `503 Service Unavailable` (with
//!   `Retry-After`) and closed, without waiting on the client.
//!
//! The requests are parsed by `httparse` (the parser of `hyper`); the rest is here because
//! `tiny_http`, the server before, cannot be bounded: its pool starts a thread for each
//! connection that finds none idle, without a limit, and has no read timeout, so a silent
//! client holds a thread for good. (`rouille` is built on it; `hyper`'s servers bring an
//! async runtime.)
//!
//! A state query goes to the worker that owns the key, through the worker's own channel,
//! beside the batches: the states take no lock. Waiting on a worker is bounded
//! ([`QUERY_TIMEOUT`]), so a stalled worker costs a 503, not the server.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::metrics::{Exposition, Metrics};
use crate::worker::{StateQuery, QUERY};

/// How long a state query waits for room in the worker's channel, and then for its answer.
const QUERY_TIMEOUT: Duration = Duration::from_secs(2);

/// The threads that serve connections, and so the connections served at once. A scrape
/// every few seconds and a page or two, refreshed every second, need a few.
pub(crate) const MAX_CONNECTIONS: usize = 16;

/// How long a client has, from the moment a thread takes its connection, to send a
/// request's whole head.
pub(crate) const READ_TIMEOUT: Duration = Duration::from_secs(5);

/// How long writing an answer may wait on a client that does not read it.
const WRITE_TIMEOUT: Duration = Duration::from_secs(5);

/// The longest request head read (request line and headers): every request this server
/// answers fits in a few hundred bytes.
const MAX_HEAD: usize = 8 * 1024;

/// The most headers a request may have.
const MAX_HEADERS: usize = 32;

/// A started HTTP server: its address, and how to stop it.
pub(crate) struct HttpServer {
    /// A handle on the listening socket, to wake the accepting thread at a stop.
    listener: TcpListener,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    addr: SocketAddr,
}

/// What the server answers from.
pub(crate) struct Served {
    /// The topology JSON.
    pub(crate) topology: String,
    /// The counters and the workers.
    pub(crate) metrics: Metrics,
}

/// [`Served`], with the registry that /metrics encodes.
struct Answers {
    topology: String,
    metrics: Arc<Metrics>,
    exposition: Exposition,
}

impl Answers {
    fn new(served: Served) -> Answers {
        let metrics = Arc::new(served.metrics);
        Answers {
            topology: served.topology,
            exposition: Exposition::new(Arc::clone(&metrics)),
            metrics,
        }
    }
}

/// Binds `addr`, before the application starts: a bad address is a usage error.
pub(crate) fn bind(addr: &str) -> std::io::Result<TcpListener> {
    TcpListener::bind(addr)
}

impl HttpServer {
    /// Serves `served` on `listener`: a thread that accepts, and a pool of
    /// [`MAX_CONNECTIONS`] that answer.
    pub(crate) fn start(listener: TcpListener, served: Served) -> std::io::Result<HttpServer> {
        let answers = Arc::new(Answers::new(served));
        let addr = listener.local_addr()?;
        let handle = listener.try_clone()?;
        let pool = Arc::new(Pool::default());
        // Room for a connection per thread and one more per connection it replaced (whose
        // thread is about to be free): a send never waits.
        let (tx, rx) = flume::bounded::<TcpStream>(2 * MAX_CONNECTIONS);
        for index in 0..MAX_CONNECTIONS {
            let rx = rx.clone();
            let answers = Arc::clone(&answers);
            let pool = Arc::clone(&pool);
            // Not joined at a stop: a thread reading a silent client ends within
            // READ_TIMEOUT, and the application need not wait for it. Each ends once the
            // accepting thread, and with it the channel, is gone.
            std::thread::Builder::new()
                .name(format!("wallaroo-http{index}"))
                .spawn(move || {
                    while let Ok(stream) = rx.recv() {
                        serve(stream, &answers, &pool, index);
                        pool.admitted.fetch_sub(1, Ordering::AcqRel);
                    }
                })?;
        }
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = Arc::clone(&stop);
        let thread = std::thread::Builder::new()
            .name("wallaroo-http".into())
            .spawn(move || accept(&listener, (&tx, &rx), &pool, &stopped))?;
        tracing::info!("serving the live page, /metrics, /topology and /state on http://{addr}");
        Ok(HttpServer {
            listener: handle,
            stop,
            thread: Some(thread),
            addr,
        })
    }

    /// The address it listens on.
    pub(crate) fn addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        // On Linux, shutting the listening socket down wakes an `accept` with an error;
        // elsewhere a connection of our own does.
        let _ = socket2::SockRef::from(&self.listener).shutdown(Shutdown::Read);
        let mut wake = self.addr;
        if wake.ip().is_unspecified() {
            wake.set_ip(match wake {
                SocketAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
                SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
            });
        }
        let _ = TcpStream::connect_timeout(&wake, Duration::from_millis(200));
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// What the accepting thread and the pool share.
#[derive(Default)]
struct Pool {
    /// Connections handed to the pool and not yet closed (queued or on a thread).
    admitted: AtomicUsize,
    /// Per thread of the pool, the connection it is reading a request from (a handle on
    /// it), and since when: those the accepting thread may close for a new connection.
    reading: std::sync::Mutex<[Option<(TcpStream, Instant)>; MAX_CONNECTIONS]>,
}

impl Pool {
    /// Closes the connection that has waited longest for its request's head; false if
    /// every thread is answering (or about to take a queued connection).
    fn close_oldest_reading(&self) -> bool {
        let mut reading = self.reading.lock().unwrap_or_else(|e| e.into_inner());
        let oldest = reading
            .iter()
            .enumerate()
            .filter_map(|(index, slot)| slot.as_ref().map(|(_, since)| (*since, index)))
            .min();
        let Some((_, index)) = oldest else {
            return false;
        };
        if let Some((stream, _)) = reading[index].take() {
            // Its thread's read returns at once, with nothing: the client is dropped.
            let _ = stream.shutdown(Shutdown::Both);
        }
        true
    }

    /// Marks the connection that thread `index` reads from, or (`None`) that it is done
    /// reading.
    fn set_reading(&self, index: usize, stream: Option<&TcpStream>) {
        let handle = stream.and_then(|s| s.try_clone().ok());
        let mut reading = self.reading.lock().unwrap_or_else(|e| e.into_inner());
        reading[index] = handle.map(|h| (h, Instant::now()));
    }
}

/// Accepts connections until `stop`, each for a free thread of the pool, or in the place
/// of one that waits for its request (on a thread, or queued for one), or answered 503.
fn accept(
    listener: &TcpListener,
    (queue, queued): (&flume::Sender<TcpStream>, &flume::Receiver<TcpStream>),
    pool: &Pool,
    stop: &AtomicBool,
) {
    loop {
        let accepted = listener.accept();
        if stop.load(Ordering::Acquire) {
            return;
        }
        let stream = match accepted {
            Ok((stream, _)) => stream,
            Err(e) => {
                // Out of file descriptors, or a connection reset before it was accepted:
                // not the server's end. A pause keeps a lasting error from spinning.
                tracing::debug!("--http: accept failed: {e}");
                std::thread::sleep(Duration::from_millis(10));
                continue;
            }
        };
        // A thread that has just been handed a connection, or whose connection was just
        // closed, is neither reading nor free for a moment: it is given a few, so that a
        // burst of connections is not refused while the pool turns over.
        let placed = (0..PLACE_TRIES).any(|try_| {
            if try_ > 0 {
                std::thread::sleep(Duration::from_millis(1));
            }
            place(pool, queued)
        });
        if !placed {
            // Every thread answers a request.
            refuse(stream);
            continue;
        }
        match queue.try_send(stream) {
            Ok(()) => {}
            // Not while `admitted` bounds the queue; were it full, a 503 frees the slot.
            Err(flume::TrySendError::Full(stream)) => {
                pool.admitted.fetch_sub(1, Ordering::AcqRel);
                refuse(stream);
            }
            Err(flume::TrySendError::Disconnected(_)) => return,
        }
    }
}

/// How many times, a millisecond apart, a connection that finds the pool busy looks for a
/// place before it is answered 503.
const PLACE_TRIES: u32 = 10;

/// Makes room in the pool for one more connection: a free thread, or one that was reading
/// a request (its connection closed), or the place of the connection queued longest; false
/// if every thread answers a request and none is queued.
fn place(pool: &Pool, queued: &flume::Receiver<TcpStream>) -> bool {
    let admitted = pool.admitted.load(Ordering::Acquire);
    if admitted < MAX_CONNECTIONS || (admitted < 2 * MAX_CONNECTIONS && pool.close_oldest_reading())
    {
        // A thread is free, or about to be.
        pool.admitted.fetch_add(1, Ordering::AcqRel);
        true
    } else if let Ok(oldest) = queued.try_recv() {
        // A burst faster than the threads turn over: the connection queued longest, not
        // read from yet, gives the new one its place (`admitted` is unchanged).
        drop(oldest);
        true
    } else {
        false
    }
}

/// Answers 503 to a connection that no thread is free for, without waiting on it: the
/// answer fits in the socket's buffer, and is dropped if it does not.
fn refuse(mut stream: TcpStream) {
    let body = serde_json::json!({
        "error": format!("the server is busy: its {MAX_CONNECTIONS} threads are answering; try again")
    })
    .to_string();
    let head = head(503, JSON, body.len(), &[("Retry-After", "1")]);
    if stream.set_nonblocking(true).is_ok() {
        let _ = stream.write_all(head.as_bytes());
        let _ = stream.write_all(body.as_bytes());
    }
}

/// A request as the answers need it.
struct Request {
    method: String,
    /// The request target: a path and its query.
    url: String,
}

/// Why no request was read.
enum Unread {
    /// The client closed, or was too slow: nothing is answered.
    Gone,
    /// The bytes are not an HTTP request, or their head is too long: the status to answer.
    Bad(u16, &'static str),
}

/// Reads one request's head: whole within [`READ_TIMEOUT`] of now, at most [`MAX_HEAD`]
/// bytes.
fn read_request(stream: &mut TcpStream) -> Result<Request, Unread> {
    let deadline = Instant::now() + READ_TIMEOUT;
    let mut head = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    loop {
        // The time left, not a timeout per read: a client that sends a byte at a time
        // still has READ_TIMEOUT in all.
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() || stream.set_read_timeout(Some(left)).is_err() {
            return Err(Unread::Gone);
        }
        let n = match stream.read(&mut chunk) {
            Ok(0) | Err(_) => return Err(Unread::Gone),
            Ok(n) => n,
        };
        head.extend_from_slice(&chunk[..n]);
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut request = httparse::Request::new(&mut headers);
        match request.parse(&head) {
            Ok(httparse::Status::Complete(_)) => {
                return Ok(Request {
                    method: request.method.unwrap_or_default().to_string(),
                    url: request.path.unwrap_or_default().to_string(),
                })
            }
            Ok(httparse::Status::Partial) if head.len() > MAX_HEAD => {
                return Err(Unread::Bad(431, "the request's head is too long"))
            }
            Ok(httparse::Status::Partial) => {}
            Err(httparse::Error::TooManyHeaders) => {
                return Err(Unread::Bad(431, "the request has too many headers"))
            }
            Err(_) => return Err(Unread::Bad(400, "not an HTTP/1.x request")),
        }
    }
}

/// Reads one request from `stream` on thread `index` of the pool, answers it and closes
/// the connection.
fn serve(mut stream: TcpStream, answers: &Answers, pool: &Pool, index: usize) {
    // Accepted sockets inherit nothing of the listener's mode on Linux, but a blocking
    // socket is what the timeouts below apply to.
    if stream.set_nonblocking(false).is_err()
        || stream.set_write_timeout(Some(WRITE_TIMEOUT)).is_err()
    {
        return;
    }
    pool.set_reading(index, Some(&stream));
    let read = read_request(&mut stream);
    pool.set_reading(index, None);
    let (status, content_type, body) = match read {
        Ok(request) => answer(answers, &request),
        Err(Unread::Gone) => return,
        Err(Unread::Bad(status, message)) => error(status, message),
    };
    let extra: &[(&str, &str)] = if status == 405 {
        &[("Allow", "GET")]
    } else {
        &[]
    };
    let head = head(status, content_type, body.len(), extra);
    // A client that went away is its own loss.
    if stream.write_all(head.as_bytes()).is_ok() && stream.write_all(body.as_bytes()).is_ok() {
        let _ = stream.flush();
        let _ = stream.shutdown(Shutdown::Write);
    }
}

/// The head of an answer that closes its connection.
fn head(status: u16, content_type: &str, length: usize, extra: &[(&str, &str)]) -> String {
    let reason = match status {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        _ => "Service Unavailable",
    };
    let mut head = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: {content_type}\r\nContent-Length: {length}\r\nConnection: close\r\n"
    );
    for (name, value) in extra {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    head
}

const JSON: &str = "application/json";

/// The live page: one HTML file that needs nothing from outside the process.
const PAGE: &str = include_str!("http/page.html");

/// `{"error": message}`.
fn error(status: u16, message: &str) -> (u16, &'static str, String) {
    (
        status,
        JSON,
        serde_json::json!({ "error": message }).to_string(),
    )
}

/// The status, content type and body for `request`.
fn answer(served: &Answers, request: &Request) -> (u16, &'static str, String) {
    let url = request.url.as_str();
    let (path, query) = url.split_once('?').unwrap_or((url, ""));
    if request.method != "GET" {
        return error(
            405,
            &format!("method {} is not allowed: only GET", request.method),
        );
    }
    match path {
        "/" => (200, "text/html; charset=utf-8", PAGE.to_string()),
        "/metrics" => (
            200,
            crate::metrics::CONTENT_TYPE,
            served.exposition.render(),
        ),
        "/topology" => (200, JSON, served.topology.clone()),
        _ => match path.strip_prefix("/state/") {
            Some(state) => state_of(served, &percent_decode(state), query),
            None => error(
                404,
                &format!(
                    "no such path: {path} (try /, /metrics, /topology or /state/STATE?key=JSON)"
                ),
            ),
        },
    }
}

/// `GET /state/STATE?key=JSON`.
fn state_of(served: &Answers, name: &str, query: &str) -> (u16, &'static str, String) {
    let Some(state) = served.metrics.states.iter().find(|s| s.name == name) else {
        let names: Vec<_> = served.metrics.states.iter().map(|s| &s.name).collect();
        return error(
            404,
            &format!("no state partition named {name:?} (there are {names:?})"),
        );
    };
    let Some(key) = query
        .split('&')
        .find_map(|pair| pair.strip_prefix("key="))
        .map(percent_decode)
    else {
        return error(
            400,
            "missing ?key=JSON (97 for the u8 letter a, \"the\" for a string)",
        );
    };
    let (worker, parsed) = match state.keys.parse(&key, state.workers.len()) {
        Ok(parsed) => parsed,
        Err(e) => return error(400, &format!("malformed key {key}: {e}")),
    };
    let unavailable = || {
        error(
            503,
            "the worker that owns the key is not answering (stopped or busy); try again",
        )
    };
    let Some(tx) = state.workers.get(worker).and_then(|w| w.tx.upgrade()) else {
        return unavailable();
    };
    let (reply, answer) = flume::bounded(1);
    let query = StateQuery { key: parsed, reply };
    if tx
        .send_timeout((QUERY, Box::new(query)), QUERY_TIMEOUT)
        .is_err()
    {
        return unavailable();
    }
    // Not kept while waiting: the worker ends when its senders are gone.
    drop(tx);
    match answer.recv_timeout(QUERY_TIMEOUT) {
        Ok(Ok(Some(value))) => (200, JSON, value.to_string()),
        Ok(Ok(None)) => error(404, &format!("key {key} has no state in {name:?}")),
        Ok(Err(e)) => error(
            500,
            &format!("the state of key {key} cannot be written as JSON: {e}"),
        ),
        Err(_) => unavailable(),
    }
}

/// Decodes `%XX` escapes and `+` (a space in a query); an escape that is not one stays as is.
fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3])
                    .ok()
                    .and_then(|h| u8::from_str_radix(h, 16).ok());
                match hex {
                    Some(b) => {
                        out.push(b);
                        i += 3;
                        continue;
                    }
                    None => out.push(b'%'),
                }
            }
            b'+' => out.push(b' '),
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs the accepting thread on a loopback listener over `pool`; returns its address
    /// and the queue it hands connections to.
    fn accepting(pool: Arc<Pool>) -> (SocketAddr, flume::Receiver<TcpStream>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = flume::bounded(2 * MAX_CONNECTIONS);
        let queued = rx.clone();
        std::thread::spawn(move || {
            accept(&listener, (&tx, &queued), &pool, &AtomicBool::new(false))
        });
        (addr, rx)
    }

    #[test]
    fn a_connection_while_every_thread_answers_gets_a_503_at_once() {
        let pool = Arc::new(Pool::default());
        // Every thread busy answering: none is reading a request.
        pool.admitted.store(MAX_CONNECTIONS, Ordering::Release);
        let (addr, queue) = accepting(Arc::clone(&pool));
        let mut client = TcpStream::connect(addr).unwrap();
        client
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let mut answer = String::new();
        client.read_to_string(&mut answer).unwrap();
        assert!(
            answer.starts_with("HTTP/1.1 503 Service Unavailable\r\n"),
            "{answer}"
        );
        assert!(answer.contains("\r\nRetry-After: 1\r\n"), "{answer}");
        assert!(queue.is_empty());
        assert_eq!(pool.admitted.load(Ordering::Acquire), MAX_CONNECTIONS);
    }

    #[test]
    fn a_connection_while_every_thread_is_busy_replaces_the_oldest_silent_one() {
        let pool = Arc::new(Pool::default());
        pool.admitted.store(MAX_CONNECTIONS, Ordering::Release);
        // Threads 3 and 5 read from silent clients, 5 since longer.
        let pair = || {
            let listener = TcpListener::bind("127.0.0.1:0").unwrap();
            let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
            (client, listener.accept().unwrap().0)
        };
        let (mut older, older_served) = pair();
        let (mut newer, newer_served) = pair();
        pool.set_reading(5, Some(&older_served));
        std::thread::sleep(Duration::from_millis(5));
        pool.set_reading(3, Some(&newer_served));
        let (addr, queue) = accepting(Arc::clone(&pool));
        let client = TcpStream::connect(addr).unwrap();
        // Queued for the thread that is now free, the older silent client closed.
        let queued = queue.recv_timeout(Duration::from_secs(5)).unwrap();
        assert_eq!(queued.peer_addr().unwrap(), client.local_addr().unwrap());
        older
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        assert_eq!(older.read(&mut [0; 16]).unwrap(), 0);
        newer
            .set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        assert!(
            newer.read(&mut [0; 16]).is_err(),
            "the newer one is still open"
        );
        let reading = pool.reading.lock().unwrap();
        assert!(reading[5].is_none() && reading[3].is_some());
    }

    #[test]
    fn a_request_head_is_read_whole_within_the_timeout_or_refused() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let mut client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (mut served, _) = listener.accept().unwrap();
        // Split across writes.
        client.write_all(b"GET /metrics?x=1 HT").unwrap();
        let writer = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(50));
            client.write_all(b"TP/1.1\r\nHost: a\r\n\r\n").unwrap();
            client
        });
        let request = read_request(&mut served).ok().unwrap();
        assert_eq!(
            (request.method.as_str(), request.url.as_str()),
            ("GET", "/metrics?x=1")
        );
        drop(writer.join().unwrap());
        // Not HTTP.
        let mut client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (mut served, _) = listener.accept().unwrap();
        client.write_all(b"\x00\x01 not http\r\n\r\n").unwrap();
        assert!(matches!(
            read_request(&mut served),
            Err(Unread::Bad(400, _))
        ));
        // A head that never ends.
        let (mut served, _) = {
            client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
            listener.accept().unwrap()
        };
        let mut long = b"GET / HTTP/1.1\r\nX: ".to_vec();
        long.resize(MAX_HEAD + 100, b'a');
        client.write_all(&long).unwrap();
        assert!(matches!(
            read_request(&mut served),
            Err(Unread::Bad(431, _))
        ));
        drop(client);
    }

    #[test]
    fn escapes_are_decoded_and_broken_ones_kept() {
        assert_eq!(percent_decode("%22the%22"), "\"the\"");
        assert_eq!(percent_decode("a+b"), "a b");
        assert_eq!(percent_decode("97"), "97");
        assert_eq!(percent_decode("%2"), "%2");
        assert_eq!(percent_decode("%zz1"), "%zz1");
        assert_eq!(percent_decode("%41"), "A");
    }
}
