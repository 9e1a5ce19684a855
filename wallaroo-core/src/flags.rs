//! An application's own flags on the command line, beside wallaroo's, and the description
//! that `--help` starts with.
//!
//! An application declares its flags as a struct that derives `clap::Args` and takes them
//! as the second parameter of its `#[wallaroo::main]` function; they are parsed with
//! wallaroo's, in one command line, with clap's usual errors.

use std::ffi::OsString;

use clap::builder::{Resettable, StyledStr};
use clap::{ArgMatches, Command, FromArgMatches};

use crate::args::{self, Args, Matched, UsageError};

/// The flags an application adds to the command line: a struct that derives `clap::Args`.
///
/// ```
/// use wallaroo_core::flags::{self, CommandLine, NoFlags};
/// let CommandLine::Run(args, NoFlags) = flags::parse::<NoFlags, _, _>("app", "1.0", "", ["app", "--workers", "2"]).unwrap() else { panic!() };
/// assert_eq!(args.workers(), 2);
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a set of command-line flags",
    label = "the second parameter of a `#[wallaroo::main]` function is the application's own flags",
    note = "derive them with clap, which wallaroo brings: `use wallaroo::clap;`, then `#[derive(clap::Args)] struct Flags {{ #[arg(long, default_value_t = 5)] threshold: u32 }}`"
)]
pub trait Flags: clap::Args + FromArgMatches + 'static {}

impl<T: clap::Args + FromArgMatches + 'static> Flags for T {}

/// No flags of the application's own: what a setup function without a flags parameter has.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NoFlags;

impl FromArgMatches for NoFlags {
    fn from_arg_matches(_: &ArgMatches) -> Result<Self, clap::Error> {
        Ok(NoFlags)
    }

    fn update_from_arg_matches(&mut self, _: &ArgMatches) -> Result<(), clap::Error> {
        Ok(())
    }
}

impl clap::Args for NoFlags {
    fn augment_args(command: Command) -> Command {
        command
    }

    fn augment_args_for_update(command: Command) -> Command {
        command
    }
}

/// What parsing a command line with an application's flags asks for.
// Made once, at start: the size of its variants does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum CommandLine<F> {
    /// Run (or print the topology) with wallaroo's arguments and the application's flags.
    Run(Args, F),
    /// `--help` or `--version`: print this text and exit 0.
    Print(String),
}

/// Why a command line was not parsed.
#[derive(Debug, thiserror::Error)]
pub enum CommandLineError {
    /// A usage error: one line naming the flag; exit status 2.
    #[error(transparent)]
    Usage(#[from] UsageError),
    /// A flag of the application takes a name or an id that wallaroo's command line has
    /// already: a bug of the application, reported on every run (`--help` included) before
    /// anything is parsed; exit status 1.
    #[error("error: {0}")]
    Clash(String),
}

impl CommandLineError {
    /// The process's exit status for this error: 2 for a usage error, 1 for a clash.
    pub fn exit_code(&self) -> u8 {
        match self {
            CommandLineError::Usage(_) => 2,
            CommandLineError::Clash(_) => 1,
        }
    }
}

/// Parses a command line (the first item is the program name) with wallaroo's flags and the
/// application's `F`. `doc` is the setup function's doc comment, which `--help` starts with
/// (see [`about`]); without one, `--help` says what wallaroo's own command line says.
///
/// ```
/// use wallaroo_core::flags::{self, CommandLine, CommandLineError, NoFlags};
/// let help = match flags::parse::<NoFlags, _, _>("app", "1.0", " Counts votes.", ["app", "--help"]) {
///     Ok(CommandLine::Print(text)) => text,
///     _ => panic!(),
/// };
/// assert!(help.starts_with("Counts votes."));
/// let err = flags::parse::<NoFlags, _, _>("app", "1.0", "", ["app", "--workers", "0"]).unwrap_err();
/// assert!(matches!(err, CommandLineError::Usage(_)) && err.to_string().contains("--workers"));
/// ```
pub fn parse<F, I, T>(
    name: &str,
    version: &str,
    doc: &str,
    argv: I,
) -> Result<CommandLine<F>, CommandLineError>
where
    F: Flags,
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let wallaroo = args::command(name, version);
    if let Some(clash) = clash(&wallaroo, &F::augment_args(Command::new(name.to_string()))) {
        return Err(CommandLineError::Clash(clash));
    }
    let generic = wallaroo.get_about().cloned();
    // The description is set after the flags: a flags struct's own doc comment, which
    // clap's derive makes its `about`, does not describe the application.
    let command = F::augment_args(wallaroo);
    let (about, long_about) = match about(doc) {
        Some((about, long_about)) => (Some(StyledStr::from(about)), long_about),
        None => (generic, None),
    };
    let reset = |text: Option<StyledStr>| text.map_or(Resettable::Reset, Resettable::Value);
    let command = command
        .about(reset(about))
        .long_about(reset(long_about.map(StyledStr::from)));
    match args::matches(command, argv)? {
        Matched::Print(text) => Ok(CommandLine::Print(text)),
        Matched::Matches(matches) => {
            let args = Args::from_matches(&matches)?;
            let flags =
                F::from_arg_matches(&matches).map_err(|e| UsageError(args::first_line(&e)))?;
            Ok(CommandLine::Run(args, flags))
        }
    }
}

/// The description that `--help` starts with, from a doc comment as its `#[doc]` attributes
/// hold it (one line each, with the space after `///`): its first paragraph, which `-h`
/// shows, and the whole text when it has more paragraphs, which `--help` shows; `None`
/// when it holds no text. The lines of a paragraph are joined with spaces, as clap's derive
/// joins them.
///
/// ```
/// use wallaroo_core::flags::about;
/// assert_eq!(about(" Counts votes\n per letter."), Some(("Counts votes per letter.".into(), None)));
/// assert_eq!(
///     about(" Counts votes.\n\n Per letter."),
///     Some(("Counts votes.".into(), Some("Counts votes.\n\nPer letter.".into())))
/// );
/// assert_eq!(about(" \n"), None);
/// ```
pub fn about(doc: &str) -> Option<(String, Option<String>)> {
    let mut paragraphs: Vec<String> = Vec::new();
    let mut current = String::new();
    for line in doc.lines() {
        let line = line.trim();
        if line.is_empty() {
            if !current.is_empty() {
                paragraphs.push(std::mem::take(&mut current));
            }
        } else {
            if !current.is_empty() {
                current.push(' ');
            }
            current.push_str(line);
        }
    }
    if !current.is_empty() {
        paragraphs.push(current);
    }
    let first = paragraphs.first()?.clone();
    let long = (paragraphs.len() > 1).then(|| paragraphs.join("\n\n"));
    Some((first, long))
}

/// The first flag of `app` that takes a name or an id of `wallaroo`'s (its `--help` and
/// `--version` included), said as the error that names both and what to write instead.
fn clash(wallaroo: &Command, app: &Command) -> Option<String> {
    let reserved = [("help", 'h'), ("version", 'V')];
    for arg in app.get_arguments() {
        let id = arg.get_id().as_str();
        let longs: Vec<&str> = arg
            .get_long()
            .into_iter()
            .chain(arg.get_all_aliases().unwrap_or_default())
            .collect();
        let shorts: Vec<char> = arg
            .get_short()
            .into_iter()
            .chain(arg.get_all_short_aliases().unwrap_or_default())
            .collect();
        let shown = match (arg.get_long(), arg.get_short()) {
            (Some(long), _) => format!("--{long}"),
            (None, Some(short)) => format!("-{short}"),
            (None, None) => format!("<{id}>"),
        };
        let rename = "give it another name with `#[arg(long = \"…\")]`";
        for (long, short) in reserved {
            if longs.contains(&long) || shorts.contains(&short) || id == long {
                return Some(format!(
                    "the application's flag {shown} clashes with wallaroo's --{long} (-{short}): {rename}"
                ));
            }
        }
        for theirs in wallaroo.get_arguments() {
            let their_long = theirs.get_long().unwrap_or_default();
            if let Some(long) = longs.iter().find(|l| theirs.get_long() == Some(l)) {
                return Some(format!(
                    "the application's flag {shown} clashes with wallaroo's --{long}: {rename}"
                ));
            }
            if let Some(short) = shorts.iter().find(|s| theirs.get_short() == Some(**s)) {
                return Some(format!(
                    "the application's flag {shown} clashes with wallaroo's -{short} (--{their_long}): give it another short name with `#[arg(short = '…')]`"
                ));
            }
            if theirs.get_id() == arg.get_id() {
                return Some(format!(
                    "the application's flag {shown} has the id `{id}`, which wallaroo's --{their_long} has: rename its field, or write `#[arg(id = \"…\")]`"
                ));
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::{Arg, ArgAction};

    /// Flags written as clap's derive writes them: `--threshold N` (default 5).
    #[derive(Debug, PartialEq)]
    struct Threshold(u32);

    impl FromArgMatches for Threshold {
        fn from_arg_matches(m: &ArgMatches) -> Result<Self, clap::Error> {
            Ok(Threshold(
                *m.get_one::<u32>("threshold").expect("a default"),
            ))
        }
        fn update_from_arg_matches(&mut self, m: &ArgMatches) -> Result<(), clap::Error> {
            *self = Self::from_arg_matches(m)?;
            Ok(())
        }
    }

    impl clap::Args for Threshold {
        fn augment_args(command: Command) -> Command {
            command.arg(
                Arg::new("threshold")
                    .long("threshold")
                    .value_parser(clap::value_parser!(u32))
                    .default_value("5")
                    .help("Alert above this"),
            )
        }
        fn augment_args_for_update(command: Command) -> Command {
            Self::augment_args(command)
        }
    }

    fn parse_threshold(argv: &[&str]) -> Result<CommandLine<Threshold>, CommandLineError> {
        let mut full = vec!["app"];
        full.extend_from_slice(argv);
        parse("app", "0.1.0", " Watches readings.", full)
    }

    #[test]
    fn the_applications_flags_are_parsed_with_wallaroos() {
        let CommandLine::Run(args, flags) =
            parse_threshold(&["--threshold", "9", "--workers", "3"]).unwrap()
        else {
            panic!("not run")
        };
        assert_eq!((args.workers(), flags), (3, Threshold(9)));
        let CommandLine::Run(_, flags) = parse_threshold(&[]).unwrap() else {
            panic!("not run")
        };
        assert_eq!(flags, Threshold(5));
    }

    #[test]
    fn a_bad_value_of_the_applications_flag_is_a_one_line_usage_error() {
        let err = parse_threshold(&["--threshold", "many"]).unwrap_err();
        assert_eq!(err.exit_code(), 2);
        let line = err.to_string();
        assert!(
            line.starts_with("error:") && line.contains("--threshold"),
            "{line}"
        );
        assert_eq!(line.lines().count(), 1, "{line}");
    }

    #[test]
    fn help_starts_with_the_doc_and_lists_both_kinds_of_flag() {
        let Ok(CommandLine::Print(help)) = parse_threshold(&["--help"]) else {
            panic!("no help")
        };
        assert!(help.starts_with("Watches readings."), "{help}");
        assert!(
            help.contains("--threshold") && help.contains("--workers"),
            "{help}"
        );
        // Without a doc comment, wallaroo's own sentence.
        let Ok(CommandLine::Print(help)) = parse::<Threshold, _, _>("app", "0", "", ["app", "-h"])
        else {
            panic!("no help")
        };
        assert!(
            help.starts_with("A wallaroo stream-processing application."),
            "{help}"
        );
    }

    /// Flags of one argument, `arg`.
    fn one_flag(arg: Arg) -> Option<String> {
        clash(&args::command("app", "0"), &Command::new("app").arg(arg))
    }

    #[test]
    fn a_flag_that_takes_a_name_of_wallaroos_is_refused_naming_both() {
        let clash = one_flag(Arg::new("threads").long("workers")).unwrap();
        assert!(
            clash.contains("--workers") && clash.contains("#[arg(long"),
            "{clash}"
        );
        let clash = one_flag(Arg::new("workers").long("threads")).unwrap();
        assert!(
            clash.contains("id `workers`") && clash.contains("--threads"),
            "{clash}"
        );
        let clash = one_flag(Arg::new("hush").short('h').action(ArgAction::SetTrue)).unwrap();
        assert!(clash.contains("--help"), "{clash}");
        let clash = one_flag(Arg::new("v").long("version")).unwrap();
        assert!(clash.contains("--version"), "{clash}");
        let clash = one_flag(Arg::new("x").long("x").alias("out")).unwrap();
        assert!(clash.contains("--out"), "{clash}");
        assert_eq!(one_flag(Arg::new("threshold").long("threshold")), None);
        let err = parse::<ClashingFlags, _, _>("app", "0", "", ["app", "--help"]).unwrap_err();
        assert_eq!(err.exit_code(), 1);
        assert!(
            err.to_string()
                .starts_with("error: the application's flag --in"),
            "{err}"
        );
    }

    #[derive(Debug)]
    struct ClashingFlags;

    impl FromArgMatches for ClashingFlags {
        fn from_arg_matches(_: &ArgMatches) -> Result<Self, clap::Error> {
            Ok(ClashingFlags)
        }
        fn update_from_arg_matches(&mut self, _: &ArgMatches) -> Result<(), clap::Error> {
            Ok(())
        }
    }

    impl clap::Args for ClashingFlags {
        fn augment_args(command: Command) -> Command {
            command.arg(Arg::new("input").long("in"))
        }
        fn augment_args_for_update(command: Command) -> Command {
            Self::augment_args(command)
        }
    }
}
