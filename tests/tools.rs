//! The `wallaroo-sender` and `wallaroo-receiver` binaries, run as a user runs them: against
//! each other, and around the Alphabet example running in-process, on loopback.

#[allow(dead_code)]
#[path = "../examples/alphabet.rs"]
mod alphabet;
mod support;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use support::{parse_line, TempDir};
use wallaroo::Args;

const SENDER: &str = env!("CARGO_BIN_EXE_wallaroo-sender");
const RECEIVER: &str = env!("CARGO_BIN_EXE_wallaroo-receiver");

/// A `wallaroo-receiver` process, and the address it printed.
struct ReceiverProcess {
    child: Child,
    addr: SocketAddr,
    stderr: JoinHandle<String>,
}

impl ReceiverProcess {
    /// Starts `wallaroo-receiver --listen 127.0.0.1:0 ARGS` and waits for its address.
    fn start(args: &[&str]) -> ReceiverProcess {
        let mut child = Command::new(RECEIVER)
            .args(["--listen", "127.0.0.1:0"])
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start wallaroo-receiver");
        let (addr_tx, addr_rx) = std::sync::mpsc::channel();
        let stderr = child.stderr.take().unwrap();
        let stderr = std::thread::spawn(move || {
            let mut text = String::new();
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if let Some(addr) = line.strip_prefix("wallaroo-receiver: listening on ") {
                    let _ = addr_tx.send(addr.parse::<SocketAddr>().unwrap());
                }
                text.push_str(&line);
                text.push('\n');
            }
            text
        });
        let addr = addr_rx
            .recv_timeout(Duration::from_secs(10))
            .expect("the receiver prints its address");
        ReceiverProcess {
            child,
            addr,
            stderr,
        }
    }

    /// Waits for the receiver to exit by itself (it must, within 30 s); its status and
    /// standard error.
    fn finish(mut self) -> (ExitStatus, String) {
        let deadline = Instant::now() + Duration::from_secs(30);
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!("the receiver did not exit: {}", self.stderr.join().unwrap());
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        (status, self.stderr.join().unwrap())
    }
}

/// Runs `wallaroo-sender ARGS` to its end, with `stdin` as standard input.
fn send(args: &[&str], stdin: &[u8]) -> Output {
    let mut child = Command::new(SENDER)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start wallaroo-sender");
    // A sender that refuses its command line exits without reading: the pipe may be closed
    // already, which is no failure of the test (its output says what happened).
    let _ = child.stdin.take().unwrap().write_all(stdin);
    child.wait_with_output().unwrap()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// The payloads of a stream of frames with `header`-byte length headers.
fn payloads(mut bytes: &[u8], header: usize) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    while !bytes.is_empty() {
        let length = bytes[..header]
            .iter()
            .fold(0usize, |acc, &b| (acc << 8) | usize::from(b));
        out.push(bytes[header..header + length].to_vec());
        bytes = &bytes[header + length..];
    }
    out
}

#[test]
fn alphabet_votes_from_two_connections_arrive_as_whole_frames() {
    let dir = TempDir::new("tools");
    let out = dir.0.join("votes.bin");
    let receiver = ReceiverProcess::start(&[
        "--framing",
        "header:4",
        "--expect",
        "2000",
        "--idle-timeout",
        "20",
        "--out",
        out.to_str().unwrap(),
    ]);
    let to = receiver.addr.to_string();
    let sent = send(
        &[
            "--to",
            &to,
            "--alphabet",
            "1000",
            "--keys",
            "4",
            "--connections",
            "2",
        ],
        b"",
    );
    assert!(sent.status.success(), "{}", stderr(&sent));
    assert!(
        stderr(&sent).contains("sent 2000 messages (18000 bytes) over 2 connections"),
        "{}",
        stderr(&sent)
    );
    let (status, text) = receiver.finish();
    assert!(status.success(), "{text}");
    assert!(
        text.contains("received 2000 messages (18000 bytes) on 2 connections"),
        "{text}"
    );

    let bytes = std::fs::read(&out).unwrap();
    assert_eq!(bytes.len(), 18_000);
    let mut letters: BTreeMap<u8, usize> = BTreeMap::new();
    for payload in payloads(&bytes, 4) {
        assert_eq!(payload[1..], [0, 0, 0, 1], "one vote each");
        *letters.entry(payload[0]).or_default() += 1;
    }
    assert_eq!(
        letters,
        BTreeMap::from([(b'a', 500), (b'b', 500), (b'c', 500), (b'd', 500)])
    );
}

#[test]
fn lines_from_standard_input_are_framed_or_sent_as_lines() {
    let dir = TempDir::new("tools");
    let input = b"one\ntwo\r\n\nthree";

    let framed = dir.0.join("framed.bin");
    let receiver = ReceiverProcess::start(&[
        "--framing",
        "header:4",
        "--expect",
        "4",
        "--out",
        framed.to_str().unwrap(),
    ]);
    let sent = send(
        &[
            "--to",
            &receiver.addr.to_string(),
            "--lines",
            "-",
            "--framing",
            "header:4",
        ],
        input,
    );
    assert!(sent.status.success(), "{}", stderr(&sent));
    let (status, text) = receiver.finish();
    assert!(status.success(), "{text}");
    assert_eq!(
        std::fs::read(&framed).unwrap(),
        b"\0\0\0\x03one\0\0\0\x03two\0\0\0\0\0\0\0\x05three"
    );

    let raw = dir.0.join("raw.txt");
    let receiver = ReceiverProcess::start(&["--expect", "4", "--out", raw.to_str().unwrap()]);
    let sent = send(
        &[
            "--to",
            &receiver.addr.to_string(),
            "--lines",
            "-",
            "--framing",
            "lines",
        ],
        input,
    );
    assert!(sent.status.success(), "{}", stderr(&sent));
    let (status, text) = receiver.finish();
    assert!(status.success(), "{text}");
    assert!(text.contains("received 4 messages (15 bytes)"), "{text}");
    assert_eq!(
        std::fs::read_to_string(&raw).unwrap(),
        "one\ntwo\n\nthree\n"
    );
}

#[test]
fn a_file_of_frames_with_two_byte_headers_is_sent_as_is_and_repeated() {
    let dir = TempDir::new("tools");
    let nbbo = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/data/nbbo.frames");
    let out = dir.0.join("nbbo.bin");
    let receiver = ReceiverProcess::start(&[
        "--framing",
        "header:2",
        "--expect",
        "12",
        "--out",
        out.to_str().unwrap(),
    ]);
    let sent = send(
        &[
            "--to",
            &receiver.addr.to_string(),
            "--frames",
            nbbo,
            "--framing",
            "header:2",
            "--repeat",
            "3",
        ],
        b"",
    );
    assert!(sent.status.success(), "{}", stderr(&sent));
    assert!(
        stderr(&sent).contains("sent 12 messages (264 bytes)"),
        "{}",
        stderr(&sent)
    );
    let (status, text) = receiver.finish();
    assert!(status.success(), "{text}");
    assert_eq!(
        std::fs::read(&out).unwrap(),
        std::fs::read(nbbo).unwrap().repeat(3)
    );
}

#[test]
fn a_paced_run_reports_progress_every_second() {
    let receiver = ReceiverProcess::start(&["--framing", "header:4", "--expect", "1200"]);
    let start = Instant::now();
    let sent = send(
        &[
            "--to",
            &receiver.addr.to_string(),
            "--alphabet",
            "600",
            "--rate",
            "1000",
            "--connections",
            "2",
        ],
        b"",
    );
    let elapsed = start.elapsed();
    let text = stderr(&sent);
    assert!(sent.status.success(), "{text}");
    // Each connection sends the 600 votes: 1200 messages at 1000 a second, the last one due
    // after 1.2 s.
    assert!(elapsed >= Duration::from_millis(1100), "{elapsed:?}");
    let lines: Vec<&str> = text.lines().collect();
    assert!(
        lines.iter().any(|l| l.starts_with("wallaroo-sender: ")
            && l.ends_with(" msg/s")
            && !l.contains("sent")),
        "a progress line: {text}"
    );
    assert!(
        lines
            .last()
            .unwrap()
            .starts_with("wallaroo-sender: sent 1200 messages"),
        "{text}"
    );
    let (status, text) = receiver.finish();
    assert!(status.success(), "{text}");
    assert!(text.contains("received 1200 messages"), "{text}");
}

#[test]
fn votes_through_the_alphabet_example_give_every_running_total() {
    let dir = TempDir::new("tools");
    let out = dir.0.join("totals.txt");
    let receiver = ReceiverProcess::start(&["--expect", "2700", "--out", out.to_str().unwrap()]);
    let args = Args::new()
        .with_input("127.0.0.1:0")
        .with_output(receiver.addr.to_string().as_str())
        .with_workers(2);
    let running = alphabet::alphabet(&args).start(&args).unwrap();
    let app = running.local_addr(0).unwrap().to_string();

    // 27 letters: a..z, whose states exist from the start, and A, created on first use.
    let sent = send(&["--to", &app, "--alphabet", "2700", "--keys", "27"], b"");
    assert!(sent.status.success(), "{}", stderr(&sent));
    let (status, text) = receiver.finish();
    running.stop().unwrap();
    assert!(status.success(), "{text}");

    let totals = std::fs::read_to_string(&out).unwrap();
    let mut by_letter: BTreeMap<u8, Vec<u64>> = BTreeMap::new();
    for line in totals.lines() {
        let (letter, total) = parse_line(line);
        by_letter.entry(letter).or_default().push(total);
    }
    let letters: Vec<u8> = (b'a'..=b'z').chain([b'A']).collect();
    assert_eq!(by_letter.keys().copied().collect::<Vec<_>>(), {
        let mut sorted = letters.clone();
        sorted.sort_unstable();
        sorted
    });
    for letter in letters {
        assert_eq!(
            by_letter[&letter],
            (1..=100).collect::<Vec<u64>>(),
            "letter {:?}",
            letter as char
        );
    }
}

#[test]
fn the_receiver_gives_up_after_the_idle_timeout_and_says_what_was_missing() {
    let receiver = ReceiverProcess::start(&["--expect", "5", "--idle-timeout", "0.3"]);
    let (status, text) = receiver.finish();
    assert_eq!(status.code(), Some(1), "{text}");
    assert!(text.contains("received 0 messages"), "{text}");
    assert!(text.contains("expected 5"), "{text}");
}

#[test]
fn an_interrupted_receiver_prints_its_summary() {
    let dir = TempDir::new("tools");
    // SIGINT (Ctrl-C) without --expect ends well; SIGTERM before --expect is reached, not.
    for (signal, expect, status) in [("INT", None, 0), ("TERM", Some("10"), 1)] {
        let out = dir.0.join(format!("{signal}.txt"));
        let mut args = vec!["--out", out.to_str().unwrap()];
        args.extend(expect.iter().flat_map(|n| ["--expect", n]));
        let receiver = ReceiverProcess::start(&args);
        let sent = send(
            &[
                "--to",
                &receiver.addr.to_string(),
                "--lines",
                "-",
                "--framing",
                "lines",
            ],
            b"one\ntwo\nthree\n",
        );
        assert!(sent.status.success(), "{}", stderr(&sent));
        // The receiver counts a line as it writes it: once written, it is counted.
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::fs::read_to_string(&out)
            .unwrap_or_default()
            .lines()
            .count()
            < 3
        {
            assert!(Instant::now() < deadline, "the lines never arrived");
            std::thread::sleep(Duration::from_millis(10));
        }
        let killed = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(receiver.child.id().to_string())
            .status()
            .unwrap();
        assert!(killed.success());
        let (code, text) = receiver.finish();
        assert_eq!(code.code(), Some(status), "SIG{signal}: {text}");
        let summary = text.lines().last().unwrap_or_default();
        assert!(
            summary.starts_with(
                "wallaroo-receiver: received 3 messages (14 bytes) on 1 connection in "
            ),
            "SIG{signal}: {text}"
        );
        assert!(summary.contains(" msg/s"), "{summary}");
        assert_eq!(
            expect.is_some(),
            summary.ends_with("; expected 10"),
            "{summary}"
        );
    }
}

#[test]
fn the_sender_stops_when_nothing_listens() {
    // A port that was free a moment ago.
    let port = support::free_port();
    let to = format!("127.0.0.1:{port}");
    let sent = send(
        &["--to", &to, "--alphabet", "1", "--connect-timeout", "0.3"],
        b"",
    );
    assert_eq!(sent.status.code(), Some(1));
    assert!(
        stderr(&sent).contains(&format!("cannot connect to {to}")),
        "{}",
        stderr(&sent)
    );
}

#[test]
fn usage_errors_exit_with_status_2() {
    let sent = send(&["--to", "127.0.0.1:1"], b"");
    assert_eq!(sent.status.code(), Some(2));
    assert!(stderr(&sent).contains("--frames"), "{}", stderr(&sent));
    // Lines go as lines or behind a header: the sender does not guess which.
    let sent = send(&["--to", "127.0.0.1:1", "--lines", "-"], b"one\n");
    assert_eq!(sent.status.code(), Some(2));
    assert!(
        stderr(&sent).contains("--framing <lines|header:N>"),
        "{}",
        stderr(&sent)
    );
    let received = Command::new(RECEIVER)
        .args(["--listen", "127.0.0.1:0", "--expect", "zero"])
        .output()
        .unwrap();
    assert_eq!(received.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&received.stderr).contains("--expect"));
}

#[test]
fn help_explains_every_flag() {
    for (bin, flags) in [
        (
            SENDER,
            &[
                "--to",
                "--frames",
                "--lines",
                "--alphabet",
                "--keys",
                "--framing",
                "--rate",
                "--connections",
                "--repeat",
                "--connect-timeout",
            ][..],
        ),
        (
            RECEIVER,
            &[
                "--listen",
                "--out",
                "--framing",
                "--expect",
                "--idle-timeout",
                "--resume",
                "--plain",
            ][..],
        ),
    ] {
        let help = Command::new(bin).arg("--help").output().unwrap();
        assert!(help.status.success());
        let help = String::from_utf8(help.stdout).unwrap();
        for flag in flags {
            let line = help
                .lines()
                .position(|l| l.trim_start().starts_with(flag))
                .unwrap_or_else(|| panic!("{bin}: no {flag} in\n{help}"));
            // The flag's explanation follows on the next line.
            let explanation = help.lines().nth(line + 1).unwrap_or_default();
            assert!(
                explanation.trim().len() > 10,
                "{bin}: {flag} is not explained:\n{help}"
            );
        }
    }
}

#[test]
fn a_resumable_stream_is_applied_once_however_often_it_is_sent() {
    let receiver = support::Receiver::start();
    let args = Args::new()
        .with_input("127.0.0.1:0")
        .with_output(receiver.addr.to_string())
        .with_workers(2);
    let running = alphabet::alphabet(&args).start(&args).unwrap();
    let app = running.local_addr(0).unwrap().to_string();
    let command = [
        "--to",
        app.as_str(),
        "--alphabet",
        "2000",
        "--keys",
        "20",
        "--stream",
        "votes",
    ];

    // The sender ends once the application has applied every message of the stream.
    let first = send(&command, b"");
    assert!(first.status.success(), "{}", stderr(&first));
    assert!(
        stderr(&first).contains("sent 2000 messages"),
        "{}",
        stderr(&first)
    );
    // Their outputs follow: a sink gives a receiver that says nothing (this plain one)
    // 250 ms to offer acknowledgements before it writes.
    assert_eq!(
        receiver.wait_for(2000).len(),
        2000,
        "all applied when the sender ends"
    );

    // The same stream again: the application says it has it all; nothing is sent.
    let again = send(&command, b"");
    assert!(again.status.success(), "{}", stderr(&again));
    assert!(
        stderr(&again).contains("sent 0 messages"),
        "{}",
        stderr(&again)
    );
    running.stop().unwrap();
    let lines = receiver.lines();
    assert_eq!(lines.len(), 2000);
    assert!(lines.contains(&"t => 100".to_string()), "{lines:?}");
}
