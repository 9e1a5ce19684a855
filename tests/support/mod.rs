//! Helpers shared by the integration tests: a framed-vote sender and a line receiver on
//! loopback.

#![allow(dead_code)]

pub mod app;
#[cfg(feature = "kafka")]
pub mod kafka;
pub mod windows;

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// One Alphabet frame: 4-byte length, letter, big-endian u32 votes.
pub fn vote_frame(letter: u8, votes: u32) -> [u8; 9] {
    let mut frame = [0u8; 9];
    frame[..4].copy_from_slice(&5u32.to_be_bytes());
    frame[4] = letter;
    frame[5..].copy_from_slice(&votes.to_be_bytes());
    frame
}

/// A receiver listening on loopback that collects every line any connection sends.
pub struct Receiver {
    pub addr: SocketAddr,
    lines: Arc<Mutex<Vec<String>>>,
    _thread: JoinHandle<()>,
}

impl Receiver {
    pub fn start() -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind receiver");
        let addr = listener.local_addr().unwrap();
        let lines: Arc<Mutex<Vec<String>>> = Arc::default();
        let sink = Arc::clone(&lines);
        let thread = std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { return };
                let sink = Arc::clone(&sink);
                std::thread::spawn(move || {
                    for line in BufReader::new(stream).lines() {
                        match line {
                            Ok(line) => sink.lock().unwrap().push(line),
                            Err(_) => return,
                        }
                    }
                });
            }
        });
        Receiver {
            addr,
            lines,
            _thread: thread,
        }
    }

    /// Waits until at least `count` lines have arrived (or 30 s pass), and returns them.
    pub fn wait_for(&self, count: usize) -> Vec<String> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let lines = self.lines.lock().unwrap().clone();
            if lines.len() >= count || Instant::now() > deadline {
                return lines;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// The lines received so far.
    pub fn lines(&self) -> Vec<String> {
        self.lines.lock().unwrap().clone()
    }
}

/// Connects to `addr`, retrying for a while (the application may still be starting).
pub fn connect(addr: SocketAddr) -> TcpStream {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match TcpStream::connect(addr) {
            Ok(s) => return s,
            Err(e) if Instant::now() < deadline => {
                let _ = e;
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(e) => panic!("cannot connect to {addr}: {e}"),
        }
    }
}

/// Sends `votes` as frames on a new connection, in chunks of `chunk` frames.
pub fn send_votes(addr: SocketAddr, votes: &[(u8, u32)], chunk: usize) {
    let mut stream = connect(addr);
    let mut buf = Vec::with_capacity(chunk * 9);
    for part in votes.chunks(chunk.max(1)) {
        buf.clear();
        for &(letter, n) in part {
            buf.extend_from_slice(&vote_frame(letter, n));
        }
        stream.write_all(&buf).expect("send votes");
    }
}

/// Parses `"a => 12"` into `(b'a', 12)`.
pub fn parse_line(line: &str) -> (u8, u64) {
    let (letter, total) = line
        .split_once(" => ")
        .unwrap_or_else(|| panic!("not a total line: {line:?}"));
    assert_eq!(letter.len(), 1, "{line:?}");
    (letter.as_bytes()[0], total.parse().expect("a number"))
}

/// A small deterministic generator (xorshift), so failures reproduce.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.max(1))
    }

    pub fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// `payload` behind a 4-byte big-endian length header.
pub fn frame(payload: &[u8]) -> Vec<u8> {
    let mut frame = Vec::with_capacity(4 + payload.len());
    frame.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    frame.extend_from_slice(payload);
    frame
}

/// Sends `bytes` on a new connection to `addr`, then closes it.
pub fn send_bytes(addr: SocketAddr, bytes: &[u8]) {
    let mut stream = connect(addr);
    stream.write_all(bytes).expect("send bytes");
}

/// A fresh directory under the system's temporary directory, removed when dropped.
pub struct TempDir(pub std::path::PathBuf);

impl TempDir {
    /// `$TMP/wallaroo-{name}-{pid}-{n}`, unique within the test process, emptied first.
    pub fn new(name: &str) -> TempDir {
        static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("wallaroo-{name}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create a temporary directory");
        TempDir(dir)
    }

    /// `file:{dir}/{name}`, an address for `--in` or `--out`.
    pub fn address(&self, name: &str) -> String {
        format!("file:{}", self.0.join(name).display())
    }

    /// The text of `{dir}/{name}`.
    pub fn read(&self, name: &str) -> String {
        std::fs::read_to_string(self.0.join(name)).expect("read an output file")
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// GETs `path` from the HTTP server at `addr`: the body.
pub fn http_get(addr: SocketAddr, path: &str) -> String {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let (_, body) = response.split_once("\r\n\r\n").expect("an HTTP response");
    body.to_string()
}

/// `/metrics` of the HTTP server at `addr` once it holds `sample` (or after 10 s): counters
/// are published once per round of batches, beside the outputs they count.
pub fn metrics_when(addr: SocketAddr, sample: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let metrics = http_get(addr, "/metrics");
        if metrics.contains(sample) || Instant::now() > deadline {
            return metrics;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Writes `text` to `stream` in pieces of 1 000 bytes that cut lines, as a network does, and
/// closes the stream: the end of that input.
pub fn send_in_pieces(mut stream: TcpStream, text: &str) {
    for piece in text.as_bytes().chunks(1_000) {
        stream.write_all(piece).unwrap();
    }
}

/// A shipped data file, `examples/data/{name}`, as an `--in` address.
pub fn data_file(name: &str) -> String {
    format!("file:{}/examples/data/{name}", env!("CARGO_MANIFEST_DIR"))
}

/// The binary of example `name`, which `cargo test` builds before it runs the tests; found
/// beside the test's own executable (`target/<profile>/deps/..` -> `target/<profile>/examples/`).
pub fn example_bin(name: &str) -> std::path::PathBuf {
    let exe = std::env::current_exe().expect("the test's executable");
    let bin = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target/<profile>/deps")
        .join("examples")
        .join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
    assert!(
        bin.exists(),
        "{} is missing: run the tests with `cargo test`, which builds the examples",
        bin.display()
    );
    bin
}

/// A loopback port that was free a moment ago, for an application to listen on or for a
/// receiver that starts late.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free loopback port")
        .port()
}

/// A sink connector that collects every message it is handed, as its encoder wrote it.
pub struct Collect(pub Arc<Mutex<Vec<Vec<u8>>>>);

impl wallaroo::connector::SinkConnector for Collect {
    fn info(&self) -> wallaroo::connector::ConnectorInfo {
        wallaroo::connector::ConnectorInfo::new("memory", "test")
    }

    fn run(
        self: Box<Self>,
        mut output: wallaroo::connector::SinkOutput,
    ) -> Result<(), wallaroo::connector::ConnectorError> {
        use wallaroo::connector::Received;
        loop {
            match output.recv(Duration::from_millis(10)) {
                Received::Batch(batch) => {
                    let mut got = self.0.lock().unwrap();
                    got.extend(batch.messages().map(<[u8]>::to_vec));
                    drop(got);
                    output.done(batch);
                }
                Received::Idle => {}
                Received::Ended => return Ok(()),
            }
        }
    }
}

/// What a [`Collect`] sink was handed, as text.
pub fn texts(got: &Mutex<Vec<Vec<u8>>>) -> Vec<String> {
    got.lock()
        .unwrap()
        .iter()
        .map(|m| String::from_utf8(m.clone()).unwrap())
        .collect()
}

/// A message with its state's key (as text), as a keyed sink is handed it.
pub type KeyedMessage = (Option<String>, Vec<u8>);

/// A sink connector that wants keys, and collects every message it is handed with its key.
pub struct CollectKeyed(pub Arc<Mutex<Vec<KeyedMessage>>>);

impl wallaroo::connector::SinkConnector for CollectKeyed {
    fn info(&self) -> wallaroo::connector::ConnectorInfo {
        wallaroo::connector::ConnectorInfo::new("memory", "keyed")
    }

    fn wants_keys(&self) -> bool {
        true
    }

    fn run(
        self: Box<Self>,
        mut output: wallaroo::connector::SinkOutput,
    ) -> Result<(), wallaroo::connector::ConnectorError> {
        use wallaroo::connector::Received;
        loop {
            match output.recv(Duration::from_millis(10)) {
                Received::Batch(batch) => {
                    let mut got = self.0.lock().unwrap();
                    for record in batch.records() {
                        let key = record.key.map(|k| String::from_utf8(k.to_vec()).unwrap());
                        got.push((key, record.value.to_vec()));
                    }
                    drop(got);
                    output.done(batch);
                }
                Received::Idle => {}
                Received::Ended => return Ok(()),
            }
        }
    }
}

/// Source `source`'s counters once `ready` holds of them (or after 10 s): a source counts
/// its messages once it has handed them on, so an output can arrive just before its count.
pub fn counts_when(
    running: &wallaroo::Running,
    source: usize,
    ready: impl Fn(&wallaroo::source::SourceCounts) -> bool,
) -> wallaroo::source::SourceCounts {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let counts = running
            .source_counts(source)
            .expect("the source's counters");
        if ready(&counts) || Instant::now() > deadline {
            return counts;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}
