//! `wallaroo-receiver`: listens for a wallaroo application's TCP sink, writes what arrives,
//! and counts it. `wallaroo-receiver --help` explains every flag.

use std::process::ExitCode;

use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::flag;
use wallaroo::tools::receiver::{self, Receiver};

fn main() -> ExitCode {
    wallaroo::tools::init_logging();
    let config = receiver::parse(std::env::args_os()).unwrap_or_else(|e| e.exit());
    let result = Receiver::bind(config).and_then(|receiver| {
        // The first SIGINT or SIGTERM ends the run with its summary; a second one, at once.
        let stop = receiver.stop_flag();
        for signal in [SIGINT, SIGTERM] {
            flag::register_conditional_shutdown(signal, 1, stop.clone())
                .and_then(|_| flag::register(signal, stop.clone()))
                .map_err(|e| format!("cannot handle signal {signal}: {e}"))?;
        }
        eprintln!("wallaroo-receiver: {}", receiver.source());
        receiver.run(|line| eprintln!("wallaroo-receiver: {line}"))
    });
    match result {
        Ok(summary) => {
            eprintln!("wallaroo-receiver: {summary}");
            if summary.missing.is_some() {
                ExitCode::FAILURE
            } else {
                ExitCode::SUCCESS
            }
        }
        Err(e) => {
            eprintln!("wallaroo-receiver: {e}");
            ExitCode::FAILURE
        }
    }
}
