//! `wallaroo-receiver`: listens for a wallaroo application's TCP sink, writes what arrives,
//! and counts it. `wallaroo-receiver --help` explains every flag.

use std::process::ExitCode;

use wallaroo::tools::receiver::{self, Receiver};

fn main() -> ExitCode {
    let config = receiver::parse(std::env::args_os()).unwrap_or_else(|e| e.exit());
    let result = Receiver::bind(config).and_then(|receiver| {
        if let Some(addr) = receiver.local_addr() {
            eprintln!("wallaroo-receiver: listening on {addr}");
        }
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
