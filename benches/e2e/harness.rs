//! The workload, the sender and the receiver that every system under test is driven with.
//!
//! The sender writes pre-encoded vote frames over loopback TCP, at saturation or at a fixed
//! offered rate, and notes the time of every write. The receiver reads the output lines. A
//! line `k => n` is the running total after the n-th vote of key `k`; every vote is 1 and
//! message `j` of a single connection carries key `j % keys`, so that line answers message
//! `(n - 1) * keys + k`, whose write time the sender noted: the difference is the latency
//! from the frame sent to its output line read.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use wallaroo::sink::ack::{self, Opening, Position};

/// The keys of the Alphabet application: `a`..`z` and `!`.
pub const LETTERS: &[u8; 27] = b"abcdefghijklmnopqrstuvwxyz!";

/// Messages per write at saturation.
const SATURATION_BATCH: u64 = 4096;
/// Messages per write at a fixed rate: small, so that the stream stays smooth.
const PACED_BATCH: u64 = 32;
/// Bytes the receiver reads at once.
const RECEIVE_BUFFER: usize = 256 * 1024;
/// At saturation, one output line in about this many bytes is matched for latency.
const SAMPLE_BYTES: usize = 4096;
/// The longest a run waits for the machine to be quiet.
const QUIET_LIMIT: Duration = Duration::from_secs(20);
/// The longest a run may take before it is declared stuck.
const RUN_LIMIT: Duration = Duration::from_secs(120);

/// What a message looks like on the wire and in the output.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Workload {
    /// The Alphabet application's: a 5-byte payload (a letter, a big-endian u32 of votes)
    /// and `"a => 12\n"`.
    Alphabet,
    /// The same job with a big-endian u32 key: an 8-byte payload (key, votes) and
    /// `"123 => 12\n"`; for key counts beyond the 27 letters.
    Wide,
}

impl Workload {
    /// The bytes of one frame, header included.
    pub fn frame_len(self) -> usize {
        match self {
            Workload::Alphabet => 9,
            Workload::Wide => 12,
        }
    }

    /// Appends the frame of a vote for key number `index`.
    pub fn push_frame(self, index: u32, votes: u32, out: &mut Vec<u8>) {
        match self {
            Workload::Alphabet => {
                out.extend_from_slice(&5u32.to_be_bytes());
                out.push(LETTERS[index as usize]);
            }
            Workload::Wide => {
                out.extend_from_slice(&8u32.to_be_bytes());
                out.extend_from_slice(&index.to_be_bytes());
            }
        }
        out.extend_from_slice(&votes.to_be_bytes());
    }

    /// A payload's key value and votes; `None` for a payload of the wrong length.
    #[inline]
    pub fn decode(self, payload: &[u8]) -> Option<(u32, u32)> {
        match (self, payload) {
            (Workload::Alphabet, &[letter, a, b, c, d]) => {
                Some((u32::from(letter), u32::from_be_bytes([a, b, c, d])))
            }
            (Workload::Wide, &[k0, k1, k2, k3, a, b, c, d]) => Some((
                u32::from_be_bytes([k0, k1, k2, k3]),
                u32::from_be_bytes([a, b, c, d]),
            )),
            _ => None,
        }
    }

    /// Appends the output line of a running total with `writeln!`, as the hand-written and
    /// timely programs write it: the bytes the wallaroo applications write.
    #[inline]
    pub fn encode(self, key: u32, total: u64, out: &mut Vec<u8>) {
        // Writing to a Vec cannot fail.
        let _ = match self {
            Workload::Alphabet => writeln!(out, "{} => {}", key as u8 as char, total),
            Workload::Wide => writeln!(out, "{key} => {total}"),
        };
    }
}

/// A hasher for u32 keys, as a hand-written program would pick: one multiply.
#[derive(Default, Clone, Copy)]
pub struct KeyHasher(u64);

impl std::hash::Hasher for KeyHasher {
    fn finish(&self) -> u64 {
        self.0 ^ (self.0 >> 29)
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 ^ u64::from(b)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        }
    }
    fn write_u32(&mut self, n: u32) {
        self.0 = (self.0 ^ u64::from(n)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }
}

/// The table of running totals of the hand-written and timely programs.
pub type Totals = std::collections::HashMap<u32, u64, std::hash::BuildHasherDefault<KeyHasher>>;

/// One run's load.
#[derive(Clone, Copy, Debug)]
pub struct Load {
    pub workload: Workload,
    pub keys: u32,
    /// Messages in all, over all connections.
    pub messages: u64,
    pub connections: usize,
    /// Messages per second over all connections; `None` for as fast as the system takes.
    pub rate: Option<f64>,
}

/// A system under test, started: where to send, how many output connections it makes,
/// and how to stop it once all its output arrived.
pub struct Started {
    pub input: SocketAddr,
    pub outputs: usize,
    /// Whether its outputs speak the acknowledging sink protocol (wallaroo's TCP sink): the
    /// receiver offers it to these only, since a peer that never reads the offer would
    /// reset the connection when it closes it.
    pub acknowledges: bool,
    pub stop: Box<dyn FnOnce()>,
}

/// What one run measured.
#[derive(Clone)]
pub struct Outcome {
    /// Output lines per second, from the first write to the last line read.
    pub rate: f64,
    /// Messages per second the sender wrote.
    pub offered: f64,
    /// Latency in nanoseconds from a frame's write to its line's read (single connection).
    pub latency: Option<Histogram<u64>>,
    /// Lines that did not answer a sent message (should be 0).
    pub unmatched: u64,
    /// CPU nanoseconds per message that the system under test used (the process's CPU
    /// less the sender's and the receiver's).
    pub cpu_per_message: f64,
    /// The share of the machine that other programs used just before the run.
    pub busy_before: f64,
}

/// Frames for one connection: a whole number of periods of the key cycle, at least
/// `min_messages` long, plus one batch more so that any batch-long window starting inside
/// the first part is contiguous.
struct Frames {
    bytes: Vec<u8>,
    /// Messages before the key cycle repeats.
    period: u64,
    frame_len: usize,
}

impl Frames {
    fn new(load: &Load, connection: usize, batch: u64) -> Frames {
        let keys = u64::from(load.keys);
        let conns = load.connections as u64;
        let period = keys * 8192u64.div_ceil(keys);
        let frame_len = load.workload.frame_len();
        let mut bytes = Vec::with_capacity((period + batch) as usize * frame_len);
        for j in 0..period + batch {
            // Message j of connection c is message j * conns + c of the whole stream.
            let key = ((j * conns + connection as u64) % keys) as u32;
            load.workload.push_frame(key, 1, &mut bytes);
        }
        Frames {
            bytes,
            period,
            frame_len,
        }
    }

    /// The frames of messages `from..from + count`, `count` at most one batch.
    fn window(&self, from: u64, count: u64) -> &[u8] {
        let start = (from % self.period) as usize * self.frame_len;
        &self.bytes[start..start + count as usize * self.frame_len]
    }
}

/// Nanoseconds since `epoch`.
fn nanos(epoch: Instant) -> u64 {
    epoch.elapsed().as_nanos() as u64
}

/// Writes `count` messages to `input`, `batch` per write, paced to one batch per `interval`
/// if given, noting each write's time in `times`. Returns when the last byte is written.
fn send(
    input: SocketAddr,
    frames: &Frames,
    count: u64,
    batch: u64,
    interval: Option<Duration>,
    times: Option<&[AtomicU64]>,
    epoch: Instant,
) -> (Instant, u64) {
    let mut conn = TcpStream::connect(input).expect("connect to the system's input");
    let _ = conn.set_nodelay(true);
    let mut sent = 0u64;
    let mut index = 0usize;
    while sent < count {
        let n = batch.min(count - sent);
        if let Some(interval) = interval {
            let due = epoch + interval * index as u32;
            let now = Instant::now();
            if due > now {
                std::thread::sleep(due - now);
            }
        }
        if let Some(times) = times {
            times[index].store(nanos(epoch), Ordering::Release);
        }
        conn.write_all(frames.window(sent, n))
            .expect("write to the system's input");
        sent += n;
        index += 1;
    }
    (Instant::now(), crate::cpu::thread_ns())
}

/// What one receiving connection saw.
struct Received {
    /// CPU the receiving thread used.
    cpu_ns: u64,
    lines: u64,
    last: Instant,
    latency: Histogram<u64>,
    unmatched: u64,
}

/// Where the receiver looks up write times.
struct Matcher {
    workload: Workload,
    keys: u64,
    batch: u64,
    times: Arc<Vec<AtomicU64>>,
    /// 0 to match every line; otherwise one line per this many bytes of output, so that
    /// at saturation the receiver spends little of the machine on matching.
    sample_bytes: usize,
    /// Key number by letter byte.
    letter_index: [u32; 256],
}

impl Matcher {
    /// The send time of the message that output `line` (without its newline) answers.
    #[inline]
    fn sent_at(&self, line: &[u8]) -> Option<u64> {
        let (key, rest) = match self.workload {
            Workload::Alphabet => (
                u64::from(self.letter_index[*line.first()? as usize]),
                line.get(5..)?,
            ),
            Workload::Wide => {
                let space = line.iter().position(|&b| b == b' ')?;
                (parse(&line[..space])?, line.get(space + 4..)?)
            }
        };
        let total = parse(rest)?;
        let message = total.checked_sub(1)? * self.keys + key;
        let at = self
            .times
            .get((message / self.batch) as usize)?
            .load(Ordering::Acquire);
        (at != 0).then_some(at)
    }
}

#[inline]
fn parse(digits: &[u8]) -> Option<u64> {
    if digits.is_empty() {
        return None;
    }
    let mut n = 0u64;
    for &d in digits {
        if !d.is_ascii_digit() {
            return None;
        }
        n = n * 10 + u64::from(d - b'0');
    }
    Some(n)
}

fn new_histogram() -> Histogram<u64> {
    // 1 ns to 100 s, 3 significant digits.
    Histogram::new_with_bounds(1, 100_000_000_000, 3).expect("histogram bounds")
}

/// Offers the acknowledging sink protocol on a new output connection of a system that
/// speaks it, as `wallaroo-receiver` does, so that a wallaroo sink runs as it does in
/// production. Returns the bytes read already and whether the stream is acknowledged.
fn open(conn: &mut TcpStream, offer: bool) -> (Vec<u8>, bool) {
    if !offer {
        return (Vec::new(), false);
    }
    conn.write_all(&ack::MAGIC).expect("offer acknowledgements");
    match ack::open(conn).expect("the system's output opens") {
        Opening::Plain(first) => (first, false),
        Opening::Acknowledged(_) => {
            let start = ack::answer(conn, Position::default()).expect("the sink's START");
            assert_eq!(start, 0, "a new stream starts at its first byte");
            (Vec::new(), true)
        }
    }
}

/// Reads output lines until the connection ends or `done` reaches `expected` lines; of an
/// acknowledged stream, acknowledges every [`ack::ACK_BYTES`] and at the end.
fn receive(
    mut conn: TcpStream,
    offer: bool,
    matcher: Option<&Matcher>,
    epoch: Instant,
    done: &AtomicU64,
    expected: u64,
) -> Received {
    let (first, acknowledged) = open(&mut conn, offer);
    let mut buf = vec![0u8; RECEIVE_BUFFER];
    buf[..first.len()].copy_from_slice(&first);
    let mut kept = first.len();
    let mut through = Position::default();
    let mut acked = 0u64;
    let mut out = Received {
        cpu_ns: 0,
        lines: 0,
        last: Instant::now(),
        latency: new_histogram(),
        unmatched: 0,
    };
    loop {
        let n = match conn.read(&mut buf[kept..]) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) => panic!("receiver read failed: {e}"),
        };
        out.last = Instant::now();
        let now = nanos(epoch);
        let end = kept + n;
        // Complete lines end at `start`; what follows is kept for the next read.
        let start = buf[..end]
            .iter()
            .rposition(|&b| b == b'\n')
            .map_or(0, |p| p + 1);
        let lines = buf[..start].iter().filter(|&&b| b == b'\n').count() as u64;
        if let Some(matcher) = matcher {
            // Every line, or the first line after each `sample_bytes` of output.
            let mut at = 0usize;
            while at < start {
                let newline = at + buf[at..start].iter().position(|&b| b == b'\n').unwrap_or(0);
                match matcher.sent_at(&buf[at..newline]) {
                    Some(sent) => {
                        out.latency
                            .saturating_record(now.saturating_sub(sent).max(1));
                    }
                    None => out.unmatched += 1,
                }
                at = newline + 1;
                if matcher.sample_bytes > 0 {
                    let skip = (at + matcher.sample_bytes).min(start);
                    at = match buf[skip..start].iter().position(|&b| b == b'\n') {
                        Some(p) => skip + p + 1,
                        None => start,
                    };
                }
            }
        }
        buf.copy_within(start..end, 0);
        kept = end - start;
        out.lines += lines;
        through.bytes += start as u64;
        through.messages += lines;
        if acknowledged && through.bytes - acked >= ack::ACK_BYTES {
            conn.write_all(&through.encode()).expect("acknowledge");
            acked = through.bytes;
        }
        if done.fetch_add(lines, Ordering::AcqRel) + lines >= expected {
            break;
        }
    }
    if acknowledged {
        // Everything: the sink's stop waits for it.
        let _ = conn.write_all(&through.encode());
    }
    out.cpu_ns = crate::cpu::thread_ns();
    out
}

/// Drives one system with `load`: starts it (`start` gets the receiver's address), sends,
/// receives every output line, stops it.
pub fn run(load: &Load, start: impl FnOnce(SocketAddr) -> Started) -> Outcome {
    let batch = if load.rate.is_some() {
        PACED_BATCH
    } else {
        SATURATION_BATCH
    };
    let per_conn = load.messages / load.connections as u64;
    let total = per_conn * load.connections as u64;
    let frames: Vec<Frames> = (0..load.connections)
        .map(|c| Frames::new(load, c, batch))
        .collect();
    let matcher = (load.connections == 1).then(|| {
        let mut letter_index = [0u32; 256];
        for (i, &l) in LETTERS.iter().enumerate() {
            letter_index[l as usize] = i as u32;
        }
        Matcher {
            workload: load.workload,
            keys: u64::from(load.keys),
            batch,
            times: Arc::new(
                (0..total.div_ceil(batch))
                    .map(|_| AtomicU64::new(0))
                    .collect(),
            ),
            sample_bytes: if load.rate.is_some() { 0 } else { SAMPLE_BYTES },
            letter_index,
        }
    });
    let interval = load
        .rate
        .map(|rate| Duration::from_secs_f64(batch as f64 * load.connections as f64 / rate));

    let busy_before = crate::cpu::wait_quiet(QUIET_LIMIT);
    let cpu_before = crate::cpu::process_ns();
    let receiver = TcpListener::bind("127.0.0.1:0").expect("bind the receiver");
    let system = start(receiver.local_addr().expect("receiver address"));
    let offer = system.acknowledges;
    let done = AtomicU64::new(0);
    let epoch = Instant::now();
    let (received, sent_by) = std::thread::scope(|s| {
        let done = &done;
        let matcher = matcher.as_ref();
        let readers = s.spawn(move || {
            std::thread::scope(|s| {
                let mut handles = Vec::new();
                for _ in 0..system.outputs {
                    let (conn, _) = receiver.accept().expect("accept the system's output");
                    handles.push(
                        std::thread::Builder::new()
                            .name("receiver".into())
                            .spawn_scoped(s, move || {
                                receive(conn, offer, matcher, epoch, done, total)
                            })
                            .expect("spawn"),
                    );
                }
                handles
                    .into_iter()
                    .map(|h| h.join().expect("receiver thread"))
                    .collect::<Vec<_>>()
            })
        });
        let senders: Vec<_> = frames
            .iter()
            .map(|frames| {
                let times = matcher.map(|m| &m.times[..]);
                let sender = std::thread::Builder::new().name("sender".into());
                sender
                    .spawn_scoped(s, move || {
                        send(
                            system.input,
                            frames,
                            per_conn,
                            batch,
                            interval,
                            times,
                            epoch,
                        )
                    })
                    .expect("spawn")
            })
            .collect();
        let sent: Vec<(Instant, u64)> = senders
            .into_iter()
            .map(|h| h.join().expect("sender thread"))
            .collect();
        let deadline = Instant::now() + RUN_LIMIT;
        while done.load(Ordering::Acquire) < total {
            if Instant::now() > deadline {
                eprintln!(
                    "stuck: {} of {total} lines after {RUN_LIMIT:?}; giving up",
                    done.load(Ordering::Acquire)
                );
                std::process::exit(1);
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        // Every line is in: the system's outputs may close now.
        (system.stop)();
        (readers.join().expect("receivers"), sent)
    });
    let cpu_all = crate::cpu::process_ns().saturating_sub(cpu_before);
    let harness_cpu: u64 =
        sent_by.iter().map(|s| s.1).sum::<u64>() + received.iter().map(|r| r.cpu_ns).sum::<u64>();
    let sent_by = sent_by.iter().map(|s| s.0).max().unwrap_or(epoch);
    let lines: u64 = received.iter().map(|r| r.lines).sum();
    assert_eq!(lines, total, "every message gives one output line");
    let last = received.iter().map(|r| r.last).max().unwrap_or(epoch);
    let mut latency = new_histogram();
    let mut unmatched = 0;
    for r in &received {
        latency.add(&r.latency).expect("same histogram bounds");
        unmatched += r.unmatched;
    }
    Outcome {
        rate: total as f64 / (last - epoch).as_secs_f64(),
        offered: total as f64 / (sent_by - epoch).as_secs_f64(),
        latency: matcher.is_some().then_some(latency),
        unmatched,
        cpu_per_message: cpu_all.saturating_sub(harness_cpu) as f64 / total as f64,
        busy_before,
    }
}
