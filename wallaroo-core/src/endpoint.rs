//! Where sources read and sinks write: a TCP address, a file, the standard streams, or a
//! connector of the user's.
//!
//! The command line names them (`--in 127.0.0.1:7010`, `--in file:votes.bin`, `--out -`), so
//! the same application serves TCP in production and replays a file in a demo or a test.

use std::fmt;
use std::path::PathBuf;

/// Where a source reads from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Input {
    /// Listen on `HOST:PORT` and read every connection.
    Tcp(String),
    /// Read the frames of a file, then end.
    File(PathBuf),
    /// Read standard input, then end.
    Stdin,
    /// Consume a Kafka topic (cargo feature `kafka`): each record's value is one message.
    Kafka(String),
    /// The command line did not give the `index`-th `--in` address (0-based).
    Missing {
        /// Which `--in` address was asked for.
        index: usize,
    },
}

/// Where a sink writes to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Output {
    /// Connect to `HOST:PORT` (the receiver listens) and write there.
    Tcp(String),
    /// Write to a file, created or truncated.
    File(PathBuf),
    /// Write to standard output.
    Stdout,
    /// Produce to a Kafka topic (cargo feature `kafka`): each message is one record's value.
    Kafka(String),
    /// The command line did not give the `index`-th `--out` address (0-based).
    Missing {
        /// Which `--out` address was asked for.
        index: usize,
    },
}

/// Why an endpoint could not be parsed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("`{text}` is not HOST:PORT, file:PATH, kafka:TOPIC or -")]
pub struct EndpointError {
    text: String,
}

/// The prefix of a Kafka endpoint.
const KAFKA: &str = "kafka:";

/// The topic of `kafka:TOPIC`: 1 to 249 characters among `a-z A-Z 0-9 . _ -`, as Kafka
/// accepts.
fn kafka_topic(text: &str, topic: &str) -> Result<String, EndpointError> {
    let valid = !topic.is_empty()
        && topic.len() <= 249
        && topic
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if valid {
        Ok(topic.to_string())
    } else {
        Err(EndpointError {
            text: text.to_string(),
        })
    }
}

/// Splits `HOST:PORT` and checks that the port is a number.
fn check_tcp(text: &str) -> Result<(), EndpointError> {
    let bad = || EndpointError {
        text: text.to_string(),
    };
    let (host, port) = text.rsplit_once(':').ok_or_else(bad)?;
    if host.is_empty() || port.parse::<u16>().is_err() {
        return Err(bad());
    }
    Ok(())
}

impl Input {
    /// Parses `HOST:PORT`, `file:PATH`, `kafka:TOPIC` or `-` (standard input).
    ///
    /// ```
    /// use wallaroo_core::Input;
    /// assert_eq!(Input::parse("-").unwrap(), Input::Stdin);
    /// assert_eq!(Input::parse("file:votes.bin").unwrap(), Input::File("votes.bin".into()));
    /// assert_eq!(Input::parse("127.0.0.1:7010").unwrap(), Input::Tcp("127.0.0.1:7010".into()));
    /// assert_eq!(Input::parse("kafka:votes").unwrap(), Input::Kafka("votes".into()));
    /// assert!(Input::parse("7010").is_err());
    /// ```
    pub fn parse(text: &str) -> Result<Input, EndpointError> {
        if text == "-" {
            Ok(Input::Stdin)
        } else if let Some(path) = text.strip_prefix("file:") {
            Ok(Input::File(PathBuf::from(path)))
        } else if let Some(topic) = text.strip_prefix(KAFKA) {
            kafka_topic(text, topic).map(Input::Kafka)
        } else {
            check_tcp(text).map(|()| Input::Tcp(text.to_string()))
        }
    }

    /// The kind shown in the topology: `tcp`, `file`, `stdin`, `kafka`, or `unset`.
    pub fn kind(&self) -> &'static str {
        match self {
            Input::Tcp(_) => "tcp",
            Input::File(_) => "file",
            Input::Stdin => "stdin",
            Input::Kafka(_) => "kafka",
            Input::Missing { .. } => "unset",
        }
    }
}

impl Output {
    /// Parses `HOST:PORT`, `file:PATH`, `kafka:TOPIC` or `-` (standard output).
    ///
    /// ```
    /// use wallaroo_core::Output;
    /// assert_eq!(Output::parse("-").unwrap(), Output::Stdout);
    /// assert_eq!(Output::parse("localhost:7002").unwrap(), Output::Tcp("localhost:7002".into()));
    /// ```
    pub fn parse(text: &str) -> Result<Output, EndpointError> {
        if text == "-" {
            Ok(Output::Stdout)
        } else if let Some(path) = text.strip_prefix("file:") {
            Ok(Output::File(PathBuf::from(path)))
        } else if let Some(topic) = text.strip_prefix(KAFKA) {
            kafka_topic(text, topic).map(Output::Kafka)
        } else {
            check_tcp(text).map(|()| Output::Tcp(text.to_string()))
        }
    }

    /// The kind shown in the topology: `tcp`, `file`, `stdout`, `kafka`, or `unset`.
    pub fn kind(&self) -> &'static str {
        match self {
            Output::Tcp(_) => "tcp",
            Output::File(_) => "file",
            Output::Stdout => "stdout",
            Output::Kafka(_) => "kafka",
            Output::Missing { .. } => "unset",
        }
    }
}

/// Text given in code, such as `"127.0.0.1:7010"`; an unparsable text is reported when the
/// application starts.
impl From<&str> for Input {
    fn from(text: &str) -> Input {
        Input::parse(text).unwrap_or_else(|_| Input::Tcp(text.to_string()))
    }
}

/// Text given in code, such as `"127.0.0.1:7002"` or `"-"`.
impl From<&str> for Output {
    fn from(text: &str) -> Output {
        Output::parse(text).unwrap_or_else(|_| Output::Tcp(text.to_string()))
    }
}

/// Text built at run time, such as `format!("127.0.0.1:{port}")`.
impl From<String> for Input {
    fn from(text: String) -> Input {
        Input::from(text.as_str())
    }
}

/// Text built at run time.
impl From<String> for Output {
    fn from(text: String) -> Output {
        Output::from(text.as_str())
    }
}

impl fmt::Display for Input {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Input::Tcp(addr) => f.write_str(addr),
            Input::File(path) => write!(f, "file:{}", path.display()),
            Input::Stdin => f.write_str("-"),
            Input::Kafka(topic) => write!(f, "{KAFKA}{topic}"),
            Input::Missing { index } => write!(f, "--in #{} (not given)", index + 1),
        }
    }
}

impl fmt::Display for Output {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Output::Tcp(addr) => f.write_str(addr),
            Output::File(path) => write!(f, "file:{}", path.display()),
            Output::Stdout => f.write_str("-"),
            Output::Kafka(topic) => write!(f, "{KAFKA}{topic}"),
            Output::Missing { index } => write!(f, "--out #{} (not given)", index + 1),
        }
    }
}

/// What a connector is, as the topology and log lines show it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConnectorInfo {
    /// The kind of system: `"kafka"`, `"lines"`, …
    pub kind: String,
    /// Where in it: a topic, a path, a URL.
    pub address: String,
}

impl ConnectorInfo {
    /// A connector of `kind` reading or writing `address`.
    pub fn new(kind: impl Into<String>, address: impl Into<String>) -> Self {
        ConnectorInfo {
            kind: kind.into(),
            address: address.into(),
        }
    }
}

/// Why a connector gave up; the application stops and reports it.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ConnectorError(String);

impl ConnectorError {
    /// An error saying `message`.
    pub fn new(message: impl Into<String>) -> Self {
        ConnectorError(message.into())
    }

    /// Turns an I/O error into a connector error saying what failed:
    /// `.map_err(ConnectorError::io("read"))`.
    pub fn io(what: &str) -> impl FnOnce(std::io::Error) -> ConnectorError + '_ {
        move |e| ConnectorError(format!("{what}: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tcp_needs_host_and_numeric_port() {
        assert!(Input::parse("localhost:80").is_ok());
        assert!(Input::parse("[::1]:7010").is_ok());
        assert_eq!(
            Input::parse(":80").unwrap_err().to_string(),
            "`:80` is not HOST:PORT, file:PATH, kafka:TOPIC or -"
        );
        assert!(Output::parse("host:99999").is_err());
        assert!(Output::parse("host:http").is_err());
    }

    #[test]
    fn kafka_endpoints_name_a_valid_topic() {
        assert_eq!(
            Output::parse("kafka:totals").unwrap(),
            Output::Kafka("totals".into())
        );
        for bad in ["kafka:", "kafka:a b", "kafka:t/1"] {
            assert!(Input::parse(bad).is_err(), "{bad}");
            assert!(Output::parse(bad).is_err(), "{bad}");
        }
        assert!(Input::parse(&format!("kafka:{}", "t".repeat(250))).is_err());
    }

    #[test]
    fn display_round_trips() {
        for text in ["-", "file:/tmp/x", "127.0.0.1:1", "kafka:votes.v2_x-1"] {
            assert_eq!(Input::parse(text).unwrap().to_string(), text);
            assert_eq!(Output::parse(text).unwrap().to_string(), text);
        }
        assert_eq!(
            Input::Missing { index: 0 }.to_string(),
            "--in #1 (not given)"
        );
    }
}
