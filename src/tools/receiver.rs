//! `wallaroo-receiver`: listens for a wallaroo application's TCP sink, like Wallaroo's data
//! receiver, or reads a Kafka topic. Writes what arrives, whole messages at a time so that
//! connections do not interleave inside a message, and counts the messages (lines, or
//! frames).

use std::ffi::OsString;
use std::fmt;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use clap::{value_parser, Arg, ArgGroup, ArgMatches, Command};

use super::{
    endpoint, framing_arg, kafka_args, kafka_endpoint, kafka_group, per_second, seconds, Framing,
    KafkaEndpoint,
};

/// How often the receiver checks `--expect` and `--idle-timeout`.
const POLL: Duration = Duration::from_millis(20);

/// The receiver's command line, parsed.
#[derive(Clone, Debug, PartialEq)]
pub struct Config {
    /// `HOST:PORT` to listen on, unless it reads a Kafka topic.
    pub listen: Option<String>,
    /// The Kafka topic to read (`--from kafka:TOPIC`), and its brokers.
    pub kafka: Option<KafkaEndpoint>,
    /// Where to write: a file, or `-` for standard output.
    pub out: String,
    /// How messages are counted.
    pub framing: Framing,
    /// Exit once this many messages have arrived.
    pub expect: Option<u64>,
    /// Exit after this long without data.
    pub idle_timeout: Option<Duration>,
}

/// The command line: every flag with its help.
pub fn command() -> Command {
    Command::new("wallaroo-receiver")
        .version(env!("CARGO_PKG_VERSION"))
        .about("Receive what a wallaroo application's TCP sink sends, or read a Kafka topic.")
        .long_about(
            "Receive what a wallaroo application's TCP sink sends, or read a Kafka topic.\n\n\
             Listens, accepts any number of connections, and writes what arrives, whole \
             messages at a time. It prints the address it listens on to standard error first, \
             then every second a progress line (messages, rate) while data arrives, and a \
             summary when it exits. It runs until --expect or --idle-timeout says to stop, or \
             until interrupted (SIGINT, Ctrl-C, or SIGTERM); either way it prints the summary \
             and exits with status 0, or 1 when --expect was given and not reached. A second \
             interrupt exits at once, with status 1. A usage error exits with status 2.\n\n\
             With --from kafka:TOPIC (cargo feature `kafka`) it reads TOPIC at --brokers from \
             the beginning, and writes each record's value as one message: as a line (a \
             newline added unless the value ends in one), or behind a length header with \
             --framing header:N. It reads every partition, in no consumer group and committing \
             nothing, unless --group NAME makes it a member of that group (which then shares \
             the partitions with the group's other members and commits what it wrote). It \
             waits for the brokers (up to --idle-timeout, if given), and exits with status 1 \
             if the topic does not exist (once the brokers are up, if they were starting).",
        )
        .arg(
            Arg::new("listen")
                .long("listen")
                .value_name("HOST:PORT")
                .help("Where to listen; port 0 picks a free port (printed to standard error)"),
        )
        .arg(
            Arg::new("from")
                .long("from")
                .value_name("kafka:TOPIC")
                .value_parser(endpoint)
                .help("Read the Kafka topic TOPIC instead of listening"),
        )
        .group(
            ArgGroup::new("source")
                .args(["listen", "from"])
                .required(true),
        )
        .args(kafka_args("from"))
        .arg(
            Arg::new("group")
                .long("group")
                .value_name("NAME")
                .value_parser(kafka_group)
                .help(
                    "With --from kafka:TOPIC: read as a member of consumer group NAME, from its \
                     committed offsets, committing what is written [default: no group, every \
                     partition from the beginning]",
                ),
        )
        .arg(
            Arg::new("out")
                .long("out")
                .value_name("FILE")
                .default_value("-")
                .help("Write what arrives to FILE, created or truncated (- for standard output)"),
        )
        .arg(framing_arg().default_value("lines").help(
            "How to count messages: `lines`, or `header:N` for frames behind an N-byte \
             big-endian length header; with kafka:TOPIC, how each record is written",
        ))
        .arg(
            Arg::new("expect")
                .long("expect")
                .value_name("N")
                .value_parser(value_parser!(u64).range(1..))
                .help(
                    "Exit once N messages have arrived (status 1 if --idle-timeout or an \
                     interrupt comes first)",
                ),
        )
        .arg(
            Arg::new("idle-timeout")
                .long("idle-timeout")
                .value_name("SECS")
                .value_parser(seconds)
                .help("Exit after SECS without data (counted from the start until data arrives)"),
        )
}

/// Parses a command line (the first item is the program name).
pub fn parse<I, T>(argv: I) -> Result<Config, clap::Error>
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let mut command = command();
    let matches = command.try_get_matches_from_mut(argv)?;
    let kafka = kafka_endpoint(&mut command, &matches, "from")?;
    if let (None, Some(from)) = (&kafka, matches.get_one::<String>("from")) {
        return Err(command.error(
            clap::error::ErrorKind::ValueValidation,
            format!("--from takes kafka:TOPIC, not `{from}`; to listen, give --listen HOST:PORT"),
        ));
    }
    Ok(Config {
        kafka,
        ..config(&matches)
    })
}

fn config(matches: &ArgMatches) -> Config {
    Config {
        listen: matches.get_one::<String>("listen").cloned(),
        kafka: None,
        out: matches
            .get_one::<String>("out")
            .expect("has a default")
            .clone(),
        framing: *matches.get_one("framing").expect("has a default"),
        expect: matches.get_one::<u64>("expect").copied(),
        idle_timeout: matches.get_one::<Duration>("idle-timeout").copied(),
    }
}

/// What a run received.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Summary {
    /// Messages received, over all connections.
    pub messages: u64,
    /// Bytes received.
    pub bytes: u64,
    /// Connections accepted.
    pub connections: u64,
    /// With `kafka:TOPIC`: the partitions read.
    pub partitions: Option<usize>,
    /// From the start to the exit.
    pub elapsed: Duration,
    /// `--expect`, if given and not reached.
    pub missing: Option<u64>,
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "received {} messages ({} bytes) ",
            self.messages, self.bytes
        )?;
        match self.partitions {
            Some(partitions) => write!(f, "from {partitions} partitions")?,
            None => write!(
                f,
                "on {} connection{}",
                self.connections,
                if self.connections == 1 { "" } else { "s" }
            )?,
        }
        write!(
            f,
            " in {:.2} s, {} msg/s",
            self.elapsed.as_secs_f64(),
            per_second(self.messages, self.elapsed)
        )?;
        if let Some(expected) = self.missing {
            write!(f, "; expected {expected}")?;
        }
        Ok(())
    }
}

/// What the connections share: the output and the counters, updated together under the
/// output's lock so that a count never runs ahead of what is written.
struct Shared {
    out: Mutex<Output>,
    framing: Framing,
    start: Instant,
    /// Milliseconds from `start` to the last data.
    last_data: AtomicU64,
    connections: AtomicU64,
    /// With `kafka:TOPIC`: the partitions read, 0 until known.
    partitions: Mutex<Option<usize>>,
}

struct Output {
    writer: Box<dyn Write + Send>,
    messages: u64,
    bytes: u64,
    error: Option<String>,
}

impl Shared {
    /// Writes `bytes`, holding `messages` whole messages.
    fn write(&self, bytes: &[u8], messages: u64) {
        let mut out = self.out.lock().unwrap_or_else(|e| e.into_inner());
        if out.error.is_some() {
            return;
        }
        match out
            .writer
            .write_all(bytes)
            .and_then(|()| out.writer.flush())
        {
            Ok(()) => {
                out.messages += messages;
                out.bytes += bytes.len() as u64;
            }
            Err(e) => out.error = Some(format!("cannot write the output: {e}")),
        }
    }

    /// Ends the run with `error`, unless it has already failed.
    #[cfg(feature = "kafka")]
    fn fail(&self, error: String) {
        let mut out = self.out.lock().unwrap_or_else(|e| e.into_inner());
        out.error.get_or_insert(error);
    }

    /// Notes that data has arrived now, for `--idle-timeout`.
    fn data_arrived(&self) {
        let millis = self.start.elapsed().as_millis() as u64;
        self.last_data.store(millis, Ordering::Relaxed);
    }

    fn counts(&self) -> (u64, u64, Option<String>) {
        let out = self.out.lock().unwrap_or_else(|e| e.into_inner());
        (out.messages, out.bytes, out.error.clone())
    }
}

/// Reads one connection to its end, writing whole messages as they complete.
fn receive(mut stream: TcpStream, shared: &Shared, mut note: impl FnMut(&str)) {
    let peer = stream
        .peer_addr()
        .map_or_else(|_| "a peer".to_string(), |a| a.to_string());
    let mut pending: Vec<u8> = Vec::with_capacity(64 * 1024);
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let read = match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => {
                note(&format!("{peer}: read failed: {e}"));
                break;
            }
        };
        shared.data_arrived();
        pending.extend_from_slice(&buf[..read]);
        let (whole, messages) = shared.framing.whole_messages(&pending);
        if whole > 0 {
            shared.write(&pending[..whole], messages);
            pending.drain(..whole);
        }
    }
    if !pending.is_empty() {
        match shared.framing {
            // A last line without its newline still counts, as a source would read it.
            Framing::Lines => shared.write(&pending, 1),
            Framing::LengthPrefixed(_) => {
                note(&format!(
                    "{peer}: the connection ended inside a frame ({} bytes written, not counted)",
                    pending.len()
                ));
                shared.write(&pending, 0);
            }
        }
    }
}

/// A bound receiver, not yet receiving.
pub struct Receiver {
    /// `None` when it reads a Kafka topic.
    listener: Option<TcpListener>,
    config: Config,
    stop: Arc<AtomicBool>,
}

impl Receiver {
    /// Binds `config.listen`, if it listens.
    pub fn bind(config: Config) -> Result<Receiver, String> {
        let listener = match &config.listen {
            Some(listen) => Some(
                TcpListener::bind(listen).map_err(|e| format!("cannot listen on {listen}: {e}"))?,
            ),
            None => None,
        };
        Ok(Receiver {
            listener,
            config,
            stop: Arc::default(),
        })
    }

    /// A flag that, once set, ends [`Receiver::run`] with its summary, as `--idle-timeout`
    /// does; the binary sets it on SIGINT and SIGTERM.
    pub fn stop_flag(&self) -> Arc<AtomicBool> {
        Arc::clone(&self.stop)
    }

    /// The address it listens on.
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.listener.as_ref()?.local_addr().ok()
    }

    /// What it receives from, for its first line: `listening on ADDR`, or `reading
    /// kafka:TOPIC at BROKERS`.
    pub fn source(&self) -> String {
        match (&self.config.kafka, self.local_addr()) {
            (Some(kafka), _) => format!(
                "reading kafka:{} at {}{}",
                kafka.topic,
                kafka.brokers.join(","),
                kafka
                    .group
                    .as_ref()
                    .map_or_else(String::new, |group| format!(" in group {group}"))
            ),
            (None, Some(addr)) => format!("listening on {addr}"),
            (None, None) => "listening".to_string(),
        }
    }

    /// Receives until `--expect`, `--idle-timeout` or the [stop flag](Receiver::stop_flag)
    /// says to stop (or forever), calling
    /// `progress` with a line every second while data arrives, and with notes about
    /// connections.
    pub fn run(self, progress: impl Fn(&str) + Send + Sync + 'static) -> Result<Summary, String> {
        let writer: Box<dyn Write + Send> = if self.config.out == "-" {
            Box::new(std::io::stdout())
        } else {
            Box::new(
                std::fs::File::create(&self.config.out)
                    .map_err(|e| format!("cannot create {}: {e}", self.config.out))?,
            )
        };
        let shared = Arc::new(Shared {
            out: Mutex::new(Output {
                writer,
                messages: 0,
                bytes: 0,
                error: None,
            }),
            framing: self.config.framing,
            start: Instant::now(),
            last_data: AtomicU64::new(0),
            connections: AtomicU64::new(0),
            partitions: Mutex::new(self.config.kafka.as_ref().map(|_| 0)),
        });
        let progress = Arc::new(progress);
        #[cfg(feature = "kafka")]
        let consumer = self.config.kafka.clone().map(|endpoint| {
            let (shared, stop) = (Arc::clone(&shared), Arc::clone(&self.stop));
            let wait = self.config.idle_timeout;
            std::thread::spawn(move || {
                if let Err(e) = kafka::receive(&endpoint, &shared, &stop, wait) {
                    shared.fail(e);
                }
            })
        });
        // `kafka:` endpoints are refused when the command line is parsed.
        #[cfg(not(feature = "kafka"))]
        let consumer: Option<std::thread::JoinHandle<()>> = None;
        if let Some(listener) = self.listener {
            let (shared, progress) = (Arc::clone(&shared), Arc::clone(&progress));
            std::thread::spawn(move || {
                for stream in listener.incoming() {
                    let Ok(stream) = stream else { continue };
                    shared.connections.fetch_add(1, Ordering::Relaxed);
                    let (shared, progress) = (Arc::clone(&shared), Arc::clone(&progress));
                    std::thread::spawn(move || receive(stream, &shared, |note| progress(note)));
                }
            });
        }

        let mut tick = shared.start + Duration::from_secs(1);
        let mut last = 0;
        loop {
            std::thread::sleep(POLL);
            let (messages, _, error) = shared.counts();
            if let Some(error) = error {
                return Err(error);
            }
            if self.stop.load(Ordering::Relaxed)
                || self.config.expect.is_some_and(|expect| messages >= expect)
            {
                break;
            }
            if let Some(timeout) = self.config.idle_timeout {
                let last_data = Duration::from_millis(shared.last_data.load(Ordering::Relaxed));
                if shared.start.elapsed().saturating_sub(last_data) >= timeout {
                    break;
                }
            }
            if Instant::now() >= tick {
                tick += Duration::from_secs(1);
                if messages != last {
                    progress(&format!(
                        "{messages} messages, {} msg/s",
                        per_second(messages - last, Duration::from_secs(1))
                    ));
                    last = messages;
                }
            }
        }
        // A Kafka consumer stops at the next record, commits (in a group) and leaves; one
        // still waiting for its brokers is left behind.
        self.stop.store(true, Ordering::Relaxed);
        let reading = shared
            .partitions
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .is_some_and(|partitions| partitions > 0);
        if let Some(consumer) = consumer.filter(|_| reading) {
            let deadline = Instant::now() + Duration::from_secs(5);
            while !consumer.is_finished() && Instant::now() < deadline {
                std::thread::sleep(POLL);
            }
        }
        let (messages, bytes, error) = shared.counts();
        let partitions = *shared.partitions.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(error) = error {
            return Err(error);
        }
        Ok(Summary {
            messages,
            bytes,
            connections: shared.connections.load(Ordering::Relaxed),
            partitions,
            elapsed: shared.start.elapsed(),
            missing: self.config.expect.filter(|&expect| messages < expect),
        })
    }
}

/// Reading a Kafka topic.
#[cfg(feature = "kafka")]
mod kafka {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::time::{Duration, Instant};

    use super::{KafkaEndpoint, Shared};
    use crate::kafka::rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
    use crate::kafka::rdkafka::message::Message;
    use crate::kafka::rdkafka::{Offset, TopicPartitionList};
    use crate::kafka::Logged;
    use crate::tools::{push_header, Framing};

    /// Bytes gathered before one write.
    const BATCH_BYTES: usize = 64 * 1024;

    /// Reads the endpoint's topic into `shared` until `stop` is set; waits for the brokers
    /// up to `wait` (`None`: as long as it takes).
    pub(super) fn receive(
        endpoint: &KafkaEndpoint,
        shared: &Shared,
        stop: &AtomicBool,
        wait: Option<Duration>,
    ) -> Result<(), String> {
        let topic = endpoint.topic.as_str();
        let mut options = endpoint.client_options();
        let in_group = options.group.is_some();
        if !in_group {
            // librdkafka needs a group even to read assigned partitions; this one is never
            // joined, and nothing is committed in it.
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.subsec_nanos());
            options.group = Some(format!("wallaroo-receiver-{}-{nanos}", std::process::id()));
        }
        let partitions = crate::tools::kafka_partitions(&options, topic, wait)?;
        *shared.partitions.lock().unwrap_or_else(|e| e.into_inner()) = Some(partitions);
        let consumer: BaseConsumer<Logged> = options
            .consumer_config()
            .create_with_context(Logged)
            .map_err(|e| format!("cannot create the Kafka consumer: {e}"))?;
        if in_group {
            consumer.subscribe(&[topic])
        } else {
            let mut all = TopicPartitionList::new();
            for partition in 0..partitions as i32 {
                all.add_partition_offset(topic, partition, Offset::Beginning)
                    .map_err(|e| e.to_string())?;
            }
            consumer.assign(&all)
        }
        .map_err(|e| format!("cannot read topic {topic}: {e}"))?;

        let mut batch = Vec::with_capacity(BATCH_BYTES * 2);
        let mut committed_at = Instant::now();
        while !stop.load(Ordering::Relaxed) {
            batch.clear();
            let mut records = 0;
            let mut wait = Duration::from_millis(100);
            while batch.len() < BATCH_BYTES {
                match consumer.poll(wait) {
                    None => break,
                    Some(Ok(record)) => {
                        append(
                            shared.framing,
                            record.payload().unwrap_or_default(),
                            &mut batch,
                        )
                        .map_err(|e| {
                            format!(
                                "{topic} partition {} offset {}: {e}",
                                record.partition(),
                                record.offset()
                            )
                        })?;
                        records += 1;
                    }
                    Some(Err(e)) => tracing::warn!("reading {topic}: {e}"),
                }
                wait = Duration::ZERO;
            }
            if records > 0 {
                shared.data_arrived();
                shared.write(&batch, records);
            }
            if in_group && committed_at.elapsed() > Duration::from_secs(1) {
                committed_at = Instant::now();
                // Nothing to commit yet is not a failure.
                let _ = consumer.commit_consumer_state(CommitMode::Async);
            }
        }
        if in_group {
            let _ = consumer.commit_consumer_state(CommitMode::Sync);
        }
        Ok(())
    }

    /// Appends one record's value to `out` as one message: a line, or a frame.
    fn append(framing: Framing, value: &[u8], out: &mut Vec<u8>) -> Result<(), String> {
        match framing {
            Framing::Lines => {
                out.extend_from_slice(value);
                if !value.ends_with(b"\n") {
                    out.push(b'\n');
                }
            }
            Framing::LengthPrefixed(header) => {
                if !push_header(out, value.len(), header) {
                    return Err(format!(
                        "a value of {} bytes is too long for a {header}-byte length header",
                        value.len()
                    ));
                }
                out.extend_from_slice(value);
            }
        }
        Ok(())
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn values_become_lines_or_frames() {
            let mut out = Vec::new();
            append(Framing::Lines, b"a => 1", &mut out).unwrap();
            append(Framing::Lines, b"b => 2\n", &mut out).unwrap();
            append(Framing::Lines, b"", &mut out).unwrap();
            assert_eq!(out, b"a => 1\nb => 2\n\n");
            out.clear();
            append(Framing::LengthPrefixed(2), b"xy", &mut out).unwrap();
            assert_eq!(out, [0, 2, b'x', b'y']);
            let err = append(Framing::LengthPrefixed(1), &[0; 256], &mut out).unwrap_err();
            assert!(err.contains("256 bytes"), "{err}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_args(args: &[&str]) -> Result<Config, clap::Error> {
        parse(std::iter::once("wallaroo-receiver").chain(args.iter().copied()))
    }

    #[test]
    fn the_command_line_defaults_to_lines_on_standard_output() {
        let config = parse_args(&["--listen", "127.0.0.1:0"]).unwrap();
        assert_eq!(config.out, "-");
        assert_eq!(config.kafka, None);
        assert_eq!(config.framing, Framing::Lines);
        assert_eq!((config.expect, config.idle_timeout), (None, None));
        let config = parse_args(&[
            "--listen",
            "127.0.0.1:0",
            "--framing",
            "header:2",
            "--expect",
            "7",
            "--idle-timeout",
            "1.5",
        ])
        .unwrap();
        assert_eq!(config.framing, Framing::LengthPrefixed(2));
        assert_eq!(config.expect, Some(7));
        assert_eq!(config.idle_timeout, Some(Duration::from_millis(1500)));
        for bad in [
            &[][..],
            &["--listen", "h:1", "--framing", "header:0"],
            &["--listen", "h:1", "--framing", "frames"],
            &["--listen", "h:1", "--expect", "0"],
            &["--listen", "h:1", "--idle-timeout", "never"],
        ] {
            assert!(parse_args(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn the_summary_says_what_is_missing() {
        let summary = Summary {
            messages: 3,
            bytes: 12,
            connections: 2,
            partitions: None,
            elapsed: Duration::from_secs(3),
            missing: Some(5),
        };
        assert_eq!(
            summary.to_string(),
            "received 3 messages (12 bytes) on 2 connections in 3.00 s, 1 msg/s; expected 5"
        );
    }

    #[test]
    fn whole_messages_from_several_connections_are_written_and_counted() {
        let dir = std::env::temp_dir().join(format!("wallaroo-receiver-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let out = dir.join("out.txt");
        let config = Config {
            listen: Some("127.0.0.1:0".into()),
            kafka: None,
            out: out.display().to_string(),
            framing: Framing::Lines,
            expect: Some(400),
            idle_timeout: Some(Duration::from_secs(20)),
        };
        let receiver = Receiver::bind(config).unwrap();
        let addr = receiver.local_addr().unwrap();
        for conn in 0..4 {
            std::thread::spawn(move || {
                let mut stream = TcpStream::connect(addr).unwrap();
                for i in 0..100 {
                    // Lines written in two pieces, so that they arrive split.
                    stream
                        .write_all(format!("c{conn} line").as_bytes())
                        .unwrap();
                    stream.write_all(format!(" {i}\n").as_bytes()).unwrap();
                }
            });
        }
        let summary = receiver.run(|_| {}).unwrap();
        assert_eq!(summary.messages, 400);
        assert_eq!(summary.missing, None);
        let text = std::fs::read_to_string(&out).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        for conn in 0..4 {
            let mine: Vec<&str> = text
                .lines()
                .filter(|l| l.starts_with(&format!("c{conn} ")))
                .collect();
            let expected: Vec<String> = (0..100).map(|i| format!("c{conn} line {i}")).collect();
            assert_eq!(mine, expected);
        }
        assert_eq!(text.lines().count(), 400);
    }
}
