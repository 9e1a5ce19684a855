//! An application's own flags, derived with clap through `wallaroo::clap` (this crate's
//! clap dependency is not used): parsed beside wallaroo's with clap's usual errors, and a
//! flag that takes a name of wallaroo's refused before anything is parsed.

use wallaroo::clap;
use wallaroo::flags::{parse, CommandLine, CommandLineError};

#[derive(clap::Args, Debug, PartialEq)]
struct Flags {
    /// Alert above this
    #[arg(long, default_value_t = 5)]
    threshold: u32,
    /// Readings in a window
    #[arg(long = "window", value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    window_size: Option<u16>,
    #[arg(long, value_enum, default_value_t = Unit::Celsius)]
    unit: Unit,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq)]
enum Unit {
    Celsius,
    Fahrenheit,
}

fn parse_flags<F: wallaroo::flags::Flags>(
    argv: &[&str],
) -> Result<CommandLine<F>, CommandLineError> {
    let mut full = vec!["app"];
    full.extend_from_slice(argv);
    parse("app", "0.1.0", " Watches readings.", full)
}

fn run(argv: &[&str]) -> (wallaroo::Args, Flags) {
    match parse_flags(argv).unwrap() {
        CommandLine::Run(args, flags) => (args, flags),
        CommandLine::Print(text) => panic!("printed: {text}"),
    }
}

#[test]
fn derived_flags_take_their_defaults_and_values_beside_wallaroos() {
    let (args, flags) = run(&["--in", "-"]);
    assert_eq!(args.inputs(), [wallaroo::Input::Stdin]);
    let defaults = Flags {
        threshold: 5,
        window_size: None,
        unit: Unit::Celsius,
    };
    assert_eq!(flags, defaults);
    let (args, flags) = run(&[
        "--threshold",
        "9",
        "--workers",
        "2",
        "--window=10",
        "--unit",
        "fahrenheit",
    ]);
    assert_eq!(args.workers(), 2);
    let given = Flags {
        threshold: 9,
        window_size: Some(10),
        unit: Unit::Fahrenheit,
    };
    assert_eq!(flags, given);
}

#[test]
fn a_bad_value_is_one_line_naming_the_flag() {
    for (argv, flag) in [
        (&["--threshold", "many"][..], "--threshold"),
        (&["--window", "0"][..], "--window"),
        (&["--unit", "kelvin"][..], "--unit"),
        (&["--treshold", "3"][..], "--treshold"),
    ] {
        let err = parse_flags::<Flags>(argv).unwrap_err();
        assert_eq!(err.exit_code(), 2, "{argv:?}");
        let line = err.to_string();
        assert!(
            line.starts_with("error:") && line.contains(flag),
            "{argv:?}: {line}"
        );
        assert_eq!(line.lines().count(), 1, "{argv:?}: {line}");
    }
}

#[test]
fn help_starts_with_the_doc_and_lists_the_derived_flags() {
    let Ok(CommandLine::Print(help)) = parse_flags::<Flags>(&["--help"]) else {
        panic!("no help")
    };
    assert!(help.starts_with("Watches readings.\n"), "{help}");
    for text in [
        "--threshold <THRESHOLD>",
        "Alert above this",
        "--window <N>",
        "fahrenheit",
        "--resilience-dir",
    ] {
        assert!(help.contains(text), "{text} missing from:\n{help}");
    }
}

/// A flags struct's own doc comment, which clap's derive makes the command's description.
#[derive(clap::Args, Debug)]
struct Documented {
    #[arg(long)]
    verbose: bool,
}

#[test]
fn the_flags_structs_doc_does_not_describe_the_application() {
    for (doc, start) in [
        ("", "A wallaroo stream-processing application.\n"),
        (" Watches readings.", "Watches readings.\n"),
    ] {
        for flag in ["-h", "--help"] {
            let Ok(CommandLine::Print(help)) =
                parse::<Documented, _, _>("app", "0", doc, ["app", flag])
            else {
                panic!("no help")
            };
            assert!(help.starts_with(start), "{doc:?} {flag}: {help}");
            assert!(!help.contains("clap's derive"), "{help}");
        }
    }
}

/// A field named as a flag of wallaroo's: `--workers`.
#[derive(clap::Args, Debug)]
struct SameName {
    #[arg(long)]
    workers: u32,
}

/// `-h`, which is wallaroo's `--help`.
#[derive(clap::Args, Debug)]
struct ShortH {
    #[arg(short, long)]
    host: String,
}

/// Another name, but the id of wallaroo's `--out`.
#[derive(clap::Args, Debug)]
struct SameId {
    #[arg(long = "output-dir")]
    out: String,
}

#[test]
fn a_flag_that_takes_a_name_of_wallaroos_is_refused_on_every_run_with_status_1() {
    for (err, names) in [
        (
            parse_flags::<SameName>(&["--workers", "2"]).unwrap_err(),
            ["--workers", "#[arg(long = "],
        ),
        (
            parse_flags::<ShortH>(&["--help"]).unwrap_err(),
            ["--host", "--help (-h)"],
        ),
        (
            parse_flags::<SameId>(&[]).unwrap_err(),
            ["--output-dir", "id `out`"],
        ),
    ] {
        assert!(matches!(err, CommandLineError::Clash(_)), "{err:?}");
        assert_eq!(err.exit_code(), 1);
        let line = err.to_string();
        assert!(line.starts_with("error: the application's flag "), "{line}");
        for name in names {
            assert!(line.contains(name), "{name} missing from: {line}");
        }
    }
}
