//! `wallaroo-receiver`: listens for a wallaroo application's TCP sink, like Wallaroo's data
//! receiver, or reads a Kafka topic. Writes what arrives, whole messages at a time so that
//! connections do not interleave inside a message, and counts the messages (lines, or
//! frames).

use std::collections::HashMap;
use std::ffi::OsString;
use std::fmt;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use wallaroo_core::sink::ack::{self, Opening, Position};

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
    /// `--plain`: read every connection as a plain stream, acknowledging nothing.
    pub plain: bool,
    /// `--resume`: append to `out`, and continue each acknowledged stream where `out`
    /// has it (positions kept in [`positions_path`]).
    pub resume: bool,
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
             A wallaroo application's TCP sink gets acknowledgements: the receiver tells \
             it, on connect, how far it has the sink's output, and acknowledges what it has \
             written, so that the sink resends what a lost connection lost, and nothing \
             else. With --resume that holds across restarts of the receiver: it appends to \
             FILE and keeps, in FILE.positions, how far FILE has each stream. Other peers \
             (wallaroo-sender, nc) send a plain stream, as before; --plain acknowledges \
             nothing.\n\n\
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
        .arg(
            Arg::new("resume")
                .long("resume")
                .action(clap::ArgAction::SetTrue)
                .conflicts_with_all(["plain", "from"])
                .help(
                    "Append to --out FILE, and continue each application's output where FILE \
                     has it, by the positions kept in FILE.positions (created with FILE): a \
                     receiver restarted with --resume gets every message once",
                ),
        )
        .arg(
            Arg::new("plain")
                .long("plain")
                .action(clap::ArgAction::SetTrue)
                .help(
                    "Acknowledge nothing: an application's TCP sink then cannot know what \
                     arrived, and what the kernel accepted before this receiver went away \
                     can be lost",
                ),
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
    let config = Config {
        kafka,
        ..config(&matches)
    };
    if config.resume && config.out == "-" {
        return Err(command.error(
            clap::error::ErrorKind::ArgumentConflict,
            "--resume appends to a file: give --out FILE",
        ));
    }
    Ok(config)
}

/// Where `--resume` keeps how far the output file has each stream: `FILE.positions`.
pub fn positions_path(out: &str) -> std::path::PathBuf {
    format!("{out}.positions").into()
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
        plain: matches.get_flag("plain"),
        resume: matches.get_flag("resume"),
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
    /// Whether connections are offered acknowledgements.
    acknowledge: bool,
    start: Instant,
    /// Milliseconds from `start` to the last data.
    last_data: AtomicU64,
    connections: AtomicU64,
    /// With `kafka:TOPIC`: the partitions read, 0 until known.
    partitions: Mutex<Option<usize>>,
    /// The acknowledged streams being read, with their connections: one connection per
    /// stream at a time.
    reading: Mutex<HashMap<String, Option<TcpStream>>>,
    freed: Condvar,
    /// Connections that have written what they have not acknowledged yet: the run waits
    /// for them (a little) before it ends, so that a sink is not left resending what the
    /// output has.
    owing: AtomicU64,
}

struct Output {
    writer: Box<dyn Write + Send>,
    messages: u64,
    bytes: u64,
    error: Option<String>,
    /// How far the output has each acknowledged stream.
    positions: HashMap<String, Position>,
    /// With `--resume`: where the positions are kept.
    journal: Option<Journal>,
}

impl Shared {
    /// Writes `bytes`, holding `messages` whole messages, of acknowledged stream `stream`
    /// if it is one; returns how far the output then has that stream.
    fn write(&self, bytes: &[u8], messages: u64, stream: Option<&str>) -> Option<Position> {
        let mut out = self.out.lock().unwrap_or_else(|e| e.into_inner());
        if out.error.is_some() {
            return None;
        }
        if let Err(e) = out
            .writer
            .write_all(bytes)
            .and_then(|()| out.writer.flush())
        {
            out.error = Some(format!("cannot write the output: {e}"));
            return None;
        }
        out.messages += messages;
        out.bytes += bytes.len() as u64;
        let output = &mut *out;
        let position = stream.map(|name| {
            let position = output.positions.entry(name.to_string()).or_default();
            position.bytes += bytes.len() as u64;
            position.messages += messages;
            *position
        });
        if let Some(journal) = output.journal.as_mut() {
            journal.length += bytes.len() as u64;
            if let Err(e) = journal.record(stream, position.unwrap_or_default()) {
                output.error = Some(e);
                return None;
            }
        }
        position
    }

    /// How far the output has stream `name`.
    fn position(&self, name: &str) -> Position {
        let out = self.out.lock().unwrap_or_else(|e| e.into_inner());
        out.positions.get(name).copied().unwrap_or_default()
    }

    /// Moves stream `name` on to `bytes`, where the sink resends from, past bytes it no
    /// longer holds.
    fn skip_to(&self, name: &str, bytes: u64) {
        let mut out = self.out.lock().unwrap_or_else(|e| e.into_inner());
        out.positions.entry(name.to_string()).or_default().bytes = bytes;
    }

    /// Takes stream `name` for `connection`. A sink has one connection per stream: one
    /// that connects again has given the earlier one up, which may not have ended on this
    /// side (its end not seen, as when the network went away), so the earlier one is shut
    /// down, and its last writes are waited for.
    fn claim(&self, name: &str, connection: &TcpStream) -> Claim<'_> {
        let mut reading = self.reading.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(Some(earlier)) = reading.get(name) {
            let _ = earlier.shutdown(std::net::Shutdown::Both);
        }
        while reading.contains_key(name) {
            reading = self.freed.wait(reading).unwrap_or_else(|e| e.into_inner());
        }
        reading.insert(name.to_string(), connection.try_clone().ok());
        Claim {
            shared: self,
            name: name.to_string(),
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

/// Whether a connection owes an acknowledgement, counted in [`Shared::owing`].
struct Owing<'a> {
    shared: &'a Shared,
    owing: bool,
}

impl Owing<'_> {
    fn set(&mut self, owing: bool) {
        if owing != self.owing {
            self.owing = owing;
            if owing {
                self.shared.owing.fetch_add(1, Ordering::AcqRel);
            } else {
                self.shared.owing.fetch_sub(1, Ordering::AcqRel);
            }
        }
    }
}

impl Drop for Owing<'_> {
    fn drop(&mut self) {
        self.set(false);
    }
}

/// An acknowledged stream being read; freed when dropped.
struct Claim<'a> {
    shared: &'a Shared,
    name: String,
}

impl Drop for Claim<'_> {
    fn drop(&mut self) {
        self.shared
            .reading
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&self.name);
        self.shared.freed.notify_all();
    }
}

/// `FILE.positions` of `--resume`: one line per write, `NAME BYTES MESSAGES LENGTH` (an
/// acknowledged stream's name in hex, how far FILE then has it, and FILE's length; `-`
/// and zeros for a plain connection's write), appended after the write. After a kill, FILE's bytes past the last line's
/// length were written and not recorded: they are cut, and the sink sends them again.
struct Journal {
    file: std::fs::File,
    /// The output file's length.
    length: u64,
}

impl Journal {
    fn record(&mut self, name: Option<&str>, position: Position) -> Result<(), String> {
        let line = format!(
            "{} {} {} {}\n",
            name.map_or_else(|| "-".to_string(), |name| hex(name.as_bytes())),
            position.bytes,
            position.messages,
            self.length
        );
        self.file
            .write_all(line.as_bytes())
            .map_err(|e| format!("cannot record the output's progress: {e}"))
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Option<String> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    let bytes: Option<Vec<u8>> = (0..text.len())
        .step_by(2)
        .map(|at| u8::from_str_radix(text.get(at..at + 2)?, 16).ok())
        .collect();
    String::from_utf8(bytes?).ok()
}

/// What a journal says: how far the output has each stream, and the output's length at
/// the last record.
fn read_journal(
    path: &std::path::Path,
    text: &str,
) -> Result<(HashMap<String, Position>, u64), String> {
    let mut positions = HashMap::new();
    let mut length = 0;
    // A last line without its newline was cut short by a kill: not recorded.
    let whole = text.rfind('\n').map_or("", |end| &text[..end]);
    for (number, line) in whole.lines().enumerate() {
        let bad = || {
            format!(
                "{} line {}: `{line}` is not `NAME BYTES MESSAGES LENGTH`: the file is damaged",
                path.display(),
                number + 1
            )
        };
        let fields: Vec<&str> = line.split(' ').collect();
        let [name, bytes, messages, at] = fields[..] else {
            return Err(bad());
        };
        let number = |field: &str| field.parse::<u64>().map_err(|_| bad());
        let position = Position {
            bytes: number(bytes)?,
            messages: number(messages)?,
        };
        length = number(at)?;
        if name != "-" {
            positions.insert(unhex(name).ok_or_else(bad)?, position);
        }
    }
    Ok((positions, length))
}

/// Opens `out` for `--resume`: its positions, cut back to what they record, and the
/// compacted journal, appended to from here; `note` hears what was cut.
fn resume_output(
    out: &str,
    note: &dyn Fn(&str),
) -> Result<(std::fs::File, HashMap<String, Position>, Journal), String> {
    use std::fs::{self, OpenOptions};
    let path = positions_path(out);
    let (positions, recorded) = match fs::read_to_string(&path) {
        Ok(text) => read_journal(&path, &text)?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let has_data = fs::metadata(out).is_ok_and(|m| m.len() > 0);
            if has_data {
                return Err(format!(
                    "--resume: {out} has data but {} is missing, so how far it has each \
                     stream is not known; remove {out}, or start without --resume",
                    path.display()
                ));
            }
            (HashMap::new(), 0)
        }
        Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
    };
    let file = OpenOptions::new()
        .create(true)
        .append(true)
        .open(out)
        .map_err(|e| format!("cannot open {out}: {e}"))?;
    let length = file
        .metadata()
        .map_err(|e| format!("cannot read the length of {out}: {e}"))?
        .len();
    if length < recorded {
        return Err(format!(
            "--resume: {out} has {length} bytes, fewer than the {recorded} that {} records: \
             they are not each other's",
            path.display()
        ));
    }
    if length > recorded {
        file.set_len(recorded)
            .map_err(|e| format!("cannot cut {out} to {recorded} bytes: {e}"))?;
        note(&format!(
            "{out}: cut the last {} bytes, written but not recorded before the receiver \
             stopped; their sender sends them again",
            length - recorded
        ));
    }
    // One line per stream, written whole before it replaces the journal.
    let mut journal = Journal {
        file: fs::File::create(path.with_extension("positions.new"))
            .map_err(|e| format!("cannot create {}.new: {e}", path.display()))?,
        length: recorded,
    };
    for (name, position) in &positions {
        journal.record(Some(name), *position)?;
    }
    if positions.is_empty() {
        journal.record(None, Position::default())?;
    }
    fs::rename(path.with_extension("positions.new"), &path)
        .map_err(|e| format!("cannot replace {}: {e}", path.display()))?;
    Ok((file, positions, journal))
}

/// Serves one connection: offers acknowledgements (unless `--plain`), and reads an
/// acknowledged stream or a plain one to its end.
fn serve(mut stream: TcpStream, shared: &Shared, note: impl Fn(&str)) {
    let peer = stream
        .peer_addr()
        .map_or_else(|_| "a peer".to_string(), |a| a.to_string());
    if !shared.acknowledge {
        return receive(stream, shared, Vec::new(), None, &peer, &note);
    }
    // A peer that sends first is a plain sender: it is offered nothing (see ack::OFFER_DELAY).
    let mut first = [0u8; 1];
    let silent = stream
        .set_read_timeout(Some(ack::OFFER_DELAY))
        .and_then(|()| loop {
            match stream.read(&mut first) {
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) =>
                {
                    break Ok(None)
                }
                other => break other.map(Some),
            }
        });
    match silent {
        Ok(None) => {}
        Ok(Some(0)) => return,
        Ok(Some(_)) => {
            let _ = stream.set_read_timeout(None);
            return receive(stream, shared, first.to_vec(), None, &peer, &note);
        }
        Err(e) => return note(&format!("{peer}: read failed: {e}")),
    }
    let offered = stream
        .set_read_timeout(None)
        .and_then(|()| stream.write_all(&ack::MAGIC));
    if let Err(e) = offered {
        return note(&format!("{peer}: cannot offer acknowledgements: {e}"));
    }
    match ack::open(&mut stream) {
        Ok(Opening::Plain(first)) => receive(stream, shared, first, None, &peer, &note),
        Ok(Opening::Acknowledged(name)) => {
            let _claim = shared.claim(&name, &stream);
            let position = shared.position(&name);
            let start = match ack::answer(&mut stream, position) {
                Ok(start) => start,
                Err(e) => return note(&format!("{peer}: stream \"{name}\": {e}")),
            };
            if start < position.bytes {
                return note(&format!(
                    "{peer}: stream \"{name}\" starts again at byte {start}, before the {} \
                     bytes written already; closing the connection",
                    position.bytes
                ));
            }
            if start > position.bytes {
                note(&format!(
                    "{peer}: stream \"{name}\": bytes {}..{start} are lost: the sink no longer \
                     holds them",
                    position.bytes
                ));
                shared.skip_to(&name, start);
            }
            receive(stream, shared, Vec::new(), Some(&name), &peer, &note);
        }
        Err(e) => note(&format!("{peer}: {e}; closing the connection")),
    }
}

/// Reads one connection to its end, writing whole messages as they complete, starting
/// with `pending` (read already). Of an acknowledged `stream`, it acknowledges what it has
/// written every [`ack::ACK_BYTES`] or [`ack::ACK_INTERVAL`], and leaves a message cut
/// short at the end out (the sink sends it again).
fn receive(
    mut stream: TcpStream,
    shared: &Shared,
    mut pending: Vec<u8>,
    acknowledged: Option<&str>,
    peer: &str,
    note: &dyn Fn(&str),
) {
    if acknowledged.is_some() {
        if let Err(e) = stream.set_read_timeout(Some(ack::ACK_INTERVAL)) {
            note(&format!(
                "{peer}: cannot set a read timeout ({e}); closing the connection"
            ));
            return;
        }
    }
    let mut position = acknowledged.map(|name| shared.position(name));
    let mut acked = position;
    let mut acked_at = Instant::now();
    let mut owing = Owing {
        shared,
        owing: false,
    };
    let mut buf = vec![0u8; 64 * 1024];
    let mut read = pending.len();
    loop {
        if read > 0 {
            shared.data_arrived();
            let (whole, messages) = shared.framing.whole_messages(&pending);
            if whole > 0 {
                // Owed from before the count moves, which can end the run.
                owing.set(acknowledged.is_some());
                let written = shared.write(&pending[..whole], messages, acknowledged);
                pending.drain(..whole);
                if acknowledged.is_some() {
                    if written.is_none() {
                        // The output failed: nothing more is acknowledged.
                        return;
                    }
                    position = written;
                }
            }
        }
        if let (Some(now), Some(then)) = (position, acked) {
            let due = now.bytes - then.bytes >= ack::ACK_BYTES
                || (now.bytes > then.bytes && acked_at.elapsed() >= ack::ACK_INTERVAL);
            if due {
                if let Err(e) = stream.write_all(&now.encode()) {
                    note(&format!("{peer}: cannot acknowledge ({e})"));
                    return;
                }
                acked = Some(now);
                acked_at = Instant::now();
            }
            owing.set(acked != position);
        }
        read = match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                pending.extend_from_slice(&buf[..n]);
                n
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => 0,
            Err(e)
                if acknowledged.is_some()
                    && matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) =>
            {
                0
            }
            Err(e) => {
                note(&format!("{peer}: read failed: {e}"));
                break;
            }
        };
    }
    if pending.is_empty() {
        return;
    }
    match (acknowledged, shared.framing) {
        (Some(name), _) => note(&format!(
            "{peer}: stream \"{name}\" ended inside a message ({} bytes left out; the sink \
             sends them again)",
            pending.len()
        )),
        // A last line without its newline still counts, as a source would read it.
        (None, Framing::Lines) => {
            shared.write(&pending, 1, None);
        }
        (None, Framing::LengthPrefixed(_)) => {
            note(&format!(
                "{peer}: the connection ended inside a frame ({} bytes written, not counted)",
                pending.len()
            ));
            shared.write(&pending, 0, None);
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
        let (writer, positions, journal): (Box<dyn Write + Send>, _, _) = if self.config.resume {
            let (file, positions, journal) = resume_output(&self.config.out, &progress)?;
            (Box::new(file), positions, Some(journal))
        } else if self.config.out == "-" {
            (Box::new(std::io::stdout()), HashMap::new(), None)
        } else {
            let file = std::fs::File::create(&self.config.out)
                .map_err(|e| format!("cannot create {}: {e}", self.config.out))?;
            (Box::new(file), HashMap::new(), None)
        };
        let shared = Arc::new(Shared {
            out: Mutex::new(Output {
                writer,
                messages: 0,
                bytes: 0,
                error: None,
                positions,
                journal,
            }),
            framing: self.config.framing,
            acknowledge: !self.config.plain,
            start: Instant::now(),
            last_data: AtomicU64::new(0),
            connections: AtomicU64::new(0),
            partitions: Mutex::new(self.config.kafka.as_ref().map(|_| 0)),
            reading: Mutex::default(),
            freed: Condvar::new(),
            owing: AtomicU64::new(0),
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
                    std::thread::spawn(move || serve(stream, &shared, |note| progress(note)));
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
        // The last acknowledgements go out within ack::ACK_INTERVAL of their writes.
        let deadline = Instant::now() + ack::ACK_INTERVAL * 20;
        while shared.owing.load(Ordering::Acquire) > 0 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(1));
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
                shared.write(&batch, records, None);
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
            plain: false,
            resume: false,
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

    fn scratch(name: &str) -> std::path::PathBuf {
        let dir =
            std::env::temp_dir().join(format!("wallaroo-receiver-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn resume_needs_a_file_and_acknowledgements() {
        let config = parse_args(&["--listen", "h:1", "--out", "f.txt", "--resume"]).unwrap();
        assert!(config.resume && !config.plain);
        let err = parse_args(&["--listen", "h:1", "--resume"]).unwrap_err();
        assert!(err.to_string().contains("give --out FILE"), "{err}");
        assert!(parse_args(&["--listen", "h:1", "--out", "f", "--resume", "--plain"]).is_err());
        assert!(parse_args(&["--listen", "h:1", "--plain"]).unwrap().plain);
    }

    #[test]
    fn resume_cuts_what_was_written_and_not_recorded() {
        let dir = scratch("cut");
        let out = dir.join("out.txt");
        let out = out.to_str().unwrap();
        std::fs::write(out, "a => 1\nb => 1\nx => 9\n").unwrap();
        // Stream "s" has 14 bytes, 2 lines; the last record was cut short by a kill.
        std::fs::write(
            positions_path(out),
            format!(
                "{} 7 1 7\n{} 14 2 14\n- 0 0 14\n{} 21 3",
                hex(b"s"),
                hex(b"s"),
                hex(b"s")
            ),
        )
        .unwrap();
        let notes = Mutex::new(Vec::new());
        let (_file, positions, journal) =
            resume_output(out, &|n: &str| notes.lock().unwrap().push(n.to_string())).unwrap();
        assert_eq!(
            positions["s"],
            Position {
                bytes: 14,
                messages: 2
            }
        );
        assert_eq!(journal.length, 14);
        assert_eq!(std::fs::read_to_string(out).unwrap(), "a => 1\nb => 1\n");
        let notes = notes.into_inner().unwrap();
        assert!(notes[0].contains("cut the last 7 bytes"), "{notes:?}");
        // The journal is compacted to one line per stream.
        assert_eq!(
            std::fs::read_to_string(positions_path(out)).unwrap(),
            format!("{} 14 2 14\n", hex(b"s"))
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn resume_refuses_files_that_do_not_belong_together() {
        let dir = scratch("refuse");
        let out = dir.join("out.txt");
        let out = out.to_str().unwrap();
        let quiet = |_: &str| {};
        std::fs::write(out, "a => 1\n").unwrap();
        let err = resume_output(out, &quiet).err().unwrap();
        assert!(err.contains("out.txt.positions is missing"), "{err}");
        std::fs::write(positions_path(out), "73 99 9 99\n").unwrap();
        let err = resume_output(out, &quiet).err().unwrap();
        assert!(err.contains("has 7 bytes, fewer than the 99"), "{err}");
        std::fs::write(positions_path(out), "73 1 1 1\nnot a record\n").unwrap();
        let err = resume_output(out, &quiet).err().unwrap();
        assert!(
            err.contains("out.txt.positions line 2: `not a record`"),
            "{err}"
        );
        std::fs::write(positions_path(out), "7 1 1 1\n").unwrap();
        let err = resume_output(out, &quiet).err().unwrap();
        assert!(err.contains("line 1"), "{err}");
        // A first start: neither file has data.
        std::fs::remove_file(positions_path(out)).unwrap();
        std::fs::remove_file(out).unwrap();
        let (_, positions, journal) = resume_output(out, &quiet).unwrap();
        assert!(positions.is_empty());
        assert_eq!(journal.length, 0);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn an_acknowledging_sink_is_told_its_position_and_acknowledged() {
        use std::io::Read;
        let dir = scratch("ack");
        let out = dir.join("out.txt");
        let config = Config {
            listen: Some("127.0.0.1:0".into()),
            kafka: None,
            out: out.display().to_string(),
            framing: Framing::Lines,
            expect: Some(5),
            idle_timeout: Some(Duration::from_secs(20)),
            plain: false,
            resume: true,
        };
        let receiver = Receiver::bind(config).unwrap();
        let addr = receiver.local_addr().unwrap();
        let run = std::thread::spawn(move || receiver.run(|_| {}));
        let connect = |expect: Position, start: u64| {
            let mut sink = TcpStream::connect(addr).unwrap();
            // A receiver that made it wait would fail the test, not hang it.
            sink.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            let mut offer = [0u8; 8];
            sink.read_exact(&mut offer).unwrap();
            assert_eq!(offer, ack::MAGIC);
            sink.write_all(&ack::hello("run-1")).unwrap();
            assert_eq!(Position::read(&mut sink).unwrap(), expect);
            sink.write_all(&ack::start(start)).unwrap();
            sink
        };
        let mut sink = connect(Position::default(), 0);
        // A message cut short at the end is left out, to be sent again.
        sink.write_all(b"a => 1\nb => 1\nc =").unwrap();
        let at = |bytes, messages| Position { bytes, messages };
        assert_eq!(Position::read(&mut sink).unwrap(), at(14, 2));
        drop(sink);
        let mut sink = connect(at(14, 2), 14);
        sink.write_all(b"c => 1\n").unwrap();
        assert_eq!(Position::read(&mut sink).unwrap(), at(21, 3));
        drop(sink);
        // A sink that no longer holds bytes 21..28 starts past them.
        let mut sink = connect(at(21, 3), 28);
        sink.write_all(b"e => 1\n").unwrap();
        assert_eq!(Position::read(&mut sink).unwrap(), at(35, 4));
        // The sink connects again while its earlier connection looks open here: that one
        // is shut down, and the new one goes on from where the output is.
        let mut again = connect(at(35, 4), 35);
        let mut rest = Vec::new();
        assert!(
            sink.read_to_end(&mut rest).is_ok(),
            "the earlier connection ended"
        );
        drop(sink);
        again.write_all(b"").unwrap();
        // A plain peer's bytes are written as they come, and do not move the stream.
        let mut plain = TcpStream::connect(addr).unwrap();
        plain.write_all(b"p => 1\n").unwrap();
        drop(plain);
        let summary = run.join().unwrap().unwrap();
        assert_eq!(summary.messages, 5);
        let text = std::fs::read_to_string(&out).unwrap();
        assert_eq!(text, "a => 1\nb => 1\nc => 1\ne => 1\np => 1\n");
        let journal = std::fs::read_to_string(positions_path(out.to_str().unwrap())).unwrap();
        assert!(journal.ends_with("- 0 0 35\n"), "{journal}");
        assert!(
            journal.contains(&format!("{} 35 4 28\n", hex(b"run-1"))),
            "{journal}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_plain_sender_that_never_reads_loses_nothing_when_it_closes() {
        // Were it sent an offer it never reads, its close would reset the connection and
        // drop what its kernel had not sent yet.
        let config = Config {
            listen: Some("127.0.0.1:0".into()),
            kafka: None,
            out: "/dev/null".into(),
            framing: Framing::Lines,
            expect: Some(300_000),
            idle_timeout: Some(Duration::from_secs(20)),
            plain: false,
            resume: false,
        };
        let receiver = Receiver::bind(config).unwrap();
        let addr = receiver.local_addr().unwrap();
        // It sends at once: one silent for ack::OFFER_DELAY would be offered.
        let lines: String = (0..300_000).map(|i| format!("line {i}\n")).collect();
        std::thread::spawn(move || {
            let mut stream = TcpStream::connect(addr).unwrap();
            stream.write_all(lines.as_bytes()).unwrap();
        });
        let summary = receiver.run(|_| {}).unwrap();
        assert_eq!(summary.messages, 300_000);
        assert_eq!(summary.missing, None);
    }
}
