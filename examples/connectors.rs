//! Connectors of your own: a source and a sink for a system that wallaroo ships none for.
//!
//! The "system" here is a journal: a text file that other programs append lines to, each
//! line one record, its line number its position. The source connector reads the journal
//! and hands each line to the pipeline at its position, so that with `--resilience-dir` a
//! journal read again after a restart counts each line once. The sink connector appends
//! each output message to another journal, one line a message.
//!
//! The pipeline counts words, as the word count example does.
//!
//! ```text
//! cargo run --example connectors -- --in file:examples/data/words.txt --out file:counts.txt
//! cargo run --example connectors -- --in file:examples/data/words.txt --out file:counts.txt --resilience-dir state
//! cargo run --example connectors -- --topology json
//! ```

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::PathBuf;
use std::time::Duration;

use wallaroo::connector::{
    ConnectorError, ConnectorInfo, Received, SinkConnector, SinkOutput, SourceConnector,
    SourceInput,
};
use wallaroo::prelude::*;

/// Lines handed on between two flushes of the pipeline.
const LINES_PER_FLUSH: usize = 1024;

/// Reads the lines of a journal file, each one message at its line number (from 0).
pub struct JournalSource {
    path: PathBuf,
}

impl JournalSource {
    /// The journal given as `--in file:PATH`.
    pub fn new(input: Input) -> Self {
        let path = match input {
            Input::File(path) => path,
            // Reported when the application starts, as the file that cannot be opened.
            other => PathBuf::from(other.to_string()),
        };
        JournalSource { path }
    }
}

impl SourceConnector for JournalSource {
    fn info(&self) -> ConnectorInfo {
        ConnectorInfo::new("journal", self.path.display().to_string())
    }

    fn run(self: Box<Self>, mut input: SourceInput) -> Result<(), ConnectorError> {
        let file = File::open(&self.path).map_err(ConnectorError::io("cannot open the journal"))?;
        // The same name in every run: what was applied is remembered under it.
        let stream = input.stream(&format!("journal:{}", self.path.display()));
        // Lines before this one were applied in an earlier run: skip them.
        let from = input.resume_from(&stream);
        let mut line = String::new();
        let mut reader = BufReader::new(file);
        let mut position = 0u64;
        let mut unflushed = 0;
        loop {
            line.clear();
            let read = reader
                .read_line(&mut line)
                .map_err(ConnectorError::io("cannot read the journal"))?;
            if read == 0 || input.stopping() {
                break;
            }
            if position >= from {
                input.push_at(
                    &stream,
                    position,
                    line.trim_end_matches(['\r', '\n']).as_bytes(),
                );
                unflushed += 1;
                if unflushed == LINES_PER_FLUSH {
                    input.flush();
                    unflushed = 0;
                }
            }
            position += 1;
        }
        input.flush();
        Ok(())
    }
}

/// Appends each message to a journal file, as one line.
pub struct JournalSink {
    path: PathBuf,
}

impl JournalSink {
    /// The journal given as `--out file:PATH`.
    pub fn new(output: Output) -> Self {
        let path = match output {
            Output::File(path) => path,
            other => PathBuf::from(other.to_string()),
        };
        JournalSink { path }
    }
}

impl SinkConnector for JournalSink {
    fn info(&self) -> ConnectorInfo {
        ConnectorInfo::new("journal", self.path.display().to_string())
    }

    fn run(self: Box<Self>, mut output: SinkOutput) -> Result<(), ConnectorError> {
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)
            .map_err(ConnectorError::io("cannot open the journal"))?;
        let mut out = BufWriter::new(file);
        loop {
            match output.recv(Duration::from_millis(50)) {
                Received::Batch(batch) => {
                    for message in batch.messages() {
                        out.write_all(message)
                            .and_then(|()| out.write_all(b"\n"))
                            .map_err(ConnectorError::io("cannot write the journal"))?;
                    }
                    output.done(batch);
                }
                // Nothing more for now: what was written reaches the file.
                Received::Idle => out
                    .flush()
                    .map_err(ConnectorError::io("cannot write the journal"))?,
                Received::Ended => {
                    return out
                        .flush()
                        .map_err(ConnectorError::io("cannot write the journal"))
                }
            }
        }
    }
}

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

/// One journal line: the record is the message, so the decoder sees the line alone.
#[decoder]
pub fn decode(line: &[u8]) -> Result<String, std::str::Utf8Error> {
    std::str::from_utf8(line).map(str::to_owned)
}

/// Splits a line into lowercase words.
#[computation(name = "split into words")]
pub fn split(line: String) -> Vec<String> {
    line.split(|c: char| !(c.is_alphanumeric() || c == '\''))
        .map(|word| word.trim_matches('\''))
        .filter(|word| !word.is_empty())
        .map(str::to_lowercase)
        .collect()
}

/// Words are partitioned by the word.
#[partition]
pub fn by_word(word: &String) -> &str {
    word
}

/// Counts the word.
#[state_computation(name = "count word")]
pub fn count_word(word: String, total: &mut WordTotal) -> (WordCount, bool) {
    total.count += 1;
    (
        WordCount {
            word,
            count: total.count,
        },
        true,
    )
}

/// `"the 3"`: the sink puts each message on a line of its own.
#[encoder]
pub fn encode(count: &WordCount, out: &mut Vec<u8>) {
    out.push_str(&count.word);
    out.push(b' ');
    out.push_int(count.count);
}

#[wallaroo::main]
pub fn connectors(args: &Args) -> Application {
    Application::new("Journal Word Count")
        .pipeline(
            "words",
            Source::from_connector(JournalSource::new(args.input(0)), decode),
        )
        .to(split)
        .to_state_partition(count_word, "word totals", by_word)
        .to_sink(Sink::to_connector(JournalSink::new(args.output(0)), encode))
}
