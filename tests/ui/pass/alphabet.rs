//! The Alphabet application of the crate docs: every macro in one small app.

use wallaroo::prelude::*;

#[derive(Debug, Clone, Copy)]
pub struct Vote {
    pub letter: u8,
    pub count: u64,
}

/// One running total per letter.
#[state]
#[derive(Default)]
pub struct Total {
    votes: u64,
}

/// A 4-byte big-endian length header, then one letter and a big-endian u32.
#[decoder]
fn decode(payload: &[u8]) -> Result<Vote, DecodeError> {
    match payload {
        [letter, a, b, c, d] => Ok(Vote {
            letter: *letter,
            count: u32::from_be_bytes([*a, *b, *c, *d]).into(),
        }),
        _ => Err(DecodeError::wrong_length(5, payload.len())),
    }
}

#[encoder]
fn encode(v: &Vote, out: &mut Vec<u8>) {
    out.extend_from_slice(format!("{} => {}\n", v.letter as char, v.count).as_bytes());
}

#[partition]
fn by_letter(v: &Vote) -> u8 {
    v.letter
}

#[state_computation(name = "add votes")]
fn add_votes(v: Vote, total: &mut Total) -> (Vote, bool) {
    total.votes += v.count;
    (
        Vote {
            letter: v.letter,
            count: total.votes,
        },
        true,
    )
}

// trybuild runs the program with no arguments and stdin closed: read stdin unless `--in`
// is given, so that the run ends cleanly at once.
#[wallaroo::main]
fn alphabet(args: &Args) -> Application {
    let input = args.inputs().first().cloned().unwrap_or(Input::Stdin);
    let output = args.outputs().first().cloned().unwrap_or(Output::Stdout);
    Application::new("Alphabet")
        .pipeline("Alphabet", Source::new(input, decode))
        .to_state_partition(add_votes, "running vote totals", by_letter)
        .to_sink(Sink::new(output, encode))
}
