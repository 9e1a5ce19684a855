//! Many connections, as a hostile or careless crowd of clients makes them: thousands at once
//! are read on a few threads and every vote counts; beyond `--max-connections` a connection
//! is refused with a log line naming its peer; one that stalls inside a frame is closed after
//! `--idle-timeout`; closed connections leave no file descriptor behind.

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use support::app::App;
use support::{parse_line, vote_frame, Receiver};

/// True when the application closed the connection (a read gives end of stream or a
/// reset) within `within`.
fn closed_by_app(stream: &mut TcpStream, within: Duration) -> bool {
    stream.set_read_timeout(Some(within)).unwrap();
    let mut byte = [0u8; 1];
    match stream.read(&mut byte) {
        Ok(0) => true,
        Ok(_) => false,
        Err(e) => !matches!(
            e.kind(),
            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
        ),
    }
}

/// Waits (up to 20 s) until `check` holds.
fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !check() {
        assert!(Instant::now() < deadline, "never: {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn thousands_of_connections_are_read_on_a_few_threads_and_leave_nothing_open() {
    const CONNECTIONS: usize = 2000;
    let receiver = Receiver::start();
    let app = App::start(&receiver, &["--max-connections", "5000"]);
    // A first vote, through to the receiver: every thread and descriptor of a running
    // application is open.
    let mut first = support::connect(app.addr);
    first.write_all(&vote_frame(b'!', 1)).unwrap();
    assert_eq!(receiver.wait_for(1), ["! => 1"]);
    drop(first);
    std::thread::sleep(Duration::from_millis(300));
    let threads_before = app.status("Threads");
    let fds_before = app.fds();

    // Every connection sends one vote and stays open: the application holds them all.
    let conns: Vec<TcpStream> = (0..CONNECTIONS)
        .map(|i| {
            let mut conn = support::connect(app.addr);
            conn.write_all(&vote_frame(b'a' + (i % 26) as u8, 1))
                .unwrap();
            conn
        })
        .collect();
    let lines = receiver.wait_for(CONNECTIONS + 1);
    assert_eq!(
        lines.len(),
        CONNECTIONS + 1,
        "every connection's vote was counted"
    );
    let threads = app.status("Threads");
    assert!(
        threads <= threads_before + 4,
        "{CONNECTIONS} connections took the process from {threads_before} to {threads} threads"
    );
    assert!(
        app.fds() >= fds_before + CONNECTIONS,
        "the connections are open"
    );

    // The last total of each letter counts all of its votes.
    let mut last = [0u64; 26];
    for line in &lines[1..] {
        let (letter, total) = parse_line(line);
        last[(letter - b'a') as usize] = last[(letter - b'a') as usize].max(total);
    }
    for (i, total) in last.iter().enumerate() {
        let expected = (CONNECTIONS / 26 + usize::from(i < CONNECTIONS % 26)) as u64;
        assert_eq!(*total, expected, "letter {}", (b'a' + i as u8) as char);
    }

    drop(conns);
    eventually("every closed connection's descriptor is released", || {
        app.fds() <= fds_before
    });
}

#[test]
fn a_connection_beyond_the_limit_is_refused_with_a_line_naming_its_peer() {
    let receiver = Receiver::start();
    let mut app = App::start(&receiver, &["--max-connections", "3"]);
    let mut held: Vec<TcpStream> = (0..3)
        .map(|_| {
            let mut conn = support::connect(app.addr);
            conn.write_all(&vote_frame(b'a', 1)).unwrap();
            conn
        })
        .collect();
    receiver.wait_for(3);

    let mut refused = TcpStream::connect(app.addr).unwrap();
    let peer = refused.local_addr().unwrap().to_string();
    assert!(
        closed_by_app(&mut refused, Duration::from_secs(10)),
        "the fourth connection is closed"
    );
    let line = app.wait_log(&["refused connection", &peer, "--max-connections"]);
    assert!(line.contains("3 connections are open"), "{line}");

    // The three go on; once one leaves, a new one is taken.
    for conn in &mut held {
        conn.write_all(&vote_frame(b'b', 1)).unwrap();
    }
    assert_eq!(receiver.wait_for(6).last().unwrap(), "b => 3");
    drop(held.pop());
    let mut later = None;
    eventually("a connection is taken after one left", || {
        let mut conn = TcpStream::connect(app.addr).unwrap();
        conn.write_all(&vote_frame(b'c', 1)).unwrap();
        let taken = !closed_by_app(&mut conn, Duration::from_millis(200));
        later = Some(conn);
        taken
    });
    assert!(receiver.wait_for(7).contains(&"c => 1".to_string()));
}

#[test]
fn a_connection_stalled_inside_a_frame_is_closed_and_a_quiet_one_is_kept() {
    let receiver = Receiver::start();
    let mut app = App::start(&receiver, &["--idle-timeout", "1"]);

    // Two bytes of a four-byte header, then nothing.
    let mut stalled = support::connect(app.addr);
    stalled.write_all(&[0, 0]).unwrap();
    let peer = stalled.local_addr().unwrap().to_string();
    // A whole frame, then nothing: quiet between frames.
    let mut quiet = support::connect(app.addr);
    quiet.write_all(&vote_frame(b'q', 1)).unwrap();
    assert_eq!(receiver.wait_for(1), ["q => 1"]);

    let started = Instant::now();
    assert!(
        closed_by_app(&mut stalled, Duration::from_secs(15)),
        "the stalled connection is closed"
    );
    assert!(
        started.elapsed() >= Duration::from_millis(500),
        "closed before its timeout: {:?}",
        started.elapsed()
    );
    app.wait_log(&[&peer, "inside a frame", "--idle-timeout"]);

    // Longer than the timeout since its last frame, the quiet connection is still read.
    std::thread::sleep(Duration::from_millis(1500));
    quiet.write_all(&vote_frame(b'q', 2)).unwrap();
    assert_eq!(receiver.wait_for(2), ["q => 1", "q => 3"]);
}
