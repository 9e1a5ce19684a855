//! Word count: text lines in, a running count per word out.
//!
//! Input: newline-delimited UTF-8 text (`#[decoder(lines)]`, no length header). A stateless
//! step splits each line into lowercase words, one message per word (fan-out); the words are
//! partitioned by the word itself, and each word's state, created the first time the word is
//! seen, counts it. Output: `"{word} => {count}\n"` for every word of every line.
//!
//! ```text
//! cargo run --example word_count -- --in file:examples/data/words.txt --out -
//! cargo run --release --example word_count -- --in 127.0.0.1:7010 --out 127.0.0.1:7002
//! ```

use wallaroo::prelude::*;

/// One lowercase word of a line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Word(pub String);

/// A word and how many times it was seen so far.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WordCount {
    pub word: String,
    pub count: u64,
}

/// How many times one word was seen.
#[state]
#[derive(Debug, Default)]
pub struct WordTotal {
    count: u64,
}

/// One line of text, without its line end.
#[decoder(lines)]
pub fn decode(line: &[u8]) -> Result<String, std::str::Utf8Error> {
    std::str::from_utf8(line).map(str::to_owned)
}

/// Splits a line into lowercase words: runs of letters, digits and apostrophes. Returning a
/// `Vec` sends each element on, in order; an empty line sends nothing.
#[computation(name = "split into words")]
pub fn split(line: String) -> Vec<Word> {
    line.split(|c: char| !(c.is_alphanumeric() || c == '\''))
        .map(|word| word.trim_matches('\''))
        .filter(|word| !word.is_empty())
        .map(|word| Word(word.to_lowercase()))
        .collect()
}

/// Words are partitioned by the word; no keys are declared, so each word gets its state the
/// first time it is seen.
#[partition]
pub fn by_word(word: &Word) -> &str {
    &word.0
}

/// Counts the word.
#[state_computation(name = "count word")]
pub fn count_word(word: Word, total: &mut WordTotal) -> (WordCount, bool) {
    total.count += 1;
    let count = WordCount {
        word: word.0,
        count: total.count,
    };
    (count, true)
}

/// `"the => 3\n"`.
#[encoder]
pub fn encode(count: &WordCount, out: &mut Vec<u8>) {
    out.push_str(&count.word);
    out.push_str(" => ");
    out.push_int(count.count);
    out.push(b'\n');
}

/// One pipeline: split lines into words, then count each word in its state.
#[wallaroo::main]
pub fn word_count(args: &Args) -> Application {
    Application::new("Word Count")
        .pipeline("Word Count", Source::new(args.input(0), decode))
        .to(split)
        .to_state_partition(count_word, "word totals", by_word)
        .to_sink(Sink::new(args.output(0), encode))
}
