//! The connectors example: a source and a sink written against the public connector API,
//! with positions that make a journal read again count each line once.

#[allow(dead_code)]
#[path = "../examples/connectors.rs"]
mod connectors;
mod support;

use std::collections::HashMap;
use std::fs;
use std::path::Path;

use support::TempDir;
use wallaroo::resilience::SyncPolicy;
use wallaroo::{Args, RunError};

/// Word counts computed apart from the pipeline, with the example's splitting rule.
fn count_words(text: &str) -> HashMap<String, u64> {
    let mut counts = HashMap::new();
    for line in text.lines() {
        for word in connectors::split(line.to_string()) {
            *counts.entry(word).or_insert(0) += 1;
        }
    }
    counts
}

/// The last count of each word in a sink journal, and its number of lines.
fn last_counts(path: &Path) -> (HashMap<String, u64>, usize) {
    let text = fs::read_to_string(path).unwrap_or_default();
    let mut counts = HashMap::new();
    for line in text.lines() {
        let (word, count) = line.rsplit_once(' ').expect("`word count`");
        counts.insert(word.to_string(), count.parse().unwrap());
    }
    (counts, text.lines().count())
}

fn args(input: &Path, output: &Path, state: Option<&Path>) -> Args {
    let args = Args::new()
        .with_input(format!("file:{}", input.display()))
        .with_output(format!("file:{}", output.display()))
        .with_workers(2);
    match state {
        Some(dir) => args.with_resilience(dir, SyncPolicy::BeforeOutput),
        None => args,
    }
}

const TEXT: &str =
    "the quick brown fox\njumps over the lazy dog\n\nThe dog's bark, the fox's run\n";

#[test]
fn every_line_of_the_journal_is_counted_and_every_output_is_a_line() {
    let tmp = TempDir::new("connectors");
    let (input, output) = (tmp.0.join("in.journal"), tmp.0.join("out.journal"));
    fs::write(&input, TEXT).unwrap();
    let args = args(&input, &output, None);
    connectors::connectors(&args).run(&args, |_| {}).unwrap();
    let expected = count_words(TEXT);
    let (counts, lines) = last_counts(&output);
    assert_eq!(counts, expected);
    // One line per word of the input: each message reached the sink on its own.
    assert_eq!(lines as u64, expected.values().sum::<u64>());
}

#[test]
fn a_journal_read_again_after_a_restart_counts_each_line_once() {
    let tmp = TempDir::new("connectors-restart");
    let (input, state) = (tmp.0.join("in.journal"), tmp.0.join("state"));
    let (first_half, second_half) = TEXT.split_at(TEXT.find('\n').unwrap() + 1);
    fs::write(&input, first_half).unwrap();
    let first = tmp.0.join("first.journal");
    let a = args(&input, &first, Some(&state));
    connectors::connectors(&a).run(&a, |_| {}).unwrap();
    assert_eq!(last_counts(&first).0, count_words(first_half));

    // The journal grows; read again from its start, only the new lines count.
    fs::write(&input, TEXT).unwrap();
    let second = tmp.0.join("second.journal");
    let a = args(&input, &second, Some(&state));
    connectors::connectors(&a).run(&a, |_| {}).unwrap();
    let (counts, lines) = last_counts(&second);
    assert_eq!(lines as u64, count_words(second_half).values().sum::<u64>());
    let whole = count_words(TEXT);
    for (word, count) in &counts {
        assert_eq!(
            whole[word], *count,
            "{word}: counted from where the first run left it"
        );
    }
    assert_eq!(counts.len(), count_words(second_half).len());
}

#[test]
fn a_connector_that_gives_up_stops_the_application_and_says_why() {
    let tmp = TempDir::new("connectors-missing");
    let missing = tmp.0.join("no such journal");
    let args = args(&missing, &tmp.0.join("out.journal"), None);
    let err = connectors::connectors(&args)
        .run(&args, |_| {})
        .expect_err("fails");
    assert!(matches!(err, RunError::Connector { .. }), "{err:?}");
    let message = err.to_string();
    assert!(
        message.starts_with(&format!(
            "pipeline \"words\", journal {}: cannot open the journal: ",
            missing.display()
        )),
        "{message}"
    );
}

#[test]
fn the_topology_names_the_connectors() {
    let tmp = TempDir::new("connectors-topology");
    let args = args(&tmp.0.join("in"), &tmp.0.join("out"), None);
    let topology = connectors::connectors(&args).topology().to_json();
    let json: serde_json::Value = serde_json::from_str(&topology).unwrap();
    let pipeline = &json["pipelines"][0];
    assert_eq!(pipeline["source"]["kind"], "journal");
    assert_eq!(
        pipeline["source"]["address"],
        tmp.0.join("in").display().to_string()
    );
    assert!(pipeline["source"]["framing"].is_null(), "{topology}");
    assert_eq!(pipeline["sinks"][0]["kind"], "journal");
    assert_eq!(
        pipeline["sinks"][0]["address"],
        tmp.0.join("out").display().to_string()
    );
}
