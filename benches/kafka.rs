//! Through Kafka: the Alphabet application reading votes from a topic and writing its totals
//! to another, as one process and as three members of one group (in this process), beside
//! a plain rdkafka consume → add → produce loop on one thread (the practical limit of the
//! broker and the client on this machine), over the same input, in the same run. The
//! application's state is shared by its group: every vote goes through the repartition
//! topic and every change to the changelog, which the plain loop does not do.
//!
//! ```sh
//! cargo bench -p wallaroo-benches --features kafka --bench kafka
//! cargo bench -p wallaroo-benches --features kafka --bench kafka -- --messages 200000 --repeat 3
//! cargo bench -p wallaroo-benches --features kafka --bench kafka -- --section failover
//! ```
//!
//! Sections: `throughput` (below), `failover` and `restore` ([`failover`]'s doc); all by
//! default.
//!
//! Each run has a broker of its own (tansu, memory storage, started as the tests start it),
//! an input topic of 8 partitions filled with N votes before the clock starts, and an empty
//! output topic. The clock runs from the start of the system to the moment a reader of the
//! output topic has read N totals. The time to
//! the first vote counted is the consumer group's join, which tansu holds for half the
//! session timeout (6 s here); "after join" is the rate from the first vote to the last total.

#[allow(dead_code)]
#[path = "../examples/alphabet.rs"]
mod alphabet;
#[path = "../tests/support/kafka.rs"]
mod broker;
#[path = "kafka_failover.rs"]
mod failover;

use std::collections::HashMap;
use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use broker::Broker;
use wallaroo::kafka::rdkafka::config::ClientConfig;
use wallaroo::kafka::rdkafka::consumer::{BaseConsumer, Consumer};
use wallaroo::kafka::rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use wallaroo::kafka::rdkafka::Message;
use wallaroo::Args;

/// The input topic's partitions.
const PARTITIONS: u32 = 8;
/// The output topic's partitions.
const OUTPUT_PARTITIONS: u32 = 4;
/// The session timeout both systems' consumers use: tansu holds a JoinGroup for half of it.
const SESSION_TIMEOUT_MS: &str = "6000";
/// How long one run may take before the bench gives up on it.
const RUN_LIMIT: Duration = Duration::from_secs(600);

/// A free loopback port, for the broker (`broker.rs` asks its parent module for one).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free loopback port")
        .port()
}

struct Options {
    messages: u64,
    repeat: usize,
    sections: Vec<String>,
}

/// The sections, in the order they run.
const SECTIONS: [&str; 3] = ["throughput", "failover", "restore"];

fn options() -> Options {
    let mut o = Options {
        messages: 1_000_000,
        repeat: 3,
        sections: Vec::new(),
    };
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut i = 0;
    while i < args.len() {
        let value = args.get(i + 1).map(String::as_str).unwrap_or("");
        match args[i].as_str() {
            "--messages" => o.messages = value.parse().expect("--messages N"),
            "--repeat" => o.repeat = value.parse().expect("--repeat R"),
            "--section" if SECTIONS.contains(&value) => o.sections.push(value.to_string()),
            // `cargo bench` passes `--bench`; nothing else is known.
            "--bench" => {
                i += 1;
                continue;
            }
            other => panic!(
                "unknown option {other} {value}; known: --messages N, --repeat R, --section \
                 throughput|failover|restore"
            ),
        }
        i += 2;
    }
    assert!(
        o.messages > 0 && o.repeat > 0,
        "--messages and --repeat above 0"
    );
    if o.sections.is_empty() {
        o.sections = SECTIONS.iter().map(|s| s.to_string()).collect();
    }
    o
}

#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
enum System {
    Wallaroo,
    /// Three members of one group, in this process (the machine's two cores are shared
    /// either way).
    Wallaroo3,
    Plain,
}

impl System {
    fn name(self) -> &'static str {
        match self {
            System::Wallaroo => "wallaroo, 1 process, 2 workers",
            System::Wallaroo3 => "wallaroo, 3 members, 2 workers each",
            System::Plain => "plain rdkafka loop, 1 thread",
        }
    }
}

/// One run: how long until all totals were in the output topic, and until the first vote.
struct Run {
    total: Duration,
    join: Duration,
    /// Until the system had counted all votes.
    consumed: Duration,
}

impl Run {
    fn rate(&self, messages: u64) -> f64 {
        messages as f64 / self.total.as_secs_f64()
    }

    fn rate_after_join(&self, messages: u64) -> f64 {
        messages as f64 / (self.total - self.join).as_secs_f64()
    }
}

/// One Alphabet vote as a record's value: the letter, then a big-endian u32 (1 vote).
fn vote(i: u64) -> [u8; 5] {
    const LETTERS: &[u8; 27] = b"abcdefghijklmnopqrstuvwxyz!";
    let [a, b, c, d] = 1u32.to_be_bytes();
    [LETTERS[(i % 27) as usize], a, b, c, d]
}

/// A broker with `votes` (N votes, spread at random over its partitions) and an empty
/// `totals`.
fn prepare(messages: u64) -> Broker {
    let broker = Broker::start();
    broker.create_topic("votes", PARTITIONS);
    broker.create_topic("totals", OUTPUT_PARTITIONS);
    broker::produce(
        &broker.address(),
        "votes",
        (0..messages).map(|i| vote(i).to_vec()),
        None,
    );
    broker
}

/// Reads `totals` from its start, outside any group (assigned, no join), until `messages`
/// records have come; `first` is the number of votes the system has counted, and the time
/// it first is above 0 is the join. Checks that every letter's last total is its number of
/// votes. (Not the topic's high watermarks: tansu's memory engine does not report them
/// right.)
fn watch(broker: &Broker, start: Instant, messages: u64, first: impl Fn() -> u64) -> Run {
    let reader = failover::assigned_reader(broker, "totals", OUTPUT_PARTITIONS);
    let mut join = None;
    let mut consumed = None;
    let mut read = 0;
    let mut last: HashMap<u8, u64> = HashMap::new();
    while read < messages {
        if join.is_none() && first() > 0 {
            join = Some(start.elapsed());
        }
        if consumed.is_none() && first() >= messages {
            consumed = Some(start.elapsed());
        }
        let wait = if join.is_some() { 100 } else { 1 };
        if let Some(record) = reader.poll(Duration::from_millis(wait)) {
            let record = record.expect("a total");
            let line = std::str::from_utf8(record.payload().unwrap_or(&[])).expect("UTF-8");
            let (letter, total) = line.trim_end().split_once(" => ").expect("`a => 12`");
            let total: u64 = total.parse().expect("a number");
            let max = last.entry(letter.as_bytes()[0]).or_default();
            *max = total.max(*max);
            read += 1;
        }
        assert!(
            start.elapsed() < RUN_LIMIT,
            "{read} of {messages} totals written within {RUN_LIMIT:?}"
        );
    }
    let total = start.elapsed();
    // Each vote is 1: the letters' last totals add up to the votes, if none was lost or
    // counted twice.
    assert_eq!(last.values().sum::<u64>(), messages, "the last totals");
    Run {
        total,
        join: join.unwrap_or(total),
        consumed: consumed.unwrap_or(total),
    }
}

/// The application's command line: from `kafka:votes` to `kafka:totals`, 2 workers.
fn app_args(broker: &Broker) -> Args {
    Args::new()
        .with_input("kafka:votes")
        .with_output("kafka:totals")
        .with_brokers(&broker.address())
        .with_kafka_option("session.timeout.ms", SESSION_TIMEOUT_MS)
        .with_workers(2)
}

/// The Alphabet application, in this process, from `kafka:votes` to `kafka:totals`.
fn run_wallaroo(broker: &Broker, messages: u64) -> Run {
    let args = app_args(broker);
    let start = Instant::now();
    let running = alphabet::alphabet(&args).start(&args).expect("started");
    let run = watch(broker, start, messages, || {
        running.source_counts(0).expect("one source").messages
    });
    assert_eq!(running.source_counts(0).unwrap().messages, messages);
    running.stop().expect("stopped");
    run
}

/// Three instances of the Alphabet application in one group, in this process.
fn run_wallaroo3(broker: &Broker, messages: u64) -> Run {
    let args = app_args(broker);
    let start = Instant::now();
    let members: Vec<_> = (0..3)
        .map(|_| alphabet::alphabet(&args).start(&args).expect("started"))
        .collect();
    let counted = || -> u64 {
        members
            .iter()
            .map(|m| m.source_counts(0).expect("one source").messages)
            .sum()
    };
    let run = watch(broker, start, messages, counted);
    for member in members {
        member.stop().expect("stopped");
    }
    run
}

/// The same job by hand on one thread: a consumer in its own group and a producer with the
/// settings the application's connectors use (cooperative-sticky, no auto commit; an
/// idempotent producer, `acks=all`), a `HashMap` of totals, one `a => 12\n` record per vote.
fn run_plain(broker: &Broker, messages: u64) -> Run {
    let consumed = Arc::new(AtomicU64::new(0));
    let address = broker.address();
    let start = Instant::now();
    let worker = {
        let consumed = consumed.clone();
        std::thread::spawn(move || plain_loop(&address, messages, &consumed))
    };
    let run = watch(broker, start, messages, || consumed.load(Ordering::Relaxed));
    worker.join().expect("the plain loop");
    run
}

fn plain_loop(brokers: &str, messages: u64, consumed: &AtomicU64) {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", "plain")
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .set("partition.assignment.strategy", "cooperative-sticky")
        .set("session.timeout.ms", SESSION_TIMEOUT_MS)
        .create()
        .expect("a consumer");
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .create()
        .expect("a producer");
    consumer.subscribe(&["votes"]).expect("subscribed");
    let mut totals: HashMap<u8, u64> = HashMap::new();
    let mut line = Vec::with_capacity(32);
    let mut count = 0;
    while count < messages {
        let Some(record) = consumer.poll(Duration::from_millis(100)) else {
            producer.poll(Duration::ZERO);
            continue;
        };
        let record = record.expect("a record");
        let Some(&[letter, a, b, c, d]) = record.payload() else {
            panic!("a 5-byte vote")
        };
        let total = totals.entry(letter).or_default();
        *total += u64::from(u32::from_be_bytes([a, b, c, d]));
        line.clear();
        writeln!(line, "{} => {}", letter as char, total).unwrap();
        let mut out = BaseRecord::<(), [u8]>::to("totals").payload(&line[..]);
        loop {
            match producer.send(out) {
                Ok(()) => break,
                Err((_, back)) => {
                    producer.poll(Duration::from_millis(100));
                    out = back;
                }
            }
        }
        producer.poll(Duration::ZERO);
        count += 1;
        consumed.store(count, Ordering::Relaxed);
    }
    producer
        .flush(Duration::from_secs(60))
        .expect("the totals produced");
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    if n % 2 == 1 {
        values[n / 2]
    } else {
        (values[n / 2 - 1] + values[n / 2]) / 2.0
    }
}

fn main() -> std::process::ExitCode {
    if let Some(exit) = failover::run_member() {
        return exit;
    }
    let o = options();
    broker::tansu();
    if o.sections.iter().any(|s| s == "throughput") {
        throughput(&o);
    }
    let dir = failover::log_dir();
    if o.sections.iter().any(|s| s == "failover") {
        failover_section(&dir, o.repeat);
    }
    if o.sections.iter().any(|s| s == "restore") {
        restore_section(&dir);
    }
    let _ = std::fs::remove_dir_all(&dir);
    std::process::ExitCode::SUCCESS
}

/// A member killed with SIGKILL mid-stream and another started: until every letter's
/// totals resume.
fn failover_section(dir: &std::path::Path, repeat: usize) {
    eprintln!(
        "failover: 2 members, 5000 votes/s, one killed with SIGKILL after 5 s and a third started"
    );
    let mut resumed = Vec::new();
    for round in 0..repeat {
        let run = failover::failover(dir);
        eprintln!(
            "round {}: every letter resumed {:.2} s after the kill; the new member: {}",
            round + 1,
            run.resumed.as_secs_f64(),
            run.restore
        );
        resumed.push(run.resumed.as_secs_f64());
    }
    println!();
    println!("| failover (session.timeout.ms={SESSION_TIMEOUT_MS}) | per round | median |");
    println!("| --- | --- | ---: |");
    let rounds: Vec<String> = resumed.iter().map(|s| format!("{s:.2} s")).collect();
    println!(
        "| from SIGKILL to every letter's totals resumed | {} | {:.2} s |",
        rounds.join(", "),
        median(&mut resumed)
    );
}

/// Restores of two sizes from the changelog: the cost per MiB beyond the fixed part; and
/// the larger one again from a local copy.
fn restore_section(dir: &std::path::Path) {
    println!();
    println!("| keys restored | from | bytes restored | restore time | s per MiB |");
    println!("| ---: | --- | ---: | ---: | ---: |");
    let mut cold = Vec::new();
    for (keys, warm) in [(50_000, false), (200_000, false), (200_000, true)] {
        let run = failover::restore(dir, keys, warm);
        assert_eq!(run.states, u64::from(keys), "every key's state restored");
        let mib = run.bytes as f64 / (1024.0 * 1024.0);
        let from = if warm {
            "local copy + changelog after it"
        } else {
            "changelog"
        };
        println!(
            "| {} | {from} | {mib:.2} MiB | {:.2} s | {:.2} |",
            run.states,
            run.took.as_secs_f64(),
            run.took.as_secs_f64() / mib
        );
        if !warm {
            cold.push((mib, run.took.as_secs_f64()));
        }
    }
    let ((m1, t1), (m2, t2)) = (cold[0], cold[1]);
    let slope = (t2 - t1) / (m2 - m1);
    println!();
    println!(
        "restore from the changelog: {slope:.3} s per MiB beyond a fixed {:.2} s (from the two sizes)",
        t1 - slope * m1
    );
}

/// One process, three members and the plain loop, side by side.
fn throughput(o: &Options) {
    eprintln!(
        "{} votes over {PARTITIONS} partitions, {} rounds, a fresh broker per run",
        o.messages, o.repeat
    );
    let mut runs: HashMap<System, Vec<Run>> = HashMap::new();
    for round in 0..o.repeat {
        // The two take turns going first.
        let order = if round % 2 == 0 {
            [System::Wallaroo, System::Wallaroo3, System::Plain]
        } else {
            [System::Plain, System::Wallaroo3, System::Wallaroo]
        };
        for system in order {
            let broker = prepare(o.messages);
            let run = match system {
                System::Wallaroo => run_wallaroo(&broker, o.messages),
                System::Wallaroo3 => run_wallaroo3(&broker, o.messages),
                System::Plain => run_plain(&broker, o.messages),
            };
            drop(broker);
            eprintln!(
                "round {}: {:<30} {:>6.2} s, join {:>5.2} s, all counted {:>5.2} s, {:>8.0} msg/s, {:>8.0} msg/s after join",
                round + 1,
                system.name(),
                run.total.as_secs_f64(),
                run.join.as_secs_f64(),
                run.consumed.as_secs_f64(),
                run.rate(o.messages),
                run.rate_after_join(o.messages),
            );
            runs.entry(system).or_default().push(run);
        }
    }

    println!();
    println!(
        "| system | msg/s per round | median msg/s | join (median) | msg/s after join (median) |"
    );
    println!("| --- | --- | ---: | ---: | ---: |");
    let mut medians = HashMap::new();
    for system in [System::Wallaroo, System::Wallaroo3, System::Plain] {
        let runs = &runs[&system];
        let rounds: Vec<String> = runs
            .iter()
            .map(|r| format!("{:.0}", r.rate(o.messages)))
            .collect();
        let rate = median(&mut runs.iter().map(|r| r.rate(o.messages)).collect::<Vec<_>>());
        let join = median(
            &mut runs
                .iter()
                .map(|r| r.join.as_secs_f64())
                .collect::<Vec<_>>(),
        );
        let after = median(
            &mut runs
                .iter()
                .map(|r| r.rate_after_join(o.messages))
                .collect::<Vec<_>>(),
        );
        medians.insert(system, (rate, after));
        println!(
            "| {} | {} | {rate:.0} | {join:.2} s | {after:.0} |",
            system.name(),
            rounds.join(", "),
        );
    }
    let (w, w3, p) = (
        medians[&System::Wallaroo],
        medians[&System::Wallaroo3],
        medians[&System::Plain],
    );
    println!();
    println!(
        "wallaroo / plain loop: {:.2} (from start), {:.2} (after join)",
        w.0 / p.0,
        w.1 / p.1
    );
    println!(
        "wallaroo, 3 members / plain loop: {:.2} (from start), {:.2} (after join)",
        w3.0 / p.0,
        w3.1 / p.1
    );
}
