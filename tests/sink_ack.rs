//! The TCP sink across receiver restarts, with real processes: the Alphabet example writes
//! to `wallaroo-receiver --resume`, which is killed with SIGKILL mid-stream and started
//! again on the same file; and a plain receiver, which only reads, gets exactly the bytes
//! it always got.

mod support;

use std::collections::HashMap;
use std::fs;
use std::io::Read;
use std::net::{SocketAddr, TcpListener};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use support::{parse_line, send_votes, TempDir};

const RECEIVER: &str = env!("CARGO_BIN_EXE_wallaroo-receiver");

fn start_app(input: u16, output: &str, log: &Path) -> Child {
    Command::new(support::example_bin("alphabet"))
        .args(["--in", &format!("127.0.0.1:{input}")])
        .args(["--out", output])
        .args(["--workers", "2"])
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(fs::File::create(log).unwrap())
        .spawn()
        .expect("start the alphabet example")
}

fn start_receiver(port: u16, out: &Path, log: &Path) -> Child {
    start_receiver_with(port, out, log, &["--resume"])
}

fn start_receiver_with(port: u16, out: &Path, log: &Path, extra: &[&str]) -> Child {
    Command::new(RECEIVER)
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .arg("--out")
        .arg(out)
        .args(extra)
        .stdout(Stdio::null())
        .stderr(
            fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(log)
                .unwrap(),
        )
        .spawn()
        .expect("start wallaroo-receiver")
}

/// Sends SIGTERM and waits for the exit, which must be a success.
fn stop(child: &mut Child, what: &str, log: &Path) {
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            assert!(
                status.success(),
                "{what} exited with {status}: {}",
                fs::read_to_string(log).unwrap_or_default()
            );
            return;
        }
        assert!(Instant::now() < deadline, "{what} did not stop");
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn lines_in(path: &Path) -> usize {
    fs::read(path).map_or(0, |bytes| bytes.iter().filter(|&&b| b == b'\n').count())
}

/// Waits until `path` holds at least `count` lines.
fn wait_for_lines(path: &Path, count: usize, limit: Duration) -> usize {
    let deadline = Instant::now() + limit;
    loop {
        let lines = lines_in(path);
        if lines >= count || Instant::now() > deadline {
            return lines;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn a_receiver_killed_and_restarted_with_resume_gets_every_total_once() {
    const LETTERS: &[u8] = b"abcdefghijklmnopqrstuvwxyz!";
    const PER_LETTER: u64 = 4_000;
    let dir = TempDir::new("sink-ack");
    let out = dir.0.join("totals.txt");
    let (app_log, receiver_log) = (dir.0.join("app.log"), dir.0.join("receiver.log"));
    let (input, output) = (support::free_port(), support::free_port());

    let mut receiver = start_receiver(output, &out, &receiver_log);
    let mut app = start_app(input, &format!("127.0.0.1:{output}"), &app_log);
    // One vote at a time per letter, in turn, so that each letter's totals are 1..=n.
    let votes: Vec<(u8, u32)> = (0..PER_LETTER)
        .flat_map(|_| LETTERS.iter().map(|&letter| (letter, 1)))
        .collect();
    let total = votes.len();
    let in_addr: SocketAddr = format!("127.0.0.1:{input}").parse().unwrap();
    let sender = std::thread::spawn(move || {
        // Paced, so that the kills land while totals flow: about 3 s in all.
        for part in votes.chunks(total / 300) {
            send_votes(in_addr, part, part.len());
            std::thread::sleep(Duration::from_millis(10));
        }
    });

    // Killed at a fifth and at three fifths of the stream, and started again each time
    // after the sink has seen it go.
    for at in [total / 5, total * 3 / 5] {
        let reached = wait_for_lines(&out, at, Duration::from_secs(60));
        assert!(
            reached >= at,
            "only {reached} of {at} totals arrived: {}",
            fs::read_to_string(&app_log).unwrap_or_default()
        );
        receiver.kill().unwrap(); // SIGKILL
        receiver.wait().unwrap();
        std::thread::sleep(Duration::from_millis(300));
        receiver = start_receiver(output, &out, &receiver_log);
    }
    sender.join().unwrap();
    // A clean stop waits until the receiver has acknowledged every total.
    stop(&mut app, "the application", &app_log);
    stop(&mut receiver, "the receiver", &receiver_log);

    let text = fs::read_to_string(&out).unwrap();
    let mut totals: HashMap<u8, Vec<u64>> = HashMap::new();
    for line in text.lines() {
        let (letter, total) = parse_line(line);
        totals.entry(letter).or_default().push(total);
    }
    let log = || {
        format!(
            "application:\n{}\nreceiver:\n{}",
            fs::read_to_string(&app_log).unwrap_or_default(),
            fs::read_to_string(&receiver_log).unwrap_or_default()
        )
    };
    // What each letter lacks and has twice: with --resume, a killed receiver's copy is cut
    // back to what it recorded, and the sink resends from there: no gap, and no duplicate.
    let mut missing = 0;
    let mut twice = 0;
    for &letter in LETTERS {
        let got = totals.get(&letter).map_or(&[][..], Vec::as_slice);
        let mut seen = vec![0u32; PER_LETTER as usize + 1];
        for &t in got {
            seen[t as usize] += 1;
        }
        missing += seen[1..].iter().filter(|&&n| n == 0).count();
        twice += seen[1..].iter().map(|&n| n.saturating_sub(1)).sum::<u32>() as usize;
    }
    assert_eq!(
        (missing, twice),
        (0, 0),
        "totals missing and totals twice, of {total}\n{}",
        log()
    );
    for &letter in LETTERS {
        let expected: Vec<u64> = (1..=PER_LETTER).collect();
        assert_eq!(
            totals[&letter], expected,
            "letter {:?}: every total, in order",
            letter as char
        );
    }
    assert_eq!(text.lines().count(), total);
    // The receiver was killed twice, so the sink connected three times and resent.
    let app_text = fs::read_to_string(&app_log).unwrap();
    assert_eq!(
        app_text.matches("the receiver acknowledges").count(),
        3,
        "{app_text}"
    );
}

#[test]
fn a_receiver_that_lost_what_it_acknowledged_is_told_how_many_messages_cannot_be_resent() {
    let dir = TempDir::new("sink-lost");
    let (first, second) = (dir.0.join("first.txt"), dir.0.join("second.txt"));
    let (app_log, receiver_log) = (dir.0.join("app.log"), dir.0.join("receiver.log"));
    let (input, output) = (support::free_port(), support::free_port());
    let mut receiver = start_receiver_with(output, &first, &receiver_log, &[]);
    let mut app = start_app(input, &format!("127.0.0.1:{output}"), &app_log);
    let in_addr: SocketAddr = format!("127.0.0.1:{input}").parse().unwrap();
    send_votes(in_addr, &[(b'k', 1); 5_000], 500);
    assert_eq!(
        wait_for_lines(&first, 5_000, Duration::from_secs(30)),
        5_000
    );
    // Acknowledged by now (every 5 ms); then the receiver and its copy are gone.
    std::thread::sleep(Duration::from_millis(200));
    receiver.kill().unwrap();
    receiver.wait().unwrap();
    let mut receiver = start_receiver_with(output, &second, &receiver_log, &[]);
    send_votes(in_addr, &[(b'k', 1); 10], 10);
    assert_eq!(wait_for_lines(&second, 10, Duration::from_secs(30)), 10);
    stop(&mut app, "the application", &app_log);
    stop(&mut receiver, "the receiver", &receiver_log);
    let log = fs::read_to_string(&app_log).unwrap();
    assert!(
        log.contains(
            "the receiver has stream \"Alphabet sink 0 -> 127.0.0.1:"
        ) && log.contains(
            "up to byte 0 (0 messages), but the sink holds it from byte 48893 only: 48893 bytes \
             (5000 messages it had acknowledged) cannot be resent"
        ),
        "{log}"
    );
    // The new receiver gets what follows, from the first total the sink still held.
    let text = fs::read_to_string(&second).unwrap();
    let expected: String = (5_001..=5_010).map(|n| format!("k => {n}\n")).collect();
    assert_eq!(text, expected);
}

#[test]
fn a_plain_receiver_gets_exactly_the_lines_and_no_protocol_byte() {
    let dir = TempDir::new("sink-plain");
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let output = listener.local_addr().unwrap();
    let reader = std::thread::spawn(move || {
        // Only reads, as `nc -l` does, until the application closes the connection.
        let (mut stream, _) = listener.accept().unwrap();
        let mut bytes = Vec::new();
        stream.read_to_end(&mut bytes).unwrap();
        bytes
    });
    let input = support::free_port();
    let log = dir.0.join("app.log");
    let mut app = start_app(input, &output.to_string(), &log);
    let votes: Vec<(u8, u32)> = (0..2_000).map(|_| (b'q', 1)).collect();
    send_votes(format!("127.0.0.1:{input}").parse().unwrap(), &votes, 100);
    // A clean stop writes every total, then closes the connection.
    stop(&mut app, "the application", &log);
    let bytes = reader.join().unwrap();
    let expected: String = (1..=2_000).map(|n| format!("q => {n}\n")).collect();
    assert_eq!(
        String::from_utf8_lossy(&bytes),
        expected,
        "{}",
        fs::read_to_string(&log).unwrap()
    );
    assert!(fs::read_to_string(&log)
        .unwrap()
        .contains("connected to a receiver that does not acknowledge"));
}
