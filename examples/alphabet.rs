//! Alphabet: a vote counter, the seed application of Wallaroo's stateful API.
//!
//! Input: frames with a 4-byte big-endian length header, then one letter byte and a
//! big-endian u32 vote count. State: a running total per letter, `a`..`z` and `!` created
//! up front, any other byte on first use. Output: `"{letter} => {total}\n"` after every vote.
//!
//! ```text
//! cargo run --release --example alphabet -- --in 127.0.0.1:7010 --out 127.0.0.1:7002
//! cargo run --example alphabet -- --in file:examples/data/alphabet.frames --out -
//! cargo run --example alphabet -- --topology dot | dot -Tsvg > alphabet.svg
//! ```

use wallaroo::prelude::*;

/// A letter and a number of votes: what arrives, and what leaves as the running total.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LetterAndVotes {
    pub letter: u8,
    pub votes: u64,
}

/// The running total of one letter.
#[state]
#[derive(Debug, Default)]
pub struct RunningVoteTotal {
    votes: u64,
}

/// One letter byte, then a big-endian u32 vote count.
#[decoder(header_length = 4)]
pub fn decode(payload: &[u8]) -> Result<LetterAndVotes, DecodeError> {
    match *payload {
        [letter, a, b, c, d] => Ok(LetterAndVotes {
            letter,
            votes: u32::from_be_bytes([a, b, c, d]).into(),
        }),
        _ => Err(DecodeError::wrong_length(5, payload.len())),
    }
}

/// `"a => 12\n"`, written with `PushText` (in the prelude): the same bytes as
/// `writeln!(out, "{} => {}", total.letter as char, total.votes)`, without `core::fmt`.
#[encoder]
pub fn encode(total: &LetterAndVotes, out: &mut Vec<u8>) {
    out.push_char(total.letter as char);
    out.push_str(" => ");
    out.push_int(total.votes);
    out.push(b'\n');
}

/// `a`..`z` and `!`: their states are built at start.
pub fn letter_keys() -> impl Iterator<Item = u8> {
    (b'a'..=b'z').chain([b'!'])
}

/// Votes are partitioned by letter.
#[partition(keys = letter_keys())]
pub fn by_letter(votes: &LetterAndVotes) -> u8 {
    votes.letter
}

/// Adds the votes to the letter's total and sends the new total on; the state changed.
#[state_computation(name = "add votes")]
pub fn add_votes(votes: LetterAndVotes, total: &mut RunningVoteTotal) -> (LetterAndVotes, bool) {
    total.votes += votes.votes;
    let running = LetterAndVotes {
        letter: votes.letter,
        votes: total.votes,
    };
    (running, true)
}

#[wallaroo::main]
pub fn alphabet(args: &Args) -> Application {
    Application::new("Alphabet")
        .pipeline("Alphabet", Source::new(args.input(0), decode))
        .to_state_partition(add_votes, "running vote totals", by_letter)
        .to_sink(Sink::new(args.output(0), encode))
}
