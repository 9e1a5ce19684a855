//! Failover and restore, with real processes: members of one group are this benchmark's own
//! executable started again as an application ([`MEMBER`]), so that one can be killed with
//! SIGKILL.
//!
//! - **Failover**: two members share an 8-partition input fed at a steady rate; one is
//!   killed with SIGKILL and a third started at once. Measured: from the kill to the first
//!   total produced for each letter afterwards (the records' creation time, which the
//!   producing member sets: a record of the dead member read late does not count); the
//!   slowest letter is one of the dead member's, resumed by the new owner once the group
//!   noticed the death (the session timeout) and the shard was restored from the changelog.
//! - **Restore**: one member counts votes for K distinct keys, stops cleanly (its shards
//!   released, every change in the changelog), and a second takes every shard: its log
//!   says how many bytes it read back and how long that took. Two sizes give the cost per
//!   MiB beyond the fixed part.

use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use wallaroo::kafka::rdkafka::config::ClientConfig;
use wallaroo::kafka::rdkafka::consumer::{BaseConsumer, Consumer};
use wallaroo::kafka::rdkafka::{Message, Offset, TopicPartitionList};
use wallaroo::prelude::*;

use super::broker::{self, Broker};
use super::{alphabet, OUTPUT_PARTITIONS, PARTITIONS, SESSION_TIMEOUT_MS};

/// Set in a member's environment to the application it runs: `alphabet` or `keys`.
pub const MEMBER: &str = "WALLAROO_BENCH_MEMBER";

/// Runs this process as a member, if it was started as one; the exit code.
pub fn run_member() -> Option<std::process::ExitCode> {
    let app = std::env::var(MEMBER).ok()?;
    use wallaroo::__private::run_main;
    Some(match app.as_str() {
        "alphabet" => run_main("alphabet", "0", alphabet::alphabet),
        "keys" => run_main("keys", "0", keys),
        other => panic!("{MEMBER}={other}: no such application"),
    })
}

/// A vote for key `key` (a big-endian u32).
#[decoder]
fn decode_key(payload: &[u8]) -> Result<u32, DecodeError> {
    match payload {
        [a, b, c, d] => Ok(u32::from_be_bytes([*a, *b, *c, *d])),
        _ => Err(DecodeError::new("a vote is 4 bytes")),
    }
}

/// A key's votes, and the sum of their positions (to give the state some size).
#[state]
#[derive(Default)]
struct KeyVotes {
    votes: u64,
    checksum: u64,
}

#[partition]
fn by_key(key: &u32) -> u32 {
    *key
}

#[state_computation(name = "count")]
fn count(key: u32, votes: &mut KeyVotes) -> ((u32, u64), bool) {
    votes.votes += 1;
    votes.checksum = votes.checksum.wrapping_mul(31).wrapping_add(u64::from(key));
    ((key, votes.votes), true)
}

/// `KEY VOTES`.
#[encoder]
fn encode_votes(votes: &(u32, u64), out: &mut Vec<u8>) {
    out.push_int(votes.0);
    out.push(b' ');
    out.push_int(votes.1);
}

/// Votes per key, from `kafka:keys` to `kafka:counts`.
fn keys(args: &Args) -> Application {
    Application::new("keys")
        .pipeline("keys", Source::new(args.input(0), decode_key))
        .to_state_partition(count, "votes per key", by_key)
        .to_sink(Sink::new(args.output(0), encode_votes))
}

/// A member process: its log, read as it comes.
struct Member {
    child: Child,
    log: Arc<Mutex<String>>,
}

impl Member {
    fn start(
        app: &str,
        broker: &Broker,
        input: &str,
        output: &str,
        log: &Path,
        more: &[&str],
    ) -> Member {
        let mut child = Command::new(std::env::current_exe().expect("this executable"))
            .args(more)
            .env(MEMBER, app)
            .env("RUST_LOG", "info")
            .args(["--in", &format!("kafka:{input}")])
            .args(["--out", &format!("kafka:{output}")])
            .args(["--brokers", &broker.address()])
            .args(["--workers", "2"])
            .args([
                "--kafka-option",
                &format!("session.timeout.ms={SESSION_TIMEOUT_MS}"),
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start a member");
        let log_text = Arc::new(Mutex::new(String::new()));
        let mut stderr = child.stderr.take().expect("stderr");
        let (text, path) = (Arc::clone(&log_text), log.to_path_buf());
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = stderr.read(&mut buf) {
                if n == 0 {
                    break;
                }
                let mut text = text.lock().unwrap();
                text.push_str(&String::from_utf8_lossy(&buf[..n]));
                let _ = std::fs::write(&path, text.as_bytes());
            }
        });
        Member {
            child,
            log: log_text,
        }
    }

    fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// Waits until the log has a line with `what` (or panics after `limit`).
    fn wait_for(&self, what: &str, limit: Duration) -> String {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(line) = self.log().lines().find(|l| l.contains(what)) {
                return line.to_string();
            }
            assert!(
                Instant::now() < deadline,
                "no `{what}` in the member's log within {limit:?}:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM, and waits for a clean exit.
    fn stop(&mut self) {
        let pid = self.child.id().to_string();
        let status = Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("kill -TERM");
        assert!(status.success());
        let status = self.child.wait().expect("a member's exit");
        assert!(status.success(), "{status}\n{}", self.log());
    }
}

impl Drop for Member {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A reader of `topic` from its start, outside any group, calling `each` with every
/// record's value and its creation time (milliseconds since the epoch), until `done` says so.
fn read_all(
    broker: &Broker,
    topic: &str,
    partitions: u32,
    done: &AtomicBool,
    mut each: impl FnMut(&str, i64),
) {
    let reader = assigned_reader(broker, topic, partitions);
    while !done.load(Ordering::Acquire) {
        if let Some(record) = reader.poll(Duration::from_millis(20)) {
            let record = record.expect("a record");
            let value = std::str::from_utf8(record.payload().unwrap_or(&[])).expect("UTF-8");
            let created = record.timestamp().to_millis().expect("a creation time");
            each(value, created);
        }
    }
}

/// A consumer of every partition of `topic` from its start, assigned them: outside any
/// group, so that it starts reading at once.
pub fn assigned_reader(broker: &Broker, topic: &str, partitions: u32) -> BaseConsumer {
    let reader: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", broker.address())
        // A group is needed to be assigned partitions, but it is never joined.
        .set("group.id", "reader")
        .set("enable.auto.commit", "false")
        .set("fetch.wait.max.ms", "10")
        .create()
        .expect("a reader");
    let mut list = TopicPartitionList::new();
    for p in 0..partitions as i32 {
        list.add_partition_offset(topic, p, Offset::Beginning)
            .unwrap();
    }
    reader.assign(&list).expect("assigned");
    reader
}

/// What a failover run measured.
pub struct Failover {
    /// From the kill to the first total of the letter that resumed last.
    pub resumed: Duration,
    /// The new member's restore, from its log.
    pub restore: String,
}

/// Two members, one killed mid-stream and another started: see the module's doc.
pub fn failover(dir: &Path) -> Failover {
    const RATE: f64 = 5000.0;
    const VOTES: u64 = 100_000;
    let broker = Broker::start();
    broker.create_topic("votes", PARTITIONS);
    broker.create_topic("totals", OUTPUT_PARTITIONS);
    let start = |n: u32| {
        let log = dir.join(format!("failover-{n}.log"));
        Member::start("alphabet", &broker, "votes", "totals", &log, &[])
    };
    let mut first = start(1);
    let second = start(2);
    first.wait_for("taken", Duration::from_secs(60));
    second.wait_for("taken", Duration::from_secs(60));

    // The totals, with when each letter's was read; and the largest per letter.
    let done = AtomicBool::new(false);
    let seen: Mutex<Vec<(u8, u64, i64)>> = Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        scope.spawn(|| {
            read_all(&broker, "totals", OUTPUT_PARTITIONS, &done, |line, at| {
                let (letter, total) = line.trim_end().split_once(" => ").expect("`a => 12`");
                let total: u64 = total.parse().expect("a number");
                seen.lock().unwrap().push((letter.as_bytes()[0], total, at));
            });
        });
        let producer = scope.spawn(|| {
            broker::produce(
                &broker.address(),
                "votes",
                (0..VOTES).map(|i| super::vote(i).to_vec()),
                Some(RATE),
            );
        });
        std::thread::sleep(Duration::from_secs(5));
        first.kill();
        let killed = now_ms();
        let third = start(3);
        let restore = third.wait_for("taken", Duration::from_secs(120));
        producer.join().expect("the producer");
        // Every letter's last total is in once they add up to the votes.
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let last: u64 = {
                let seen = seen.lock().unwrap();
                let mut last: HashMap<u8, u64> = HashMap::new();
                for (letter, total, _) in seen.iter() {
                    let max = last.entry(*letter).or_default();
                    *max = (*total).max(*max);
                }
                last.values().sum()
            };
            if last == VOTES {
                break;
            }
            assert!(last < VOTES, "{last} votes counted of {VOTES}: some twice");
            assert!(Instant::now() < deadline, "{last} of {VOTES} votes counted");
            std::thread::sleep(Duration::from_millis(100));
        }
        done.store(true, Ordering::Release);
        let seen = seen.lock().unwrap();
        let mut resumed: HashMap<u8, i64> = HashMap::new();
        for (letter, _, at) in seen.iter().filter(|(_, _, at)| *at > killed) {
            let first = resumed.entry(*letter).or_insert(*at);
            *first = (*first).min(*at);
        }
        assert_eq!(resumed.len(), 27, "every letter resumed");
        let last = resumed.values().max().expect("letters");
        Failover {
            resumed: Duration::from_millis(u64::try_from(last - killed).unwrap_or(0)),
            restore: restore_part(&restore),
        }
    })
}

/// Milliseconds since the epoch, as records' creation times count.
fn now_ms() -> i64 {
    let since = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("after 1970");
    i64::try_from(since.as_millis()).expect("a time")
}

/// The part of a `shards … taken` log line after the shards.
fn restore_part(line: &str) -> String {
    line.split_once("taken, ")
        .map_or(line, |(_, rest)| rest)
        .to_string()
}

/// What a restore measured.
pub struct Restore {
    pub states: u64,
    pub bytes: u64,
    pub took: Duration,
}

/// Votes for `keys` distinct keys counted by one member, which stops cleanly; a second
/// takes every shard: see the module's doc. `warm`: both run on one resilience directory,
/// so that the second starts from the first's local copies.
pub fn restore(dir: &Path, keys: u32, warm: bool) -> Restore {
    let broker = Broker::start();
    broker.create_topic("keys", PARTITIONS);
    broker.create_topic("counts", OUTPUT_PARTITIONS);
    let log = |n: &str| dir.join(format!("restore-{keys}-{warm}-{n}.log"));
    let state = dir.join(format!("state-{keys}"));
    let _ = std::fs::remove_dir_all(&state);
    let state = state.to_str().expect("a UTF-8 path").to_string();
    let more: Vec<&str> = if warm {
        vec!["--resilience-dir", &state]
    } else {
        Vec::new()
    };
    let mut first = Member::start("keys", &broker, "keys", "counts", &log("first"), &more);
    first.wait_for("taken", Duration::from_secs(60));
    broker::produce(
        &broker.address(),
        "keys",
        (0..keys).map(|k| k.to_be_bytes().to_vec()),
        None,
    );
    // Every key counted once it has its output.
    let done = AtomicBool::new(false);
    let mut counted = 0u32;
    let deadline = Instant::now() + Duration::from_secs(300);
    read_all(&broker, "counts", OUTPUT_PARTITIONS, &done, |_, _| {
        counted += 1;
        if counted == keys {
            done.store(true, Ordering::Release);
        }
        assert!(
            Instant::now() < deadline,
            "{counted} of {keys} keys counted"
        );
    });
    first.stop();
    let second = Member::start("keys", &broker, "keys", "counts", &log("second"), &more);
    let line = second.wait_for("taken", Duration::from_secs(300));
    assert_eq!(
        line.contains("local copy"),
        warm,
        "a warm start only from a copy: {line}"
    );
    parse_restore(&line).unwrap_or_else(|| panic!("a restore line: {line}"))
}

/// `…, N states restored from `TOPIC` (B bytes) in T ms`.
fn parse_restore(line: &str) -> Option<Restore> {
    let (_, rest) = line.split_once("taken, ")?;
    let (states, rest) = rest.split_once(" states restored")?;
    let (_, rest) = rest.split_once('(')?;
    let (bytes, rest) = rest.split_once(" bytes) in ")?;
    let (ms, _) = rest.split_once(" ms")?;
    Some(Restore {
        states: states.trim().parse().ok()?,
        bytes: bytes.parse().ok()?,
        took: Duration::from_secs_f64(ms.parse::<f64>().ok()? / 1e3),
    })
}

/// A directory for the members' logs.
pub fn log_dir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("wallaroo-kafka-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a log directory");
    dir
}
