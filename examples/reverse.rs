//! Reverse Word: the stateless "hello world" of Wallaroo.
//!
//! Input: frames with a 4-byte big-endian length header, each payload one UTF-8 word.
//! Words that are empty or only whitespace are dropped; every other word leaves reversed, one
//! per line. No state, so no partition: two stateless steps run on the thread that reads the
//! connection.
//!
//! ```text
//! cargo run --example reverse -- --in file:examples/data/words.frames --out -
//! cargo run --release --example reverse -- --in 127.0.0.1:7010 --out 127.0.0.1:7002
//! ```
//!
//! `examples/data/words.frames` holds `hello`, `world`, an empty word, `wallaroo` and `café`:
//!
//! ```text
//! python3 -c 'import struct,sys; sys.stdout.buffer.write(b"".join(struct.pack(">I", len(w)) + w for w in [b"hello", b"world", b"", "wallaroo".encode(), "café".encode()]))' > examples/data/words.frames
//! ```

use wallaroo::prelude::*;

/// A word as it arrived.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Word(pub String);

/// The payload is the word, in UTF-8.
#[decoder(header_length = 4)]
pub fn decode(payload: &[u8]) -> Result<Word, std::str::Utf8Error> {
    std::str::from_utf8(payload).map(|word| Word(word.to_owned()))
}

/// Drops empty words, and trims the others: a filter returns `Option`.
#[computation(name = "drop empty words")]
pub fn non_empty(word: Word) -> Option<Word> {
    let trimmed = word.0.trim();
    (!trimmed.is_empty()).then(|| Word(trimmed.to_owned()))
}

/// Reverses the word, character by character.
#[computation(name = "reverse")]
pub fn reverse(word: Word) -> Word {
    Word(word.0.chars().rev().collect())
}

/// `"olleh\n"`.
#[encoder]
pub fn encode(word: &Word, out: &mut Vec<u8>) {
    out.extend_from_slice(word.0.as_bytes());
    out.push(b'\n');
}

/// One pipeline of stateless steps: decode, drop empty words, reverse, encode.
#[wallaroo::main]
pub fn reverse_word(args: &Args) -> Application {
    Application::new("Reverse Word")
        .pipeline("Reverse Word", Source::new(args.input(0), decode))
        .to(non_empty)
        .to(reverse)
        .to_sink(Sink::new(args.output(0), encode))
}
