//! What a panic in a step does to the message it panicked on (a poison message): the error
//! policy of `--on-error`, the count of skipped messages, and the dead-letter output of
//! `--dead-letter`.
//!
//! `stop` (the default) stops the application cleanly, naming the step, the key and the
//! message's position; `skip` skips the message and goes on, counting it, logging it
//! (rate-limited) and writing its record to the dead-letter output. Only the panic's path
//! is here: a message that does not panic meets none of this. Below the threads' shared
//! context, which holds the policy: nothing here knows the errors that end an application.

use std::cell::{Cell, RefCell};
use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, Once};

use crate::args::{Args, DeadLetter, OnError};
use crate::resilience::record::{stream_name, Origin};

/// Skipped messages logged one by one; after them, one in [`SKIPS_LOG_EVERY`].
const SKIPS_LOGGED: u64 = 10;
/// After the first [`SKIPS_LOGGED`], one skip in this many is logged.
const SKIPS_LOG_EVERY: u64 = 1000;

thread_local! {
    /// Whether this thread's panics are reported by the error policy (a worker that skips
    /// them, rate-limited) rather than by the panic hook (every one, with its backtrace).
    static QUIET: Cell<bool> = const { Cell::new(false) };
    /// Where this thread's last quiet panic happened.
    static LOCATION: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// Has the panics of this thread reported by the error policy only: the panic hook notes
/// where each happened instead of printing it (other threads' panics print as before).
pub(crate) fn quiet_panics_here() {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if QUIET.with(Cell::get) {
                let at = info.location().map(ToString::to_string);
                LOCATION.with(|location| *location.borrow_mut() = at);
            } else {
                previous(info);
            }
        }));
    });
    QUIET.with(|quiet| quiet.set(true));
}

/// Where this thread's last quiet panic happened, taken.
pub(crate) fn take_panic_location() -> Option<String> {
    LOCATION.with(|location| location.borrow_mut().take())
}

/// Where a step runs: in a state partition (a state computation, on its workers), or in a
/// pipeline (a stateless step).
#[derive(Clone, Copy, Debug)]
pub(crate) enum Within<'a> {
    /// A state computation of this state partition, on this worker.
    State(&'a str, usize),
    /// A stateless step of this pipeline.
    Pipeline(&'a str),
}

impl std::fmt::Display for Within<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Within::State(state, _) => write!(f, "state partition {state:?}"),
            Within::Pipeline(pipeline) => write!(f, "pipeline {pipeline:?}"),
        }
    }
}

/// Why a panic stops the application.
#[derive(Debug)]
pub(crate) enum Stop {
    /// The policy is to stop, or no one message is to blame (a panic after the state
    /// computation).
    Policy {
        /// The step, as ``state computation `add up` ``.
        step: String,
        /// The message: its key and its position.
        at: String,
        /// The panic's message, and where it happened when known.
        message: String,
    },
    /// The dead-letter output could not be written.
    DeadLetter {
        /// The output, as people know it.
        output: String,
        /// Why.
        source: std::io::Error,
    },
}

/// A message a step panicked on, as the thread that ran it found it.
#[derive(Debug)]
pub(crate) struct Poisoned {
    /// The step's name.
    pub(crate) step: &'static str,
    /// Whether the step is a stateless one.
    pub(crate) stateless: bool,
    /// Whether the panic came from after the state computation (a stateless step after it,
    /// or the sink's encoder), while its outputs were passed on: then no one message is to
    /// blame, and the application stops whatever the policy.
    pub(crate) after: bool,
    /// The message's key, as JSON; `None` when it could not be found.
    pub(crate) key: Option<serde_json::Value>,
    /// Where the message came from.
    pub(crate) origin: Origin,
    /// The panic's message.
    pub(crate) panic: String,
    /// Where the panic happened (`src/main.rs:12:5`), when the panic hook was not the one
    /// to print it.
    pub(crate) location: Option<String>,
}

impl Poisoned {
    /// The panic's message, and where it happened when known.
    fn panic_text(&self) -> String {
        match &self.location {
            Some(location) => format!("{} (at {location})", self.panic),
            None => self.panic.clone(),
        }
    }

    /// The key as people read it: a string key as it is, any other as its JSON.
    fn key_text(&self) -> String {
        match &self.key {
            Some(serde_json::Value::String(key)) => format!("{key:?}"),
            Some(key) => key.to_string(),
            None => "(not found)".to_string(),
        }
    }

    /// ``state computation `add up` ``, ``computation `double` ``, or the steps after a
    /// state computation.
    fn step_text(&self) -> String {
        if self.stateless {
            format!("computation `{}`", self.step)
        } else if self.after {
            format!("a step after state computation `{}`", self.step)
        } else {
            format!("state computation `{}`", self.step)
        }
    }

    /// What the step failed on, with where it came from.
    fn at_text(&self, within: Within<'_>) -> String {
        let worker = match within {
            Within::State(_, worker) => format!(" (worker {worker})"),
            Within::Pipeline(_) => String::new(),
        };
        let key = match &self.key {
            Some(_) => format!("of key {} ", self.key_text()),
            None if self.stateless => String::new(),
            None => format!("of key {} ", self.key_text()),
        };
        let origin = self.origin.describe();
        if self.after {
            format!("the outputs it passed on, the last from the message {key}{origin}{worker}")
        } else {
            format!("the message {key}{origin}{worker}")
        }
    }
}

/// The serde form of a dead letter: one JSON object a line.
#[derive(serde::Serialize)]
struct DeadLetterRecord<'a> {
    /// Milliseconds since the Unix epoch.
    time_ms: u128,
    step: &'a str,
    /// The state partition of a state computation.
    #[serde(skip_serializing_if = "Option::is_none")]
    state: Option<&'a str>,
    /// The worker of a state computation.
    #[serde(skip_serializing_if = "Option::is_none")]
    worker: Option<usize>,
    /// The pipeline of a stateless step.
    #[serde(skip_serializing_if = "Option::is_none")]
    pipeline: Option<&'a str>,
    /// The state key; `null` for a stateless step.
    key: &'a Option<serde_json::Value>,
    /// The stream's name; `null` for a message of a source that cannot replay.
    stream: Option<String>,
    /// The message's position in its stream, counted from 0; `null` without a stream.
    position: Option<u64>,
    /// The index among the messages one input became, 0 for the first.
    sub: u32,
    panic: &'a str,
    /// Where the panic happened in the source code.
    location: &'a Option<String>,
}

/// The error policy of a running application, shared by its threads.
pub(crate) struct ErrorPolicy {
    skip: bool,
    /// Where skipped messages' records go, and its name for errors.
    dead_letters: Option<(Mutex<Box<dyn Write + Send>>, String)>,
    skipped: AtomicU64,
    /// Whether skips are neither counted, logged nor written: for a chain that runs
    /// messages only to learn where they would go, which the real chain runs again.
    silent: bool,
}

impl Default for ErrorPolicy {
    /// Stop, as `--on-error` does by default.
    fn default() -> Self {
        ErrorPolicy {
            skip: false,
            dead_letters: None,
            skipped: AtomicU64::new(0),
            silent: false,
        }
    }
}

impl ErrorPolicy {
    /// The same choice, but silent: for a chain whose messages the real one runs again.
    pub(crate) fn silent(&self) -> ErrorPolicy {
        ErrorPolicy {
            skip: self.skip,
            silent: true,
            ..ErrorPolicy::default()
        }
    }

    /// The policy `args` ask for; opens the dead-letter file (appending), or says why it
    /// cannot.
    pub(crate) fn new(args: &Args) -> std::io::Result<ErrorPolicy> {
        let dead_letters = match args.dead_letter() {
            None => None,
            Some(DeadLetter::Stderr) => Some((
                Mutex::new(Box::new(std::io::stderr()) as Box<dyn Write + Send>),
                "standard error".to_string(),
            )),
            Some(DeadLetter::File(path)) => {
                let file = std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)?;
                Some((
                    Mutex::new(Box::new(file) as Box<dyn Write + Send>),
                    path.display().to_string(),
                ))
            }
        };
        Ok(ErrorPolicy {
            skip: args.on_error() == OnError::Skip,
            dead_letters,
            ..ErrorPolicy::default()
        })
    }

    /// Whether a message a state computation panicked on is skipped.
    pub(crate) fn skips(&self) -> bool {
        self.skip
    }

    /// How many messages were skipped so far.
    pub(crate) fn skipped(&self) -> u64 {
        self.skipped.load(Ordering::Relaxed)
    }

    /// Where the records of skipped messages went, if anywhere.
    pub(crate) fn dead_letter_name(&self) -> Option<&str> {
        self.dead_letters.as_ref().map(|(_, name)| name.as_str())
    }

    /// Decides on a message that a step `within` panicked on: `Ok(())` to skip it and go
    /// on (counted, logged, its record written to the dead-letter output), or why the
    /// application stops.
    pub(crate) fn on_panic(&self, within: Within<'_>, poisoned: &Poisoned) -> Result<(), Stop> {
        if !self.skip || poisoned.after {
            return Err(Stop::Policy {
                step: poisoned.step_text(),
                at: poisoned.at_text(within),
                message: poisoned.panic_text(),
            });
        }
        if self.silent {
            return Ok(());
        }
        let so_far = self.skipped.fetch_add(1, Ordering::Relaxed) + 1;
        if so_far <= SKIPS_LOGGED || so_far.is_multiple_of(SKIPS_LOG_EVERY) {
            tracing::warn!(
                "{} of {within} panicked on {}: {}; skipped (--on-error skip), {so_far} skipped \
                 so far",
                poisoned.step_text(),
                poisoned.at_text(within),
                poisoned.panic_text()
            );
        }
        if let Some((out, name)) = &self.dead_letters {
            let record = DeadLetterRecord {
                time_ms: std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_millis()),
                step: poisoned.step,
                state: match within {
                    Within::State(state, _) => Some(state),
                    Within::Pipeline(_) => None,
                },
                worker: match within {
                    Within::State(_, worker) => Some(worker),
                    Within::Pipeline(_) => None,
                },
                pipeline: match within {
                    Within::State(..) => None,
                    Within::Pipeline(pipeline) => Some(pipeline),
                },
                key: &poisoned.key,
                stream: poisoned.origin.is_some().then(|| {
                    match stream_name(poisoned.origin.stream) {
                        Some(name) => name.to_string(),
                        None => format!("{:#x}", poisoned.origin.stream),
                    }
                }),
                position: poisoned.origin.is_some().then(|| poisoned.origin.seq - 1),
                sub: poisoned.origin.sub,
                panic: &poisoned.panic,
                location: &poisoned.location,
            };
            let mut line = serde_json::to_vec(&record).expect("a dead letter is JSON");
            line.push(b'\n');
            let mut out = out.lock().unwrap_or_else(|e| e.into_inner());
            // Written through at once: a dead letter must outlive a crash that follows.
            out.write_all(&line)
                .and_then(|()| out.flush())
                .map_err(|source| Stop::DeadLetter {
                    output: format!("dead letters ({name})"),
                    source,
                })?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A stop as one line, as the error that ends the application shows it.
    fn stop_text(stop: Stop) -> String {
        match stop {
            Stop::Policy { step, at, message } => format!("{step} panicked on {at}: {message}"),
            Stop::DeadLetter { output, source } => format!("{output}: {source}"),
        }
    }

    fn poisoned(key: Option<serde_json::Value>, origin: Origin) -> Poisoned {
        Poisoned {
            step: "add up",
            stateless: false,
            after: false,
            key,
            origin,
            panic: "cannot add 500".into(),
            location: Some("src/sums.rs:7:5".into()),
        }
    }

    #[test]
    fn a_stop_names_the_step_the_key_and_the_position() {
        let policy = ErrorPolicy::new(&Args::new()).unwrap();
        crate::resilience::record::name_stream(77, "numbers");
        let origin = Origin {
            stream: 77,
            seq: 501,
            sub: 0,
        };
        let error = stop_text(
            policy
                .on_panic(Within::State("sums", 1), &poisoned(Some(0.into()), origin))
                .unwrap_err(),
        );
        for part in [
            "state computation `add up`",
            "key 0 at position 500 of stream \"numbers\"",
            "worker 1",
            "cannot add 500 (at src/sums.rs:7:5)",
        ] {
            assert!(error.contains(part), "{part:?} not in: {error}");
        }
        let error = stop_text(
            policy
                .on_panic(
                    Within::State("sums", 0),
                    &poisoned(Some("a".into()), Origin::NONE),
                )
                .unwrap_err(),
        );
        assert!(
            error.contains("key \"a\" without a position (its source cannot replay)"),
            "{error}"
        );
        assert_eq!(policy.skipped(), 0);
    }

    #[test]
    fn a_skip_is_counted_and_written_as_one_json_line() {
        let dir = std::env::temp_dir().join(format!("wallaroo-poison-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("dead.jsonl");
        let _ = std::fs::remove_file(&path);
        let args = Args::new()
            .with_on_error(OnError::Skip)
            .with_dead_letter(DeadLetter::File(path.clone()));
        let policy = ErrorPolicy::new(&args).unwrap();
        crate::resilience::record::name_stream(78, "file:/in");
        let origin = Origin {
            stream: 78,
            seq: 8,
            sub: 2,
        };
        let key = serde_json::json!(["k", 1]);
        policy
            .on_panic(
                Within::State("sums", 0),
                &poisoned(Some(key.clone()), origin),
            )
            .unwrap();
        policy
            .on_panic(Within::Pipeline("doubled"), &poisoned(None, Origin::NONE))
            .unwrap();
        assert_eq!(policy.skipped(), 2);
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 2, "{text}");
        assert_eq!(lines[0]["step"], "add up");
        assert_eq!(lines[0]["state"], "sums");
        assert_eq!(lines[0]["key"], key);
        assert_eq!(lines[0]["stream"], "file:/in");
        assert_eq!(lines[0]["position"], 7);
        assert_eq!(lines[0]["sub"], 2);
        assert_eq!(lines[0]["panic"], "cannot add 500");
        assert_eq!(lines[0]["location"], "src/sums.rs:7:5");
        assert_eq!(lines[0]["worker"], 0);
        assert!(lines[0].get("pipeline").is_none());
        assert!(lines[1]["stream"].is_null() && lines[1]["position"].is_null());
        assert_eq!(lines[1]["pipeline"], "doubled");
        assert!(lines[1].get("state").is_none() && lines[1].get("worker").is_none());

        // A panic after the state computation stops, even when skipping.
        let mut after = poisoned(Some(1.into()), Origin::NONE);
        after.after = true;
        let error = stop_text(
            policy
                .on_panic(Within::State("sums", 0), &after)
                .unwrap_err(),
        );
        assert!(
            error.contains("a step after state computation `add up`"),
            "{error}"
        );
        assert_eq!(policy.skipped(), 2);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
