//! Bad input costs only what it must: a frame the decoder refuses is skipped, an oversized
//! or cut-off frame closes only its own connection, and the other connections go on.

#[allow(dead_code)]
#[path = "../examples/alphabet.rs"]
mod alphabet;
mod support;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use support::{connect, send_votes, vote_frame, Receiver};
use wallaroo::{Args, RunError, Running};

fn start() -> (Receiver, Running) {
    let receiver = Receiver::start();
    let args = Args::new()
        .with_input("127.0.0.1:0")
        .with_output(receiver.addr.to_string().as_str())
        .with_workers(2);
    let running = alphabet::alphabet(&args).start(&args).unwrap();
    (receiver, running)
}

/// True when the server closed the connection (a read gives end of stream or a reset).
fn closed_by_server(stream: &mut std::net::TcpStream) -> bool {
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut byte = [0u8; 1];
    match stream.read(&mut byte) {
        Ok(0) => true,
        Ok(_) => false,
        Err(e) => {
            e.kind() != std::io::ErrorKind::WouldBlock && e.kind() != std::io::ErrorKind::TimedOut
        }
    }
}

#[test]
fn a_four_gib_length_header_closes_that_connection_only() {
    let (receiver, running) = start();
    let addr = running.local_addr(0).unwrap();

    let mut bad = connect(addr);
    let mut bytes = Vec::new();
    for _ in 0..10 {
        bytes.extend_from_slice(&vote_frame(b'x', 1));
    }
    bytes.extend_from_slice(&0xffff_fff0u32.to_be_bytes());
    bytes.extend_from_slice(b"the start of a payload that never ends");
    bad.write_all(&bytes).unwrap();
    assert!(
        closed_by_server(&mut bad),
        "the connection with the oversized frame is closed"
    );

    send_votes(addr, &vec![(b'y', 1); 100], 7);
    let lines = receiver.wait_for(110);
    let counts = support::counts_when(&running, 0, |c| c.messages >= 110);
    running.stop().unwrap();
    assert_eq!(lines.len(), 110);
    assert!(lines.contains(&"x => 10".to_string()));
    assert!(lines.contains(&"y => 100".to_string()));
    assert_eq!(counts.framing_errors, 1);
    assert_eq!(counts.messages, 110);
}

#[test]
fn a_frame_the_decoder_refuses_is_skipped_and_the_connection_goes_on() {
    let (receiver, running) = start();
    let addr = running.local_addr(0).unwrap();
    let mut stream = connect(addr);
    stream.write_all(&vote_frame(b'a', 1)).unwrap();
    // A 3-byte payload: not a letter and a u32.
    stream.write_all(&[0, 0, 0, 3, b'a', 0, 0]).unwrap();
    stream.write_all(&vote_frame(b'a', 2)).unwrap();
    assert_eq!(receiver.wait_for(2), ["a => 1", "a => 3"]);
    // Still open: later frames are processed.
    stream.write_all(&vote_frame(b'a', 4)).unwrap();
    assert_eq!(receiver.wait_for(3)[2], "a => 7");
    let counts = support::counts_when(&running, 0, |c| c.messages >= 3);
    running.stop().unwrap();
    assert_eq!(counts.decode_errors, 1);
    assert_eq!(counts.framing_errors, 0);
    assert_eq!(counts.messages, 3);
}

#[test]
fn a_peer_that_leaves_mid_frame_loses_only_that_frame() {
    let (receiver, running) = start();
    let addr = running.local_addr(0).unwrap();
    {
        let mut stream = connect(addr);
        stream.write_all(&vote_frame(b'b', 1)).unwrap();
        stream.write_all(&vote_frame(b'b', 1000)[..6]).unwrap();
    }
    assert_eq!(receiver.wait_for(1), ["b => 1"]);
    send_votes(addr, &[(b'b', 2)], 1);
    assert_eq!(receiver.wait_for(2), ["b => 1", "b => 3"]);
    // The cut frame is counted once its connection's thread has seen the end.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while running.source_counts(0).unwrap().framing_errors == 0
        && std::time::Instant::now() < deadline
    {
        std::thread::sleep(Duration::from_millis(10));
    }
    let counts = running.source_counts(0).unwrap();
    running.stop().unwrap();
    assert_eq!(counts.framing_errors, 1);
    assert_eq!(counts.messages, 2);
}

#[test]
fn text_lines_sent_to_a_length_header_are_recognised_as_text() {
    let port = support::free_port();
    let input = format!("127.0.0.1:{port}");
    let receiver = Receiver::start();
    let mut app = Command::new(support::example_bin("alphabet"))
        .args(["--in", &input, "--out", &receiver.addr.to_string()])
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (lines_tx, lines) = std::sync::mpsc::channel();
    let stderr = BufReader::new(app.stderr.take().unwrap());
    std::thread::spawn(move || {
        for line in stderr.lines().map_while(Result::ok) {
            let _ = lines_tx.send(line);
        }
    });

    // Text lines for `#[decoder(lines)]`, to the Alphabet's 4-byte length header.
    let mut sender = Command::new(env!("CARGO_BIN_EXE_wallaroo-sender"))
        .args(["--to", &input, "--lines", "-", "--framing", "lines"])
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    sender
        .stdin
        .take()
        .unwrap()
        .write_all(b"hello world\nsecond line\n")
        .unwrap();
    let sent = sender.wait_with_output().unwrap();
    assert!(sent.status.success(), "{sent:?}");

    let deadline = Instant::now() + Duration::from_secs(20);
    let mut log = String::new();
    let error = loop {
        let wait = deadline.saturating_duration_since(Instant::now());
        let line = lines
            .recv_timeout(wait)
            .unwrap_or_else(|_| panic!("no framing error logged:\n{log}"));
        log.push_str(&line);
        log.push('\n');
        if line.contains("declares") || line.contains("ended inside") {
            break line;
        }
    };
    let _ = app.kill();
    let _ = app.wait();
    // "hell" read as a length: 1 751 477 356 bytes.
    assert!(
        error.contains("frame #1 at byte 0 declares 1751477356 bytes"),
        "{error}"
    );
    assert!(
        error.contains(
            "framing: 4-byte big-endian length header, but the header reads as text (\"hell\"): \
             the input looks like newline-delimited text, which needs `#[decoder(lines)]`"
        ),
        "{error}"
    );
    assert!(error.contains(&format!("-> {input}")), "{error}");
    assert!(receiver.lines().is_empty());
}

#[test]
fn missing_addresses_are_usage_errors_naming_the_flag() {
    let args = Args::new();
    let err = alphabet::alphabet(&args)
        .start(&args)
        .err()
        .expect("no --in");
    assert_eq!(err.exit_code(), 2);
    assert!(err.to_string().contains("--in"), "{err}");
    assert!(err.to_string().contains("Alphabet"), "{err}");

    let args = Args::new().with_input("127.0.0.1:0");
    let err = alphabet::alphabet(&args)
        .start(&args)
        .err()
        .expect("no --out");
    assert_eq!(err.exit_code(), 2);
    assert!(err.to_string().contains("--out"), "{err}");
}

#[test]
fn an_address_in_use_is_reported_with_the_address() {
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let receiver = Receiver::start();
    let args = Args::new()
        .with_input(addr.as_str())
        .with_output(receiver.addr.to_string().as_str());
    let err = alphabet::alphabet(&args)
        .start(&args)
        .err()
        .expect("address in use");
    assert!(matches!(err, RunError::Listen { .. }), "{err:?}");
    assert_eq!(err.exit_code(), 1);
    assert!(err.to_string().contains(&addr), "{err}");
}

#[test]
fn the_sink_waits_for_a_receiver_that_starts_late() {
    // Find a free port, and leave it free for a while.
    let port = support::free_port();
    let out = format!("127.0.0.1:{port}");
    let args = Args::new()
        .with_input("127.0.0.1:0")
        .with_output(out.as_str());
    let running = alphabet::alphabet(&args).start(&args).unwrap();
    send_votes(
        running.local_addr(0).unwrap(),
        &[(b'c', 1), (b'c', 2), (b'c', 3)],
        1,
    );
    std::thread::sleep(Duration::from_millis(300));

    let listener = TcpListener::bind(&out).unwrap();
    let (mut conn, _) = listener.accept().unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut text = String::new();
    while text.lines().count() < 3 {
        let mut buf = [0u8; 256];
        let n = conn.read(&mut buf).unwrap();
        assert!(n > 0, "the sink closed early: {text:?}");
        text.push_str(std::str::from_utf8(&buf[..n]).unwrap());
    }
    running.stop().unwrap();
    assert_eq!(text, "c => 1\nc => 3\nc => 6\n");
}

#[test]
fn connections_over_their_sources_memory_budget_are_closed_and_the_others_go_on() {
    use wallaroo::{Application, Sink, Source};
    let receiver = Receiver::start();
    let args = Args::new()
        .with_input("127.0.0.1:0")
        .with_output(receiver.addr.to_string().as_str())
        .with_workers(1);
    // 1 MiB for the frames larger than a connection's 64 KiB, together.
    let running = Application::new("budget")
        .pipeline(
            "votes",
            Source::new(args.input(0), alphabet::decode).memory_budget(1 << 20),
        )
        .to_state_partition(
            alphabet::add_votes,
            "running vote totals",
            alphabet::by_letter,
        )
        .to_sink(Sink::new(args.output(0), alphabet::encode))
        .start(&args)
        .unwrap();
    let addr = running.local_addr(0).unwrap();

    // Two peers each send most of a 900 KiB frame and stall: the first fits in the
    // budget, the second does not and is closed.
    let stalled = |addr| {
        let mut conn = connect(addr);
        let mut bytes = (900u32 * 1024).to_be_bytes().to_vec();
        bytes.extend(std::iter::repeat_n(0u8, 800 * 1024));
        conn.write_all(&bytes).unwrap();
        conn
    };
    let mut first = stalled(addr);
    std::thread::sleep(Duration::from_millis(300));
    let mut second = stalled(addr);
    assert!(
        closed_by_server(&mut second),
        "the second is over the budget"
    );
    // The first is still served, and so are the others.
    first
        .set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    let mut byte = [0u8; 1];
    assert!(
        matches!(first.read(&mut byte), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock || e.kind() == std::io::ErrorKind::TimedOut),
        "the first connection is still open"
    );
    send_votes(addr, &[(b'y', 1); 10], 3);
    let lines = receiver.wait_for(10);
    running.stop().unwrap();
    assert!(lines.contains(&"y => 10".to_string()), "{lines:?}");
}
