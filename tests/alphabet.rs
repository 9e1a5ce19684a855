//! The Alphabet example, run in-process over loopback TCP: many connections, declared and
//! undeclared keys, every running total checked.

#[allow(dead_code)]
#[path = "../examples/alphabet.rs"]
mod alphabet;
mod support;

use std::collections::HashMap;

use support::{parse_line, send_votes, Receiver, Rng};
use wallaroo::Args;

/// Letters the example declares (`a`..`z`, `!`) and some it does not (`A`, `#`, `0`).
const LETTERS: &[u8] = b"abcdefghijklmnopqrstuvwxyz!A#0";

fn check_running_totals(sent: &[Vec<(u8, u32)>], lines: &[String]) {
    // Per letter: the votes sent (all connections), and the totals received in order.
    let mut votes: HashMap<u8, Vec<u64>> = HashMap::new();
    for conn in sent {
        for &(letter, n) in conn {
            votes.entry(letter).or_default().push(n.into());
        }
    }
    let mut totals: HashMap<u8, Vec<u64>> = HashMap::new();
    for line in lines {
        let (letter, total) = parse_line(line);
        totals.entry(letter).or_default().push(total);
    }
    assert_eq!(
        votes.keys().collect::<std::collections::BTreeSet<_>>(),
        totals.keys().collect::<std::collections::BTreeSet<_>>()
    );
    for (letter, sent_votes) in &votes {
        let received = &totals[letter];
        assert_eq!(
            received.len(),
            sent_votes.len(),
            "letter {:?}: one total per vote",
            *letter as char
        );
        // Each total is the previous one plus one vote that was sent: the steps between
        // totals are exactly the votes, whatever order the connections interleaved in.
        let mut steps: Vec<u64> = received
            .iter()
            .scan(0u64, |prev, &t| {
                assert!(
                    t > *prev,
                    "letter {:?}: totals must grow: {received:?}",
                    *letter as char
                );
                let step = t - *prev;
                *prev = t;
                Some(step)
            })
            .collect();
        let mut expected = sent_votes.clone();
        steps.sort_unstable();
        expected.sort_unstable();
        assert_eq!(steps, expected, "letter {:?}", *letter as char);
        assert_eq!(*received.last().unwrap(), sent_votes.iter().sum::<u64>());
    }
}

fn generate(connections: usize, per_connection: usize, seed: u64) -> Vec<Vec<(u8, u32)>> {
    let mut rng = Rng::new(seed);
    (0..connections)
        .map(|_| {
            (0..per_connection)
                .map(|_| {
                    let letter = LETTERS[rng.below(LETTERS.len() as u64) as usize];
                    (letter, 1 + rng.below(1000) as u32)
                })
                .collect()
        })
        .collect()
}

fn run(workers: usize, connections: usize, per_connection: usize, chunk: usize) {
    let receiver = Receiver::start();
    let args = Args::new()
        .with_input("127.0.0.1:0")
        .with_output(receiver.addr.to_string().as_str())
        .with_workers(workers);
    let running = alphabet::alphabet(&args)
        .start(&args)
        .expect("the application starts");
    let addr = running.local_addr(0).expect("a TCP source");

    let sent = generate(connections, per_connection, 42 + workers as u64);
    std::thread::scope(|s| {
        for votes in &sent {
            s.spawn(move || send_votes(addr, votes, chunk));
        }
    });
    let total = connections * per_connection;
    let lines = receiver.wait_for(total);
    assert_eq!(lines.len(), total, "every vote gives one total line");
    let counts = support::counts_when(&running, 0, |c| c.messages >= total as u64);
    assert_eq!(counts.messages, total as u64);
    assert_eq!(counts.connections, connections as u64);
    assert_eq!(counts.decode_errors + counts.framing_errors, 0);
    running.stop().expect("a clean stop");
    check_running_totals(&sent, &lines);
    // Nothing more arrives after the stop.
    assert_eq!(receiver.lines().len(), total);
}

#[test]
fn thousands_of_votes_from_several_connections_give_every_running_total() {
    run(2, 4, 5_000, 97);
}

#[test]
fn one_worker_and_frames_sent_one_at_a_time() {
    run(1, 3, 500, 1);
}

#[test]
fn more_workers_than_cores() {
    run(5, 2, 2_000, 1000);
}

#[test]
fn the_first_vote_of_a_declared_and_an_undeclared_key_counts_from_zero() {
    let receiver = Receiver::start();
    let args = Args::new()
        .with_input("127.0.0.1:0")
        .with_output(receiver.addr.to_string().as_str());
    let running = alphabet::alphabet(&args).start(&args).unwrap();
    let addr = running.local_addr(0).unwrap();
    send_votes(addr, &[(b'a', 1), (b'A', 5), (b'a', 2), (b'A', 1)], 1);
    let lines = receiver.wait_for(4);
    running.stop().unwrap();
    assert_eq!(lines, ["a => 1", "A => 5", "a => 3", "A => 6"]);
}

#[test]
fn a_file_of_frames_is_read_to_the_end_and_the_application_stops_by_itself() {
    let dir = std::env::temp_dir().join(format!("wallaroo-alphabet-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let out = dir.join("totals.txt");
    let input = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/data/alphabet.frames");
    let args = Args::new()
        .with_input(format!("file:{input}").as_str())
        .with_output(format!("file:{}", out.display()).as_str())
        .with_workers(2);
    // `run` returns when the file is read and everything is written.
    alphabet::alphabet(&args).run(&args, |_| {}).unwrap();
    let text = std::fs::read_to_string(&out).unwrap();
    let mut by_letter: HashMap<u8, Vec<u64>> = HashMap::new();
    for line in text.lines() {
        let (letter, total) = parse_line(line);
        by_letter.entry(letter).or_default().push(total);
    }
    assert_eq!(by_letter[&b'a'], [1, 3, 7, 107]);
    assert_eq!(by_letter[&b'b'], [5, 6]);
    assert_eq!(by_letter[&b'c'], [10, 11]);
    assert_eq!(by_letter[&b'!'], [3, 4]);
    assert_eq!(by_letter[&b'z'], [7]);
    assert_eq!(by_letter[&b'q'], [2]);
    assert_eq!(text.lines().count(), 12);
    std::fs::remove_dir_all(&dir).unwrap();
}
