//! `wallaroo-sender`: sends frames, lines or generated Alphabet votes to a wallaroo
//! application's TCP source. `wallaroo-sender --help` explains every flag.

use std::process::ExitCode;

use wallaroo::tools::sender;

fn main() -> ExitCode {
    wallaroo::tools::init_logging();
    let config = sender::parse(std::env::args_os()).unwrap_or_else(|e| e.exit());
    match sender::run(&config, |line| eprintln!("wallaroo-sender: {line}")) {
        Ok(summary) => {
            eprintln!("wallaroo-sender: {summary}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("wallaroo-sender: {e}");
            ExitCode::FAILURE
        }
    }
}
