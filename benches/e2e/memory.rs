//! Memory under overload: the Alphabet application runs in a child process (this benchmark's
//! own binary, started with `--serve-alphabet`), a sender writes as fast as it can, and a
//! receiver reads its output slowly. Backpressure must slow the sender to the receiver's
//! pace; the child's resident memory, sampled from `/proc/<pid>/status`, must stay bounded.

use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::harness::{Workload, LETTERS};

/// The child: runs Alphabet with 2 workers, sending to `output`; prints the address it
/// listens on, and stops when its standard input closes.
pub fn serve(output: &str) {
    let args = wallaroo::Args::new()
        .with_input("127.0.0.1:0")
        .with_output(output)
        .with_workers(2);
    let running = crate::alphabet::alphabet(&args)
        .start(&args)
        .expect("start the application");
    println!("{}", running.local_addr(0).expect("a TCP source"));
    let _ = std::io::stdout().flush();
    let _ = std::io::stdin().read_to_end(&mut Vec::new());
    let _ = running.stop();
}

/// A field of `/proc/<pid>/status`, in KiB.
fn status_kib(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()
}

/// What one overload run saw.
pub struct Overload {
    /// The receiver's pace, bytes per second; `None` for as fast as it can.
    pub drain: Option<u64>,
    pub idle_kib: u64,
    /// Resident memory at each second of the run.
    pub per_second_kib: Vec<u64>,
    /// The kernel's high-water mark of the child's resident memory.
    pub peak_kib: u64,
    /// Messages per second the sender got written, over the whole run and over its second
    /// half (when the buffers on the way are full, this is the pace backpressure allows).
    pub sent_rate: f64,
    pub sent_rate_late: f64,
    /// Output lines per second the receiver read, likewise.
    pub received_rate: f64,
    pub received_rate_late: f64,
}

/// Runs the child for `seconds` under a saturating sender, its output read at `drain`
/// bytes per second (or as fast as possible).
pub fn overload(seconds: u64, drain: Option<u64>) -> Overload {
    let receiver = TcpListener::bind("127.0.0.1:0").expect("bind the receiver");
    let exe = std::env::current_exe().expect("this benchmark's binary");
    let mut child = Command::new(exe)
        .arg("--serve-alphabet")
        .arg(receiver.local_addr().expect("address").to_string())
        .env("RUST_LOG", "warn")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("start the child");
    let pid = child.id();
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("the child's address");
    let input: std::net::SocketAddr = line.trim().parse().expect("an address");
    std::thread::sleep(Duration::from_millis(200));
    let idle_kib = status_kib(pid, "VmRSS").unwrap_or(0);

    let stop = AtomicBool::new(false);
    let sent = AtomicU64::new(0);
    let received = AtomicU64::new(0);
    let mut per_second_kib = Vec::new();
    // Messages sent and lines received by the end of each second.
    let mut counts: Vec<(u64, u64)> = Vec::new();
    let start = Instant::now();
    std::thread::scope(|s| {
        s.spawn(|| {
            // The child connects on its first output; give up with the run if it never does.
            receiver.set_nonblocking(true).expect("nonblocking");
            let mut conn = loop {
                match receiver.accept() {
                    Ok((conn, _)) => break conn,
                    Err(e) if e.kind() == ErrorKind::WouldBlock => {
                        if stop.load(Ordering::Relaxed) {
                            return;
                        }
                        std::thread::sleep(Duration::from_millis(1));
                    }
                    Err(e) => panic!("accept the child's output: {e}"),
                }
            };
            conn.set_nonblocking(false).expect("blocking");
            conn.set_read_timeout(Some(Duration::from_millis(100)))
                .expect("timeout");
            let chunk = drain.map_or(1 << 20, |rate| (rate / 100).max(1) as usize);
            let mut buf = vec![0u8; chunk];
            while !stop.load(Ordering::Relaxed) {
                let tick = Instant::now();
                match conn.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => {
                        let lines = buf[..n].iter().filter(|&&b| b == b'\n').count();
                        received.fetch_add(lines as u64, Ordering::Relaxed);
                    }
                    Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                    Err(e) => panic!("receiver: {e}"),
                }
                if drain.is_some() {
                    // Ten reads of `chunk` bytes a second at most.
                    let pause = Duration::from_millis(10).saturating_sub(tick.elapsed());
                    std::thread::sleep(pause);
                }
            }
        });
        s.spawn(|| {
            let mut conn = TcpStream::connect(input).expect("connect to the child");
            conn.set_write_timeout(Some(Duration::from_millis(100)))
                .expect("timeout");
            let mut frames = Vec::new();
            for i in 0..(27 * 1024) {
                Workload::Alphabet.push_frame(i % LETTERS.len() as u32, 1, &mut frames);
            }
            let mut at = 0usize;
            while start.elapsed() < Duration::from_secs(seconds) {
                match conn.write(&frames[at..]) {
                    Ok(n) => {
                        at += n;
                        sent.fetch_add(n as u64, Ordering::Relaxed);
                        if at == frames.len() {
                            at = 0;
                        }
                    }
                    Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                    Err(e) => panic!("sender: {e}"),
                }
            }
        });
        for second in 1..=seconds {
            let due = start + Duration::from_secs(second);
            std::thread::sleep(due.saturating_duration_since(Instant::now()));
            per_second_kib.push(status_kib(pid, "VmRSS").unwrap_or(0));
            let frame = Workload::Alphabet.frame_len() as u64;
            counts.push((
                sent.load(Ordering::Relaxed) / frame,
                received.load(Ordering::Relaxed),
            ));
        }
        stop.store(true, Ordering::Relaxed);
    });
    let elapsed = start.elapsed().as_secs_f64();
    let half = counts.len() / 2;
    let late = |pick: fn(&(u64, u64)) -> u64| {
        let (first, last) = (counts.get(half.saturating_sub(1)), counts.last());
        match (first, last) {
            (Some(a), Some(b)) if counts.len() > 1 => {
                (pick(b) - pick(a)) as f64 / (counts.len() - half) as f64
            }
            _ => 0.0,
        }
    };
    let peak_kib = status_kib(pid, "VmHWM").unwrap_or(0);
    // The child is ours: end it at once, what it still holds is of no interest.
    let _ = child.kill();
    let _ = child.wait();
    Overload {
        drain,
        idle_kib,
        per_second_kib,
        peak_kib,
        sent_rate: (sent.load(Ordering::Relaxed) / Workload::Alphabet.frame_len() as u64) as f64
            / elapsed,
        sent_rate_late: late(|c| c.0),
        received_rate: received.load(Ordering::Relaxed) as f64 / elapsed,
        received_rate_late: late(|c| c.1),
    }
}
