//! The wallaroo applications under test: Alphabet itself, and the same job keyed by a u32
//! for key counts beyond 27, written with the same macros; each with its lines written by
//! `PushText` or by `writeln!`.

use std::net::SocketAddr;

use wallaroo::prelude::*;

use crate::alphabet;
use crate::harness::{Started, Workload};

/// A key and a number of votes: what arrives, and what leaves as the running total.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyAndVotes {
    pub key: u32,
    pub votes: u64,
}

/// The running total of one key.
#[state]
#[derive(Debug, Default)]
pub struct KeyTotal {
    votes: u64,
}

/// A big-endian u32 key, then a big-endian u32 vote count.
#[decoder(header_length = 4)]
pub fn decode_wide(payload: &[u8]) -> Result<KeyAndVotes, DecodeError> {
    match *payload {
        [k0, k1, k2, k3, a, b, c, d] => Ok(KeyAndVotes {
            key: u32::from_be_bytes([k0, k1, k2, k3]),
            votes: u32::from_be_bytes([a, b, c, d]).into(),
        }),
        _ => Err(DecodeError::wrong_length(8, payload.len())),
    }
}

/// How the wallaroo applications write their output lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    /// With `PushText`, as `examples/alphabet.rs` does.
    PushText,
    /// With `writeln!`, as the hand-written and timely programs do.
    Writeln,
}

/// `"123 => 12\n"`.
#[encoder]
pub fn encode_wide(total: &KeyAndVotes, out: &mut Vec<u8>) {
    out.push_int(total.key);
    out.push_str(" => ");
    out.push_int(total.votes);
    out.push(b'\n');
}

/// `"123 => 12\n"`, with `writeln!`.
#[encoder]
pub fn encode_wide_writeln(total: &KeyAndVotes, out: &mut Vec<u8>) {
    use std::io::Write;
    let _ = writeln!(out, "{} => {}", total.key, total.votes);
}

/// `"a => 12\n"`, with `writeln!`: the Alphabet example's encoder as it was before
/// `PushText`.
#[encoder]
pub fn encode_alphabet_writeln(total: &alphabet::LetterAndVotes, out: &mut Vec<u8>) {
    use std::io::Write;
    let _ = writeln!(out, "{} => {}", total.letter as char, total.votes);
}

/// Votes are partitioned by key; every key gets its state on first use.
#[partition]
pub fn by_key(votes: &KeyAndVotes) -> u32 {
    votes.key
}

/// Adds the votes to the key's total and sends the new total on.
#[state_computation(name = "add key votes")]
pub fn add_key_votes(votes: KeyAndVotes, total: &mut KeyTotal) -> (KeyAndVotes, bool) {
    total.votes += votes.votes;
    let running = KeyAndVotes {
        key: votes.key,
        votes: total.votes,
    };
    (running, true)
}

pub fn wide(args: &Args, encoding: Encoding) -> Application {
    let pipeline = Application::new("Wide")
        .pipeline("Wide", Source::new(args.input(0), decode_wide))
        .to_state_partition(add_key_votes, "key totals", by_key);
    match encoding {
        Encoding::PushText => pipeline.to_sink(Sink::new(args.output(0), encode_wide)),
        Encoding::Writeln => pipeline.to_sink(Sink::new(args.output(0), encode_wide_writeln)),
    }
}

/// The Alphabet example with the `writeln!` encoder.
pub fn alphabet_writeln(args: &Args) -> Application {
    Application::new("Alphabet")
        .pipeline("Alphabet", Source::new(args.input(0), alphabet::decode))
        .to_state_partition(
            alphabet::add_votes,
            "running vote totals",
            alphabet::by_letter,
        )
        .to_sink(Sink::new(args.output(0), encode_alphabet_writeln))
}

/// Starts the application of `workload` in this process, listening on a free port.
pub fn start(
    workload: Workload,
    workers: usize,
    encoding: Encoding,
    output: SocketAddr,
) -> Started {
    let mut args = Args::new()
        .with_input("127.0.0.1:0")
        .with_output(output.to_string())
        .with_workers(workers);
    // `WALLAROO_BENCH_HTTP=127.0.0.1:0` runs wallaroo with `--http` on, to measure what
    // serving the metrics costs.
    if let Ok(addr) = std::env::var("WALLAROO_BENCH_HTTP") {
        args = args.with_http(addr);
    }
    let app = match (workload, encoding) {
        (Workload::Alphabet, Encoding::PushText) => alphabet::alphabet(&args),
        (Workload::Alphabet, Encoding::Writeln) => alphabet_writeln(&args),
        (Workload::Wide, encoding) => wide(&args, encoding),
    };
    let running = app.start(&args).expect("start the application");
    Started {
        input: running.local_addr(0).expect("a TCP source"),
        outputs: 1,
        acknowledges: true,
        stop: Box::new(move || running.stop().expect("the application stops cleanly")),
    }
}
