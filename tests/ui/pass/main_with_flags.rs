//! `#[wallaroo::main]` with the application's own flags, declared with clap's derive through
//! `wallaroo::clap` (the crate has no clap dependency of its own).
//!
//! trybuild runs the program without arguments and with stdin closed: the flags take their
//! defaults and the application ends at once.
#![deny(warnings)]

use wallaroo::clap;
use wallaroo::prelude::*;

/// The application's own flags.
#[derive(clap::Args, Debug)]
struct Flags {
    /// The application's name
    #[arg(long, default_value = "words")]
    name: String,
    /// Upper-case the words
    #[arg(long)]
    shout: bool,
}

#[decoder(lines)]
fn decode(line: &[u8]) -> Result<String, DecodeError> {
    String::from_utf8(line.to_vec()).map_err(|_| DecodeError::new("not UTF-8"))
}

#[computation]
fn to_upper(s: String) -> String {
    s.to_uppercase()
}

#[encoder]
fn encode(s: &String) -> String {
    format!("{s}\n")
}

/// Passes words on, upper-cased with `--shout`.
///
/// A second paragraph, which `--help` shows and `-h` does not.
#[wallaroo::main]
fn setup(args: &Args, flags: &Flags) -> Application {
    assert_eq!((flags.name.as_str(), flags.shout), ("words", false));
    assert!(args.inputs().is_empty());
    let words =
        Application::new(flags.name.as_str()).pipeline("words", Source::new(Input::Stdin, decode));
    let words = if flags.shout { words.to(to_upper) } else { words };
    words.to_sink(Sink::new(Output::Stdout, encode))
}
