//! A clean stop (SIGINT, SIGTERM, `Running::stop`) loses nothing its connections sent: it
//! stops accepting, reads what the kernel already holds of each connection (bounded by a
//! grace period), processes it and flushes the output.

#[allow(dead_code)]
#[path = "../examples/alphabet.rs"]
mod alphabet;
mod support;

use std::collections::HashMap;
use std::io::Write;

use support::{connect, parse_line, vote_frame, TempDir};
use wallaroo::Args;

/// Alphabet from a TCP port to a file of `dir`, one worker; the file's path.
fn start(dir: &TempDir) -> (wallaroo::Running, std::path::PathBuf) {
    let out = dir.0.join("totals.txt");
    let args = Args::new()
        .with_input("127.0.0.1:0")
        .with_output(format!("file:{}", out.display()).as_str())
        .with_workers(1);
    (alphabet::alphabet(&args).start(&args).unwrap(), out)
}

#[test]
fn a_clean_stop_processes_every_frame_its_connections_had_sent() {
    const FRAMES: usize = 1_000_000;
    let dir = TempDir::new("clean-stop");
    let (running, out) = start(&dir);
    let addr = running.local_addr(0).unwrap();

    // Two connections, sending faster than the application reads: when the writes return,
    // what the application has not read yet is in the kernel's buffers.
    let letters = [b'a', b'b'];
    let senders: Vec<_> = letters
        .iter()
        .map(|&letter| {
            std::thread::spawn(move || {
                let mut conn = connect(addr);
                let bytes: Vec<u8> = (0..FRAMES / 2)
                    .flat_map(|_| vote_frame(letter, 1))
                    .collect();
                conn.write_all(&bytes).unwrap();
                conn
            })
        })
        .collect();
    // The connections stay open: the peers have not gone away when the stop comes.
    let conns: Vec<_> = senders.into_iter().map(|s| s.join().unwrap()).collect();
    running.stop().unwrap();
    drop(conns);

    let text = std::fs::read_to_string(&out).unwrap();
    let mut last: HashMap<u8, u64> = HashMap::new();
    let mut lines = 0;
    for line in text.lines() {
        let (letter, total) = parse_line(line);
        last.insert(letter, total);
        lines += 1;
    }
    assert_eq!(lines, FRAMES, "every frame sent became a total");
    for letter in letters {
        assert_eq!(last[&letter], (FRAMES / 2) as u64, "{}", letter as char);
    }
}

#[test]
fn a_peer_that_never_stops_sending_does_not_hold_a_stop_past_its_grace() {
    let dir = TempDir::new("clean-stop-grace");
    let (running, out) = start(&dir);
    let addr = running.local_addr(0).unwrap();
    let sender = std::thread::spawn(move || {
        let mut conn = connect(addr);
        let chunk: Vec<u8> = (0..1000).flat_map(|_| vote_frame(b'a', 1)).collect();
        // Until the application cuts the connection.
        while conn.write_all(&chunk).is_ok() {}
    });
    std::thread::sleep(std::time::Duration::from_millis(300));
    let start = std::time::Instant::now();
    running.stop().unwrap();
    let took = start.elapsed();
    sender.join().unwrap();
    // 5 s of grace, and the time to process what was read.
    assert!(took < std::time::Duration::from_secs(15), "{took:?}");
    assert!(
        took > std::time::Duration::from_secs(4),
        "cut before the grace: {took:?}"
    );
    // What was read was processed: the totals count up without a gap.
    let text = std::fs::read_to_string(&out).unwrap();
    for (i, line) in text.lines().enumerate() {
        assert_eq!(parse_line(line), (b'a', i as u64 + 1));
    }
}
