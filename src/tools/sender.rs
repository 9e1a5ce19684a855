//! `wallaroo-sender`: sends messages to a wallaroo source over TCP, like Wallaroo's Giles
//! sender, or to a Kafka topic. The input is read (or generated) once, then every connection
//! sends all of it, `--repeat` times, in batched writes, paced by `--rate` if given.

use std::ffi::OsString;
use std::fmt;
use std::io::Write;
use std::net::{Shutdown, TcpStream, ToSocketAddrs};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::{value_parser, Arg, ArgGroup, ArgMatches, Command};

use super::{
    endpoint, framing_arg, kafka_args, kafka_endpoint, per_second, push_header, read_input,
    seconds, Framing, KafkaEndpoint,
};

/// Bytes gathered before one write.
const BATCH_BYTES: usize = 64 * 1024;

/// Letters of `--alphabet` votes: the first `--keys` of these.
const LETTERS: &[u8; 52] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";

/// What to send.
#[derive(Clone, Debug, PartialEq)]
pub enum Input {
    /// A file of messages already framed (`-`: standard input), sent as is; `framing` says
    /// where each ends, to count them.
    Frames {
        /// The file.
        path: String,
        /// How the file's messages are framed.
        framing: Framing,
    },
    /// A text file (`-`: standard input), one message per line, each sent as `framing`
    /// says: as a line, or behind a length header.
    Lines {
        /// The file.
        path: String,
        /// How each line is sent.
        framing: Framing,
    },
    /// `count` Alphabet votes: a 4-byte length header, a letter, and a big-endian `u32` vote
    /// count of 1; vote `i` goes to letter `i % keys` of `a`..`z`, `A`..`Z`.
    Alphabet {
        /// Votes to make.
        count: u64,
        /// Letters to spread them over, 1 to 52.
        keys: usize,
    },
}

/// What key a Kafka record gets (`--key`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum KeyBy {
    /// No key: the records take turns on the partitions (round-robin), as most producers
    /// send.
    #[default]
    None,
    /// With `--alphabet`: the vote's letter, so that a letter's votes share a partition.
    Letter,
}

/// The sender's command line, parsed.
#[derive(Clone, Debug, PartialEq)]
pub struct Config {
    /// `HOST:PORT` to connect to, or `kafka:TOPIC`.
    pub to: String,
    /// The topic and its brokers when `to` is `kafka:TOPIC`.
    pub kafka: Option<KafkaEndpoint>,
    /// The key of each Kafka record.
    pub key: KeyBy,
    /// What to send.
    pub input: Input,
    /// Messages per second over all connections; `None` sends as fast as possible.
    pub rate: Option<f64>,
    /// Connections, each sending the whole input.
    pub connections: usize,
    /// Times each connection sends the input.
    pub repeat: u64,
    /// How long to keep trying to connect.
    pub connect_timeout: Duration,
    /// The name of a resumable stream (`--stream`): the sender resumes where the
    /// application says, after any disconnection, until every message is applied.
    pub stream: Option<String>,
}

/// The command line: every flag with its help.
pub fn command() -> Command {
    Command::new("wallaroo-sender")
        .version(env!("CARGO_PKG_VERSION"))
        .about("Send messages to a wallaroo application's TCP source, or to a Kafka topic.")
        .long_about(
            "Send messages to a wallaroo application's TCP source, or to a Kafka topic.\n\n\
             The input is a file of frames, text lines, or generated Alphabet votes. Text lines \
             need --framing, to match the application's decoder: --framing lines for \
             #[decoder(lines)], --framing header:N for #[decoder(header_length = N)] \
             (#[decoder] alone reads header:4). The input is read whole first, then each connection sends all of it, --repeat times, in large writes. \
             A progress line (messages sent, rate) goes to standard error every second, and a \
             summary at the end. The sender stops by itself once everything is sent; it exits \
             with status 1 if it cannot connect or a connection fails, 2 on a usage error.\n\n\
             With --to kafka:TOPIC (cargo feature `kafka`), each message is one record of TOPIC \
             at --brokers: its payload without framing (no length header, no newline), as the \
             application's decoder sees it. Records have no key and take turns on the \
             partitions, unless --key letter keys Alphabet votes by their letter. The sender \
             waits up to --connect-timeout for the brokers, checks that the topic exists \
             (waiting for it too if the brokers were still starting), and counts a message as \
             sent once the broker has acknowledged it.",
        )
        .arg(
            Arg::new("to")
                .long("to")
                .value_name("HOST:PORT|kafka:TOPIC")
                .required(true)
                .value_parser(endpoint)
                .help("Where the application's source listens, or the Kafka topic to write to"),
        )
        .args(kafka_args("to"))
        .arg(
            Arg::new("key")
                .long("key")
                .value_name("letter")
                .value_parser(key_by)
                .requires("alphabet")
                .help(
                    "With --to kafka:TOPIC and --alphabet: key each vote by its letter \
                     [default: no key, the records take turns on the partitions]",
                ),
        )
        .arg(
            Arg::new("frames")
                .long("frames")
                .value_name("PATH")
                .help(
                    "Send a file of frames as is (- for standard input); --framing says how \
                     they are framed [default: header:4]",
                ),
        )
        .arg(
            Arg::new("lines")
                .long("lines")
                .value_name("PATH")
                .requires("framing")
                .help(
                    "Send a text file (- for standard input), one message per line, framed as \
                     --framing says",
                ),
        )
        .arg(
            Arg::new("alphabet")
                .long("alphabet")
                .value_name("COUNT")
                .value_parser(value_parser!(u64).range(1..))
                .help(
                    "Send COUNT generated Alphabet votes: a 4-byte length header, a letter, and \
                     a big-endian u32 vote count of 1; the letters take turns (see --keys)",
                ),
        )
        .group(
            ArgGroup::new("input")
                .args(["frames", "lines", "alphabet"])
                .required(true),
        )
        .arg(
            Arg::new("keys")
                .long("keys")
                .value_name("N")
                .value_parser(value_parser!(u64).range(1..=52))
                .default_value("26")
                .requires("alphabet")
                .conflicts_with_all(["frames", "lines"])
                .help("With --alphabet: how many letters the votes go to, the first N of a-z then A-Z"),
        )
        .arg(
            framing_arg()
                .conflicts_with("alphabet")
                .help(
                    "How messages are framed on the wire: `lines` (each ends in a newline, for \
                     #[decoder(lines)]) or `header:N` (each behind an N-byte big-endian length \
                     header, for #[decoder(header_length = N)]; #[decoder] alone is header:4)",
                ),
        )
        .arg(
            Arg::new("rate")
                .long("rate")
                .value_name("MSGS_PER_SEC")
                .value_parser(positive_rate)
                .help("Messages per second over all connections [default: as fast as possible]"),
        )
        .arg(
            Arg::new("connections")
                .long("connections")
                .value_name("N")
                .value_parser(value_parser!(u64).range(1..=1024))
                .default_value("1")
                .help(
                    "Connections to open; each sends the whole input (so N times the messages); \
                     1 with kafka:TOPIC",
                ),
        )
        .arg(
            Arg::new("repeat")
                .long("repeat")
                .value_name("N")
                .value_parser(value_parser!(u64).range(1..))
                .default_value("1")
                .help("Times each connection sends the input"),
        )
        .arg(
            Arg::new("stream")
                .long("stream")
                .value_name("NAME")
                .help(
                    "Speak the resumable protocol as stream NAME (NAME/2, NAME/3… for more \
                     connections): resume where the application says after a disconnection or \
                     a restart, and end once it has applied every message",
                ),
        )
        .arg(
            Arg::new("connect-timeout")
                .long("connect-timeout")
                .value_name("SECS")
                .value_parser(seconds)
                .default_value("10")
                .help(
                    "Keep trying to connect for this long (the application, or the Kafka \
                     brokers, may still be starting)",
                ),
        )
}

fn positive_rate(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(rate) if rate.is_finite() && rate > 0.0 => Ok(rate),
        _ => Err(format!(
            "`{text}` is not a positive number of messages a second"
        )),
    }
}

fn key_by(text: &str) -> Result<KeyBy, String> {
    #[cfg(feature = "kafka")]
    return match text {
        "letter" => Ok(KeyBy::Letter),
        _ => Err(format!(
            "`{text}`: the only key is `letter`, the vote's letter"
        )),
    };
    #[cfg(not(feature = "kafka"))]
    Err(super::without_kafka(text))
}

/// Parses a command line (the first item is the program name).
pub fn parse<I, T>(argv: I) -> Result<Config, clap::Error>
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let mut command = command();
    let matches = command.try_get_matches_from_mut(argv)?;
    let kafka = kafka_endpoint(&mut command, &matches, "to")?;
    if kafka.is_some() {
        for tcp_only in ["connections", "stream"] {
            if matches.value_source(tcp_only) == Some(clap::parser::ValueSource::CommandLine) {
                return Err(command.error(
                    clap::error::ErrorKind::ArgumentConflict,
                    format!("--{tcp_only} goes with --to HOST:PORT, not with kafka:TOPIC"),
                ));
            }
        }
    }
    Ok(Config {
        kafka,
        ..config(&matches)
    })
}

fn config(matches: &ArgMatches) -> Config {
    let number = |id: &str| *matches.get_one::<u64>(id).expect("has a default");
    let framing = matches.get_one::<Framing>("framing").copied();
    let input = if let Some(path) = matches.get_one::<String>("frames") {
        Input::Frames {
            path: path.clone(),
            framing: framing.unwrap_or(Framing::LengthPrefixed(4)),
        }
    } else if let Some(path) = matches.get_one::<String>("lines") {
        Input::Lines {
            path: path.clone(),
            framing: framing.expect("--lines requires --framing"),
        }
    } else {
        Input::Alphabet {
            count: number("alphabet"),
            keys: number("keys") as usize,
        }
    };
    Config {
        to: matches.get_one::<String>("to").expect("required").clone(),
        kafka: None,
        key: matches.get_one::<KeyBy>("key").copied().unwrap_or_default(),
        input,
        rate: matches.get_one::<f64>("rate").copied(),
        connections: number("connections") as usize,
        repeat: number("repeat"),
        connect_timeout: *matches
            .get_one::<Duration>("connect-timeout")
            .expect("has a default"),
        stream: matches.get_one::<String>("stream").cloned(),
    }
}

/// The messages one pass of the input sends.
#[derive(Debug)]
pub enum Messages {
    /// Messages held in memory: `bytes`, and where each message ends in them.
    Stored {
        /// The messages, back to back.
        bytes: Vec<u8>,
        /// The end offset of each message.
        ends: Vec<usize>,
        /// How they are framed.
        framing: Framing,
    },
    /// Alphabet votes, made as they are sent.
    Votes {
        /// Votes in one pass.
        count: u64,
        /// The letters they take turns on.
        letters: Vec<u8>,
    },
}

impl Messages {
    /// Reads or prepares the input.
    pub fn load(input: &Input) -> Result<Messages, String> {
        match input {
            Input::Frames { path, framing } => {
                let bytes = read_input(path)?;
                Messages::frames(bytes, *framing).map_err(|e| format!("{path}: {e}"))
            }
            Input::Lines { path, framing } => {
                let text = read_input(path)?;
                Messages::lines(&text, *framing).map_err(|e| format!("{path}: {e}"))
            }
            Input::Alphabet { count, keys } => Ok(Messages::Votes {
                count: *count,
                letters: LETTERS[..*keys].to_vec(),
            }),
        }
    }

    /// The messages of `bytes`, framed as `framing` says.
    pub fn frames(bytes: Vec<u8>, framing: Framing) -> Result<Messages, String> {
        let mut ends = Vec::new();
        let mut at = 0;
        while at < bytes.len() {
            let length = framing.first_message(&bytes[at..]).ok_or_else(|| {
                format!(
                    "frame #{} at byte {at} is cut off by the end of the input (is --framing {framing} right?)",
                    ends.len() + 1
                )
            })?;
            at += length;
            ends.push(at);
        }
        if ends.is_empty() {
            return Err("no frames".into());
        }
        Ok(Messages::Stored {
            bytes,
            ends,
            framing,
        })
    }

    /// The lines of `text` (without `\n` or `\r\n`), each framed as `framing` says: behind
    /// a length header, or as a line ending in `\n`.
    pub fn lines(text: &[u8], framing: Framing) -> Result<Messages, String> {
        let text = text.strip_suffix(b"\n").unwrap_or(text);
        if text.is_empty() {
            return Err("no lines".into());
        }
        let mut bytes = Vec::with_capacity(text.len() + 8);
        let mut ends = Vec::new();
        for (number, line) in text.split(|&b| b == b'\n').enumerate() {
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            match framing {
                Framing::LengthPrefixed(header) => {
                    if !push_header(&mut bytes, line.len(), header) {
                        return Err(format!(
                            "line {} has {} bytes, too long for a {header}-byte length header",
                            number + 1,
                            line.len()
                        ));
                    }
                    bytes.extend_from_slice(line);
                }
                Framing::Lines => {
                    bytes.extend_from_slice(line);
                    bytes.push(b'\n');
                }
            }
            ends.push(bytes.len());
        }
        Ok(Messages::Stored {
            bytes,
            ends,
            framing,
        })
    }

    /// Messages in one pass.
    pub fn len(&self) -> u64 {
        match self {
            Messages::Stored { ends, .. } => ends.len() as u64,
            Messages::Votes { count, .. } => *count,
        }
    }

    /// True if one pass sends nothing.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Appends message `index` (below [`Messages::len`]) to `out`.
    pub fn append(&self, index: u64, out: &mut Vec<u8>) {
        match self {
            Messages::Stored { bytes, ends, .. } => {
                let i = index as usize;
                let start = if i == 0 { 0 } else { ends[i - 1] };
                out.extend_from_slice(&bytes[start..ends[i]]);
            }
            Messages::Votes { letters, .. } => {
                out.extend_from_slice(&5u32.to_be_bytes());
                out.push(letters[(index % letters.len() as u64) as usize]);
                out.extend_from_slice(&1u32.to_be_bytes());
            }
        }
    }

    /// Appends the payload of message `index` to `out`: the message without its framing
    /// (length header, or `\n` / `\r\n`), what a decoder sees, as a Kafka record holds it.
    pub fn append_payload(&self, index: u64, out: &mut Vec<u8>) {
        let start = out.len();
        self.append(index, out);
        let header = match self {
            Messages::Stored {
                framing: Framing::LengthPrefixed(header),
                ..
            } => *header,
            Messages::Stored {
                framing: Framing::Lines,
                ..
            } => {
                let line = &out[start..];
                let line = line.strip_suffix(b"\n").unwrap_or(line);
                let kept = line.strip_suffix(b"\r").unwrap_or(line).len();
                out.truncate(start + kept);
                0
            }
            Messages::Votes { .. } => 4,
        };
        out.drain(start..start + header);
    }

    /// The letter of vote `index`, for `--key letter`; `None` for messages that are not
    /// votes.
    pub fn letter(&self, index: u64) -> Option<u8> {
        match self {
            Messages::Votes { letters, .. } => {
                Some(letters[(index % letters.len() as u64) as usize])
            }
            Messages::Stored { .. } => None,
        }
    }
}

/// What a run sent.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Summary {
    /// Messages sent, over all connections.
    pub messages: u64,
    /// Bytes sent.
    pub bytes: u64,
    /// Connections used.
    pub connections: usize,
    /// With `kafka:TOPIC`: the topic's partitions.
    pub partitions: Option<usize>,
    /// From the first connection to the last byte written.
    pub elapsed: Duration,
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "sent {} messages ({} bytes) ", self.messages, self.bytes)?;
        match self.partitions {
            Some(partitions) => write!(f, "to {partitions} partitions")?,
            None => write!(
                f,
                "over {} connection{}",
                self.connections,
                if self.connections == 1 { "" } else { "s" }
            )?,
        }
        write!(
            f,
            " in {:.2} s, {} msg/s",
            self.elapsed.as_secs_f64(),
            per_second(self.messages, self.elapsed)
        )
    }
}

/// Counters the connections share with the progress reporter.
#[derive(Default)]
struct Counters {
    messages: AtomicU64,
    bytes: AtomicU64,
}

/// Connects to `to`, retrying until `timeout` has passed.
fn connect(to: &str, timeout: Duration) -> Result<TcpStream, String> {
    let deadline = Instant::now() + timeout;
    loop {
        let attempt = to
            .to_socket_addrs()
            .map_err(|e| format!("cannot resolve {to}: {e}"))?
            .map(TcpStream::connect)
            .find_map(Result::ok);
        match attempt {
            Some(stream) => return Ok(stream),
            None if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(50)),
            None => {
                return Err(format!(
                    "cannot connect to {to} (tried for {:.1} s)",
                    timeout.as_secs_f64()
                ))
            }
        }
    }
}

/// How many of messages `from..total` are due by now at `rate` a second since `start`
/// (all of them without a rate), with `sent` of them sent; `None` after waiting for the next
/// one, if none was due.
fn due(start: Instant, rate: Option<f64>, from: u64, sent: u64, total: u64) -> Option<u64> {
    let due = match rate {
        None => total,
        Some(rate) => (from + (start.elapsed().as_secs_f64() * rate) as u64 + 1).min(total),
    };
    if due > sent {
        return Some(due);
    }
    let next = Duration::from_secs_f64((sent - from) as f64 / rate.unwrap_or(f64::INFINITY));
    if let Some(wait) = (start + next).checked_duration_since(Instant::now()) {
        std::thread::sleep(wait);
    }
    None
}

/// Sends messages `from..total` (`messages` over and over) on `stream`, at most `rate` a
/// second.
fn send(
    mut stream: TcpStream,
    messages: &Messages,
    from: u64,
    total: u64,
    rate: Option<f64>,
    counters: &Counters,
) -> std::io::Result<()> {
    let _ = stream.set_nodelay(true);
    let mut batch = Vec::with_capacity(BATCH_BYTES * 2);
    let start = Instant::now();
    let mut sent = from;
    while sent < total {
        let Some(due) = due(start, rate, from, sent, total) else {
            continue;
        };
        batch.clear();
        let first = sent;
        while sent < due && batch.len() < BATCH_BYTES {
            messages.append(sent % messages.len(), &mut batch);
            sent += 1;
        }
        stream.write_all(&batch)?;
        counters.messages.fetch_add(sent - first, Ordering::Relaxed);
        counters
            .bytes
            .fetch_add(batch.len() as u64, Ordering::Relaxed);
    }
    stream.flush()?;
    // Tell the receiving end that this is all; it reads to the end.
    let _ = stream.shutdown(Shutdown::Write);
    Ok(())
}

/// Sends `total` messages as the resumable stream `name`: each connection starts where the
/// application says, a lost connection is made again, and it ends once the application
/// has applied every message (or `timeout` passes without it getting any further).
fn send_resumable(
    config: &Config,
    name: &str,
    messages: &Messages,
    total: u64,
    rate: Option<f64>,
    counters: &Counters,
) -> Result<(), String> {
    let mut applied = 0;
    let mut progress_at = Instant::now();
    loop {
        if progress_at.elapsed() > config.connect_timeout {
            return Err(format!(
                "stream {name}: the application applied {applied} of {total} messages and got no \
                 further for {:.1} s (does the pipeline keep state? only state partitions report progress)",
                config.connect_timeout.as_secs_f64()
            ));
        }
        let mut stream = connect(&config.to, config.connect_timeout)?;
        let next = match crate::source::resume::connect(&mut stream, name) {
            Ok(next) => next,
            // The application went away during the handshake: try again.
            Err(_) => continue,
        };
        if next - 1 > applied {
            applied = next - 1;
            progress_at = Instant::now();
        }
        if next > total {
            return Ok(());
        }
        if send(stream, messages, next - 1, total, rate, counters).is_ok() {
            // All sent: ask again shortly, until every message is applied.
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// Sends as `config` says, calling `progress` with a line every second while it runs.
pub fn run(config: &Config, mut progress: impl FnMut(&str)) -> Result<Summary, String> {
    let messages = Arc::new(Messages::load(&config.input)?);
    let total = messages.len() * config.repeat;
    if let Some(_endpoint) = &config.kafka {
        #[cfg(feature = "kafka")]
        return kafka::send(config, _endpoint, &messages, total, progress);
        #[cfg(not(feature = "kafka"))]
        unreachable!("kafka: endpoints are refused when the command line is parsed");
    }
    let rate = config.rate.map(|rate| rate / config.connections as f64);
    let counters = Arc::new(Counters::default());
    let start = Instant::now();
    let (done_tx, done) = std::sync::mpsc::channel();
    for connection in 1..=config.connections {
        let stream = connect(&config.to, config.connect_timeout)?;
        let (messages, counters, done_tx) = (
            Arc::clone(&messages),
            Arc::clone(&counters),
            done_tx.clone(),
        );
        let config = config.clone();
        std::thread::spawn(move || {
            let result = match &config.stream {
                Some(name) => {
                    drop(stream);
                    let name = match connection {
                        1 => name.clone(),
                        n => format!("{name}/{n}"),
                    };
                    send_resumable(&config, &name, &messages, total, rate, &counters)
                }
                None => send(stream, &messages, 0, total, rate, &counters)
                    .map_err(|e| format!("connection {connection}: {e}")),
            };
            let _ = done_tx.send(result);
        });
    }
    drop(done_tx);

    let mut finished = 0;
    let mut tick = start;
    let mut last = 0;
    while finished < config.connections {
        tick += Duration::from_secs(1);
        let wait = tick.saturating_duration_since(Instant::now());
        match done.recv_timeout(wait) {
            Ok(result) => {
                result?;
                finished += 1;
                tick -= Duration::from_secs(1);
            }
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                let now = counters.messages.load(Ordering::Relaxed);
                progress(&format!(
                    "{now} messages, {} msg/s",
                    per_second(now - last, Duration::from_secs(1))
                ));
                last = now;
            }
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => break,
        }
    }
    Ok(Summary {
        messages: counters.messages.load(Ordering::Relaxed),
        bytes: counters.bytes.load(Ordering::Relaxed),
        connections: config.connections,
        partitions: None,
        elapsed: start.elapsed(),
    })
}

/// Sending to a Kafka topic.
#[cfg(feature = "kafka")]
mod kafka {
    use std::time::{Duration, Instant};

    use super::{per_second, Config, KafkaEndpoint, KeyBy, Messages, Summary};
    use crate::kafka::rdkafka::error::KafkaError;
    use crate::kafka::rdkafka::producer::{BaseProducer, BaseRecord, Producer};
    use crate::kafka::rdkafka::types::RDKafkaErrorCode;
    use crate::kafka::Deliveries;

    /// Calls `progress` once a second with the records acknowledged.
    struct Progress<F> {
        report: F,
        tick: Instant,
        last: u64,
    }

    impl<F: FnMut(&str)> Progress<F> {
        fn report(&mut self, delivery: &Deliveries) {
            if Instant::now() < self.tick {
                return;
            }
            self.tick += Duration::from_secs(1);
            let now = delivery.acknowledged();
            (self.report)(&format!(
                "{now} messages, {} msg/s",
                per_second(now - self.last, Duration::from_secs(1))
            ));
            self.last = now;
        }
    }

    /// Sends `total` messages (`messages` over and over) to the endpoint's topic, one
    /// record each, and waits until the brokers have acknowledged them all.
    pub(super) fn send(
        config: &Config,
        endpoint: &KafkaEndpoint,
        messages: &Messages,
        total: u64,
        progress: impl FnMut(&str),
    ) -> Result<Summary, String> {
        let topic = endpoint.topic.as_str();
        let options = endpoint.client_options();
        let partitions =
            crate::tools::kafka_partitions(&options, topic, Some(config.connect_timeout))?;
        let producer: BaseProducer<Deliveries> = options
            .producer_config()
            .create_with_context(Deliveries::default())
            .map_err(|e| format!("cannot create the Kafka producer: {e}"))?;
        let delivery = producer.context();
        let start = Instant::now();
        let mut progress = Progress {
            report: progress,
            tick: start + Duration::from_secs(1),
            last: 0,
        };
        let mut payload = Vec::new();
        let mut sent = 0;
        while sent < total {
            let Some(due) = super::due(start, config.rate, 0, sent, total) else {
                continue;
            };
            while sent < due {
                let index = sent % messages.len();
                payload.clear();
                messages.append_payload(index, &mut payload);
                let key = match config.key {
                    KeyBy::Letter => messages.letter(index).map(|letter| [letter]),
                    KeyBy::None => None,
                };
                let mut record = BaseRecord::<[u8], [u8]>::to(topic).payload(&payload[..]);
                record = match &key {
                    Some(key) => record.key(&key[..]),
                    // Round-robin: record i to partition i modulo the partitions.
                    None => record.partition((sent % partitions as u64) as i32),
                };
                loop {
                    match producer.send(record) {
                        Ok(()) => break,
                        Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                            record = back;
                            producer.poll(Duration::from_millis(10));
                            progress.report(delivery);
                        }
                        Err((e, _)) => return Err(format!("cannot send to topic {topic}: {e}")),
                    }
                }
                sent += 1;
                if sent % 1024 == 0 {
                    producer.poll(Duration::ZERO);
                    delivery.check()?;
                    progress.report(delivery);
                }
            }
            producer.poll(Duration::ZERO);
            delivery.check()?;
            progress.report(delivery);
        }
        // Until every record is acknowledged, or has failed (after librdkafka's
        // message.timeout.ms).
        while producer.flush(Duration::from_millis(200)).is_err() {
            delivery.check()?;
            progress.report(delivery);
        }
        delivery.check()?;
        Ok(Summary {
            messages: delivery.acknowledged(),
            bytes: delivery.bytes(),
            connections: 1,
            partitions: Some(partitions),
            elapsed: start.elapsed(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_args(args: &[&str]) -> Result<Config, clap::Error> {
        parse(std::iter::once("wallaroo-sender").chain(args.iter().copied()))
    }

    fn all(messages: &Messages) -> Vec<u8> {
        let mut out = Vec::new();
        for i in 0..messages.len() {
            messages.append(i, &mut out);
        }
        out
    }

    #[test]
    fn the_command_line_picks_one_input() {
        let config = parse_args(&["--to", "h:1", "--alphabet", "10", "--keys", "3"]).unwrap();
        assert_eq!(config.input, Input::Alphabet { count: 10, keys: 3 });
        assert_eq!(
            (config.connections, config.repeat, config.rate),
            (1, 1, None)
        );
        let config = parse_args(&["--to", "h:1", "--lines", "-", "--framing", "lines"]).unwrap();
        assert_eq!(
            config.input,
            Input::Lines {
                path: "-".into(),
                framing: Framing::Lines
            }
        );
        let config =
            parse_args(&["--to", "h:1", "--frames", "f", "--framing", "header:2"]).unwrap();
        assert_eq!(
            config.input,
            Input::Frames {
                path: "f".into(),
                framing: Framing::LengthPrefixed(2)
            }
        );
        let config = parse_args(&["--to", "h:1", "--frames", "f"]).unwrap();
        assert_eq!(
            config.input,
            Input::Frames {
                path: "f".into(),
                framing: Framing::LengthPrefixed(4)
            }
        );
        for bad in [
            &["--to", "h:1"][..],
            &["--to", "h:1", "--frames", "f", "--lines", "g"],
            &["--to", "h:1", "--lines", "f"],
            &["--to", "h:1", "--alphabet", "5", "--framing", "header:4"],
            &["--to", "h:1", "--lines", "f", "--keys", "3"],
            &["--to", "h:1", "--alphabet", "0"],
            &["--to", "h:1", "--alphabet", "5", "--keys", "53"],
            &["--to", "h:1", "--alphabet", "5", "--rate", "0"],
            &["--to", "h:1", "--lines", "f", "--framing", "header:9"],
            &["--alphabet", "5"],
        ] {
            assert!(parse_args(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn frames_are_split_at_their_headers() {
        let bytes = vec![0, 2, b'h', b'i', 0, 0, 0, 1, b'!'];
        let messages = Messages::frames(bytes.clone(), Framing::LengthPrefixed(2)).unwrap();
        assert_eq!(messages.len(), 3);
        let mut second = Vec::new();
        messages.append(1, &mut second);
        assert_eq!(second, [0, 0]);
        assert_eq!(all(&messages), bytes);
        let err = Messages::frames(vec![0, 0, 0, 9, 1], Framing::LengthPrefixed(4)).unwrap_err();
        assert!(err.contains("frame #1 at byte 0 is cut off"), "{err}");
    }

    #[test]
    fn lines_are_framed_or_kept_as_lines() {
        let framed = Messages::lines(b"ab\r\n\nc", Framing::LengthPrefixed(1)).unwrap();
        assert_eq!(framed.len(), 3);
        assert_eq!(all(&framed), [2, b'a', b'b', 0, 1, b'c']);
        let raw = Messages::lines(b"ab\r\n\nc\n", Framing::Lines).unwrap();
        assert_eq!(all(&raw), b"ab\n\nc\n");
        assert!(Messages::lines(&[b'x'; 256], Framing::LengthPrefixed(1)).is_err());
        assert!(Messages::lines(b"", Framing::Lines).is_err());
    }

    #[test]
    fn votes_take_turns_on_the_letters() {
        let votes = Messages::load(&Input::Alphabet { count: 3, keys: 2 }).unwrap();
        assert_eq!(
            all(&votes),
            [
                0, 0, 0, 5, b'a', 0, 0, 0, 1, 0, 0, 0, 5, b'b', 0, 0, 0, 1, 0, 0, 0, 5, b'a', 0, 0,
                0, 1
            ]
        );
    }

    #[test]
    fn the_summary_reads_well() {
        let summary = Summary {
            messages: 1000,
            bytes: 9000,
            connections: 1,
            partitions: None,
            elapsed: Duration::from_millis(500),
        };
        assert_eq!(
            summary.to_string(),
            "sent 1000 messages (9000 bytes) over 1 connection in 0.50 s, 2000 msg/s"
        );
    }
}
