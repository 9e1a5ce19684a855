//! A step that panics on a message (a poison message). By default the application stops
//! cleanly: what was done before is written, and the error names the step, its state
//! partition, the message's key and its position. With `--on-error skip` the message is
//! skipped, counted, logged and written to the dead-letter output, and counts as applied:
//! a restart on the same resilience directory does not meet it again.

mod support;

use std::collections::BTreeSet;
use std::process::{Command, Output};
use std::sync::Arc;
use std::time::Duration;

use support::{Collect, CollectKeyed, TempDir};
use wallaroo::args::{DeadLetter, OnError};
use wallaroo::connector::{
    ConnectorError, ConnectorInfo, MessageConnector, MessageInput, MessageSource,
};
use wallaroo::prelude::*;

/// The number the state computations below panic on: odd, so its key is 1, and in the
/// middle of the batches its worker receives (the source flushes every 10 numbers).
const POISON: u64 = 505;

/// The numbers 0 to 999, each at its position of one stream, a few at a time.
struct Numbers;

impl MessageConnector<u64> for Numbers {
    fn info(&self) -> ConnectorInfo {
        ConnectorInfo::new("numbers", "0..1000")
    }

    fn run(self: Box<Self>, mut input: MessageInput<u64>) -> Result<(), ConnectorError> {
        let stream = input.stream("numbers");
        for i in 0..1000 {
            input.push_at(&stream, i, i);
            if i % 10 == 9 {
                input.flush();
                std::thread::sleep(Duration::from_millis(2));
            }
        }
        input.flush();
        Ok(())
    }
}

/// [`Numbers`] up to 700, where the connector itself panics.
struct BrokenNumbers;

impl MessageConnector<u64> for BrokenNumbers {
    fn info(&self) -> ConnectorInfo {
        ConnectorInfo::new("numbers", "0..700")
    }

    fn run(self: Box<Self>, mut input: MessageInput<u64>) -> Result<(), ConnectorError> {
        let stream = input.stream("numbers");
        for i in 0..1000 {
            assert!(i != 700, "the connector broke at 700");
            input.push_at(&stream, i, i);
        }
        Ok(())
    }
}

#[state]
#[derive(Default)]
struct Sum {
    total: u64,
}

#[partition]
fn by_parity(n: &u64) -> u64 {
    n % 2
}

/// Adds `n` to its parity's sum; [`POISON`] is poison.
#[state_computation(name = "add up")]
fn add_up(n: u64, sum: &mut Sum) -> (u64, bool) {
    assert!(n != POISON, "cannot add {n}");
    sum.total += n;
    (n, true)
}

/// How many numbers of one parity were counted.
#[state]
#[derive(Default)]
struct Count {
    seen: u64,
}

/// Counts `n`, then refuses [`POISON`]: the count it made stands when the message is skipped.
#[state_computation(name = "count")]
fn count_then_check(n: u64, counted: &mut Count) -> ((u64, u64), bool) {
    counted.seen += 1;
    assert!(n != POISON, "cannot count {n}");
    ((n, counted.seen), true)
}

/// Counts `n`, and never panics.
#[state_computation(name = "tally")]
fn tally(n: u64, counted: &mut Count) -> ((u64, u64), bool) {
    counted.seen += 1;
    ((n, counted.seen), true)
}

/// Passes a count on; 500 is poison, after the state computation, on its worker's thread.
#[computation(name = "check count")]
fn check_count(counted: (u64, u64)) -> (u64, u64) {
    assert!(counted.0 != 500, "cannot check 500");
    counted
}

#[encoder]
fn encode_counted(counted: &(u64, u64), out: &mut Vec<u8>) {
    out.push_int(counted.0);
    out.push_str(" ");
    out.push_int(counted.1);
}

/// Doubles `n`; 500 is poison.
#[computation]
fn double(n: u64) -> u64 {
    assert!(n != 500, "cannot double 500");
    n * 2
}

#[encoder]
fn encode(n: &u64, out: &mut Vec<u8>) {
    out.push_int(*n);
}

#[test]
fn a_panicking_step_stops_the_application_naming_it_after_writing_what_was_done() {
    let got = Arc::default();
    let args = Args::new().with_workers(2);
    let result = Application::new("panics")
        .pipeline("numbers", MessageSource::new(Numbers))
        .to_state_partition(add_up, "sums", by_parity)
        .to_sink(Sink::to_connector(Collect(Arc::clone(&got)), encode))
        .run(&args, |_| {});
    let message = result.expect_err("the step panicked").to_string();
    for part in [
        "state computation `add up`",
        "\"sums\"",
        "cannot add 505",
        // The message itself, found within its batch: its key and its position.
        "the message of key 1 at position 505 of stream \"numbers\"",
    ] {
        assert!(message.contains(part), "{part:?} not in: {message}");
    }
    // What was done before the message was written: every number of its key before it,
    // and none of its key after it (the other key's worker goes on until the stop).
    let got: BTreeSet<u64> = numbers(&got.lock().unwrap());
    let odd_before: BTreeSet<u64> = (1..POISON).step_by(2).collect();
    assert!(
        got.is_superset(&odd_before),
        "missing: {:?}",
        odd_before.difference(&got)
    );
    assert!(got.iter().all(|&n| n % 2 == 0 || n < POISON), "{got:?}");
}

/// The numbers a sink collected, one a message.
fn numbers(got: &[Vec<u8>]) -> BTreeSet<u64> {
    got.iter()
        .map(|m| std::str::from_utf8(m).unwrap().parse().unwrap())
        .collect()
}

#[test]
fn a_skipped_message_is_counted_written_as_a_dead_letter_and_the_rest_goes_on() {
    let dir = TempDir::new("skip");
    let dead = dir.0.join("dead.jsonl");
    let got = Arc::default();
    let args = Args::new()
        .with_workers(2)
        .with_on_error(OnError::Skip)
        .with_dead_letter(DeadLetter::File(dead.clone()));
    Application::new("skips")
        .pipeline("numbers", MessageSource::new(Numbers))
        .to_state_partition(count_then_check, "counts", by_parity)
        .to_sink(Sink::to_connector(
            Collect(Arc::clone(&got)),
            encode_counted,
        ))
        .run(&args, |_| {})
        .expect("the poison message is skipped");
    let got: Vec<(u64, u64)> = got
        .lock()
        .unwrap()
        .iter()
        .map(|m| {
            let text = std::str::from_utf8(m).unwrap();
            let (n, seen) = text.split_once(' ').unwrap();
            (n.parse().unwrap(), seen.parse().unwrap())
        })
        .collect();
    // Every other message's output arrived, once; the rest of the poison's batch too.
    let outputs: BTreeSet<u64> = got.iter().map(|(n, _)| *n).collect();
    let expected: BTreeSet<u64> = (0..1000).filter(|&n| n != POISON).collect();
    assert_eq!(got.len(), 999);
    assert_eq!(outputs, expected);
    // The count the step made before it panicked stands: 507 is the 254th odd number.
    assert!(
        got.contains(&(503, 252)) && got.contains(&(507, 254)),
        "{got:?}"
    );

    let text = std::fs::read_to_string(&dead).unwrap();
    let letters: Vec<serde_json::Value> = text
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert_eq!(letters.len(), 1, "{text}");
    let letter = &letters[0];
    assert_eq!(letter["step"], "count");
    assert_eq!(letter["state"], "counts");
    assert_eq!(letter["key"], 1);
    assert_eq!(letter["stream"], "numbers");
    assert_eq!(letter["position"], POISON);
    assert_eq!(letter["panic"], "cannot count 505");
    assert!(
        letter["location"]
            .as_str()
            .unwrap()
            .contains("step_panic.rs"),
        "{letter}"
    );
}

#[test]
fn with_a_sink_that_keys_its_records_both_policies_name_the_key_and_keep_the_others() {
    let run = |on_error: OnError| {
        let got = Arc::default();
        let args = Args::new().with_workers(2).with_on_error(on_error);
        let result = Application::new("keyed")
            .pipeline("numbers", MessageSource::new(Numbers))
            .to_state_partition(count_then_check, "counts", by_parity)
            .to_sink(Sink::to_connector(
                CollectKeyed(Arc::clone(&got)),
                encode_counted,
            ))
            .run(&args, |_| {});
        let got: Vec<(Option<String>, String)> = got
            .lock()
            .unwrap()
            .iter()
            .map(|(key, value)| (key.clone(), String::from_utf8(value.clone()).unwrap()))
            .collect();
        (result, got)
    };
    let (result, got) = run(OnError::Stop);
    let message = result.expect_err("the step panicked").to_string();
    assert!(
        message.contains("the message of key 1 at position 505 of stream \"numbers\""),
        "{message}"
    );
    let odd: BTreeSet<u64> = got
        .iter()
        .filter(|(key, _)| key.as_deref() == Some("1"))
        .map(|(_, text)| text.split_once(' ').unwrap().0.parse().unwrap())
        .collect();
    assert_eq!(odd, (1..POISON).step_by(2).collect::<BTreeSet<u64>>());

    let (result, got) = run(OnError::Skip);
    result.expect("the poison message is skipped");
    assert_eq!(got.len(), 999);
    for (key, text) in &got {
        let n: u64 = text.split_once(' ').unwrap().0.parse().unwrap();
        assert_ne!(n, POISON);
        assert_eq!(
            key.as_deref(),
            Some(if n.is_multiple_of(2) { "0" } else { "1" }),
            "{text}"
        );
    }
}

#[test]
fn skip_skips_a_message_a_stateless_step_panics_on_and_names_its_pipeline_and_position() {
    let dir = TempDir::new("skip-stateless");
    let dead = dir.0.join("dead.jsonl");
    let got = Arc::default();
    let args = Args::new()
        .with_workers(1)
        .with_on_error(OnError::Skip)
        .with_dead_letter(DeadLetter::File(dead.clone()));
    Application::new("panics")
        .pipeline("doubled", MessageSource::new(Numbers))
        .to(double)
        .to_sink(Sink::to_connector(Collect(Arc::clone(&got)), encode))
        .run(&args, |_| {})
        .expect("the poison message is skipped");
    let got = numbers(&got.lock().unwrap());
    let expected: BTreeSet<u64> = (0..1000).filter(|&n| n != 500).map(|n| n * 2).collect();
    assert_eq!(got, expected);
    let text = std::fs::read_to_string(&dead).unwrap();
    assert_eq!(text.lines().count(), 1, "{text}");
    let letter: serde_json::Value = serde_json::from_str(text.trim_end()).unwrap();
    assert_eq!(letter["step"], "double");
    assert_eq!(letter["pipeline"], "doubled");
    assert_eq!(letter["stream"], "numbers");
    assert_eq!(letter["position"], 500);
    assert!(letter["key"].is_null(), "{letter}");
    assert_eq!(letter["panic"], "cannot double 500");
}

#[test]
fn a_stateless_step_after_a_state_computation_stops_or_skips_as_the_policy_says() {
    let dir = TempDir::new("skip-after");
    let dead = dir.0.join("dead.jsonl");
    let run = |args: &Args| {
        let got = Arc::default();
        let result = Application::new("after")
            .pipeline("numbers", MessageSource::new(Numbers))
            .to_state_partition(count_then_check, "counts", by_parity)
            .to(check_count)
            .to_sink(Sink::to_connector(
                Collect(Arc::clone(&got)),
                encode_counted,
            ))
            .run(args, |_| {});
        let got = got.lock().unwrap().len();
        (result, got)
    };
    // Stopping: no one message is to blame for a panic past the state computation.
    let message = Application::new("after")
        .pipeline("numbers", MessageSource::new(Numbers))
        .to_state_partition(tally, "counts", by_parity)
        .to(check_count)
        .to_sink(Sink::to_connector(Collect(Arc::default()), encode_counted))
        .run(&Args::new().with_workers(2), |_| {})
        .expect_err("the step panicked")
        .to_string();
    assert!(
        message.contains("a step after state computation `tally` of state partition \"counts\""),
        "{message}"
    );
    assert!(message.contains("cannot check 500"), "{message}");

    // Skipping: each poison message is skipped where it panicked.
    let args = Args::new()
        .with_workers(2)
        .with_on_error(OnError::Skip)
        .with_dead_letter(DeadLetter::File(dead.clone()));
    let (result, got) = run(&args);
    result.expect("both poison messages are skipped");
    assert_eq!(got, 998);
    let text = std::fs::read_to_string(&dead).unwrap();
    let mut letters: Vec<serde_json::Value> = text
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    letters.sort_by_key(|letter| letter["step"].as_str().unwrap().to_string());
    assert_eq!(letters.len(), 2, "{text}");
    assert_eq!(letters[0]["step"], "check count");
    assert_eq!(letters[0]["pipeline"], "numbers");
    assert_eq!(letters[0]["panic"], "cannot check 500");
    assert_eq!(letters[1]["step"], "count");
    assert_eq!(letters[1]["state"], "counts");
    assert_eq!(letters[1]["position"], POISON);
}

#[test]
fn a_connector_that_panics_stops_the_application_whatever_the_policy_saying_where() {
    let args = Args::new().with_on_error(OnError::Skip);
    let result = Application::new("panics")
        .pipeline("doubled", MessageSource::new(BrokenNumbers))
        .to(double)
        .to_sink(Sink::to_connector(Collect(Arc::default()), encode))
        .run(&args, |_| {});
    let message = result.expect_err("the connector panicked").to_string();
    // The step's skip of 500 left this thread's panics to the policy: the connector's
    // panic, which no policy skips, says where it happened instead of the panic hook.
    for part in [
        "\"doubled\"",
        "the connector broke at 700",
        "(at tests/step_panic.rs:",
    ] {
        assert!(message.contains(part), "{part:?} not in: {message}");
    }
}

#[test]
fn a_step_that_panics_on_a_sources_thread_stops_the_application_naming_its_pipeline() {
    let got = Arc::default();
    let args = Args::new().with_workers(1);
    let result = Application::new("panics")
        .pipeline("doubled", MessageSource::new(Numbers))
        .to(double)
        .to_sink(Sink::to_connector(Collect(Arc::clone(&got)), encode))
        .run(&args, |_| {});
    let message = result.expect_err("the step panicked").to_string();
    for part in ["\"doubled\"", "panicked", "cannot double 500"] {
        assert!(message.contains(part), "{part:?} not in: {message}");
    }
    // What the source sent on before the panic was written.
    assert!(got.lock().unwrap().len() >= 400);
}

/// Lines for the Averages example: `SENSOR TOTAL COUNT`, ten sensors in turn; the line at
/// `poison` has a count of 0, on which the example's step divides by zero.
fn averages_input(lines: u64, poison: u64) -> String {
    (0..lines)
        .map(|i| {
            let count = if i == poison { 0 } else { 1 + i % 5 };
            format!("s{} {} {count}\n", i % 10, i * 3)
        })
        .collect()
}

/// The outputs the Averages example owes for `lines` lines with the poison at `poison`: a
/// line's number among its sensor's counts the poison line too (the step counts before it
/// divides).
fn averages_expected(lines: u64, poison: u64) -> BTreeSet<String> {
    let mut seen = [0u64; 10];
    let mut expected = BTreeSet::new();
    for i in 0..lines {
        seen[(i % 10) as usize] += 1;
        if i != poison {
            let n = seen[(i % 10) as usize];
            expected.insert(format!("s{} #{n} => {}", i % 10, i * 3 / (1 + i % 5)));
        }
    }
    expected
}

/// Runs the Averages example on `dir`'s `in.txt`, writing to `out`, with `args` after.
fn averages(dir: &TempDir, out: &str, args: &[&str]) -> Output {
    Command::new(support::example_bin("averages"))
        .args(["--in", &dir.address("in.txt"), "--out", &dir.address(out)])
        .args(args)
        .env("RUST_LOG", "info")
        .env("RUST_BACKTRACE", "0")
        .output()
        .expect("run the averages example")
}

/// The lines of `dir`'s `name`, each checked to be there once.
fn lines_once(dir: &TempDir, name: &str) -> BTreeSet<String> {
    let text = dir.read(name);
    let lines: BTreeSet<String> = text.lines().map(str::to_string).collect();
    assert_eq!(lines.len(), text.lines().count(), "a line twice in {name}");
    lines
}

const LINES: u64 = 3000;
const POISON_LINE: u64 = 1234;

#[test]
fn the_default_stops_with_an_error_naming_step_key_and_position_after_writing_what_was_done() {
    let dir = TempDir::new("poison-stop");
    std::fs::write(dir.0.join("in.txt"), averages_input(LINES, POISON_LINE)).unwrap();
    // One worker: before, the panic took the process down with nothing written.
    let out = averages(&dir, "out.txt", &["--workers", "1"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    let input = dir.0.join("in.txt").canonicalize().unwrap();
    for part in [
        "error: state computation `mean` of state partition \"sensor lines\" panicked on the \
         message of key \"s4\" at position 1234 of stream",
        &format!("\"file:{}\"", input.display()),
        "attempt to divide by zero",
        "--on-error skip",
    ] {
        assert!(stderr.contains(part), "{part:?} not in:\n{stderr}");
    }
    // Every line before the poison was written, and nothing after it.
    let got = lines_once(&dir, "out.txt");
    assert_eq!(got, averages_expected(POISON_LINE, POISON_LINE));
}

#[test]
fn skip_writes_every_other_output_counts_the_skip_and_keeps_a_dead_letter() {
    let dir = TempDir::new("poison-skip");
    std::fs::write(dir.0.join("in.txt"), averages_input(LINES, POISON_LINE)).unwrap();
    let dead = dir.0.join("dead.jsonl");
    let out = averages(
        &dir,
        "out.txt",
        &[
            "--workers",
            "2",
            "--on-error",
            "skip",
            "--dead-letter",
            dead.to_str().unwrap(),
        ],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert_eq!(
        lines_once(&dir, "out.txt"),
        averages_expected(LINES, POISON_LINE)
    );
    // Logged once, naming the step, the key and the position, with where it panicked;
    // counted at the stop; the panic hook's own report is left out.
    let logged: Vec<&str> = stderr.lines().filter(|l| l.contains("skipped (")).collect();
    assert_eq!(logged.len(), 1, "{stderr}");
    for part in [
        "state computation `mean`",
        "key \"s4\" at position 1234 of stream",
        "attempt to divide by zero (at examples/averages.rs:",
        "1 skipped so far",
    ] {
        assert!(logged[0].contains(part), "{part:?} not in: {}", logged[0]);
    }
    assert!(
        stderr.contains("1 message was skipped after a step panicked on it"),
        "{stderr}"
    );
    assert!(!stderr.contains("thread 'wallaroo-worker"), "{stderr}");
    let text = std::fs::read_to_string(&dead).unwrap();
    assert_eq!(text.lines().count(), 1, "{text}");
    let letter: serde_json::Value = serde_json::from_str(text.trim_end()).unwrap();
    assert_eq!(letter["step"], "mean");
    assert_eq!(letter["state"], "sensor lines");
    assert_eq!(letter["key"], "s4");
    assert_eq!(letter["position"], POISON_LINE);
    let input = dir.0.join("in.txt").canonicalize().unwrap();
    assert_eq!(letter["stream"], format!("file:{}", input.display()));
    assert_eq!(letter["panic"], "attempt to divide by zero");
}

/// The last line of sensor s4.
const LAST_OF_ITS_KEY: u64 = LINES - 6;

#[test]
fn a_skipped_message_counts_as_applied_so_a_restart_does_not_meet_it_again() {
    let dir = TempDir::new("poison-restart");
    std::fs::write(dir.0.join("in.txt"), averages_input(LINES, LAST_OF_ITS_KEY)).unwrap();
    let state = dir.0.join("state");
    let state = state.to_str().unwrap();
    let resilient = |out: &str, more: &[&str]| {
        let mut args = vec!["--workers", "2", "--resilience-dir", state];
        args.extend_from_slice(more);
        averages(&dir, out, &args)
    };
    // The poison is its key's last message: no later change of the key's state says
    // that it was applied. The default stops on it, and a restart meets it again: the file is read
    // again, and the message was not applied.
    for run in ["1.txt", "2.txt"] {
        let out = resilient(run, &[]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{run}: {stderr}");
        assert!(stderr.contains("at position 2994"), "{run}: {stderr}");
    }
    // Restarted with skip: the poison is skipped and the rest applied.
    let out = resilient("3.txt", &["--on-error", "skip"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("1 message was skipped"), "{stderr}");
    // Once more with the default: the skipped message counts as applied, so nothing
    // panics, and nothing is applied twice.
    let out = resilient("4.txt", &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(dir.read("4.txt").is_empty(), "{}", dir.read("4.txt"));
    // Across the runs, every other line's output was written once.
    let mut all = BTreeSet::new();
    let mut count = 0;
    for run in ["1.txt", "2.txt", "3.txt"] {
        let got = lines_once(&dir, run);
        count += got.len();
        all.extend(got);
    }
    assert_eq!(count, all.len(), "an output written in two runs");
    assert_eq!(all, averages_expected(LINES, LAST_OF_ITS_KEY));
}
