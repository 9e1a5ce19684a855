//! The generated command line (ARCHITECTURE.md §3), run as a user runs it: the Alphabet
//! example's binary as a child process.
//!
//! `cargo test` builds the examples before it runs the tests; these tests find the binary
//! beside the test's own executable.

mod support;

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use support::{connect, vote_frame, Receiver};

fn alphabet_bin() -> PathBuf {
    support::example_bin("alphabet")
}

fn run(args: &[&str]) -> Output {
    Command::new(alphabet_bin())
        .args(args)
        .env("RUST_LOG", "warn")
        .output()
        .expect("run the alphabet example")
}

#[test]
fn topology_json_is_the_contract() {
    let out = run(&["--topology", "json"]);
    assert!(out.status.success(), "{out:?}");
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("valid JSON");
    assert_eq!(json["name"], "Alphabet");
    let pipeline = &json["pipelines"][0];
    assert_eq!(pipeline["name"], "Alphabet");
    assert_eq!(pipeline["source"]["decoder"], "decode");
    assert_eq!(pipeline["source"]["output"], "LetterAndVotes");
    assert_eq!(
        pipeline["source"]["framing"],
        "4-byte big-endian length header"
    );
    let step = &pipeline["steps"][0];
    assert_eq!(step["name"], "add votes");
    assert_eq!(step["kind"], "state_computation");
    assert_eq!(step["input"], "LetterAndVotes");
    assert_eq!(step["output"], "LetterAndVotes");
    assert_eq!(step["state"], "running vote totals");
    assert_eq!(step["partition"], "by_letter");
    assert_eq!(pipeline["sinks"][0]["encoder"], "encode");
    let state = &json["states"][0];
    assert_eq!(state["name"], "running vote totals");
    assert_eq!(state["type"], "RunningVoteTotal");
    assert_eq!(state["key"], "u8");
    assert_eq!(state["initial_keys"], 27);
    // Without --in and --out the topology still prints, showing what is not set.
    assert_eq!(pipeline["source"]["kind"], "unset");
}

#[test]
fn topology_json_shows_the_addresses_given() {
    let out = run(&["--in", "127.0.0.1:7010", "--out", "-", "--topology"]);
    assert!(out.status.success(), "{out:?}");
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["pipelines"][0]["source"]["kind"], "tcp");
    assert_eq!(json["pipelines"][0]["source"]["address"], "127.0.0.1:7010");
    assert_eq!(json["pipelines"][0]["sinks"][0]["kind"], "stdout");
}

#[test]
fn topology_dot_is_a_digraph_of_the_same_steps() {
    let out = run(&["--topology", "dot"]);
    assert!(out.status.success(), "{out:?}");
    let dot = String::from_utf8(out.stdout).unwrap();
    assert!(dot.starts_with("digraph \"Alphabet\" {"), "{dot}");
    assert!(dot.contains("add votes"));
    assert!(dot.contains("running vote totals"));
    assert!(dot.contains("p0_source -> p0_step0"));
    assert!(dot.contains("p0_step0 -> p0_sink0"));
    assert!(dot.trim_end().ends_with('}'));
}

#[test]
fn usage_errors_exit_2_with_one_line_naming_the_flag() {
    for (args, flag) in [
        (&["--out", "-"][..], "--in"),
        (&["--in", "-"][..], "--out"),
        (&["--in", "localhost", "--out", "-"][..], "--in"),
        (
            &["--workers", "none", "--in", "-", "--out", "-"][..],
            "--workers",
        ),
        (&["--frobnicate"][..], "--frobnicate"),
        (
            &["--in", "-", "--out", "-", "--on-error", "ignore"][..],
            "--on-error",
        ),
        (
            &["--in", "-", "--out", "-", "--dead-letter", "-"][..],
            "--on-error skip",
        ),
        (
            &["--in", "-", "--out", "-", "--http", "no-such-host:80:80"][..],
            "--http",
        ),
    ] {
        let out = run(args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert_eq!(stderr.trim_end().lines().count(), 1, "{args:?}: {stderr}");
        assert!(stderr.contains(flag), "{args:?}: {stderr}");
        assert!(out.stdout.is_empty());
    }
}

#[test]
fn help_lists_every_flag() {
    let out = run(&["--help"]);
    assert!(out.status.success());
    let help = String::from_utf8(out.stdout).unwrap();
    for flag in [
        "--in",
        "--out",
        "--workers",
        "--topology",
        "--log-format",
        "--on-error",
        "--dead-letter",
        "--http",
        "RUST_LOG",
        "--help",
        "--version",
    ] {
        assert!(help.contains(flag), "{flag} missing from:\n{help}");
    }
}

#[test]
fn help_without_a_doc_comment_starts_with_wallaroos_sentence() {
    let help = String::from_utf8(run(&["--help"]).stdout).unwrap();
    assert!(
        help.starts_with("A wallaroo stream-processing application.\n"),
        "{help}"
    );
}

/// Runs the Sliding Window example (its demo stream without `--in`) with `args`.
fn run_sliding_window(args: &[&str]) -> Output {
    Command::new(support::example_bin("sliding_window"))
        .args(args)
        .env("RUST_LOG", "warn")
        .output()
        .expect("run the sliding_window example")
}

#[test]
fn help_starts_with_the_setup_functions_doc_and_lists_the_applications_flags() {
    let out = run_sliding_window(&["--help"]);
    assert!(out.status.success(), "{out:?}");
    let help = String::from_utf8(out.stdout).unwrap();
    // `--help` shows the whole doc comment, `-h` its first paragraph.
    assert!(
        help.starts_with("Each sensor's average over its last 5 readings, and an alert for a reading far from the average before it.\n\nReads lines"),
        "{help}"
    );
    for flag in ["--max-deviation <X>", "[default: 5]", "--in", "--workers"] {
        assert!(help.contains(flag), "{flag} missing from:\n{help}");
    }
    let short = String::from_utf8(run_sliding_window(&["-h"]).stdout).unwrap();
    assert!(short.starts_with("Each sensor's average"), "{short}");
    assert!(!short.contains("Reads lines"), "{short}");
    assert!(short.contains("--max-deviation"), "{short}");
}

#[test]
fn a_bad_value_of_the_applications_flag_exits_2_with_one_line_naming_it() {
    for args in [
        &["--max-deviation", "far"][..],
        &["--max-deviation"][..],
        &["--max-deviation", "1", "--max-deviation", "2"][..],
    ] {
        let out = run_sliding_window(args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert_eq!(stderr.trim_end().lines().count(), 1, "{args:?}: {stderr}");
        assert!(stderr.starts_with("error:"), "{args:?}: {stderr}");
        assert!(stderr.contains("--max-deviation"), "{args:?}: {stderr}");
        assert!(out.stdout.is_empty());
    }
}

#[test]
fn the_applications_flag_sets_how_far_a_reading_goes_before_an_alert() {
    let alerts = |extra: &[&str]| {
        let mut args = vec!["--out", "-", "--out", "-"];
        args.extend_from_slice(extra);
        let out = run_sliding_window(&args);
        assert!(out.status.success(), "{out:?}");
        let stdout = String::from_utf8(out.stdout).unwrap();
        // Every one of the demo's 90 readings has its average line.
        assert_eq!(stdout.lines().filter(|l| l.contains(" over ")).count(), 90);
        stdout
            .lines()
            .filter(|l| l.starts_with("alert: "))
            .map(String::from)
            .collect::<Vec<_>>()
    };
    // The default, 5: the spike of boiler-2 and the drop of the chiller.
    let default = alerts(&[]);
    assert_eq!(default.len(), 2, "{default:?}");
    assert!(
        default[0].starts_with("alert: boiler-2 92.50"),
        "{default:?}"
    );
    assert_eq!(alerts(&["--max-deviation", "5"]), default);
    // Closer: boiler-1's warming up, a degree a reading, and the wobbles too.
    let close = alerts(&["--max-deviation", "1"]);
    assert!(close.len() > 10, "{close:?}");
    assert!(
        close.iter().any(|a| a.starts_with("alert: boiler-1 ")),
        "{close:?}"
    );
    // Further than any reading goes: none.
    assert_eq!(alerts(&["--max-deviation", "50"]), Vec::<String>::new());
}

#[test]
fn the_shipped_file_of_frames_runs_end_to_end_to_stdout() {
    let input = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/data/alphabet.frames");
    let out = run(&["--in", &format!("file:{input}"), "--out", "-"]);
    assert!(out.status.success(), "{out:?}");
    let stdout = String::from_utf8(out.stdout).unwrap();
    let mut lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 12, "{stdout}");
    // Per letter the totals come in order; across letters the workers interleave.
    let a: Vec<&str> = lines
        .iter()
        .copied()
        .filter(|l| l.starts_with("a "))
        .collect();
    assert_eq!(a, ["a => 1", "a => 3", "a => 7", "a => 107"]);
    lines.sort_unstable();
    assert!(lines.contains(&"! => 4"));
}

/// Runs the shipped frames with `extra` flags and the log level `info`; returns stderr.
fn log_of_a_run(extra: &[&str]) -> String {
    let input = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/data/alphabet.frames");
    let out = Command::new(alphabet_bin())
        .args(["--in", &format!("file:{input}"), "--out", "-"])
        .args(extra)
        .env("RUST_LOG", "info")
        .env_remove("NO_COLOR")
        .output()
        .expect("run the alphabet example");
    assert!(out.status.success(), "{out:?}");
    String::from_utf8(out.stderr).unwrap()
}

#[test]
fn logs_into_a_pipe_have_no_colour_codes() {
    let log = log_of_a_run(&[]);
    assert!(log.contains("INFO"), "{log}");
    assert!(log.contains("read to the end"), "{log}");
    assert!(
        !log.contains('\x1b'),
        "escape codes in a log that is not a terminal: {log:?}"
    );
}

#[test]
fn logs_as_json_are_one_object_a_line() {
    let log = log_of_a_run(&["--log-format", "json"]);
    let lines: Vec<serde_json::Value> = log
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}")))
        .collect();
    assert!(lines.len() >= 2, "{log}");
    for line in &lines {
        assert_eq!(line["level"], "INFO", "{line}");
        assert!(line["timestamp"].is_string(), "{line}");
    }
    assert!(
        lines.iter().any(|l| l["fields"]["message"]
            .as_str()
            .is_some_and(|m| m.ends_with("read to the end"))),
        "{log}"
    );
    assert!(!log.contains('\x1b'));
}

#[test]
fn standard_input_of_many_reads_runs_end_to_end_in_order_per_letter() {
    // 60 000 frames of 9 bytes: eight reads of standard input, so its buffers are reused.
    const VOTES: u32 = 60_000;
    let letters = b"abcdefghijklmnopqrstuvwxyz!";
    let mut input = Vec::new();
    for i in 0..VOTES {
        input.extend_from_slice(&vote_frame(letters[i as usize % letters.len()], 2));
    }
    let mut child = Command::new(alphabet_bin())
        .args(["--in", "-", "--out", "-", "--workers", "2"])
        .env("RUST_LOG", "warn")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run the alphabet example");
    let mut stdin = child.stdin.take().expect("stdin");
    let writer = std::thread::spawn(move || stdin.write_all(&input).expect("write stdin"));
    let out = child.wait_with_output().expect("the example ends");
    writer.join().expect("writer");
    assert!(out.status.success(), "{out:?}");
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert_eq!(stdout.lines().count(), VOTES as usize);
    // Per letter, the n-th line is the total after n votes of 2.
    for &letter in letters {
        let prefix = format!("{} => ", letter as char);
        let totals: Vec<u64> = stdout
            .lines()
            .filter_map(|l| l.strip_prefix(&prefix))
            .map(|n| n.parse().unwrap())
            .collect();
        let expected: Vec<u64> = (1..=totals.len() as u64).map(|n| 2 * n).collect();
        assert_eq!(totals, expected, "letter {}", letter as char);
        assert!(totals.len() >= (VOTES as usize) / letters.len());
    }
}

#[test]
fn sigterm_drains_in_flight_votes_flushes_and_exits_0() {
    let receiver = Receiver::start();
    let port = support::free_port();
    let input = format!("127.0.0.1:{port}");
    let mut child = Command::new(alphabet_bin())
        .args([
            "--in",
            &input,
            "--out",
            &receiver.addr.to_string(),
            "--workers",
            "2",
        ])
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stream = connect(input.parse().unwrap());
    let mut bytes = Vec::new();
    for i in 0..20_000u32 {
        bytes.extend_from_slice(&vote_frame(b'a' + (i % 26) as u8, 1));
    }
    stream.write_all(&bytes).unwrap();
    // Every vote is in the application before it is told to stop.
    let lines = receiver.wait_for(20_000);
    assert_eq!(lines.len(), 20_000);
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "the application did not stop");
        std::thread::sleep(Duration::from_millis(20));
    };
    let stderr = {
        let mut s = String::new();
        std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut s).unwrap();
        s
    };
    assert!(
        status.success(),
        "exit status {status:?}; stderr:\n{stderr}"
    );
    assert!(stderr.contains("stopping"), "{stderr}");
    assert!(receiver.lines().contains(&"z => 769".to_string()));
}
