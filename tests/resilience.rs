//! State that survives a restart: recovery from the resilience directory, exactly-once
//! replay of a file source, and the errors that refuse a directory rather than lose data.

#[allow(dead_code)]
#[path = "../examples/alphabet.rs"]
mod alphabet;
mod support;

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use support::{parse_line, send_votes, Receiver, TempDir};
use wallaroo::resilience::{ResilienceError, SyncPolicy};
use wallaroo::{Args, RunError};

const SHIPPED: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/data/alphabet.frames");

fn file_args(input: &str, out: &Path, state: &Path, sync: SyncPolicy) -> Args {
    Args::new()
        .with_input(format!("file:{input}"))
        .with_output(format!("file:{}", out.display()))
        .with_workers(2)
        .with_resilience(state, sync)
}

/// Last total per letter in an output file.
fn last_totals(path: &Path) -> HashMap<u8, u64> {
    let mut totals = HashMap::new();
    for line in fs::read_to_string(path).unwrap().lines() {
        let (letter, total) = parse_line(line);
        totals.insert(letter, total);
    }
    totals
}

fn logs(dir: &Path) -> Vec<PathBuf> {
    let mut logs: Vec<PathBuf> = fs::read_dir(dir.join("running_vote_totals"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "log"))
        .collect();
    logs.sort();
    logs
}

#[test]
fn a_file_read_again_after_a_restart_counts_once() {
    let tmp = TempDir::new("once");
    let state = tmp.0.join("state");
    for sync in [
        SyncPolicy::Interval(Duration::from_millis(5)),
        SyncPolicy::BeforeOutput,
    ] {
        let _ = fs::remove_dir_all(&state);
        let first = tmp.0.join("first.txt");
        let args = file_args(SHIPPED, &first, &state, sync);
        alphabet::alphabet(&args).run(&args, |_| {}).unwrap();
        assert_eq!(last_totals(&first)[&b'a'], 107);

        // The same frames again: every one was applied, none is applied twice.
        let second = tmp.0.join("second.txt");
        let args = file_args(SHIPPED, &second, &state, sync);
        alphabet::alphabet(&args).run(&args, |_| {}).unwrap();
        assert_eq!(fs::read_to_string(&second).unwrap(), "", "{sync:?}");

        // New votes add to the recovered totals, with any number of workers.
        let receiver = Receiver::start();
        let args = Args::new()
            .with_input("127.0.0.1:0")
            .with_output(receiver.addr.to_string())
            .with_workers(3)
            .with_resilience(&state, sync);
        let running = alphabet::alphabet(&args).start(&args).unwrap();
        send_votes(
            running.local_addr(0).unwrap(),
            &[(b'a', 1), (b'!', 10), (b'X', 2)],
            1,
        );
        let mut lines = receiver.wait_for(3);
        running.stop().unwrap();
        lines.sort();
        assert_eq!(lines, ["! => 14", "X => 2", "a => 108"], "{sync:?}");
    }
}

#[test]
fn a_torn_record_at_a_log_tail_is_cut_off_and_the_rest_recovered() {
    let tmp = TempDir::new("torn");
    let state = tmp.0.join("state");
    let out = tmp.0.join("out.txt");
    let args = file_args(SHIPPED, &out, &state, SyncPolicy::BeforeOutput);
    // Keep the logs of this run: stop it with a kill-like end (the logs are not compacted
    // by a restart until the next start), then tear the last record of one log.
    alphabet::alphabet(&args).run(&args, |_| {}).unwrap();
    let log = logs(&state)
        .into_iter()
        .find(|p| fs::metadata(p).unwrap().len() > 100)
        .expect("a log with records");
    let len = fs::metadata(&log).unwrap().len();
    let file = fs::OpenOptions::new().write(true).open(&log).unwrap();
    file.set_len(len - 3).unwrap();
    drop(file);

    let again = tmp.0.join("again.txt");
    let args = file_args(SHIPPED, &again, &state, SyncPolicy::BeforeOutput);
    alphabet::alphabet(&args).run(&args, |_| {}).unwrap();
    // At most the torn record's frame is applied again (its change was lost with the
    // record; the record may also have been a marker); the others are recovered and skipped.
    let replayed = fs::read_to_string(&again).unwrap();
    assert!(replayed.lines().count() <= 1, "{replayed}");
    // Totals stay right: a probe of zero votes shows them.
    let totals = probe(&tmp.0, &state);
    assert_eq!(totals[&b'a'], 107);
    assert_eq!(totals[&b'!'], 4);
    assert_eq!(totals[&b'c'], 11);
}

/// Sends a zero vote for the shipped file's letters and returns the totals printed.
fn probe(tmp: &Path, state: &Path) -> HashMap<u8, u64> {
    let probe = tmp.join("probe.frames");
    let mut bytes = Vec::new();
    for letter in *b"abcqz!" {
        bytes.extend_from_slice(&support::vote_frame(letter, 0));
    }
    fs::write(&probe, bytes).unwrap();
    let out = tmp.join("probe.txt");
    let args = file_args(
        probe.to_str().unwrap(),
        &out,
        state,
        SyncPolicy::BeforeOutput,
    );
    alphabet::alphabet(&args).run(&args, |_| {}).unwrap();
    last_totals(&out)
}

#[test]
fn a_damaged_record_in_the_middle_refuses_to_start_naming_file_and_offset() {
    let tmp = TempDir::new("damaged");
    let state = tmp.0.join("state");
    let out = tmp.0.join("out.txt");
    let args = file_args(SHIPPED, &out, &state, SyncPolicy::BeforeOutput);
    alphabet::alphabet(&args).run(&args, |_| {}).unwrap();
    let log = logs(&state)
        .into_iter()
        .find(|p| fs::metadata(p).unwrap().len() > 150)
        .expect("a log with records");
    let mut bytes = fs::read(&log).unwrap();
    // The header record is first; damage the payload of the record after it.
    let header = RECORD_HEADER + u32::from_le_bytes(bytes[..4].try_into().unwrap()) as usize;
    bytes[header + RECORD_HEADER + 1] ^= 0x5a;
    fs::write(&log, &bytes).unwrap();

    let args = file_args(SHIPPED, &out, &state, SyncPolicy::BeforeOutput);
    let err = alphabet::alphabet(&args)
        .start(&args)
        .err()
        .expect("refused");
    let message = err.to_string();
    assert!(
        matches!(err, RunError::Resilience(ResilienceError::Damaged { offset, .. }) if offset == header as u64),
        "{message}"
    );
    assert!(message.contains(&log.display().to_string()), "{message}");
    assert!(message.contains(&format!("byte {header}")), "{message}");
    // Nothing was removed or rewritten.
    assert_eq!(fs::read(&log).unwrap(), bytes);
}

/// Bytes before each record's payload: its length, the length's CRC-32, the record's.
const RECORD_HEADER: usize = 12;

/// Every file under `dir` with its bytes, the lock file aside.
fn files(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(files(&path));
        } else if path.file_name().unwrap() != "LOCK" {
            out.push((path.clone(), fs::read(&path).unwrap()));
        }
    }
    out.sort();
    out
}

#[test]
fn a_damaged_length_in_the_middle_of_a_log_refuses_to_start_and_keeps_every_file() {
    let tmp = TempDir::new("damaged-length");
    let state = tmp.0.join("state");
    let out = tmp.0.join("out.txt");
    let args = file_args(SHIPPED, &out, &state, SyncPolicy::BeforeOutput);
    alphabet::alphabet(&args).run(&args, |_| {}).unwrap();
    let log = logs(&state)
        .into_iter()
        .find(|p| fs::metadata(p).unwrap().len() > 150)
        .expect("a log with records");
    let mut bytes = fs::read(&log).unwrap();
    // The high byte of the length of the record after the header: read as it stands, the
    // record would run past the end of the file, as a torn write's would.
    let header = RECORD_HEADER + u32::from_le_bytes(bytes[..4].try_into().unwrap()) as usize;
    bytes[header + 3] ^= 0x01;
    fs::write(&log, &bytes).unwrap();
    let before = files(&state);

    let args = file_args(SHIPPED, &out, &state, SyncPolicy::BeforeOutput);
    let err = alphabet::alphabet(&args)
        .start(&args)
        .err()
        .expect("refused");
    let message = err.to_string();
    assert!(
        matches!(err, RunError::Resilience(ResilienceError::Damaged { offset, .. }) if offset == header as u64),
        "{message}"
    );
    assert!(message.contains(&log.display().to_string()), "{message}");
    // Every file is as it was: nothing cut off, removed or rewritten.
    assert_eq!(files(&state), before);
}

#[test]
fn a_directory_in_use_is_refused() {
    let tmp = TempDir::new("locked");
    let state = tmp.0.join("state");
    let receiver = Receiver::start();
    let args = Args::new()
        .with_input("127.0.0.1:0")
        .with_output(receiver.addr.to_string())
        .with_resilience(&state, SyncPolicy::BeforeOutput);
    let running = alphabet::alphabet(&args).start(&args).unwrap();
    let err = alphabet::alphabet(&args)
        .start(&args)
        .err()
        .expect("locked");
    assert!(
        matches!(err, RunError::Resilience(ResilienceError::Locked { .. })),
        "{err}"
    );
    assert_eq!(
        err.to_string(),
        format!(
            "{} is in use by another process (it holds {}); one directory serves one process",
            state.display(),
            state.join("LOCK").display()
        )
    );
    running.stop().unwrap();
    // Free once the first one stopped.
    alphabet::alphabet(&args)
        .start(&args)
        .unwrap()
        .stop()
        .unwrap();
}

mod other_key {
    //! The Alphabet's state partition, keyed by u16 instead of u8.
    use wallaroo::prelude::*;

    #[state]
    #[derive(Default)]
    pub struct RunningVoteTotal {
        votes: u64,
    }

    #[decoder]
    pub fn decode(payload: &[u8]) -> Result<u16, DecodeError> {
        Ok(payload.len() as u16)
    }

    #[partition]
    pub fn by_value(v: &u16) -> u16 {
        *v
    }

    #[state_computation]
    pub fn count(_v: u16, total: &mut RunningVoteTotal) -> (Option<u16>, bool) {
        total.votes += 1;
        (None, true)
    }

    pub fn app(args: &Args) -> Application {
        Application::new("other")
            .pipeline("other", Source::new(args.input(0), decode))
            .to_state_partition(count, "running vote totals", by_value)
            .done()
    }
}

#[test]
fn state_saved_by_another_state_or_key_type_is_refused() {
    let tmp = TempDir::new("incompatible");
    let state = tmp.0.join("state");
    let out = tmp.0.join("out.txt");
    let args = file_args(SHIPPED, &out, &state, SyncPolicy::BeforeOutput);
    alphabet::alphabet(&args).run(&args, |_| {}).unwrap();

    let err = other_key::app(&args).start(&args).err().expect("refused");
    let message = err.to_string();
    assert!(
        matches!(
            err,
            RunError::Resilience(ResilienceError::Incompatible { .. })
        ),
        "{message}"
    );
    assert!(
        message.contains("written for state RunningVoteTotal keyed by u8, but this build keys state RunningVoteTotal by u16"),
        "{message}"
    );
    assert!(message.contains("snapshot-"), "{message}");
}

#[test]
fn a_resumable_sender_learns_where_to_resume_and_each_message_counts_once() {
    use std::io::Write;
    use wallaroo::source::resume;

    let tmp = TempDir::new("resume");
    let state = tmp.0.join("state");
    let receiver = Receiver::start();
    let args = Args::new()
        .with_input("127.0.0.1:0")
        .with_output(receiver.addr.to_string())
        .with_workers(2)
        .with_resilience(&state, SyncPolicy::BeforeOutput);
    let running = alphabet::alphabet(&args).start(&args).unwrap();
    let addr = running.local_addr(0).unwrap();
    let votes: Vec<u8> = (0..100u32)
        .flat_map(|i| support::vote_frame(b"abc"[i as usize % 3], 1))
        .collect();

    // A new stream starts at message 1; the sender sends 60 and goes away.
    let mut conn = support::connect(addr);
    assert_eq!(resume::connect(&mut conn, "votes").unwrap(), 1);
    conn.write_all(&votes[..60 * 9]).unwrap();
    drop(conn);
    receiver.wait_for(60);

    // Reconnecting, it learns that 60 were applied, and sends the rest.
    let next = wait_for_resume_point(addr, "votes", 61);
    let mut conn = support::connect(addr);
    assert_eq!(resume::connect(&mut conn, "votes").unwrap(), next);
    conn.write_all(&votes[(next as usize - 1) * 9..]).unwrap();
    drop(conn);
    let lines = receiver.wait_for(100);
    assert_eq!(wait_for_resume_point(addr, "votes", 101), 101);
    // Another stream name is another stream.
    let mut other = support::connect(addr);
    assert_eq!(resume::connect(&mut other, "other votes").unwrap(), 1);
    drop(other);
    running.stop().unwrap();
    assert_eq!(lines.len(), 100);
    assert!(lines.contains(&"a => 34".to_string()), "{lines:?}");
    assert!(lines.contains(&"c => 33".to_string()), "{lines:?}");

    // After a restart the resume point is recovered from the logs.
    let receiver = Receiver::start();
    let args = Args::new()
        .with_input("127.0.0.1:0")
        .with_output(receiver.addr.to_string())
        .with_resilience(&state, SyncPolicy::BeforeOutput);
    let running = alphabet::alphabet(&args).start(&args).unwrap();
    let mut conn = support::connect(running.local_addr(0).unwrap());
    assert_eq!(resume::connect(&mut conn, "votes").unwrap(), 101);
    drop(conn);
    running.stop().unwrap();
}

/// Asks for the resume point of `name` until it reaches `at_least` (or 10 s pass).
fn wait_for_resume_point(addr: std::net::SocketAddr, name: &str, at_least: u64) -> u64 {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let mut conn = support::connect(addr);
        let next = wallaroo::source::resume::connect(&mut conn, name).unwrap();
        if next >= at_least || std::time::Instant::now() > deadline {
            return next;
        }
        drop(conn);
        std::thread::sleep(Duration::from_millis(10));
    }
}

mod version_1 {
    //! The Alphabet's state, with a field added and its version raised.
    use wallaroo::prelude::*;

    #[state(version = 1)]
    #[derive(Default)]
    pub struct RunningVoteTotal {
        votes: u64,
        last_vote: u64,
    }

    #[decoder]
    pub fn decode(payload: &[u8]) -> Result<u8, DecodeError> {
        payload.first().copied().ok_or(DecodeError::new("empty"))
    }

    #[partition]
    pub fn by_letter(letter: &u8) -> u8 {
        *letter
    }

    #[state_computation]
    pub fn count(_letter: u8, total: &mut RunningVoteTotal) -> (Option<u8>, bool) {
        total.votes += 1;
        total.last_vote = 1;
        (None, true)
    }

    pub fn app(args: &Args) -> Application {
        Application::new("Alphabet")
            .pipeline("Alphabet", Source::new(args.input(0), decode))
            .to_state_partition(count, "running vote totals", by_letter)
            .done()
    }
}

#[test]
fn state_saved_by_another_version_is_refused() {
    let tmp = TempDir::new("version");
    let state = tmp.0.join("state");
    let out = tmp.0.join("out.txt");
    let args = file_args(SHIPPED, &out, &state, SyncPolicy::BeforeOutput);
    alphabet::alphabet(&args).run(&args, |_| {}).unwrap();

    let err = version_1::app(&args).start(&args).err().expect("refused");
    let message = err.to_string();
    assert!(
        message.contains("state RunningVoteTotal: states were saved by version 0, and this build reads version 1 (`RunningVoteTotal`)"),
        "{message}"
    );
    // The directory is left as it was: the version that wrote it still starts.
    let again = tmp.0.join("again.txt");
    let args = file_args(SHIPPED, &again, &state, SyncPolicy::BeforeOutput);
    alphabet::alphabet(&args).run(&args, |_| {}).unwrap();
    assert_eq!(fs::read_to_string(&again).unwrap(), "");
}

#[test]
fn a_resilience_directory_that_cannot_be_used_is_named_in_the_error() {
    let tmp = TempDir::new("unusable");
    let not_a_dir = tmp.0.join("file");
    fs::write(&not_a_dir, b"not a directory").unwrap();
    let args = Args::new()
        .with_input("127.0.0.1:0")
        .with_output("-")
        .with_resilience(&not_a_dir, SyncPolicy::BeforeOutput);
    let err = alphabet::alphabet(&args)
        .start(&args)
        .err()
        .expect("refused");
    assert!(
        matches!(err, RunError::Resilience(ResilienceError::Io { .. })),
        "{err:?}"
    );
    assert!(
        err.to_string()
            .starts_with(&not_a_dir.display().to_string()),
        "{err}"
    );
    assert_eq!(fs::read(&not_a_dir).unwrap(), b"not a directory");
}
