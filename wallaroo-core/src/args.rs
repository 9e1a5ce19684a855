//! The command line of a generated application (ARCHITECTURE.md §3, a contract).
//!
//! | flag | meaning |
//! | --- | --- |
//! | `--in ADDR[,ADDR…]` | where the sources read, in the order the pipelines declare them |
//! | `--out ADDR[,ADDR…]` | where the sinks write, in the order the pipelines declare them |
//! | `--workers N` | worker threads per state partition (default: the number of cores) |
//! | `--resilience-dir DIR` | keep state durable there and recover it at start |
//! | `--sync-before-output` | with a resilience directory: outputs leave once the changes they reflect are synced (the default) |
//! | `--sync-interval MS` | with a resilience directory: sync state logs at least every MS ms instead, outputs not waiting (faster; after a crash the state can be behind outputs already sent) |
//! | `--on-error stop\|skip` | what a panic in a step does: stop the application (the default), or skip the message |
//! | `--dead-letter PATH\|-` | with `--on-error skip`: append each skipped message's record (JSON, one a line) to `PATH`, or to standard error |
//! | `--topology [json\|dot]` | print the expanded topology and exit without opening sockets |
//!
//! An address is `HOST:PORT` (TCP), `file:PATH`, `kafka:TOPIC` or `-` (standard input or
//! output). With the cargo feature `kafka` (ARCHITECTURE.md §7, a contract):
//!
//! | flag | meaning |
//! | --- | --- |
//! | `--brokers HOST:PORT[,…]` | the bootstrap brokers (required when an endpoint is `kafka:`) |
//! | `--group NAME` | the consumer group (default: the application's name) |
//! | `--kafka-option KEY=VALUE` | a librdkafka property for the application's clients, repeatable |

use std::ffi::OsString;
use std::num::NonZeroUsize;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Arg, ArgAction, Command};

use crate::endpoint::{Input, Output};
use crate::resilience::{Resilience, SyncPolicy};

/// The output format of `--topology`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TopologyFormat {
    /// The topology JSON of the contract.
    Json,
    /// A Graphviz digraph.
    Dot,
}

/// The format of the log lines on standard error, `--log-format`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum LogFormat {
    /// Lines of text, coloured on a terminal.
    #[default]
    Text,
    /// One JSON object a line, for log collectors.
    Json,
}

/// What a panic in a step (a state computation or a stateless one) does, `--on-error`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum OnError {
    /// The application stops cleanly: what was done before the message is written, the
    /// error names the step, the key and the message's position, and the exit status is 1.
    /// A restart reads the message again (if its source replays) and stops again.
    #[default]
    Stop,
    /// The message is skipped: what the step did before it panicked stands, the skip is
    /// counted and logged, the message's record goes to the dead-letter output if there is
    /// one, and the message counts as applied (a restart does not apply it again).
    Skip,
}

/// Where the records of skipped messages go, `--dead-letter`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DeadLetter {
    /// Appended to a file.
    File(PathBuf),
    /// Written to standard error (`-`): standard output may carry a sink's output.
    Stderr,
}

/// The parsed command line, handed to the application's setup function.
#[derive(Clone, Debug)]
pub struct Args {
    inputs: Vec<Input>,
    outputs: Vec<Output>,
    workers: usize,
    topology: Option<TopologyFormat>,
    resilience: Option<Resilience>,
    kafka: KafkaArgs,
    log_format: LogFormat,
    on_error: OnError,
    dead_letter: Option<DeadLetter>,
    tcp: TcpLimits,
    /// `--http HOST:PORT`: where the live page, metrics, topology and states are served.
    http: Option<String>,
    stats_interval: Option<Duration>,
}

/// What a TCP source allows its connections: `--max-connections` and `--idle-timeout`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TcpLimits {
    /// Connections one TCP source holds at once; a connection beyond them is closed as it
    /// is accepted, with a log line.
    pub max_connections: usize,
    /// How long a connection may send nothing while inside a frame (or its opening)
    /// before it is closed. A connection quiet between frames is kept.
    pub idle_timeout: Duration,
}

impl TcpLimits {
    /// The default `--max-connections`.
    pub const MAX_CONNECTIONS: usize = 1024;
    /// The default `--idle-timeout`, in seconds.
    pub const IDLE_TIMEOUT_SECS: u64 = 30;
}

impl Default for TcpLimits {
    fn default() -> Self {
        TcpLimits {
            max_connections: Self::MAX_CONNECTIONS,
            idle_timeout: Duration::from_secs(Self::IDLE_TIMEOUT_SECS),
        }
    }
}

/// The Kafka settings of the command line (cargo feature `kafka`): `--brokers`, `--group`,
/// `--kafka-option`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KafkaArgs {
    /// The bootstrap brokers, `HOST:PORT` each.
    pub brokers: Vec<String>,
    /// The consumer group; the application's name when absent.
    pub group: Option<String>,
    /// librdkafka properties, in the order given.
    pub options: Vec<(String, String)>,
}

#[cfg(feature = "kafka")]
impl KafkaArgs {
    /// The client settings for `what` (`pipeline "votes" reads kafka:votes`), in the group
    /// of application `app` unless `--group` names another; a usage error without
    /// `--brokers`.
    pub fn options(&self, app: &str, what: &str) -> Result<crate::kafka::KafkaOptions, UsageError> {
        if self.brokers.is_empty() {
            return Err(UsageError(format!(
                "error: {what}: give the Kafka brokers with --brokers HOST:PORT[,HOST:PORT...]"
            )));
        }
        Ok(crate::kafka::KafkaOptions {
            brokers: self.brokers.clone(),
            group: Some(self.group.clone().unwrap_or_else(|| app.to_string())),
            options: self.options.clone(),
        })
    }
}

/// A usage error: one line naming the flag. The generated `main` prints it and exits with
/// status 2.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

/// What parsing the command line asks for.
// Why not boxed: it is made once per process, and a box would change every match on it.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum Parsed {
    /// Run (or print the topology) with these arguments.
    Args(Args),
    /// `--help` or `--version`: print this text and exit 0.
    Print(String),
}

/// Wallaroo's command line, without an application's own flags.
pub(crate) fn command(name: &str, version: &str) -> Command {
    let command = base_command(name, version);
    #[cfg(feature = "kafka")]
    let command = command
        .arg(
            Arg::new("brokers")
                .long("brokers")
                .value_name("HOST:PORT[,HOST:PORT...]")
                .help("The Kafka brokers to bootstrap from (needed by kafka:TOPIC endpoints)"),
        )
        .arg(
            Arg::new("group")
                .long("group")
                .value_name("NAME")
                .help("The Kafka consumer group: processes of one group share the input partitions [default: the application's name]"),
        )
        .arg(
            Arg::new("kafka-option")
                .long("kafka-option")
                .value_name("KEY=VALUE")
                .action(ArgAction::Append)
                .help("A librdkafka property for the Kafka clients (repeatable), e.g. session.timeout.ms=6000"),
        );
    command
}

fn base_command(name: &str, version: &str) -> Command {
    Command::new(name.to_string())
        .version(version.to_string())
        .about("A wallaroo stream-processing application.")
        .arg(
            Arg::new("in")
                .long("in")
                .value_name("ADDR[,ADDR...]")
                .action(ArgAction::Append)
                .value_delimiter(',')
                .allow_hyphen_values(true)
                .help(if cfg!(feature = "kafka") {
                    "Where the sources read, in pipeline order: HOST:PORT (listen), file:PATH, kafka:TOPIC, or - (stdin)"
                } else {
                    "Where the sources read, in pipeline order: HOST:PORT (listen), file:PATH, or - (stdin)"
                }),
        )
        .arg(
            Arg::new("out")
                .long("out")
                .value_name("ADDR[,ADDR...]")
                .action(ArgAction::Append)
                .value_delimiter(',')
                .allow_hyphen_values(true)
                .help(if cfg!(feature = "kafka") {
                    "Where the sinks write, in pipeline order: HOST:PORT (connect), file:PATH, kafka:TOPIC, or - (stdout)"
                } else {
                    "Where the sinks write, in pipeline order: HOST:PORT (connect), file:PATH, or - (stdout)"
                }),
        )
        .arg(
            Arg::new("workers")
                .long("workers")
                .value_name("N")
                .value_parser(clap::value_parser!(NonZeroUsize))
                .help("Worker threads per state partition [default: the number of cores]"),
        )
        .arg(
            Arg::new("resilience-dir")
                .long("resilience-dir")
                .value_name("DIR")
                .value_parser(clap::value_parser!(PathBuf))
                .help("Keep state durable in DIR and recover it at start (one process per directory)"),
        )
        .arg(
            Arg::new("sync-interval")
                .long("sync-interval")
                .value_name("MS")
                .value_parser(clap::value_parser!(u64).range(1..=60_000))
                .help("Faster: sync state logs at least every MS milliseconds and let outputs leave without waiting; after a crash the recovered state can be behind totals already sent (up to MS of changes), so outputs can contradict earlier ones"),
        )
        .arg(
            Arg::new("sync-before-output")
                .long("sync-before-output")
                .action(ArgAction::SetTrue)
                .conflicts_with("sync-interval")
                .help("Outputs leave once the state changes they reflect are synced, a sync per batch of messages [the default with --resilience-dir]"),
        )
        .arg(
            Arg::new("on-error")
                .long("on-error")
                .value_name("POLICY")
                .value_parser(["stop", "skip"])
                .help("What a panic in a step does: stop the application, naming the step, the key and the message's position (a restart reads that message again), or skip the message, counting and logging it, and go on (a state computation's skipped message then counts as applied: a restart does not apply it again) [default: stop]"),
        )
        .arg(
            Arg::new("dead-letter")
                .long("dead-letter")
                .value_name("PATH|-")
                .allow_hyphen_values(true)
                .value_parser(clap::value_parser!(PathBuf))
                .help("With --on-error skip: append a JSON line for each skipped message (step, state, key, stream, position, panic) to PATH, or to stderr with -"),
        )
        .arg(
            Arg::new("max-connections")
                .long("max-connections")
                .value_name("N")
                .value_parser(clap::value_parser!(NonZeroUsize))
                .help(format!("Connections each TCP source holds at once; one more is closed as it is accepted, with a log line [default: {}]", TcpLimits::MAX_CONNECTIONS)),
        )
        .arg(
            Arg::new("idle-timeout")
                .long("idle-timeout")
                .value_name("SECS")
                .value_parser(clap::value_parser!(u64).range(1..))
                .help(format!("Close a TCP connection that has sent nothing for SECS seconds inside a frame (a stalled or half-dead sender); one quiet between frames is kept [default: {}]", TcpLimits::IDLE_TIMEOUT_SECS)),
        )
        .arg(
            Arg::new("log-format")
                .long("log-format")
                .value_name("FORMAT")
                .value_parser(["text", "json"])
                .help("Log lines on stderr as text (coloured on a terminal, not with NO_COLOR) or json, one object a line [default: text]; RUST_LOG sets the level, e.g. RUST_LOG=debug or RUST_LOG=warn,wallaroo_core=info"),
        )
        .arg(
            Arg::new("http")
                .long("http")
                .value_name("HOST:PORT")
                .help("Serve a live page (GET /), /metrics (Prometheus text), /topology (JSON) and /state/STATE?key=JSON over HTTP on HOST:PORT, from a thread of its own"),
        )
        .arg(
            Arg::new("stats-interval")
                .long("stats-interval")
                .value_name("SECS")
                .value_parser(clap::value_parser!(u64).range(1..))
                .help("Log a one-line summary every SECS seconds: messages in and out, their rates, and the p99 latency [default: off]"),
        )
        .arg(
            Arg::new("topology")
                .long("topology")
                .value_name("FORMAT")
                .num_args(0..=1)
                .default_missing_value("json")
                .value_parser(["json", "dot"])
                .help("Print the expanded topology (json or dot) and exit without opening sockets"),
        )
}

pub(crate) fn first_line(err: &clap::Error) -> String {
    let rendered = err.render().to_string();
    let line = rendered
        .lines()
        .next()
        .unwrap_or("error: invalid arguments");
    format!("{line} (see --help)")
}

/// What matching a command line gives, short of a usage error.
pub(crate) enum Matched {
    /// The arguments, to read.
    Matches(clap::ArgMatches),
    /// `--help` or `--version`: print this text and exit 0.
    Print(String),
}

/// Matches `argv` (the first item is the program name) against `command`; a usage error is
/// one line naming the flag.
pub(crate) fn matches<I, T>(command: Command, argv: I) -> Result<Matched, UsageError>
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    match command.try_get_matches_from(argv) {
        Ok(matches) => Ok(Matched::Matches(matches)),
        Err(e) => match e.kind() {
            clap::error::ErrorKind::DisplayHelp | clap::error::ErrorKind::DisplayVersion => {
                Ok(Matched::Print(e.render().to_string()))
            }
            _ => Err(UsageError(first_line(&e))),
        },
    }
}

impl Args {
    /// Parses a command line (the first item is the program name).
    ///
    /// ```
    /// use wallaroo_core::args::{Args, Parsed};
    /// let Parsed::Args(args) = Args::parse_from("app", "1.0", ["app", "--in", "127.0.0.1:7010", "--workers", "2"]).unwrap() else { panic!() };
    /// assert_eq!(args.workers(), 2);
    /// assert_eq!(args.input(0).to_string(), "127.0.0.1:7010");
    /// let err = Args::parse_from("app", "1.0", ["app", "--workers", "0"]).unwrap_err();
    /// assert!(err.to_string().contains("--workers"));
    /// ```
    pub fn parse_from<I, T>(name: &str, version: &str, argv: I) -> Result<Parsed, UsageError>
    where
        I: IntoIterator<Item = T>,
        T: Into<OsString> + Clone,
    {
        match matches(command(name, version), argv)? {
            Matched::Matches(matches) => Args::from_matches(&matches).map(Parsed::Args),
            Matched::Print(text) => Ok(Parsed::Print(text)),
        }
    }

    /// Wallaroo's arguments among `matches`, which may hold an application's own too.
    pub(crate) fn from_matches(matches: &clap::ArgMatches) -> Result<Args, UsageError> {
        let inputs = endpoints(matches, "in", Input::parse)?;
        let outputs = endpoints(matches, "out", Output::parse)?;
        let workers = matches
            .get_one::<NonZeroUsize>("workers")
            .map(|n| n.get())
            .unwrap_or_else(default_workers);
        let topology = matches
            .get_one::<String>("topology")
            .map(|f| match f.as_str() {
                "dot" => TopologyFormat::Dot,
                _ => TopologyFormat::Json,
            });
        // Safe by default: outputs never run ahead of the state that a restart recovers.
        let sync = match matches.get_one::<u64>("sync-interval") {
            Some(ms) => SyncPolicy::Interval(Duration::from_millis(*ms)),
            None => SyncPolicy::BeforeOutput,
        };
        let resilience = matches
            .get_one::<PathBuf>("resilience-dir")
            .map(|dir| Resilience {
                dir: dir.clone(),
                sync,
            });
        if resilience.is_none()
            && (matches.contains_id("sync-interval")
                && matches.value_source("sync-interval")
                    == Some(clap::parser::ValueSource::CommandLine)
                || matches.get_flag("sync-before-output"))
        {
            return Err(UsageError(
                "error: --sync-interval and --sync-before-output need --resilience-dir".into(),
            ));
        }
        let on_error = match matches.get_one::<String>("on-error").map(String::as_str) {
            Some("skip") => OnError::Skip,
            _ => OnError::Stop,
        };
        let dead_letter = matches.get_one::<PathBuf>("dead-letter").map(|path| {
            if path.as_os_str() == "-" {
                DeadLetter::Stderr
            } else {
                DeadLetter::File(path.clone())
            }
        });
        if dead_letter.is_some() && on_error != OnError::Skip {
            return Err(UsageError(
                "error: --dead-letter needs --on-error skip (a stop writes no dead letter: the error names the message)".into(),
            ));
        }
        Ok(Args {
            inputs,
            outputs,
            workers,
            topology,
            resilience,
            kafka: kafka_args(matches)?,
            tcp: TcpLimits {
                max_connections: matches
                    .get_one::<NonZeroUsize>("max-connections")
                    .map_or(TcpLimits::MAX_CONNECTIONS, |n| n.get()),
                idle_timeout: Duration::from_secs(
                    matches
                        .get_one::<u64>("idle-timeout")
                        .copied()
                        .unwrap_or(TcpLimits::IDLE_TIMEOUT_SECS),
                ),
            },
            log_format: match matches.get_one::<String>("log-format").map(String::as_str) {
                Some("json") => LogFormat::Json,
                _ => LogFormat::Text,
            },
            on_error,
            dead_letter,
            http: matches.get_one::<String>("http").cloned(),
            stats_interval: matches
                .get_one::<u64>("stats-interval")
                .map(|secs| Duration::from_secs(*secs)),
        })
    }

    /// Arguments built in code, for tests and embedding: no `--in`, no `--out`, one worker.
    ///
    /// ```
    /// let args = wallaroo_core::Args::new().with_input("file:votes.bin").with_output("-").with_workers(2);
    /// assert_eq!(args.output(0), wallaroo_core::Output::Stdout);
    /// ```
    pub fn new() -> Args {
        Args {
            inputs: Vec::new(),
            outputs: Vec::new(),
            workers: 1,
            topology: None,
            resilience: None,
            kafka: KafkaArgs::default(),
            tcp: TcpLimits::default(),
            log_format: LogFormat::Text,
            on_error: OnError::Stop,
            dead_letter: None,
            http: None,
            stats_interval: None,
        }
    }

    /// Serves the HTTP endpoint on `addr` (as `--http` would; port 0 picks a free port,
    /// see `Running::http_addr`).
    ///
    /// ```
    /// let args = wallaroo_core::Args::new().with_http("127.0.0.1:0");
    /// assert_eq!(args.http(), Some("127.0.0.1:0"));
    /// ```
    pub fn with_http(mut self, addr: impl Into<String>) -> Args {
        self.http = Some(addr.into());
        self
    }

    /// Where `--http` serves the metrics, topology and state queries, if it was given.
    ///
    /// ```
    /// use wallaroo_core::args::{Args, Parsed};
    /// let argv = ["app", "--http", "127.0.0.1:9100"];
    /// let Parsed::Args(args) = Args::parse_from("app", "1.0", argv).unwrap() else { panic!() };
    /// assert_eq!(args.http(), Some("127.0.0.1:9100"));
    /// ```
    pub fn http(&self) -> Option<&str> {
        self.http.as_deref()
    }

    /// Logs a one-line summary every `interval` (as `--stats-interval` would).
    ///
    /// ```
    /// use std::time::Duration;
    /// let args = wallaroo_core::Args::new().with_stats_interval(Duration::from_secs(10));
    /// assert_eq!(args.stats_interval(), Some(Duration::from_secs(10)));
    /// ```
    pub fn with_stats_interval(mut self, interval: Duration) -> Args {
        self.stats_interval = Some(interval);
        self
    }

    /// How often the one-line summary is logged (`--stats-interval`), if it is.
    pub fn stats_interval(&self) -> Option<Duration> {
        self.stats_interval
    }

    /// Sets what a panic in a step does (as `--on-error` would).
    ///
    /// ```
    /// use wallaroo_core::args::{Args, DeadLetter, OnError};
    /// let args = Args::new().with_on_error(OnError::Skip).with_dead_letter(DeadLetter::Stderr);
    /// assert_eq!(args.on_error(), OnError::Skip);
    /// ```
    pub fn with_on_error(mut self, on_error: OnError) -> Args {
        self.on_error = on_error;
        self
    }

    /// Sends the records of skipped messages to `dead_letter` (as `--dead-letter` would);
    /// used with [`OnError::Skip`] only.
    pub fn with_dead_letter(mut self, dead_letter: DeadLetter) -> Args {
        self.dead_letter = Some(dead_letter);
        self
    }

    /// What a panic in a step does (`--on-error`).
    pub fn on_error(&self) -> OnError {
        self.on_error
    }

    /// Where the records of skipped messages go (`--dead-letter`), if anywhere.
    pub fn dead_letter(&self) -> Option<&DeadLetter> {
        self.dead_letter.as_ref()
    }

    /// What a TCP source allows its connections (`--max-connections`, `--idle-timeout`).
    pub fn tcp_limits(&self) -> TcpLimits {
        self.tcp
    }

    /// Limits each TCP source's connections (as `--max-connections` and `--idle-timeout`
    /// would).
    pub fn with_tcp_limits(mut self, limits: TcpLimits) -> Args {
        self.tcp = limits;
        self
    }

    /// The format of the log lines (`--log-format`).
    pub fn log_format(&self) -> LogFormat {
        self.log_format
    }

    /// Reads and writes `kafka:` endpoints through the brokers `HOST:PORT[,…]` (as
    /// `--brokers` would).
    pub fn with_brokers(mut self, brokers: &str) -> Args {
        self.kafka.brokers = brokers.split(',').map(|b| b.trim().to_string()).collect();
        self
    }

    /// Consumes in the group `group` (as `--group` would).
    pub fn with_group(mut self, group: &str) -> Args {
        self.kafka.group = Some(group.to_string());
        self
    }

    /// Sets a librdkafka property for the Kafka clients (as `--kafka-option` would).
    pub fn with_kafka_option(mut self, key: &str, value: &str) -> Args {
        self.kafka
            .options
            .push((key.to_string(), value.to_string()));
        self
    }

    /// The Kafka settings.
    pub fn kafka(&self) -> &KafkaArgs {
        &self.kafka
    }

    /// Keeps state durable in `dir` (as `--resilience-dir` would), synced by `sync`.
    pub fn with_resilience(mut self, dir: impl Into<PathBuf>, sync: SyncPolicy) -> Args {
        self.resilience = Some(Resilience {
            dir: dir.into(),
            sync,
        });
        self
    }

    /// Where and how state is kept durable, if at all.
    pub fn resilience(&self) -> Option<Resilience> {
        self.resilience.clone()
    }

    /// Adds an input address (as `--in` would).
    pub fn with_input(mut self, input: impl Into<Input>) -> Args {
        self.inputs.push(input.into());
        self
    }

    /// Adds an output address (as `--out` would).
    pub fn with_output(mut self, output: impl Into<Output>) -> Args {
        self.outputs.push(output.into());
        self
    }

    /// Sets the worker threads per state partition (at least 1).
    pub fn with_workers(mut self, workers: usize) -> Args {
        self.workers = workers.max(1);
        self
    }

    /// The `index`-th `--in` address (0-based); [`Input::Missing`] if not given, which the
    /// application reports as a usage error when it starts.
    pub fn input(&self, index: usize) -> Input {
        self.inputs
            .get(index)
            .cloned()
            .unwrap_or(Input::Missing { index })
    }

    /// The `index`-th `--out` address (0-based); [`Output::Missing`] if not given.
    pub fn output(&self, index: usize) -> Output {
        self.outputs
            .get(index)
            .cloned()
            .unwrap_or(Output::Missing { index })
    }

    /// All `--in` addresses.
    pub fn inputs(&self) -> &[Input] {
        &self.inputs
    }

    /// All `--out` addresses.
    pub fn outputs(&self) -> &[Output] {
        &self.outputs
    }

    /// Worker threads per state partition.
    pub fn workers(&self) -> usize {
        self.workers
    }

    /// The format `--topology` asked for, if any.
    pub fn topology(&self) -> Option<TopologyFormat> {
        self.topology
    }
}

impl Default for Args {
    fn default() -> Self {
        Args::new()
    }
}

fn endpoints<T>(
    matches: &clap::ArgMatches,
    flag: &str,
    parse: fn(&str) -> Result<T, crate::endpoint::EndpointError>,
) -> Result<Vec<T>, UsageError> {
    matches
        .get_many::<String>(flag)
        .into_iter()
        .flatten()
        .map(|text| parse(text).map_err(|e| UsageError(format!("error: --{flag}: {e}"))))
        .collect()
}

/// The Kafka settings of the command line; none without the feature.
#[cfg(feature = "kafka")]
fn kafka_args(matches: &clap::ArgMatches) -> Result<KafkaArgs, UsageError> {
    use crate::kafka::KafkaOptions;
    let usage = |e: crate::kafka::KafkaError| UsageError(format!("error: {e}"));
    let brokers = match matches.get_one::<String>("brokers") {
        Some(text) => KafkaOptions::parse_brokers(text).map_err(usage)?,
        None => Vec::new(),
    };
    let options = matches
        .get_many::<String>("kafka-option")
        .into_iter()
        .flatten()
        .map(|o| KafkaOptions::parse_option(o).map_err(usage))
        .collect::<Result<_, _>>()?;
    Ok(KafkaArgs {
        brokers,
        group: matches.get_one::<String>("group").cloned(),
        options,
    })
}

#[cfg(not(feature = "kafka"))]
fn kafka_args(_: &clap::ArgMatches) -> Result<KafkaArgs, UsageError> {
    Ok(KafkaArgs::default())
}

fn default_workers() -> usize {
    std::thread::available_parallelism()
        .map(NonZeroUsize::get)
        .unwrap_or(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(argv: &[&str]) -> Result<Parsed, UsageError> {
        let mut full = vec!["app"];
        full.extend_from_slice(argv);
        Args::parse_from("app", "0.1.0", full)
    }

    fn args(argv: &[&str]) -> Args {
        match parse(argv).unwrap() {
            Parsed::Args(a) => a,
            Parsed::Print(p) => panic!("unexpected print: {p}"),
        }
    }

    #[test]
    fn comma_lists_and_repeats_keep_order() {
        let a = args(&["--in", "h:1,file:x", "--in", "-", "--out", "h:2"]);
        assert_eq!(a.inputs().len(), 3);
        assert_eq!(a.input(1), Input::File("x".into()));
        assert_eq!(a.input(2), Input::Stdin);
        assert_eq!(a.input(3), Input::Missing { index: 3 });
        assert_eq!(a.output(0), Output::Tcp("h:2".into()));
    }

    #[test]
    fn resilience_flags() {
        assert_eq!(args(&[]).resilience(), None);
        let r = args(&["--resilience-dir", "/d", "--sync-interval", "5"])
            .resilience()
            .unwrap();
        assert_eq!(r.dir, PathBuf::from("/d"));
        assert_eq!(r.sync, SyncPolicy::Interval(Duration::from_millis(5)));
        // Safe by default: outputs wait for the changes they reflect.
        let r = args(&["--resilience-dir", "/d"]).resilience().unwrap();
        assert_eq!(r.sync, SyncPolicy::BeforeOutput);
        let r = args(&["--resilience-dir", "/d", "--sync-before-output"])
            .resilience()
            .unwrap();
        assert_eq!(r.sync, SyncPolicy::BeforeOutput);
        let err = parse(&["--sync-before-output"]).unwrap_err().to_string();
        assert!(err.contains("--resilience-dir"), "{err}");
        assert!(parse(&["--resilience-dir", "/d", "--sync-interval", "0"]).is_err());
    }

    #[test]
    fn error_policy_flags() {
        let a = args(&[]);
        assert_eq!((a.on_error(), a.dead_letter()), (OnError::Stop, None));
        let a = args(&["--on-error", "skip", "--dead-letter", "/tmp/dead"]);
        assert_eq!(a.on_error(), OnError::Skip);
        assert_eq!(
            a.dead_letter(),
            Some(&DeadLetter::File(PathBuf::from("/tmp/dead")))
        );
        let a = args(&["--on-error", "skip", "--dead-letter", "-"]);
        assert_eq!(a.dead_letter(), Some(&DeadLetter::Stderr));
        assert_eq!(args(&["--on-error", "stop"]).on_error(), OnError::Stop);
        let err = parse(&["--dead-letter", "x"]).unwrap_err().to_string();
        assert!(err.contains("--on-error skip"), "{err}");
        let err = parse(&["--on-error", "retry"]).unwrap_err().to_string();
        assert!(err.contains("--on-error"), "{err}");
    }

    #[test]
    fn dashes_in_address_lists_are_addresses() {
        let a = args(&["--out", "-,-", "--in", "-"]);
        assert_eq!(a.outputs(), [Output::Stdout, Output::Stdout]);
        assert_eq!(a.inputs(), [Input::Stdin]);
    }

    #[test]
    fn log_format_is_text_unless_json_is_asked_for() {
        assert_eq!(args(&[]).log_format(), LogFormat::Text);
        assert_eq!(
            args(&["--log-format", "json"]).log_format(),
            LogFormat::Json
        );
        assert!(parse(&["--log-format", "xml"])
            .unwrap_err()
            .to_string()
            .contains("--log-format"));
    }

    #[test]
    fn topology_defaults_to_json() {
        assert_eq!(args(&["--topology"]).topology(), Some(TopologyFormat::Json));
        assert_eq!(
            args(&["--topology", "dot"]).topology(),
            Some(TopologyFormat::Dot)
        );
        assert_eq!(args(&[]).topology(), None);
    }

    #[test]
    fn usage_errors_are_one_line_naming_the_flag() {
        for (argv, flag) in [
            (&["--workers", "0"][..], "--workers"),
            (&["--workers"][..], "--workers"),
            (&["--in", "nonsense"][..], "--in"),
            (&["--topology", "svg"][..], "--topology"),
            (&["--bogus"][..], "--bogus"),
        ] {
            let err = parse(argv).unwrap_err().to_string();
            assert!(err.contains(flag), "{argv:?}: {err}");
            assert_eq!(err.lines().count(), 1, "{argv:?}: {err}");
            assert!(err.starts_with("error:"), "{err}");
        }
    }

    #[test]
    fn help_and_version_are_printed_not_errors() {
        match parse(&["--help"]).unwrap() {
            Parsed::Print(text) => assert!(text.contains("--in") && text.contains("--topology")),
            Parsed::Args(_) => panic!("--help parsed as arguments"),
        }
        match parse(&["--version"]).unwrap() {
            Parsed::Print(text) => assert!(text.contains("0.1.0")),
            Parsed::Args(_) => panic!("--version parsed as arguments"),
        }
    }
}
