//! `wallaroo-sender --to kafka:TOPIC` and `wallaroo-receiver --from kafka:TOPIC`, run as a
//! user runs them, against a tansu broker that each test starts on its own port.

#![cfg(feature = "kafka")]

mod support;

use std::collections::BTreeMap;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use support::kafka::Broker;
use support::TempDir;
use wallaroo::kafka::rdkafka::consumer::{BaseConsumer, Consumer};
use wallaroo::kafka::rdkafka::message::Message;
use wallaroo::kafka::rdkafka::{ClientConfig, Offset, TopicPartitionList};

const SENDER: &str = env!("CARGO_BIN_EXE_wallaroo-sender");
const RECEIVER: &str = env!("CARGO_BIN_EXE_wallaroo-receiver");

fn run(bin: &str, args: &[&str]) -> Output {
    Command::new(bin)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("start {bin}: {e}"))
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Runs `wallaroo-sender ARGS` and asserts that it succeeded.
fn send(args: &[&str]) -> String {
    let output = run(SENDER, args);
    let text = stderr(&output);
    assert!(output.status.success(), "wallaroo-sender {args:?}: {text}");
    text
}

/// Runs `wallaroo-receiver ARGS --out DIR/NAME` and asserts that it succeeded; what it
/// wrote and its standard error.
fn receive(dir: &TempDir, name: &str, args: &[&str]) -> (Vec<u8>, String) {
    let out = dir.0.join(name);
    let output = run(
        RECEIVER,
        &[
            args,
            &["--out", out.to_str().unwrap(), "--idle-timeout", "30"],
        ]
        .concat(),
    );
    let text = stderr(&output);
    assert!(
        output.status.success(),
        "wallaroo-receiver {args:?}: {text}"
    );
    (std::fs::read(out).unwrap(), text)
}

/// The payloads of frames with 4-byte length headers.
fn payloads(mut bytes: &[u8]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    while !bytes.is_empty() {
        let length = u32::from_be_bytes(bytes[..4].try_into().unwrap()) as usize;
        out.push(bytes[4..4 + length].to_vec());
        bytes = &bytes[4 + length..];
    }
    out
}

/// Every vote of `payloads` (letter, then a big-endian u32), summed per letter.
fn votes_per_letter(payloads: &[Vec<u8>]) -> BTreeMap<char, u64> {
    let mut votes = BTreeMap::new();
    for payload in payloads {
        assert_eq!(
            payload.len(),
            5,
            "a vote's payload has no header: {payload:?}"
        );
        let count = u32::from_be_bytes(payload[1..].try_into().unwrap());
        *votes.entry(payload[0] as char).or_default() += u64::from(count);
    }
    votes
}

/// What `wallaroo-sender --alphabet 2700 --keys 27` sends: 100 votes for each of a..z and A.
fn alphabet_2700() -> BTreeMap<char, u64> {
    ('a'..='z')
        .chain(['A'])
        .map(|letter| (letter, 100))
        .collect()
}

/// Every record of `topic` (`count` of them, on `partitions` partitions): partition, key
/// and value.
fn records(
    broker: &Broker,
    topic: &str,
    partitions: i32,
    count: usize,
) -> Vec<(i32, Option<Vec<u8>>, Vec<u8>)> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", broker.address())
        .set("group.id", "kafka-tools-test")
        .create()
        .expect("a consumer");
    let mut all = TopicPartitionList::new();
    for partition in 0..partitions {
        all.add_partition_offset(topic, partition, Offset::Beginning)
            .unwrap();
    }
    consumer.assign(&all).unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut records = Vec::new();
    while records.len() < count && Instant::now() < deadline {
        if let Some(record) = consumer.poll(Duration::from_millis(100)) {
            let record = record.expect("a record");
            records.push((
                record.partition(),
                record.key().map(<[u8]>::to_vec),
                record.payload().unwrap_or_default().to_vec(),
            ));
        }
    }
    records
}

#[test]
fn keyed_votes_arrive_whole_and_each_letter_stays_on_one_partition() {
    let broker = Broker::start();
    broker.create_topic("votes", 8);
    let brokers = broker.address();
    let sent = send(&[
        "--to",
        "kafka:votes",
        "--brokers",
        &brokers,
        "--alphabet",
        "2700",
        "--keys",
        "27",
        "--key",
        "letter",
    ]);
    assert!(
        sent.contains("sent 2700 messages (13500 bytes) to 8 partitions"),
        "{sent}"
    );

    let dir = TempDir::new("kafka-keyed");
    let (bytes, text) = receive(
        &dir,
        "votes.bin",
        &[
            "--from",
            "kafka:votes",
            "--brokers",
            &brokers,
            "--expect",
            "2700",
            "--framing",
            "header:4",
        ],
    );
    assert!(
        text.contains("received 2700 messages (24300 bytes) from 8 partitions"),
        "{text}"
    );
    let payloads = payloads(&bytes);
    assert_eq!(payloads.len(), 2700);
    assert_eq!(votes_per_letter(&payloads), alphabet_2700());

    // The record is the message: the key is the letter, the value the vote without framing.
    let records = records(&broker, "votes", 8, 2700);
    assert_eq!(records.len(), 2700);
    let mut partition_of = BTreeMap::new();
    for (partition, key, value) in records {
        let key = key.expect("a keyed record");
        assert_eq!(key, [value[0]], "{value:?}");
        assert_eq!(value[1..], 1u32.to_be_bytes());
        let first = *partition_of.entry(value[0]).or_insert(partition);
        assert_eq!(
            first, partition,
            "letter {} on two partitions",
            value[0] as char
        );
    }
    assert_eq!(partition_of.len(), 27);
}

#[test]
fn unkeyed_votes_take_turns_on_the_partitions_and_a_group_reads_them_once() {
    let broker = Broker::start();
    broker.create_topic("round-robin", 8);
    let brokers = broker.address();
    send(&[
        "--to",
        "kafka:round-robin",
        "--brokers",
        &brokers,
        "--alphabet",
        "2700",
        "--keys",
        "27",
    ]);
    let records = records(&broker, "round-robin", 8, 2700);
    assert_eq!(records.len(), 2700);
    let mut per_partition = BTreeMap::<i32, usize>::new();
    for (partition, key, _) in &records {
        assert_eq!(*key, None);
        *per_partition.entry(*partition).or_default() += 1;
    }
    // 2700 = 8 * 337 + 4: the first four partitions get one more.
    let expected: BTreeMap<i32, usize> = (0..8).map(|p| (p, 337 + usize::from(p < 4))).collect();
    assert_eq!(per_partition, expected);

    // A member of a group reads everything, and commits it: the next run of the group
    // reads nothing.
    let dir = TempDir::new("kafka-group");
    let group = [
        "--from",
        "kafka:round-robin",
        "--brokers",
        &brokers,
        "--group",
        "readers",
        "--kafka-option",
        "session.timeout.ms=6000",
        "--framing",
        "header:4",
    ];
    let (bytes, text) = receive(
        &dir,
        "first.bin",
        &[&group[..], &["--expect", "2700"]].concat(),
    );
    assert!(text.contains("in group readers"), "{text}");
    assert_eq!(votes_per_letter(&payloads(&bytes)), alphabet_2700());
    let out = dir.0.join("again.bin");
    let again = run(
        RECEIVER,
        &[
            &group[..],
            &["--idle-timeout", "8", "--out", out.to_str().unwrap()],
        ]
        .concat(),
    );
    let text = stderr(&again);
    assert!(again.status.success(), "{text}");
    assert!(text.contains("received 0 messages"), "{text}");
}

#[test]
fn lines_travel_without_their_newlines_and_come_back_as_lines() {
    let broker = Broker::start();
    broker.create_topic("words", 3);
    let brokers = broker.address();
    let dir = TempDir::new("kafka-lines");
    let input = dir.0.join("words.txt");
    std::fs::write(&input, "one\ntwo\r\nthree\n").unwrap();
    send(&[
        "--to",
        "kafka:words",
        "--brokers",
        &brokers,
        "--lines",
        input.to_str().unwrap(),
        "--framing",
        "lines",
    ]);
    let mut values: Vec<Vec<u8>> = records(&broker, "words", 3, 3)
        .into_iter()
        .map(|r| r.2)
        .collect();
    values.sort();
    assert_eq!(values, [&b"one"[..], b"three", b"two"]);

    let (bytes, _) = receive(
        &dir,
        "words.out",
        &[
            "--from",
            "kafka:words",
            "--brokers",
            &brokers,
            "--expect",
            "3",
        ],
    );
    let mut lines: Vec<&str> = std::str::from_utf8(&bytes).unwrap().lines().collect();
    lines.sort_unstable();
    assert_eq!(lines, ["one", "three", "two"]);
}

#[test]
fn a_missing_topic_is_a_clear_error() {
    let broker = Broker::start();
    let brokers = broker.address();
    let expected =
        format!("topic `absent` does not exist on the brokers at {brokers}: create it first");
    let sent = run(
        SENDER,
        &[
            "--to",
            "kafka:absent",
            "--brokers",
            &brokers,
            "--alphabet",
            "10",
        ],
    );
    assert_eq!(sent.status.code(), Some(1));
    assert!(stderr(&sent).contains(&expected), "{}", stderr(&sent));
    let received = run(
        RECEIVER,
        &[
            "--from",
            "kafka:absent",
            "--brokers",
            &brokers,
            "--expect",
            "1",
        ],
    );
    assert_eq!(received.status.code(), Some(1));
    assert!(
        stderr(&received).contains(&expected),
        "{}",
        stderr(&received)
    );
}

#[test]
fn the_sender_waits_for_a_broker_that_is_not_up_yet() {
    let port = support::free_port();
    let brokers = format!("127.0.0.1:{port}");
    let sender = Command::new(SENDER)
        .args([
            "--to",
            "kafka:late",
            "--brokers",
            &brokers,
            "--alphabet",
            "2700",
        ])
        .args(["--keys", "27", "--connect-timeout", "30"])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start wallaroo-sender");
    std::thread::sleep(Duration::from_secs(2));
    let broker = Broker::start_on(port);
    broker.create_topic("late", 8);
    let sent = sender.wait_with_output().unwrap();
    let text = stderr(&sent);
    assert!(sent.status.success(), "{text}");
    assert!(text.contains("do not answer yet"), "{text}");
    assert!(text.contains("sent 2700 messages"), "{text}");

    let dir = TempDir::new("kafka-late");
    let (bytes, _) = receive(
        &dir,
        "late.bin",
        &[
            "--from",
            "kafka:late",
            "--brokers",
            &brokers,
            "--expect",
            "2700",
            "--framing",
            "header:4",
        ],
    );
    assert_eq!(votes_per_letter(&payloads(&bytes)), alphabet_2700());
}

#[test]
fn kafka_flags_need_a_kafka_endpoint_and_brokers() {
    let no_brokers = run(SENDER, &["--to", "kafka:votes", "--alphabet", "10"]);
    assert_eq!(no_brokers.status.code(), Some(2));
    assert!(
        stderr(&no_brokers).contains("--to kafka:votes needs --brokers"),
        "{}",
        stderr(&no_brokers)
    );
    let stray = run(RECEIVER, &["--listen", "127.0.0.1:0", "--group", "g"]);
    assert_eq!(stray.status.code(), Some(2));
    assert!(
        stderr(&stray).contains("--group goes with --from kafka:TOPIC"),
        "{}",
        stderr(&stray)
    );
    let bad_topic = run(RECEIVER, &["--from", "kafka:no spaces", "--brokers", "h:1"]);
    assert_eq!(bad_topic.status.code(), Some(2));
    assert!(stderr(&bad_topic).contains("is not a Kafka topic"));
}
