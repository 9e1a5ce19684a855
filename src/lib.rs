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
