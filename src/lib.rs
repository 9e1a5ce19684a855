//! # wallaroo: stateful stream processing
//!
//! Annotate functions and structs, wire them into a typed pipeline, and `cargo run` a
//! process that decodes framed messages, routes them by partition key to worker threads
//! that own the state of their keys, and encodes the results to sinks.
//!
//! ```no_run
//! use wallaroo::prelude::*;
//!
//! #[derive(Debug, Clone, Copy)]
//! pub struct Vote { pub letter: u8, pub count: u64 }
//!
//! /// One running total per letter.
//! #[state]
//! #[derive(Default)]
//! pub struct Total { votes: u64 }
//!
//! /// A 4-byte big-endian length header, then one letter and a big-endian u32.
//! #[decoder]
//! fn decode(payload: &[u8]) -> Result<Vote, DecodeError> {
//!     match payload {
//!         [letter, a, b, c, d] => Ok(Vote { letter: *letter, count: u32::from_be_bytes([*a, *b, *c, *d]).into() }),
//!         _ => Err(DecodeError::wrong_length(5, payload.len())),
//!     }
//! }
//!
//! #[encoder]
//! fn encode(v: &Vote, out: &mut Vec<u8>) {
//!     out.extend_from_slice(format!("{} => {}\n", v.letter as char, v.count).as_bytes());
//! }
//!
//! #[partition]
//! fn by_letter(v: &Vote) -> u8 { v.letter }
//!
//! #[state_computation(name = "add votes")]
//! fn add_votes(v: Vote, total: &mut Total) -> (Vote, bool) {
//!     total.votes += v.count;
//!     (Vote { letter: v.letter, count: total.votes }, true)
//! }
//!
//! #[wallaroo::main]
//! fn alphabet(args: &Args) -> Application {
//!     Application::new("Alphabet")
//!         .pipeline("Alphabet", Source::new(args.input(0), decode))
//!         .to_state_partition(add_votes, "running vote totals", by_letter)
//!         .to_sink(Sink::new(args.output(0), encode))
//! }
//! ```
//!
//! # Event time
//!
//! A pipeline gives its messages an event time and aggregates each key's messages over
//! windows of it ([`time`]): the accumulator is an `#[aggregation]` struct with
//! [`Aggregation`](time::Aggregation) (`update`, `combine`, `output`); each window that the
//! watermark closes sends a [`Fired`](time::Fired) on.
//!
//! ```
//! use std::time::Duration;
//! use wallaroo::prelude::*;
//!
//! #[derive(Debug, Clone)]
//! pub struct Reading { sensor: String, time: i64, value: f64 }
//!
//! /// `SENSOR,TIME,VALUE`.
//! #[decoder(lines)]
//! fn decode(line: &[u8]) -> Result<Reading, DecodeError> {
//!     let text = std::str::from_utf8(line).map_err(|_| DecodeError::new("not UTF-8"))?;
//!     let mut f = text.trim().split(',');
//!     let mut next = || f.next().ok_or_else(|| DecodeError::new("SENSOR,TIME,VALUE"));
//!     let sensor = next()?.to_string();
//!     let time = next()?.parse().map_err(|_| DecodeError::new("a time"))?;
//!     let value = next()?.parse().map_err(|_| DecodeError::new("a value"))?;
//!     Ok(Reading { sensor, time, value })
//! }
//!
//! /// Count, sum and largest value of a window's readings.
//! #[aggregation]
//! #[derive(Clone, Default)]
//! pub struct Stats { count: u64, sum: f64, max: f64 }
//!
//! impl Aggregation<Reading> for Stats {
//!     type Out = (u64, f64);
//!     fn update(&mut self, r: &Reading) {
//!         self.max = if self.count == 0 { r.value } else { self.max.max(r.value) };
//!         self.count += 1;
//!         self.sum += r.value;
//!     }
//!     fn combine(&mut self, other: &Self) {
//!         if other.count > 0 {
//!             self.max = if self.count == 0 { other.max } else { self.max.max(other.max) };
//!         }
//!         self.count += other.count;
//!         self.sum += other.sum;
//!     }
//!     fn output(&self) -> (u64, f64) {
//!         (self.count, self.sum / self.count as f64)
//!     }
//! }
//!
//! fn event_time(r: &Reading) -> i64 { r.time }
//!
//! #[partition]
//! fn by_sensor(r: &Reading) -> &str { &r.sensor }
//!
//! #[encoder]
//! fn encode(w: &Fired<String, (u64, f64)>, out: &mut Vec<u8>) {
//!     out.extend_from_slice(format!("{} [{},{}) {:?}\n", w.key, w.window.start, w.window.end, w.value).as_bytes());
//! }
//!
//! #[wallaroo::main]
//! fn window_average(args: &Args) -> Application {
//!     Application::new("Window Average")
//!         .pipeline("Readings", Source::new(args.input(0), decode))
//!         .event_time(event_time, Watermarks::bounded(Duration::from_secs(2)))
//!         .to_window(Windows::tumbling(Duration::from_secs(10)), Stats::default(), "sensor windows", by_sensor)
//!         .to_sink(Sink::new(args.output(0), encode))
//! }
//! ```
//!
//! `Windows::tumbling(…).pre_aggregate()` combines each sensor's readings per window on the
//! source's thread, so that one partial per sensor and window crosses to the worker that
//! owns the sensor instead of every reading
//! ([`TimeWindows::pre_aggregate`](time::TimeWindows::pre_aggregate)).
//!
//! # Timers
//!
//! A [`Process`](time::Process) step keeps a state per key and can ask to be called again at
//! an event time or after a while of wall-clock time, whether or not a message comes:
//!
//! ```
//! use std::time::Duration;
//! use wallaroo::prelude::*;
//! use wallaroo::time::{Process, Timer, Timers};
//!
//! # #[derive(Clone)]
//! pub struct Click { user: String, time: i64 }
//!
//! /// A user's clicks since the last quiet half hour.
//! #[state]
//! #[derive(Default)]
//! pub struct Visit { clicks: u64, last: i64 }
//!
//! /// Closes a visit 30 minutes of event time after its last click.
//! pub struct Visits;
//!
//! impl Process<Click> for Visits {
//!     type State = Visit;
//!     type Key = String;
//!     type Out = (String, u64);
//!     fn on_message(&self, click: Click, visit: &mut Visit, timers: &mut Timers<'_, String>, _: &mut impl Emit<(String, u64)>) -> bool {
//!         visit.clicks += 1;
//!         visit.last = visit.last.max(click.time);
//!         timers.at_event_time(visit.last + 30 * 60_000);
//!         true
//!     }
//!     fn on_timer(&self, timer: Timer, visit: &mut Visit, timers: &mut Timers<'_, String>, out: &mut impl Emit<(String, u64)>) -> bool {
//!         if visit.clicks == 0 || timer.time < visit.last + 30 * 60_000 {
//!             return false; // a later click moved the end
//!         }
//!         out.emit((timers.key().clone(), visit.clicks));
//!         *visit = Visit::default();
//!         true
//!     }
//! }
//!
//! #[partition]
//! fn by_user(c: &Click) -> &str { &c.user }
//!
//! # fn app(clicks: Pipeline<Click>) -> Pipeline<(String, u64)> {
//! clicks
//!     .event_time(|c: &Click| c.time, Watermarks::bounded(Duration::from_secs(5)))
//!     .to_process(Visits, "visits", by_user)
//! # }
//! ```

#![warn(missing_docs)]

/// What clap's derives name: an application declares its own flags with
/// `#[derive(clap::Args)]` (see [`macro@main`]) and needs no clap dependency of its own.
///
/// The derives' expansions name `clap::…` as written, so the name `clap` must be in scope:
/// `use wallaroo::clap;` brings this module under it. (The prelude does not: for an
/// application that depends on clap itself, a second `clap` from a glob import would make
/// the name ambiguous; such an application imports neither and uses its own.) Only what the
/// derives name is here, and the builder, for `#[arg(value_parser = …)]`: all of clap,
/// re-exported, would make the compiler spell `String` as `std::string::String` in an
/// application's error messages (clap has an item of that name).
///
/// ```
/// use wallaroo::clap;
/// use wallaroo::prelude::*;
///
/// #[derive(clap::Args, Debug, PartialEq)]
/// struct Flags {
///     /// Alert above this
///     #[arg(long, default_value_t = 5)]
///     threshold: u32,
///     #[arg(long, value_enum, default_value_t = Unit::Celsius)]
///     unit: Unit,
/// }
///
/// #[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq)]
/// enum Unit { Celsius, Fahrenheit }
///
/// use wallaroo::flags::{parse, CommandLine};
/// let Ok(CommandLine::Run(_, flags)) = parse::<Flags, _, _>("app", "1", "", ["app", "--threshold", "7"]) else { panic!() };
/// assert_eq!(flags, Flags { threshold: 7, unit: Unit::Celsius });
/// ```
pub mod clap {
    pub use ::clap::builder;
    pub use ::clap::{
        value_parser, Arg, ArgAction, ArgGroup, ArgMatches, Args, Command, CommandFactory, Error,
        FromArgMatches, Id, Parser, Subcommand, ValueEnum, ValueHint,
    };

    /// The kinds of error that clap's derives name.
    pub mod error {
        pub use ::clap::error::{Error, ErrorKind};
    }
}
/// serde, as `#[state]` and `#[data]` use it. A type kept inside a state needs its traits
/// too: annotate it with [`macro@data`], so that the application needs no serde of its own.
pub use wallaroo_core::__private::serde;
pub use wallaroo_core::*;
pub use wallaroo_macros::{
    aggregation, computation, data, decoder, encoder, main, partition, state, state_computation,
};

/// Everything an application needs: `use wallaroo::prelude::*;`.
pub mod prelude {
    pub use wallaroo_core::time::{Aggregation, Fired, Late, Watermarks, Window, Windows};
    pub use wallaroo_core::{
        Application, Args, DecodeError, Emit, Framing, Generator, Input, Output, Pipeline,
        PushText, Sink, Source,
    };
    pub use wallaroo_macros::{
        aggregation, computation, data, decoder, encoder, partition, state, state_computation,
    };
}

#[doc(hidden)]
pub mod tools;

/// What generated code uses. Not a public API: it changes without notice.
#[doc(hidden)]
pub mod __private {
    pub use wallaroo_core::__private::{inventory, postcard, serde};
    pub use wallaroo_core::app::IntoApplication;
    pub use wallaroo_core::codec::{append_bytes, DecodeResult, Decoder, Encoder, Framing};
    pub use wallaroo_core::component::{ComponentInfo, ComponentKind, Registered};
    pub use wallaroo_core::flags::{Flags, NoFlags};
    pub use wallaroo_core::main_entry::{run_application, run_main};
    pub use wallaroo_core::misuse::{is_command_line, UnknownState, UseTo, UseToStatePartition};
    pub use wallaroo_core::state::{
        collect_keys, default_state, is_borrowed_key, is_owned_key, load_field, read_upgraded,
        route_borrowed, route_owned, save_field, Partition, ReadSaved, SavedVersion, State,
        VersionMismatch,
    };
    pub use wallaroo_core::step::{
        emit_many, emit_one, emit_option, Computation, Emit, StateComputation,
    };
    pub use wallaroo_core::time::Accumulator;
    pub use wallaroo_core::{Application, Args};
}
