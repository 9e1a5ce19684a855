//! Crash recovery: the Alphabet application is killed with SIGKILL at seeded points while it
//! reads votes, and restarted on the same resilience directory, until every vote is read.
//! The final totals must equal those of a run that never crashed, no total printed along
//! the way may count a vote twice, and every kill asked for must land on a running process.
//!
//! The votes reach the application through a FIFO named on its command line as a file
//! (`--in file:PATH`): it reads the FIFO like a file, from its first frame, but cannot reach
//! its end before the test closes it, so a run never ends by itself before its kill. Each
//! run is given the votes up to a seeded frame, and most runs are killed as soon as the
//! output of a seeded frame that no earlier run was given has been read from the run's
//! standard output (a pipe, read as it is written); the others a seeded few milliseconds
//! after their start, during start-up or recovery. What comes from the seed alone: the
//! votes, how many runs there are, what each is given and at which output or delay it is
//! killed. What does not: how far a run got past that point when the signal arrived (which
//! batches were written, synced or sent), which the operating system's scheduling decides.
//!
//! `WALLAROO_CRASH_SEED` (default 7) picks the seed; `WALLAROO_CRASH_POINTS` how many kills a
//! scenario asks for (default 16; with `CI=true`, at least 200).

#![cfg(unix)]

mod support;

use std::collections::HashMap;
use std::fs::{self, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use support::{parse_line, vote_frame, Rng};

const LETTERS: &[u8] = b"abcdefghijklmnopqrstuvwxyz!ABC";

/// The signal number of SIGKILL.
const SIGKILL: i32 = 9;

/// Kill points per file of votes: each file is a stream of its own, read again from its
/// start by every run until a run reads it to its end; after that run the next file begins.
const POINTS_PER_PART: usize = 10;

/// The frames between kill points: a run is killed at the output of a frame up to this many
/// frames past what earlier runs were given, and is given up to this many frames more.
const STEP: u64 = 200;

/// Frames written at once to a run after the frame whose output its kill waits for, and
/// the pause before each such write.
const TRICKLE: usize = 4;
const TRICKLE_PAUSE: Duration = Duration::from_micros(200);

/// One run in this many is killed at a delay from its start instead of at an output.
const AT_START_ONE_IN: u64 = 6;

/// The delays of those kills are below this: process start, recovery, the first batches.
const START_MS: u64 = 60;

/// How long a run may take to write an output it must write, or to end: a hung run fails
/// the test instead of blocking it (no bound on speed; the runs take milliseconds).
const RUN_LIMIT: Duration = Duration::from_secs(120);

fn alphabet_bin() -> PathBuf {
    support::example_bin("alphabet")
}

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The seed, and the kills a scenario asks for.
fn seed_and_points() -> (u64, usize) {
    let seed = env_or("WALLAROO_CRASH_SEED", 7);
    let mut points = env_or("WALLAROO_CRASH_POINTS", 16) as usize;
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        points = points.max(200);
    }
    (seed, points)
}

struct Model {
    /// Per letter, every running total a correct run prints, in order.
    prefix_sums: HashMap<u8, Vec<u64>>,
    /// The frame (counted over every file, from 0) whose output each total is.
    frame_of: HashMap<(u8, u64), u64>,
}

impl Model {
    /// The frame whose output `line` is, if it is the output of one.
    fn frame(&self, line: &str) -> Option<u64> {
        let (letter, total) = line.split_once(" => ")?;
        let &[letter] = letter.as_bytes() else {
            return None;
        };
        self.frame_of.get(&(letter, total.parse().ok()?)).copied()
    }

    /// Checks the runs' outputs (the whole lines of each, in order) and the final states
    /// against the model: every line is a running total of its letter (no vote counted
    /// twice), and a probe of zero votes per letter on the directory shows the crash-free
    /// final totals. With `monotonic`, no run recovered a state behind a total an earlier
    /// run wrote: each letter's totals only grow, from run to run.
    fn check(
        &self,
        runs: &[Vec<String>],
        state: &Path,
        extra: &[&str],
        dir: &Path,
        monotonic: bool,
    ) {
        // Per letter, the largest total written by the runs before.
        let mut written: HashMap<u8, u64> = HashMap::new();
        for (run, lines) in runs.iter().enumerate() {
            let mut this_run: HashMap<u8, u64> = HashMap::new();
            for line in lines {
                let (letter, total) = parse_line(line);
                assert!(
                    self.prefix_sums[&letter].contains(&total),
                    "run {run}: {line:?} is not a running total of {:?}",
                    letter as char
                );
                let before = written.get(&letter).copied().unwrap_or(0);
                assert!(
                    !monotonic || total > before,
                    "run {run}: {line:?} is behind {before}, a total an earlier run wrote: \
                     the state recovered was behind its outputs"
                );
                let max = this_run.entry(letter).or_default();
                *max = (*max).max(total);
            }
            for (letter, max) in this_run {
                let total = written.entry(letter).or_default();
                *total = (*total).max(max);
            }
        }
        let probe = dir.join("probe.frames");
        let bytes: Vec<u8> = LETTERS.iter().flat_map(|&l| vote_frame(l, 0)).collect();
        fs::write(&probe, bytes).unwrap();
        let probe_out = dir.join("probe.txt");
        let out = wait(
            start(
                &probe,
                &format!("file:{}", probe_out.display()),
                state,
                extra,
            ),
            RUN_LIMIT,
        );
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let mut finals = HashMap::new();
        for line in fs::read_to_string(&probe_out).unwrap().lines() {
            let (letter, total) = parse_line(line);
            finals.insert(letter, total);
        }
        for (letter, sums) in &self.prefix_sums {
            assert_eq!(
                finals.get(letter),
                sums.last(),
                "letter {:?} after {} runs",
                *letter as char,
                runs.len()
            );
        }
    }
}

/// Seeded random votes, `lengths[i]` frames in file `i`, read one file after the other.
fn write_votes(dir: &Path, lengths: &[u64], seed: u64) -> (Vec<Vec<u8>>, Model) {
    let mut rng = Rng::new(seed);
    let mut prefix_sums: HashMap<u8, Vec<u64>> = HashMap::new();
    let mut frame_of = HashMap::new();
    let mut parts = Vec::new();
    let mut frame = 0;
    for (part, &length) in lengths.iter().enumerate() {
        let mut bytes = Vec::with_capacity(length as usize * 9);
        for _ in 0..length {
            let letter = LETTERS[rng.below(LETTERS.len() as u64) as usize];
            let votes = 1 + rng.below(1000) as u32;
            bytes.extend_from_slice(&vote_frame(letter, votes));
            let sums = prefix_sums.entry(letter).or_default();
            let total = sums.last().copied().unwrap_or(0) + u64::from(votes);
            sums.push(total);
            frame_of.insert((letter, total), frame);
            frame += 1;
        }
        // For a failure's post-mortem: the votes as a file the application can read.
        fs::write(dir.join(format!("votes-{part}.frames")), &bytes).unwrap();
        parts.push(bytes);
    }
    (
        parts,
        Model {
            prefix_sums,
            frame_of,
        },
    )
}

/// How a run ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum End {
    /// SIGKILL once the output of this frame (counted over every file) has been read.
    AfterOutput(u64),
    /// SIGKILL this long after the start.
    AtStart(Duration),
    /// By itself, once it has read its file to the end.
    Itself,
}

/// One run: which file it reads, how many of its frames it is given, how it ends.
#[derive(Clone, Copy, Debug)]
struct Run {
    part: usize,
    feed: u64,
    end: End,
}

/// The runs for `points` kills, from the seed alone, and each file's number of frames.
///
/// A run killed at an output is given every frame up to that one and up to [`STEP`] more;
/// the frame it waits for is past every frame an earlier run was given, so the run must
/// apply it and write its output (it is progress no earlier run could have made), and the
/// input stays open, so the run cannot have ended before the kill: every kill lands.
fn schedule(seed: u64, points: usize) -> (Vec<Run>, Vec<u64>) {
    let mut rng = Rng::new(seed ^ 0x5eed);
    let mut runs = Vec::new();
    let mut lengths = Vec::new();
    let mut base = 0;
    let mut left = points;
    while left > 0 || lengths.is_empty() {
        let part = lengths.len();
        let here = left.min(POINTS_PER_PART);
        left -= here;
        // Frames of this file that earlier runs were given.
        let mut fed = 0;
        for _ in 0..here {
            if rng.below(AT_START_ONE_IN) == 0 {
                let ms = rng.below(START_MS);
                let feed = fed + 1 + rng.below(STEP);
                runs.push(Run {
                    part,
                    feed,
                    end: End::AtStart(Duration::from_millis(ms)),
                });
                fed = feed;
            } else {
                let at = fed + rng.below(STEP);
                let feed = at + 1 + rng.below(STEP);
                runs.push(Run {
                    part,
                    feed,
                    end: End::AfterOutput(base + at),
                });
                fed = feed;
            }
        }
        let length = fed + STEP;
        runs.push(Run {
            part,
            feed: length,
            end: End::Itself,
        });
        lengths.push(length);
        base += length;
    }
    (runs, lengths)
}

fn start(input: &Path, output: &str, state: &Path, extra: &[&str]) -> Child {
    Command::new(alphabet_bin())
        .arg("--in")
        .arg(format!("file:{}", input.display()))
        .args(["--out", output])
        .arg("--resilience-dir")
        .arg(state)
        .args(["--workers", "2"])
        .args(extra)
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the alphabet example")
}

fn wait(mut child: Child, limit: Duration) -> std::process::Output {
    let deadline = Instant::now() + limit;
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("the application did not finish within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    child.wait_with_output().unwrap()
}

/// The writing end of a run's input FIFO, on a thread of its own.
struct Feed {
    fifo: PathBuf,
    close: Option<mpsc::Sender<()>>,
    thread: JoinHandle<()>,
}

impl Feed {
    /// Writes `bytes` into `fifo` once a reader opens it, the first `burst` at once and the
    /// rest a few frames at a time (so that a kill at an output finds the run still
    /// reading, logging and writing); then closes it if `close`, or else keeps it open
    /// until [`Feed::stop`], so that the reader sees no end.
    fn start(fifo: &Path, bytes: Vec<u8>, burst: usize, close: bool) -> Feed {
        let (tx, rx) = mpsc::channel::<()>();
        let path = fifo.to_path_buf();
        let thread = std::thread::spawn(move || {
            // Waits for a reader: the run, or `stop` when the run died before it opened.
            let Ok(mut fifo) = OpenOptions::new().write(true).open(&path) else {
                return;
            };
            // Fails once the reader is gone (SIGPIPE is ignored in Rust programs).
            let (first, rest) = bytes.split_at(burst);
            let mut written = fifo.write_all(first);
            for chunk in rest.chunks(TRICKLE * 9) {
                std::thread::sleep(TRICKLE_PAUSE);
                written = written.and_then(|()| fifo.write_all(chunk));
            }
            if written.is_err() || close {
                return;
            }
            let _ = rx.recv();
        });
        Feed {
            fifo: fifo.to_path_buf(),
            close: Some(tx),
            thread,
        }
    }

    /// Closes the FIFO once its reader is gone, whatever the writer was waiting for.
    fn stop(mut self) {
        drop(self.close.take());
        while !self.thread.is_finished() {
            // Opened for reading and writing, a FIFO opens at once (on Linux) and lets a
            // writer that waits for a reader go on; closed again, it leaves that writer
            // without a reader, so that its write fails.
            if let Ok(both) = OpenOptions::new().read(true).write(true).open(&self.fifo) {
                drop(both);
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        self.thread.join().unwrap();
    }
}

/// Sends each whole line `out` carries, as it is written; a last line cut short by a kill
/// is left out.
fn read_lines(out: ChildStdout) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut out = BufReader::new(out);
        let mut line = Vec::new();
        loop {
            line.clear();
            match out.read_until(b'\n', &mut line) {
                Ok(_) if line.last() == Some(&b'\n') => {
                    line.pop();
                    let text = String::from_utf8_lossy(&line).into_owned();
                    if tx.send(text).is_err() {
                        return;
                    }
                }
                _ => return,
            }
        }
    });
    rx
}

/// Collects a child's standard error on a thread, so that it never blocks on it.
fn read_all(mut err: std::process::ChildStderr) -> JoinHandle<String> {
    std::thread::spawn(move || {
        let mut text = String::new();
        let _ = std::io::Read::read_to_string(&mut err, &mut text);
        text
    })
}

/// What the kill-restart loop saw.
struct Outcome {
    asked: usize,
    landed: usize,
    runs: usize,
    elapsed: Duration,
}

/// Runs the kill-restart loop of `points` kills, checks the outputs and the final states
/// against the model, and returns what it saw. `monotonic`: see [`Model::check`].
fn crash_and_recover(name: &str, extra: &[&str], monotonic: bool) -> Outcome {
    let (seed, points) = seed_and_points();
    let dir = std::env::temp_dir().join(format!("wallaroo-crash-{name}-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap();
    let (runs, lengths) = schedule(seed, points);
    let (parts, model) = write_votes(&dir, &lengths, seed);
    let fifos: Vec<PathBuf> = (0..parts.len())
        .map(|part| {
            let fifo = dir.join(format!("votes-{part}.fifo"));
            let made = Command::new("mkfifo").arg(&fifo).status().expect("mkfifo");
            assert!(made.success(), "mkfifo {}", fifo.display());
            fifo
        })
        .collect();
    let state = dir.join("state");
    // The number, over every file, of each file's first frame.
    let first_frame: Vec<u64> = lengths
        .iter()
        .scan(0, |next, length| {
            let first = *next;
            *next += length;
            Some(first)
        })
        .collect();
    let started = Instant::now();

    let asked = runs.iter().filter(|r| r.end != End::Itself).count();
    let mut landed = 0;
    let mut missed = Vec::new();
    let mut outputs = Vec::new();
    for (index, run) in runs.iter().enumerate() {
        let fifo = &fifos[run.part];
        let mut child = start(fifo, "-", &state, extra);
        let feed = parts[run.part][..run.feed as usize * 9].to_vec();
        // Every frame up to the one whose output the kill waits for at once, the rest
        // trickled in.
        let burst = match run.end {
            End::AfterOutput(frame) => (frame - first_frame[run.part] + 1) as usize * 9,
            End::AtStart(_) | End::Itself => feed.len(),
        };
        let input = Feed::start(fifo, feed, burst, run.end == End::Itself);
        let lines = read_lines(child.stdout.take().unwrap());
        let stderr = read_all(child.stderr.take().unwrap());
        let mut seen = Vec::new();
        let context = format!(
            "seed {seed}, run {index} ({run:?}), directory {}",
            dir.display()
        );
        match run.end {
            End::AfterOutput(frame) => {
                let deadline = Instant::now() + RUN_LIMIT;
                loop {
                    match lines.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
                        Ok(line) => {
                            let Some(this) = model.frame(&line) else {
                                // Counted twice (or garbled): the output waited for may
                                // never come.
                                let _ = child.kill();
                                panic!("{context}: {line:?} is not a running total");
                            };
                            seen.push(line);
                            if this == frame {
                                break;
                            }
                        }
                        // It ended without that output: the kill below cannot land.
                        Err(RecvTimeoutError::Disconnected) => break,
                        Err(RecvTimeoutError::Timeout) => {
                            let _ = child.kill();
                            panic!("{context}: no output of frame {frame} within {RUN_LIMIT:?}");
                        }
                    }
                }
            }
            End::AtStart(delay) => std::thread::sleep(delay),
            End::Itself => {}
        }
        let status: ExitStatus = if run.end == End::Itself {
            let deadline = Instant::now() + RUN_LIMIT;
            loop {
                if let Some(status) = child.try_wait().unwrap() {
                    break status;
                }
                if Instant::now() > deadline {
                    let _ = child.kill();
                    panic!("{context}: the run did not end within {RUN_LIMIT:?}");
                }
                std::thread::sleep(Duration::from_millis(2));
            }
        } else {
            // Sent to the process, or to what is left of it if it ended already.
            let _ = child.kill();
            child.wait().unwrap()
        };
        input.stop();
        seen.extend(lines.iter());
        let errors = stderr.join().unwrap();
        match run.end {
            End::Itself => assert!(status.success(), "{context}: {status}: {errors}"),
            _ if status.signal() == Some(SIGKILL) => landed += 1,
            _ => missed.push(format!("{context}: ended by itself, {status}: {errors}")),
        }
        outputs.push(seen);
    }
    let elapsed = started.elapsed();
    assert_eq!(
        landed,
        asked,
        "kills landed on a running process, of those asked; missed:\n{}",
        missed.join("\n")
    );

    model.check(&outputs, &state, extra, &dir, monotonic);
    fs::remove_dir_all(&dir).unwrap();
    Outcome {
        asked,
        landed,
        runs: runs.len(),
        elapsed,
    }
}

fn report(name: &str, outcome: &Outcome) {
    eprintln!(
        "{name}: kills asked {}, landed {}, in {} runs, {:.2?} ({:.1?} a kill point)",
        outcome.asked,
        outcome.landed,
        outcome.runs,
        outcome.elapsed,
        outcome.elapsed / outcome.asked.max(1) as u32
    );
}

#[test]
fn the_schedule_comes_from_the_seed_and_every_kill_has_progress_to_make() {
    for (seed, points) in [(7, 16), (1, 200), (42, 3), (9, 0)] {
        let (runs, lengths) = schedule(seed, points);
        assert_eq!(schedule(seed, points).1, lengths);
        let kills = runs.iter().filter(|r| r.end != End::Itself).count();
        assert_eq!(kills, points, "seed {seed}");
        assert_eq!(
            runs.iter().filter(|r| r.end == End::Itself).count(),
            lengths.len()
        );
        let (mut part, mut base, mut fed) = (0, 0, 0);
        for run in &runs {
            assert_eq!(run.part, part, "{run:?}");
            assert!(run.feed > fed && run.feed <= lengths[part], "{run:?}");
            if let End::AfterOutput(frame) = run.end {
                // Past every frame an earlier run of this file was given, and given to this one.
                assert!(frame >= base + fed && frame < base + run.feed, "{run:?}");
            }
            fed = run.feed;
            if run.end == End::Itself {
                assert_eq!(run.feed, lengths[part]);
                base += lengths[part];
                part += 1;
                fed = 0;
            }
        }
        assert_eq!(part, lengths.len());
    }
}

#[test]
fn sigkill_at_seeded_points_loses_and_duplicates_nothing() {
    let outcome = crash_and_recover("interval", &["--sync-interval", "10"], false);
    report("--sync-interval 10", &outcome);
    assert_eq!(outcome.landed, seed_and_points().1);
}

#[test]
fn sigkill_by_default_never_recovers_a_state_behind_its_outputs() {
    // No sync flag: outputs wait for the changes they reflect to be durable.
    let outcome = crash_and_recover("default", &[], true);
    report("default", &outcome);
    assert_eq!(outcome.landed, seed_and_points().1);
}

/// A child process that is killed if the test fails before it ends.
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A sender of one resumable stream that reconnects whenever the application goes away,
/// and resends from the point the application names; it ends once every message is applied.
fn resumable_sender(
    addr: std::net::SocketAddr,
    frames: Vec<u8>,
    total: u64,
) -> std::thread::JoinHandle<u64> {
    use std::io::Write;
    use wallaroo::source::resume;
    std::thread::spawn(move || {
        let deadline = Instant::now() + Duration::from_secs(300);
        let mut connections = 0;
        loop {
            assert!(
                Instant::now() < deadline,
                "the sender never saw every message applied"
            );
            let Ok(mut conn) = std::net::TcpStream::connect(addr) else {
                std::thread::sleep(Duration::from_millis(5));
                continue;
            };
            connections += 1;
            let Ok(next) = resume::connect(&mut conn, "crash votes") else {
                continue;
            };
            if next > total {
                return connections;
            }
            let from = (next as usize - 1) * 9;
            if conn.write_all(&frames[from..]).is_err() {
                continue;
            }
            drop(conn);
            std::thread::sleep(Duration::from_millis(20));
        }
    })
}

#[test]
fn sigkill_with_a_resumable_tcp_sender() {
    let seed = env_or("WALLAROO_CRASH_SEED", 7);
    let points = env_or("WALLAROO_CRASH_POINTS", 16) as usize;
    let dir = std::env::temp_dir().join(format!("wallaroo-crash-tcp-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap();
    let (mut parts, model) = write_votes(&dir, &[500_000], seed);
    let frames = parts.remove(0);
    let state = dir.join("state");
    let port = support::free_port();
    let input = format!("127.0.0.1:{port}");
    let start_app = |run: usize| {
        Command::new(alphabet_bin())
            .args(["--in", &input, "--workers", "2", "--sync-interval", "10"])
            .arg("--out")
            .arg(format!(
                "file:{}",
                dir.join(format!("run-{run}.txt")).display()
            ))
            .arg("--resilience-dir")
            .arg(&state)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap()
    };
    let sender = resumable_sender(input.parse().unwrap(), frames, 500_000);
    let mut rng = Rng::new(seed ^ 0x7c9);
    let mut killed = 0;
    let mut run = 0;
    while killed < points && !sender.is_finished() {
        let mut app = start_app(run);
        run += 1;
        std::thread::sleep(Duration::from_millis(10 + rng.below(100)));
        app.kill().unwrap(); // SIGKILL
        let _ = app.wait();
        killed += 1;
    }
    let mut app = KillOnDrop(start_app(run));
    let connections = sender.join().expect("the sender finished");
    // The last run is up (it answers a HELLO) before it is asked to stop.
    let answered = resumable_sender(input.parse().unwrap(), Vec::new(), 0).join();
    assert!(answered.is_ok());
    let status = Command::new("kill")
        .args(["-TERM", &app.0.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    assert!(app.0.wait().unwrap().success());

    // A killed run may leave its last line cut short: only whole lines count.
    let outputs: Vec<Vec<String>> = (0..=run)
        .map(|r| {
            let text = fs::read_to_string(dir.join(format!("run-{r}.txt"))).unwrap_or_default();
            let whole = text.rfind('\n').map_or("", |end| &text[..=end]);
            whole.lines().map(str::to_string).collect()
        })
        .collect();
    model.check(&outputs, &state, &[], &dir, false);
    assert!(killed >= 8, "only {killed} kills");
    eprintln!("crash points tried: {killed} (sender connections: {connections})");
    fs::remove_dir_all(&dir).unwrap();
}
