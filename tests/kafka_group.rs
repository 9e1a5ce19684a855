//! Several processes of one consumer group share the Alphabet application's state through
//! a real Kafka-protocol broker (tansu): the real binary, started, stopped and killed with
//! SIGKILL while votes flow, produced round-robin (no key) as most producers send.
//!
//! What must hold: every letter's final total is exact (no vote lost or counted twice),
//! and no total ever written is above the number of votes its letter was sent.
#![cfg(feature = "kafka")]

mod support;

use std::collections::HashMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use support::kafka::Broker;
use support::TempDir;
use wallaroo::kafka::rdkafka::config::ClientConfig;
use wallaroo::kafka::rdkafka::consumer::{BaseConsumer, Consumer};
use wallaroo::kafka::rdkafka::Message;

const LETTERS: &[u8] = b"abcdefghijklmnopqrstuvwxyz";

/// One process of the application, its log in a file.
struct Process {
    child: Child,
    log: PathBuf,
}

impl Process {
    fn start(broker: &Broker, dir: &Path, name: &str) -> Process {
        Process::start_with(broker, dir, name, &[])
    }

    /// [`Process::start`] with more arguments.
    fn start_with(broker: &Broker, dir: &Path, name: &str, more: &[&str]) -> Process {
        let log = dir.join(format!("{name}.log"));
        let child = Command::new(support::example_bin("alphabet"))
            .args(more)
            .args(["--in", "kafka:votes", "--out", "kafka:totals"])
            .args(["--brokers", &broker.address()])
            .args(["--kafka-option", "session.timeout.ms=6000"])
            // A request the broker leaves unanswered (seen with tansu on a loaded machine)
            // is given up and sent again after this, not after the default minute.
            .args(["--kafka-option", "socket.timeout.ms=10000"])
            .args(["--workers", "2"])
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(File::create(&log).expect("a log file"))
            .spawn()
            .expect("start the application");
        Process { child, log }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits until the process holds shards of the state (or 60 s pass).
    fn wait_for_shards(&self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while !self.log().contains("taken") {
            assert!(
                Instant::now() < deadline,
                "no shards taken:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Stops the process as Ctrl-C would, and checks that it ended cleanly; its log.
    fn stop(mut self) -> String {
        let pid = self.child.id().to_string();
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("kill");
        let status = self.child.wait().expect("wait");
        assert!(status.success(), "{status}:\n{}", self.log());
        self.log()
    }

    /// Kills the process with SIGKILL.
    fn kill(mut self) {
        self.child.kill().expect("SIGKILL");
        let _ = self.child.wait();
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Produces `per_letter` votes of 1 for each letter, round-robin over the letters, with no
/// key (the producer spreads them over the partitions), at about `rate` a second; on a
/// thread of its own.
fn produce(broker: &Broker, per_letter: usize, rate: u64) -> std::thread::JoinHandle<()> {
    let address = broker.address();
    std::thread::spawn(move || {
        let votes =
            (0..per_letter * LETTERS.len()).map(|i| vec![LETTERS[i % LETTERS.len()], 0, 0, 0, 1]);
        support::kafka::produce(&address, "votes", votes, Some(rate as f64));
    })
}

/// Reads the totals topic until every letter has reached `per_letter` (or `timeout` passes);
/// per letter, every total read, in no particular order.
fn read_totals(broker: &Broker, per_letter: u64, timeout: Duration) -> HashMap<u8, Vec<u64>> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", broker.address())
        .set("group.id", "reader")
        .set("auto.offset.reset", "earliest")
        .set("session.timeout.ms", "6000")
        .create()
        .expect("a consumer");
    consumer.subscribe(&["totals"]).expect("subscribed");
    let mut totals: HashMap<u8, Vec<u64>> = HashMap::new();
    let deadline = Instant::now() + timeout;
    let done = |totals: &HashMap<u8, Vec<u64>>| {
        LETTERS.iter().all(|l| {
            totals
                .get(l)
                .is_some_and(|t| t.iter().any(|&v| v >= per_letter))
        })
    };
    let read_one = |totals: &mut HashMap<u8, Vec<u64>>| {
        if let Some(Ok(record)) = consumer.poll(Duration::from_millis(200)) {
            let line = String::from_utf8_lossy(record.payload().unwrap_or(&[])).into_owned();
            let (letter, total) = line.trim_end().split_once(" => ").expect("`a => 12`");
            totals
                .entry(letter.as_bytes()[0])
                .or_default()
                .push(total.parse().expect("a number"));
        }
    };
    while !done(&totals) && Instant::now() < deadline {
        read_one(&mut totals);
    }
    // What was written after the last total is read too: a total above it would show.
    let quiet = Instant::now() + Duration::from_secs(2);
    while Instant::now() < quiet {
        read_one(&mut totals);
    }
    totals
}

/// Every letter's final total is `per_letter`, and no total is above it; with `every`,
/// every running total from 1 was written (at least once).
fn check(totals: &HashMap<u8, Vec<u64>>, per_letter: u64, every: bool, logs: &[String]) {
    let finals: Vec<String> = LETTERS
        .iter()
        .map(|l| {
            let max = totals.get(l).and_then(|t| t.iter().max()).copied();
            format!("{}={}", *l as char, max.unwrap_or(0))
        })
        .collect();
    eprintln!("final totals: {}", finals.join(" "));
    for &letter in LETTERS {
        let seen = totals.get(&letter).cloned().unwrap_or_default();
        let max = seen.iter().copied().max().unwrap_or(0);
        assert_eq!(
            max,
            per_letter,
            "letter {}: final total {max}, sent {per_letter}; logs:\n{}",
            letter as char,
            logs.join("\n---\n")
        );
        if every {
            let mut distinct = seen.clone();
            distinct.sort_unstable();
            distinct.dedup();
            assert_eq!(
                distinct,
                (1..=per_letter).collect::<Vec<_>>(),
                "letter {}: a running total is missing",
                letter as char
            );
        }
    }
}

fn broker() -> Broker {
    let broker = Broker::start();
    broker.create_topic("votes", 8);
    broker.create_topic("totals", 4);
    broker
}

#[test]
fn three_processes_share_round_robin_votes_with_exact_totals() {
    let broker = broker();
    let dir = TempDir::new("kafka-group-three");
    let processes: Vec<Process> = (0..3)
        .map(|i| Process::start(&broker, &dir.0, &format!("p{i}")))
        .collect();
    for p in &processes {
        p.wait_for_shards();
    }
    produce(&broker, 200, 2000).join().unwrap();
    let totals = read_totals(&broker, 200, Duration::from_secs(60));
    let logs: Vec<String> = processes.iter().map(Process::log).collect();
    check(&totals, 200, true, &logs);
    // Each took a share of the shards.
    for log in &logs {
        assert!(log.contains("shards ["), "{log}");
    }
    for p in processes {
        p.stop();
    }
}

#[test]
fn a_process_killed_mid_stream_is_replaced_and_no_vote_is_lost_or_counted_twice() {
    let broker = broker();
    let dir = TempDir::new("kafka-group-kill");
    let mut processes: Vec<Process> = (0..3)
        .map(|i| Process::start(&broker, &dir.0, &format!("p{i}")))
        .collect();
    for p in &processes {
        p.wait_for_shards();
    }
    let producing = produce(&broker, 400, 1000);
    std::thread::sleep(Duration::from_secs(3));
    processes.remove(1).kill();
    let new = Process::start(&broker, &dir.0, "p3");
    producing.join().unwrap();
    processes.push(new);
    let totals = read_totals(&broker, 400, Duration::from_secs(90));
    let logs: Vec<String> = processes.iter().map(Process::log).collect();
    check(&totals, 400, false, &logs);
    // The new process took the dead one's shards, with their states.
    assert!(
        logs[2].contains("taken") && !logs[2].contains(" 0 states restored"),
        "{}",
        logs[2]
    );
    for p in processes {
        p.stop();
    }
}

#[test]
fn scaling_from_one_process_to_three_and_back_keeps_every_total() {
    let broker = broker();
    let dir = TempDir::new("kafka-group-scale");
    let first = Process::start(&broker, &dir.0, "p0");
    first.wait_for_shards();
    let producing = produce(&broker, 600, 1000);
    std::thread::sleep(Duration::from_secs(3));
    let more: Vec<Process> = (1..3)
        .map(|i| Process::start(&broker, &dir.0, &format!("p{i}")))
        .collect();
    for p in &more {
        p.wait_for_shards();
    }
    std::thread::sleep(Duration::from_secs(3));
    let logs: Vec<String> = more.into_iter().map(Process::stop).collect();
    producing.join().unwrap();
    let totals = read_totals(&broker, 600, Duration::from_secs(90));
    let mut logs = logs;
    logs.push(first.log());
    // Shards moved by rebalances, not crashes: every running total was written.
    check(&totals, 600, true, &logs);
    assert!(logs[2].contains("released"), "{}", logs[2]);
    first.stop();
}

/// The local copies of the state's shards in the resilience directory `resilience`.
fn local_copies(resilience: &Path) -> Vec<PathBuf> {
    let dir = resilience
        .join("changelog")
        .join("Alphabet-running_vote_totals-changelog");
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|entries| entries.map(|e| e.unwrap().path()).collect())
        .unwrap_or_default();
    files.retain(|f| f.extension().is_some_and(|e| e == "shard"));
    files.sort();
    files
}

#[test]
fn a_process_restarted_on_its_resilience_directory_restores_its_shards_warm() {
    let broker = broker();
    let dir = TempDir::new("kafka-group-warm");
    let state = dir.0.join("state");
    let resilience = ["--resilience-dir", state.to_str().unwrap()];

    // Stopped cleanly: each shard it gave up is copied, as of a fence in the changelog.
    let first = Process::start_with(&broker, &dir.0, "p0", &resilience);
    first.wait_for_shards();
    produce(&broker, 100, 2000).join().unwrap();
    let totals = read_totals(&broker, 100, Duration::from_secs(60));
    check(&totals, 100, true, &[first.log()]);
    let log = first.stop();
    assert_eq!(local_copies(&state).len(), 8, "{log}");

    // Restarted: its shards come from their copies and the changelog after them; the
    // copies are taken, so that a crash now cannot leave one behind that looks current.
    let second = Process::start_with(&broker, &dir.0, "p1", &resilience);
    second.wait_for_shards();
    let log = second.log();
    assert!(log.contains("from their local copy"), "{log}");
    assert!(
        local_copies(&state).is_empty(),
        "{:?}",
        local_copies(&state)
    );
    produce(&broker, 100, 2000).join().unwrap();
    // The reader goes on where it was (its group's offsets): totals 101 to 200, each
    // letter going on from its restored total.
    let totals = read_totals(&broker, 200, Duration::from_secs(60));
    check(&totals, 200, false, &[second.log()]);
    for (letter, seen) in &totals {
        let mut distinct = seen.clone();
        distinct.sort_unstable();
        distinct.dedup();
        assert_eq!(
            distinct,
            (101..=200).collect::<Vec<_>>(),
            "{}",
            *letter as char
        );
    }

    // Killed: no copy is left, and the next process reads the changelog whole.
    second.kill();
    assert!(local_copies(&state).is_empty());
    let third = Process::start_with(&broker, &dir.0, "p2", &resilience);
    third.wait_for_shards();
    produce(&broker, 100, 2000).join().unwrap();
    let totals = read_totals(&broker, 300, Duration::from_secs(90));
    let log = third.log();
    check(&totals, 300, false, std::slice::from_ref(&log));
    assert!(!log.contains("local copy"), "{log}");
    third.stop();
}
