//! The Alphabet application reading votes from a Kafka topic and writing its totals to
//! another, against a real Kafka-protocol broker (tansu) that each test starts.
#![cfg(feature = "kafka")]

#[allow(dead_code)]
#[path = "../examples/alphabet.rs"]
mod alphabet;
#[allow(dead_code)]
#[path = "../examples/reverse.rs"]
mod reverse;
mod support;
#[allow(dead_code)]
#[path = "../examples/window_average.rs"]
mod window_average;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use support::kafka::Broker;
use support::TempDir;
use wallaroo::kafka::rdkafka::config::ClientConfig;
use wallaroo::kafka::rdkafka::consumer::{BaseConsumer, Consumer};
use wallaroo::kafka::rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use wallaroo::kafka::rdkafka::Message;
use wallaroo::resilience::SyncPolicy;
use wallaroo::{Args, RunError};

/// One Alphabet vote as a record's value: the letter, then a big-endian u32.
fn vote(letter: u8, votes: u32) -> Vec<u8> {
    let mut value = vec![letter];
    value.extend_from_slice(&votes.to_be_bytes());
    value
}

/// `count` votes of 1, round-robin over `a`..`z` and `A`, starting at vote number `from`.
fn votes(from: usize, count: usize) -> Vec<Vec<u8>> {
    let letters: Vec<u8> = (b'a'..=b'z').chain([b'A']).collect();
    (from..from + count)
        .map(|i| vote(letters[i % letters.len()], 1))
        .collect()
}

/// Produces `values` to `topic` without keys, and waits until the broker has them all.
fn produce(broker: &Broker, topic: &str, values: &[Vec<u8>]) {
    support::kafka::produce(&broker.address(), topic, values.iter().cloned(), None);
}

/// One output record: its partition, key and value.
struct Output {
    partition: i32,
    key: Option<String>,
    value: String,
}

/// Reads `topic` from its start until `count` records have come (or 60 s pass): their
/// values.
fn consume(broker: &Broker, topic: &str, count: usize) -> Vec<String> {
    consume_records(broker, topic, count)
        .into_iter()
        .map(|record| record.value)
        .collect()
}

/// Reads `topic` from its start until `count` records have come (or 60 s pass), in the
/// order of each partition.
fn consume_records(broker: &Broker, topic: &str, count: usize) -> Vec<Output> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", broker.address())
        .set("group.id", format!("reader-{}", std::process::id()))
        .set("auto.offset.reset", "earliest")
        .set("session.timeout.ms", "6000")
        .create()
        .expect("a consumer");
    consumer.subscribe(&[topic]).expect("subscribed");
    let mut values = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while values.len() < count && Instant::now() < deadline {
        if let Some(Ok(record)) = consumer.poll(Duration::from_millis(200)) {
            let text = |bytes: &[u8]| String::from_utf8_lossy(bytes).into_owned();
            values.push(Output {
                partition: record.partition(),
                key: record.key().map(text),
                value: text(record.payload().unwrap_or(&[])),
            });
        }
    }
    values
}

/// Per letter, the totals written, sorted.
fn totals(lines: &[String]) -> HashMap<char, Vec<u64>> {
    let mut by_letter: HashMap<char, Vec<u64>> = HashMap::new();
    for line in lines {
        let (letter, total) = line.trim_end().split_once(" => ").expect("`a => 12`");
        by_letter
            .entry(letter.chars().next().unwrap())
            .or_default()
            .push(total.parse().unwrap());
    }
    for totals in by_letter.values_mut() {
        totals.sort_unstable();
    }
    by_letter
}

fn args(broker: &Broker) -> Args {
    args_to(broker, "kafka:votes", "kafka:totals").with_workers(2)
}

/// Reads `input` and writes `output` through `broker`, with the timeouts the tests need.
fn args_to(broker: &Broker, input: &str, output: &str) -> Args {
    Args::new()
        .with_input(input)
        .with_output(output)
        .with_brokers(&broker.address())
        .with_kafka_option("session.timeout.ms", "6000")
        // A request the broker leaves unanswered (seen with tansu on a loaded machine) is
        // given up and sent again after this, not after the default minute.
        .with_kafka_option("socket.timeout.ms", "10000")
}

/// Waits until the application's source has decoded `count` messages.
fn wait_for_messages(running: &wallaroo::Running, count: u64) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while running.source_counts(0).unwrap().messages < count {
        assert!(Instant::now() < deadline, "{:?}", running.source_counts(0));
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn votes_from_a_topic_become_totals_in_another() {
    let broker = Broker::start();
    broker.create_topic("votes", 8);
    broker.create_topic("totals", 4);
    produce(&broker, "votes", &votes(0, 2700));

    let args = args(&broker);
    let running = alphabet::alphabet(&args).start(&args).unwrap();
    wait_for_messages(&running, 2700);
    running.stop().unwrap();

    let records = consume_records(&broker, "totals", 2700);
    assert_eq!(records.len(), 2700);
    // Every letter counted 1, 2, … 100: each vote once, none lost, none twice.
    let lines: Vec<String> = records.iter().map(|r| r.value.clone()).collect();
    let by_letter = totals(&lines);
    assert_eq!(by_letter.len(), 27);
    for (letter, totals) in by_letter {
        assert_eq!(totals, (1..=100).collect::<Vec<u64>>(), "{letter}");
    }
    // Each total is keyed by its letter (the state key, a `u8`, as JSON: `98` for `b`), and
    // a letter's totals are on one partition, in order.
    let mut seen: HashMap<String, (i32, u64)> = HashMap::new();
    for record in &records {
        let (letter, total) = record.value.trim_end().split_once(" => ").unwrap();
        let key = u32::from(letter.as_bytes()[0]).to_string();
        assert_eq!(record.key.as_deref(), Some(&*key), "{}", record.value);
        let total: u64 = total.parse().unwrap();
        let (partition, last) = seen
            .entry(letter.to_string())
            .or_insert((record.partition, 0));
        assert_eq!(*partition, record.partition, "{letter} on two partitions");
        assert_eq!(total, *last + 1, "{letter}'s totals out of order");
        *last = total;
    }
    let partitions: std::collections::HashSet<i32> = seen.values().map(|(p, _)| *p).collect();
    assert!(partitions.len() > 1, "every letter on one partition");
}

#[test]
fn a_restarted_application_resumes_each_partition_where_its_votes_were_applied() {
    let broker = Broker::start();
    broker.create_topic("votes", 8);
    broker.create_topic("totals", 4);
    let tmp = TempDir::new("kafka-restart");
    let args = args(&broker).with_resilience(tmp.0.join("state"), SyncPolicy::BeforeOutput);

    produce(&broker, "votes", &votes(0, 1350));
    let running = alphabet::alphabet(&args).start(&args).unwrap();
    wait_for_messages(&running, 1350);
    running.stop().unwrap();

    // The second half arrives while the application is down; the restarted one reads the
    // topic from where its state says, not from the start.
    produce(&broker, "votes", &votes(1350, 1350));
    let running = alphabet::alphabet(&args).start(&args).unwrap();
    wait_for_messages(&running, 1350);
    // Nothing is read twice: the first half is behind every partition's resume point.
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(running.source_counts(0).unwrap().messages, 1350);
    running.stop().unwrap();

    let lines = consume(&broker, "totals", 2700);
    assert_eq!(lines.len(), 2700);
    for (letter, totals) in totals(&lines) {
        assert_eq!(totals, (1..=100).collect::<Vec<u64>>(), "{letter}");
    }
}

#[test]
fn a_record_that_does_not_decode_is_skipped_and_counted() {
    let broker = Broker::start();
    broker.create_topic("votes", 2);
    broker.create_topic("totals", 1);
    let mut values = votes(0, 10);
    values.insert(5, b"bad".to_vec());
    produce(&broker, "votes", &values);

    let args = args(&broker);
    let running = alphabet::alphabet(&args).start(&args).unwrap();
    wait_for_messages(&running, 10);
    let deadline = Instant::now() + Duration::from_secs(10);
    while running.source_counts(0).unwrap().decode_errors < 1 {
        assert!(Instant::now() < deadline);
        std::thread::sleep(Duration::from_millis(20));
    }
    running.stop().unwrap();
    assert_eq!(consume(&broker, "totals", 10).len(), 10);
}

#[test]
fn a_missing_topic_stops_the_application_naming_it() {
    let broker = Broker::start();
    broker.create_topic("totals", 1);
    let args = args(&broker);
    let err = alphabet::alphabet(&args)
        .run(&args, |_| {})
        .expect_err("no votes topic");
    assert!(matches!(err, RunError::Connector { .. }), "{err:?}");
    let message = err.to_string();
    assert!(
        message.contains("topic `votes` does not exist"),
        "{message}"
    );
    assert!(message.contains(&broker.address()), "{message}");
}

#[test]
fn kafka_endpoints_without_brokers_are_a_usage_error() {
    let args = Args::new().with_input("kafka:votes").with_output("-");
    let err = alphabet::alphabet(&args)
        .start(&args)
        .err()
        .expect("refused");
    assert!(matches!(err, RunError::Usage(_)), "{err:?}");
    assert!(
        err.to_string().contains(
            "pipeline \"Alphabet\" reads kafka:votes: give the Kafka brokers with --brokers"
        ),
        "{err}"
    );
}

#[test]
fn a_broker_that_comes_up_late_is_waited_for() {
    let port = support::free_port();
    let args = Args::new()
        .with_input("kafka:votes")
        .with_output("kafka:totals")
        .with_brokers(&format!("127.0.0.1:{port}"))
        .with_kafka_option("session.timeout.ms", "6000");
    let running = alphabet::alphabet(&args).start(&args).unwrap();
    std::thread::sleep(Duration::from_secs(2));
    let broker = Broker::start_on(port);
    broker.create_topic("votes", 2);
    broker.create_topic("totals", 1);
    produce(&broker, "votes", &votes(0, 27));
    wait_for_messages(&running, 27);
    running.stop().unwrap();
    assert_eq!(consume(&broker, "totals", 27).len(), 27);
}

#[test]
fn output_left_undelivered_when_the_brokers_never_answer_is_an_error_that_counts_it() {
    let shipped = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/data/alphabet.frames");
    let args = Args::new()
        .with_input(format!("file:{shipped}"))
        .with_output("kafka:totals")
        .with_brokers(&format!("127.0.0.1:{}", support::free_port()));
    // The file is read to its end, so the application stops by itself.
    let err = alphabet::alphabet(&args)
        .run(&args, |_| {})
        .expect_err("undelivered");
    assert!(matches!(err, RunError::Sink { .. }), "{err:?}");
    assert!(
        err.to_string()
            .contains("the brokers never answered; 12 messages were not delivered"),
        "{err}"
    );
}

#[test]
fn a_state_shared_out_by_a_kafka_source_and_fed_by_another_is_refused_at_start() {
    use wallaroo::{Application, Input, Source};
    // Pipeline "one" reads kafka:a, pipeline "two" reads `second`; both count the votes.
    let two_pipelines = |second: Input| {
        let app = Application::new("Two");
        let counted = |app: Application, name: &str, input: Input| {
            app.pipeline(name, Source::new(input, alphabet::decode))
                .to_state_partition(
                    alphabet::add_votes,
                    "running vote totals",
                    alphabet::by_letter,
                )
                .done()
        };
        let app = counted(app, "one", Input::Kafka("a".into()));
        counted(app, "two", second)
    };
    let args = Args::new().with_brokers("127.0.0.1:9");
    let message = two_pipelines(Input::Kafka("b".into()))
        .start(&args)
        .err()
        .expect("refused")
        .to_string();
    assert!(
        message.contains("\"running vote totals\" is fed by pipeline \"one\", which reads Kafka")
            && message.contains("and by pipeline \"two\" too: two Kafka sources"),
        "{message}"
    );

    // Nor with a source of another kind.
    let message = two_pipelines(Input::Stdin)
        .start(&args)
        .err()
        .expect("refused")
        .to_string();
    assert!(
        message.contains("and by pipeline \"two\" too: its shards move"),
        "{message}"
    );
}

#[test]
fn a_changelog_record_that_does_not_read_back_stops_the_application_naming_the_state() {
    let broker = Broker::start();
    broker.create_topic("votes", 2);
    broker.create_topic("totals", 1);
    broker.create_topic("Alphabet-running_vote_totals-changelog", 2);
    // The state of key b'a' in shard 0 and 1 alike: a value that is no state at all.
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", broker.address())
        .create()
        .expect("a producer");
    for partition in 0..2 {
        let record = BaseRecord::to("Alphabet-running_vote_totals-changelog")
            .partition(partition)
            .key(&[b'a'][..])
            .payload(&[0xff_u8, 0xff, 0xff][..]);
        producer.send(record).map_err(|(e, _)| e).expect("sent");
    }
    producer.flush(Duration::from_secs(30)).expect("flushed");

    let args = args(&broker);
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(alphabet::alphabet(&args).run(&args, |_| {}));
    });
    let err = rx
        .recv_timeout(Duration::from_secs(90))
        .expect("the application stops by itself")
        .expect_err("a damaged changelog");
    let message = err.to_string();
    assert!(
        message.contains("state \"running vote totals\"") && message.contains("does not read back"),
        "{message}"
    );
}

/// Alphabet with its source declared co-partitioned: the votes' record keys are their
/// letters.
fn co_partitioned_alphabet(args: &Args) -> wallaroo::Application {
    use wallaroo::{Application, Sink, Source};
    Application::new("Alphabet")
        .pipeline(
            "Alphabet",
            Source::new(args.input(0), alphabet::decode).co_partitioned(),
        )
        .to_state_partition(
            alphabet::add_votes,
            "running vote totals",
            alphabet::by_letter,
        )
        .to_sink(Sink::new(args.output(0), alphabet::encode))
}

/// `votes(from, count)`, each keyed by its letter.
fn keyed_votes(from: usize, count: usize) -> Vec<(Option<Vec<u8>>, Vec<u8>)> {
    votes(from, count)
        .into_iter()
        .map(|vote| (Some(vec![vote[0]]), vote))
        .collect()
}

/// The topics the broker has.
fn topics(broker: &Broker) -> Vec<String> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", broker.address())
        .create()
        .expect("a consumer");
    let metadata = consumer
        .fetch_metadata(None, Duration::from_secs(30))
        .expect("metadata");
    metadata
        .topics()
        .iter()
        .map(|t| t.name().to_string())
        .collect()
}

#[test]
fn a_co_partitioned_input_is_shared_by_two_processes_without_a_repartition_topic() {
    let broker = Broker::start();
    broker.create_topic("votes", 4);
    broker.create_topic("totals", 4);
    let args = args(&broker);
    let address = broker.address();
    let produce_keyed = |from, count| {
        support::kafka::produce_keyed(&address, "votes", keyed_votes(from, count), None);
    };

    // One process, then two that share the partitions, then the second alone: each
    // letter's state follows its partition, restored from the changelog.
    let first = co_partitioned_alphabet(&args).start(&args).unwrap();
    produce_keyed(0, 900);
    wait_for_messages(&first, 900);
    let second = co_partitioned_alphabet(&args).start(&args).unwrap();
    // The broker holds a join for half the session timeout (3 s) before it rebalances.
    std::thread::sleep(Duration::from_secs(8));
    produce_keyed(900, 900);
    let deadline = Instant::now() + Duration::from_secs(60);
    let read = |running: &wallaroo::Running| running.source_counts(0).unwrap().messages;
    while read(&first) + read(&second) < 1800 {
        assert!(
            Instant::now() < deadline,
            "{} + {}",
            read(&first),
            read(&second)
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(read(&second) > 0, "the second process took no partition");
    first.stop().unwrap();
    produce_keyed(1800, 900);
    let lines = consume(&broker, "totals", 2700);
    second.stop().unwrap();

    assert_eq!(lines.len(), 2700, "each vote's total once");
    for (letter, totals) in totals(&lines) {
        assert_eq!(totals, (1..=100).collect::<Vec<u64>>(), "{letter}");
    }
    let topics = topics(&broker);
    assert!(
        topics.contains(&"Alphabet-running_vote_totals-changelog".to_string()),
        "{topics:?}"
    );
    assert!(
        !topics.iter().any(|t| t.ends_with("-repartition")),
        "{topics:?}"
    );
}

/// The samples of `wallaroo_source_kafka_lag` in a /metrics body: pipeline, partition, lag.
fn kafka_lags(body: &str) -> Vec<(String, i32, i64)> {
    body.lines()
        .filter_map(|line| line.strip_prefix("wallaroo_source_kafka_lag{pipeline=\""))
        .map(|rest| {
            let (pipeline, rest) = rest.split_once("\",partition=\"").expect("a partition");
            let (partition, lag) = rest.split_once("\"} ").expect("a value");
            (
                pipeline.to_string(),
                partition.parse().unwrap(),
                lag.parse().unwrap(),
            )
        })
        .collect()
}

/// Scrapes /metrics at `http` until the lag of `partitions` partitions is listed, all 0
/// (or 30 s pass): the last body and its lag samples. The lag is measured once a second
/// after a poll, so this waits for a measure taken after the last record.
fn drained_lags(
    http: std::net::SocketAddr,
    partitions: usize,
) -> (String, Vec<(String, i32, i64)>) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let body = support::http_get(http, "/metrics");
        let lags = kafka_lags(&body);
        let done = lags.len() == partitions && lags.iter().all(|(_, _, lag)| *lag == 0);
        if done || Instant::now() > deadline {
            return (body, lags);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Checks that `lags` list `partitions`, under `pipeline`, all at lag 0.
fn assert_drained(body: &str, lags: &[(String, i32, i64)], pipeline: &str, partitions: i32) {
    assert!(
        body.contains("# TYPE wallaroo_source_kafka_lag gauge"),
        "{body}"
    );
    let mut held: Vec<i32> = lags.iter().map(|(_, p, _)| *p).collect();
    held.sort_unstable();
    assert_eq!(held, (0..partitions).collect::<Vec<_>>(), "{body}");
    assert!(lags.iter().all(|(p, _, _)| p == pipeline), "{lags:?}");
    assert_eq!(lags.iter().map(|(_, _, lag)| lag).sum::<i64>(), 0, "{body}");
}

#[test]
fn metrics_show_each_held_partitions_lag_down_to_zero_once_read() {
    let broker = Broker::start();
    broker.create_topic("votes", 4);
    broker.create_topic("totals", 2);
    produce(&broker, "votes", &votes(0, 1000));

    // The state's source: hop 1 reads the input topic and measures its lag.
    let args = args(&broker).with_http("127.0.0.1:0");
    let running = alphabet::alphabet(&args).start(&args).unwrap();
    let http = running.http_addr().expect("the HTTP server's address");
    wait_for_messages(&running, 1000);
    let (body, lags) = drained_lags(http, 4);
    running.stop().unwrap();
    assert_drained(&body, &lags, "Alphabet", 4);
}

#[test]
fn a_stateless_pipelines_kafka_source_shows_its_lag_too() {
    let broker = Broker::start();
    broker.create_topic("words", 3);
    broker.create_topic("reversed", 1);
    let words: Vec<Vec<u8>> = (0..300).map(|i| format!("word{i}").into_bytes()).collect();
    produce(&broker, "words", &words);

    let args = args_to(&broker, "kafka:words", "kafka:reversed").with_http("127.0.0.1:0");
    let running = reverse::reverse_word(&args).start(&args).unwrap();
    let http = running.http_addr().expect("the HTTP server's address");
    wait_for_messages(&running, 300);
    let (body, lags) = drained_lags(http, 3);
    running.stop().unwrap();
    assert_drained(&body, &lags, "Reverse Word", 3);
}

/// Whether [`slowly`] holds each word back: set while a test wants the application unable
/// to keep up with its input.
static THROTTLED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Passes the word on, after 5 ms while [`THROTTLED`]: a stateless step runs on the
/// source's thread, so the consumer reads no faster than 200 records a second. It sleeps
/// rather than blocks, because a source blocked outright measures no lag until it moves
/// again (the measure is taken between polls), and the gauge would show what it was
/// before.
#[wallaroo::computation(name = "keep up slowly")]
fn slowly(word: reverse::Word) -> reverse::Word {
    if THROTTLED.load(std::sync::atomic::Ordering::Relaxed) {
        std::thread::sleep(Duration::from_millis(5));
    }
    word
}

/// Produces `count` words to `partition` of `topic`, and waits until the broker has them.
fn produce_to(broker: &Broker, topic: &str, partition: i32, count: usize) {
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", broker.address())
        .set("linger.ms", "5")
        .create()
        .expect("a producer");
    for i in 0..count {
        let value = format!("word{i}");
        let mut record = BaseRecord::<[u8], [u8]>::to(topic)
            .partition(partition)
            .payload(value.as_bytes());
        loop {
            match producer.send(record) {
                Ok(()) => break,
                Err((_, back)) => {
                    producer.poll(Duration::from_millis(20));
                    record = back;
                }
            }
        }
        producer.poll(Duration::ZERO);
    }
    producer.flush(Duration::from_secs(60)).expect("flushed");
}

#[test]
fn metrics_show_the_lag_of_an_application_that_cannot_keep_up_then_zero_once_it_does() {
    const PRODUCED: [i64; 2] = [1200, 800];
    let total: i64 = PRODUCED.iter().sum();
    let broker = Broker::start();
    broker.create_topic("words", 2);
    broker.create_topic("reversed", 1);
    // Uneven partitions, so that a lag reported under the other partition's number shows.
    for (partition, &count) in PRODUCED.iter().enumerate() {
        produce_to(&broker, "words", partition as i32, count as usize);
    }

    let args = args_to(&broker, "kafka:words", "kafka:reversed").with_http("127.0.0.1:0");
    THROTTLED.store(true, std::sync::atomic::Ordering::Relaxed);
    let app = wallaroo::Application::new("Slow Reverse")
        .pipeline(
            "Slow Reverse",
            wallaroo::Source::new(args.input(0), reverse::decode),
        )
        .to(slowly)
        .to(reverse::reverse)
        .to_sink(wallaroo::Sink::new(args.output(0), reverse::encode));
    let running = app.start(&args).unwrap();
    let http = running.http_addr().expect("the HTTP server's address");

    // The first measure that knows both partitions' watermarks (taken within about a
    // second of the first fetch): at 200 records a second, the 2000 take 10 s to read.
    let deadline = Instant::now() + Duration::from_secs(30);
    let (body, behind) = loop {
        let body = support::http_get(http, "/metrics");
        let lags = kafka_lags(&body);
        if lags.len() >= 2 || Instant::now() > deadline {
            break (body, lags);
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let read = running.source_counts(0).unwrap().messages;
    assert!(
        read < total as u64,
        "read all {read} before a measure: {body}"
    );
    // Each partition once, in order, under the pipeline's name.
    let held: Vec<(&str, i32)> = behind.iter().map(|(p, n, _)| (p.as_str(), *n)).collect();
    assert_eq!(held, [("Slow Reverse", 0), ("Slow Reverse", 1)], "{body}");
    // Behind, but by no more than was produced: to each partition, and in all.
    for &(_, partition, lag) in &behind {
        let produced = PRODUCED[partition as usize];
        assert!(
            (0..=produced).contains(&lag),
            "partition {partition}: {body}"
        );
    }
    let first: i64 = behind.iter().map(|(_, _, lag)| lag).sum();
    assert!(
        first > 0 && first <= total,
        "lag {first} of {total}: {body}"
    );

    // Still throttled, the gauge follows the reading down: a later measure is lower, and
    // still above 0 (a gauge stuck at its first value would not pass).
    let deadline = Instant::now() + Duration::from_secs(10);
    let (body, later) = loop {
        let body = support::http_get(http, "/metrics");
        let lags = kafka_lags(&body);
        let sum: i64 = lags.iter().map(|(_, _, lag)| lag).sum();
        if (lags.len() == 2 && sum < first) || Instant::now() > deadline {
            break (body, lags);
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let sum: i64 = later.iter().map(|(_, _, lag)| lag).sum();
    assert!(sum > 0 && sum < first, "lag {sum} after {first}: {body}");
    let partitions: Vec<i32> = later.iter().map(|(_, p, _)| *p).collect();
    assert_eq!(partitions, [0, 1], "{body}");
    for &(_, partition, lag) in &later {
        assert!(lag <= PRODUCED[partition as usize], "{body}");
    }

    // Let it keep up: every record is read, and the lag of both partitions reaches 0.
    THROTTLED.store(false, std::sync::atomic::Ordering::Relaxed);
    wait_for_messages(&running, total as u64);
    let (body, lags) = drained_lags(http, 2);
    running.stop().unwrap();
    assert_drained(&body, &lags, "Slow Reverse", 2);
}

#[test]
fn windows_of_readings_from_a_topic_are_the_contracts_and_wait_for_the_watermark() {
    use support::windows::{grouped, model_until, readings};
    let broker = Broker::start();
    broker.create_topic("readings", 1);
    let input = readings(12_000, 61);
    let values: Vec<Vec<u8>> = input
        .iter()
        .map(|(s, t, v)| format!("{s},{t},{v}").into_bytes())
        .collect();
    produce(&broker, "readings", &values);
    // A topic has no end: the windows are those the watermark closes.
    let (expected, late) = model_until(&input, false);
    let windows: usize = expected.values().map(Vec::len).sum();
    assert!(late > 0 && windows > 100);

    // The same windows with `--pre-aggregate`, which leaves a Kafka source's records one by
    // one (each applied once across the group by its position).
    for pre_aggregate in [false, true] {
        let out = if pre_aggregate {
            "windows-pre"
        } else {
            "windows"
        };
        broker.create_topic(out, 2);
        let args = args_to(&broker, "kafka:readings", &format!("kafka:{out}"))
            .with_group(out)
            .with_workers(2);
        let flags = window_average::Flags { pre_aggregate };
        let running = window_average::window_average(&args, &flags)
            .start(&args)
            .unwrap();
        wait_for_messages(&running, input.len() as u64);
        let records = consume_records(&broker, out, windows);
        running.stop().unwrap();
        let lines: Vec<String> = records.iter().map(|r| r.value.clone()).collect();
        assert_eq!(lines.len(), windows, "{out}");
        assert_eq!(grouped(&lines.concat()), expected, "{out}");
        // Each window is keyed by its sensor, the state key (a string key as it is).
        for record in &records {
            let sensor = record.value.split(' ').next().unwrap();
            assert_eq!(record.key.as_deref(), Some(sensor), "{}", record.value);
        }
    }
}
