//! The logic of the `wallaroo-sender` and `wallaroo-receiver` binaries, kept here so that it
//! is unit-tested. Not a public API: it changes without notice.

pub mod receiver;
pub mod sender;

use std::fmt;
use std::io::Read;
use std::str::FromStr;
use std::time::Duration;

use clap::{Arg, ArgAction, ArgMatches};

/// How a byte stream is cut into messages: `--framing lines` or `--framing header:N`, as
/// the application's decoder reads them (`#[decoder(lines)]`, `#[decoder(header_length = N)]`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Framing {
    /// Newline-terminated lines.
    Lines,
    /// A big-endian length header of this many bytes (1 to 8), then the payload.
    LengthPrefixed(usize),
}

impl FromStr for Framing {
    type Err = String;

    /// `lines` or `header:N`, N from 1 to 8.
    ///
    /// ```
    /// use wallaroo::tools::Framing;
    /// assert_eq!("lines".parse(), Ok(Framing::Lines));
    /// assert_eq!("header:2".parse(), Ok(Framing::LengthPrefixed(2)));
    /// assert!("header:9".parse::<Framing>().is_err());
    /// ```
    fn from_str(text: &str) -> Result<Framing, String> {
        match text.split_once(':') {
            None if text == "lines" => Ok(Framing::Lines),
            Some(("header", bytes)) => match bytes.parse::<usize>() {
                Ok(bytes @ 1..=8) => Ok(Framing::LengthPrefixed(bytes)),
                _ => Err(format!("`{bytes}`: a length header has 1 to 8 bytes")),
            },
            _ => Err(format!(
                "`{text}` is not a framing: `lines` for newline-delimited text \
                 (`#[decoder(lines)]`), or `header:N` for an N-byte big-endian length header \
                 (`#[decoder(header_length = N)]`; `#[decoder]` alone is `header:4`)"
            )),
        }
    }
}

impl fmt::Display for Framing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Framing::Lines => f.write_str("lines"),
            Framing::LengthPrefixed(header) => write!(f, "header:{header}"),
        }
    }
}

/// The `--framing` flag both tools take; each adds its help and default.
fn framing_arg() -> Arg {
    Arg::new("framing")
        .long("framing")
        .value_name("lines|header:N")
        .value_parser(Framing::from_str)
}

impl Framing {
    /// The length of the first message of `bytes`, if it is whole.
    ///
    /// ```
    /// use wallaroo::tools::Framing;
    /// assert_eq!(Framing::Lines.first_message(b"ab\nc"), Some(3));
    /// assert_eq!(Framing::LengthPrefixed(2).first_message(&[0, 1, b'x', 0]), Some(3));
    /// assert_eq!(Framing::LengthPrefixed(2).first_message(&[0, 2, b'x']), None);
    /// ```
    pub fn first_message(self, bytes: &[u8]) -> Option<usize> {
        match self {
            Framing::Lines => bytes.iter().position(|&b| b == b'\n').map(|at| at + 1),
            Framing::LengthPrefixed(header) => {
                let length = usize::try_from(read_be(bytes.get(..header)?)).ok()?;
                let end = header.checked_add(length)?;
                (end <= bytes.len()).then_some(end)
            }
        }
    }

    /// The length of the longest prefix of `bytes` made of whole messages, and how many
    /// messages it holds.
    ///
    /// ```
    /// use wallaroo::tools::Framing;
    /// assert_eq!(Framing::Lines.whole_messages(b"a\nbc\nd"), (5, 2));
    /// assert_eq!(Framing::LengthPrefixed(1).whole_messages(&[1, b'x', 2, b'y']), (2, 1));
    /// ```
    pub fn whole_messages(self, bytes: &[u8]) -> (usize, u64) {
        match self {
            Framing::Lines => match bytes.iter().rposition(|&b| b == b'\n') {
                Some(last) => {
                    let whole = &bytes[..=last];
                    (
                        whole.len(),
                        whole.iter().filter(|&&b| b == b'\n').count() as u64,
                    )
                }
                None => (0, 0),
            },
            Framing::LengthPrefixed(_) => {
                let (mut at, mut count) = (0usize, 0u64);
                while let Some(length) = self.first_message(&bytes[at..]) {
                    at += length;
                    count += 1;
                }
                (at, count)
            }
        }
    }
}

/// Reads a big-endian unsigned integer of up to 8 bytes.
fn read_be(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0, |acc, &b| (acc << 8) | u64::from(b))
}

/// Appends `length` as a big-endian header of `header` bytes; `false` if it does not fit.
///
/// ```
/// let mut out = Vec::new();
/// assert!(wallaroo::tools::push_header(&mut out, 258, 2));
/// assert_eq!(out, [1, 2]);
/// assert!(!wallaroo::tools::push_header(&mut out, 256, 1));
/// ```
pub fn push_header(out: &mut Vec<u8>, length: usize, header: usize) -> bool {
    let length = length as u64;
    if header < 8 && length >> (8 * header) != 0 {
        return false;
    }
    out.extend_from_slice(&length.to_be_bytes()[8 - header..]);
    true
}

/// Sends the tools' log lines (waiting for Kafka brokers, say) to standard error; `RUST_LOG`
/// filters them (default: warnings, and librdkafka's errors only).
pub fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn,librdkafka=error"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false)
        .try_init();
}

/// A `kafka:TOPIC` endpoint of a tool (`--to`, `--from`) and the flags that go with it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KafkaEndpoint {
    /// The topic.
    pub topic: String,
    /// `--brokers`: `HOST:PORT` of each bootstrap broker.
    pub brokers: Vec<String>,
    /// `--group` (the receiver's): the consumer group to read in.
    pub group: Option<String>,
    /// `--kafka-option KEY=VALUE`: librdkafka properties, in order.
    pub options: Vec<(String, String)>,
}

#[cfg(feature = "kafka")]
impl KafkaEndpoint {
    /// The client settings of this endpoint.
    pub fn client_options(&self) -> crate::kafka::KafkaOptions {
        crate::kafka::KafkaOptions {
            brokers: self.brokers.clone(),
            group: self.group.clone(),
            options: self.options.clone(),
        }
    }
}

/// Waits for the brokers of `options` (up to `timeout`; `None`: as long as it takes), then
/// for `topic` to exist if the brokers were still starting (they may be creating it), and
/// returns its partition count; errors say what to do.
#[cfg(feature = "kafka")]
fn kafka_partitions(
    options: &crate::kafka::KafkaOptions,
    topic: &str,
    timeout: Option<Duration>,
) -> Result<usize, String> {
    let start = std::time::Instant::now();
    let waited = crate::kafka::wait_for_brokers(options, timeout).map_err(|e| e.to_string())?;
    let topic_wait = match (waited.is_zero(), timeout) {
        (true, _) => Duration::ZERO,
        (false, Some(timeout)) => timeout.saturating_sub(start.elapsed()),
        (false, None) => Duration::from_secs(10),
    };
    crate::kafka::wait_for_topic(options, topic, topic_wait).map_err(|e| e.to_string())
}

/// Why a Kafka flag is refused by tools built without the `kafka` feature.
#[cfg(not(feature = "kafka"))]
fn without_kafka(what: &str) -> String {
    format!(
        "`{what}`: this tool was built without Kafka support; build it with \
         `cargo build --features kafka --bins`"
    )
}

/// The topic of `kafka:TOPIC`, or `None` for another endpoint.
fn kafka_topic(endpoint: &str) -> Result<Option<String>, String> {
    #[cfg(feature = "kafka")]
    return crate::kafka::topic_of(endpoint)
        .map(|topic| topic.map(str::to_string))
        .map_err(|e| e.to_string());
    #[cfg(not(feature = "kafka"))]
    match endpoint.starts_with("kafka:") {
        true => Err(without_kafka(endpoint)),
        false => Ok(None),
    }
}

/// Checks an endpoint flag's value (`--to`, `--from`): a `kafka:` one needs the feature and
/// a valid topic name.
fn endpoint(text: &str) -> Result<String, String> {
    kafka_topic(text).map(|_| text.to_string())
}

fn brokers(text: &str) -> Result<Vec<String>, String> {
    #[cfg(feature = "kafka")]
    return crate::kafka::KafkaOptions::parse_brokers(text).map_err(|e| e.to_string());
    #[cfg(not(feature = "kafka"))]
    Err(without_kafka(text))
}

fn kafka_option(text: &str) -> Result<(String, String), String> {
    #[cfg(feature = "kafka")]
    return crate::kafka::KafkaOptions::parse_option(text).map_err(|e| e.to_string());
    #[cfg(not(feature = "kafka"))]
    Err(without_kafka(text))
}

/// A `--group` name (the receiver's).
fn kafka_group(text: &str) -> Result<String, String> {
    #[cfg(feature = "kafka")]
    return match text.trim() {
        "" => Err("a consumer group needs a name".into()),
        name => Ok(name.to_string()),
    };
    #[cfg(not(feature = "kafka"))]
    Err(without_kafka(text))
}

/// `--brokers` and `--kafka-option`, which both tools take with a `kafka:` endpoint
/// (named by `endpoint_flag`).
fn kafka_args(endpoint_flag: &str) -> [Arg; 2] {
    [
        Arg::new("brokers")
            .long("brokers")
            .value_name("HOST:PORT[,HOST:PORT…]")
            .value_parser(brokers)
            .help(format!(
                "The Kafka bootstrap brokers, with --{endpoint_flag} kafka:TOPIC (cargo feature `kafka`)"
            )),
        Arg::new("kafka-option")
            .long("kafka-option")
            .value_name("KEY=VALUE")
            .value_parser(kafka_option)
            .action(ArgAction::Append)
            .help(
                "A librdkafka property for the Kafka client, repeatable, applied last \
                 (e.g. session.timeout.ms=6000)",
            ),
    ]
}

/// The Kafka endpoint named by flag `id` (already checked by [`endpoint`]), with its
/// brokers and options; `None` for another endpoint, an error if `--brokers` is missing.
fn kafka_endpoint(
    command: &mut clap::Command,
    matches: &ArgMatches,
    id: &str,
) -> Result<Option<KafkaEndpoint>, clap::Error> {
    let text = matches.get_one::<String>(id);
    let topic = match text {
        Some(text) => kafka_topic(text)
            .map_err(|e| command.error(clap::error::ErrorKind::ValueValidation, e))?,
        None => None,
    };
    let (Some(text), Some(topic)) = (text, topic) else {
        for kafka_only in ["brokers", "kafka-option", "group", "key"] {
            if matches.try_contains_id(kafka_only).unwrap_or(false)
                && matches.value_source(kafka_only) == Some(clap::parser::ValueSource::CommandLine)
            {
                return Err(command.error(
                    clap::error::ErrorKind::ArgumentConflict,
                    format!("--{kafka_only} goes with --{id} kafka:TOPIC"),
                ));
            }
        }
        return Ok(None);
    };
    let Some(brokers) = matches.get_one::<Vec<String>>("brokers") else {
        return Err(command.error(
            clap::error::ErrorKind::MissingRequiredArgument,
            format!("--{id} {text} needs --brokers HOST:PORT[,HOST:PORT…]"),
        ));
    };
    Ok(Some(KafkaEndpoint {
        topic,
        brokers: brokers.clone(),
        group: matches
            .try_get_one::<String>("group")
            .ok()
            .flatten()
            .cloned(),
        options: matches
            .get_many::<(String, String)>("kafka-option")
            .into_iter()
            .flatten()
            .cloned()
            .collect(),
    }))
}

/// Messages per second over `elapsed`, rounded down.
pub fn per_second(messages: u64, elapsed: Duration) -> u64 {
    let seconds = elapsed.as_secs_f64();
    if seconds > 0.0 {
        (messages as f64 / seconds) as u64
    } else {
        0
    }
}

/// The whole of the file at `path`, or of standard input for `-`.
pub fn read_input(path: &str) -> Result<Vec<u8>, String> {
    let mut bytes = Vec::new();
    let result = if path == "-" {
        std::io::stdin().lock().read_to_end(&mut bytes)
    } else {
        std::fs::File::open(path).and_then(|mut file| file.read_to_end(&mut bytes))
    };
    match result {
        Ok(_) => Ok(bytes),
        Err(e) if path == "-" => Err(format!("cannot read standard input: {e}")),
        Err(e) => Err(format!("cannot read {path}: {e}")),
    }
}

/// Parses a positive number of seconds (`0.5`, `10`).
fn seconds(text: &str) -> Result<Duration, String> {
    match text.parse::<f64>() {
        Ok(s) if s.is_finite() && s > 0.0 => Ok(Duration::from_secs_f64(s)),
        _ => Err(format!("`{text}` is not a positive number of seconds")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whole_lines_stop_at_the_last_newline() {
        assert_eq!(Framing::Lines.whole_messages(b""), (0, 0));
        assert_eq!(Framing::Lines.whole_messages(b"partial"), (0, 0));
        assert_eq!(Framing::Lines.whole_messages(b"\n\nx"), (2, 2));
    }

    #[test]
    fn whole_frames_stop_before_a_partial_header_or_payload() {
        let framing = Framing::LengthPrefixed(4);
        let mut bytes = vec![0, 0, 0, 2, b'h', b'i', 0, 0, 0, 0];
        assert_eq!(framing.whole_messages(&bytes), (10, 2));
        bytes.extend_from_slice(&[0, 0, 0, 5, b'a']);
        assert_eq!(framing.whole_messages(&bytes), (10, 2));
        bytes.truncate(12);
        assert_eq!(framing.whole_messages(&bytes), (10, 2));
        let huge = [0xff; 8];
        assert_eq!(Framing::LengthPrefixed(8).whole_messages(&huge), (0, 0));
    }

    #[test]
    fn headers_of_every_width() {
        let mut out = Vec::new();
        assert!(push_header(&mut out, 255, 1));
        assert!(push_header(&mut out, 5, 8));
        assert!(push_header(&mut out, 65_535, 2));
        assert!(!push_header(&mut out, 65_536, 2));
        assert_eq!(out, [255, 0, 0, 0, 0, 0, 0, 0, 5, 255, 255]);
    }

    #[test]
    fn seconds_must_be_positive() {
        assert_eq!(seconds("0.5"), Ok(Duration::from_millis(500)));
        assert!(seconds("0").is_err());
        assert!(seconds("-1").is_err());
        assert!(seconds("soon").is_err());
    }
}
