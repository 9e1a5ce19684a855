//! What the `main` that `#[wallaroo::main]` generates calls: parse the command line, build
//! the application, print its topology or run it until SIGINT/SIGTERM.

use std::process::ExitCode;

use crate::app::Application;
use std::io::IsTerminal;

use crate::args::{Args, LogFormat, TopologyFormat};
use crate::flags::{self, CommandLine, Flags, NoFlags};

/// Runs an application's `main`: `name` and `version` are shown by `--help` and
/// `--version`, and `setup` builds the application from the parsed arguments.
///
/// Exit status: 0 after a clean stop (SIGINT, SIGTERM, or every source read to its end),
/// 2 for a usage error, 1 for any other error. A second SIGINT or SIGTERM exits at once
/// with status 130.
pub fn run_main(name: &str, version: &str, setup: impl FnOnce(&Args) -> Application) -> ExitCode {
    run_application::<NoFlags>(name, version, "", |args, _| setup(args))
}

/// Runs an application's `main` as [`run_main`] does, with the application's own flags `F`
/// on the command line beside wallaroo's, and `--help` starting with `doc`, the setup
/// function's doc comment (see [`flags::about`]). A flag of `F` that takes a name of
/// wallaroo's is refused on every run, with exit status 1 ([`flags::CommandLineError`]).
pub fn run_application<F: Flags>(
    name: &str,
    version: &str,
    doc: &str,
    setup: impl FnOnce(&Args, &F) -> Application,
) -> ExitCode {
    let (args, flags) = match flags::parse::<F, _, _>(name, version, doc, std::env::args_os()) {
        Ok(CommandLine::Run(args, flags)) => (args, flags),
        Ok(CommandLine::Print(text)) => {
            print!("{text}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(e.exit_code());
        }
    };
    let app = setup(&args, &flags);
    if let Some(format) = args.topology() {
        let topology = app.topology();
        match format {
            TopologyFormat::Json => println!("{}", topology.to_json()),
            TopologyFormat::Dot => print!("{}", topology.to_dot()),
        }
        for unused in topology.unused_components() {
            eprintln!(
                "note: {} `{}` ({}) is defined but no pipeline uses it",
                unused.kind,
                unused.name,
                unused.location()
            );
        }
        return match app.errors() {
            [] => ExitCode::SUCCESS,
            errors => {
                for e in errors {
                    eprintln!("error: {e}");
                }
                ExitCode::from(1)
            }
        };
    }
    init_logging(args.log_format());
    // Registered before the start, so that a signal during recovery also stops cleanly.
    let signals = signal_hook::iterator::Signals::new([
        signal_hook::consts::SIGINT,
        signal_hook::consts::SIGTERM,
    ]);
    let running = match app.start(&args) {
        Ok(running) => running,
        Err(e) => return fail(&e),
    };
    let stop = running.stop_handle();
    match signals {
        Ok(mut signals) => {
            std::thread::Builder::new()
                .name("wallaroo-signals".into())
                .spawn(move || {
                    let mut signals = signals.forever();
                    if let Some(signal) = signals.next() {
                        tracing::info!("signal {signal}: stopping (again to exit at once)");
                        stop.stop();
                    }
                    if signals.next().is_some() {
                        std::process::exit(130);
                    }
                })
                .expect("cannot spawn the signal thread");
        }
        Err(e) => {
            tracing::warn!("cannot handle SIGINT/SIGTERM ({e}); they will end the process abruptly")
        }
    }
    match running.wait() {
        Ok(()) => {
            tracing::info!("stopped");
            ExitCode::SUCCESS
        }
        Err(e) => fail(&e),
    }
}

fn fail(e: &crate::RunError) -> ExitCode {
    match e {
        crate::RunError::Usage(line) => eprintln!("{line}"),
        e => eprintln!("error: {e}"),
    }
    ExitCode::from(e.exit_code())
}

/// Logs to standard error, as text or one JSON object a line; `RUST_LOG` filters
/// (default: `info`). Text is coloured only on a terminal, and never with `NO_COLOR` set.
fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false);
    let _ = match format {
        LogFormat::Text => {
            let colour = colour(
                std::io::stderr().is_terminal(),
                std::env::var_os("NO_COLOR"),
            );
            builder.with_ansi(colour).try_init()
        }
        LogFormat::Json => builder.json().with_ansi(false).try_init(),
    };
}

/// Whether text logs are coloured: on a terminal, unless `NO_COLOR` is set to something
/// (no-color.org).
fn colour(terminal: bool, no_color: Option<std::ffi::OsString>) -> bool {
    terminal && no_color.is_none_or(|v| v.is_empty())
}

#[cfg(test)]
mod tests {
    use super::colour;

    #[test]
    fn logs_are_coloured_on_a_terminal_only_and_never_with_no_color() {
        assert!(colour(true, None));
        assert!(colour(true, Some("".into())));
        assert!(!colour(true, Some("1".into())));
        assert!(!colour(false, None));
    }
}
