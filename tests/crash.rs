//! Crash recovery: the Alphabet application is killed with SIGKILL at seeded points while it
//! reads votes, and restarted on the same resilience directory, until every vote is read.
//! The final totals must equal those of a run that never crashed, no total printed along
//! the way may count a vote twice, and every kill asked for must land on a running process.
//!
//! Each run is given the votes up to a seeded frame, through an input that it cannot see
//! the end of before the test closes it, so that it never ends by itself before its kill:
//! a FIFO named on its command line as a file (`--in file:PATH`), which it reads like a file
//! from its first frame, or the resumable TCP source, which the test feeds from the message
//! the run names in its RESUME. Most runs are killed as soon as the output of a seeded frame
//! that no earlier run was given has been read from the run's standard output (a pipe, read
//! as it is written); the others a seeded few milliseconds after their start, during
//! start-up or recovery. The votes come in files of ten kill points each; the run given a
//! whole file ends by itself (over TCP: is stopped with SIGTERM once it says that it applied
//! every vote), and the next file begins.
//!
//! What comes from the seed alone: the votes, the runs, what each is given and at which
//! output or delay it is killed. What does not: how far a run got past that point when the
//! signal arrived (which batches were read, logged, synced or written), which the operating
//! system's scheduling decides.
//!
//! `WALLAROO_CRASH_SEED` (default 7) picks the seed; `WALLAROO_CRASH_POINTS` how many kills
//! each of the three scenarios asks for (default 16; with `CI=true`, at least 200). A failing
//! scenario leaves its directory, with each run's output and standard error, for a look.

#![cfg(unix)]

mod support;

use std::collections::HashMap;
use std::fs::{self, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::Arc;
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
                &format!("file:{}", probe.display()),
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
    /// By itself, once it has read its file to the end (over TCP: by SIGTERM, once it says
    /// that it applied every vote of the file).
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

/// Starts the application reading `input` (an `--in` address), writing to `output`.
fn start(input: &str, output: &str, state: &Path, extra: &[&str]) -> Child {
    Command::new(alphabet_bin())
        .args(["--in", input, "--out", output])
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

/// Where the votes come from.
#[derive(Clone, Copy)]
enum Source {
    /// A FIFO per file of votes, named as a file (`--in file:PATH`): each run reads it
    /// from its first frame, and skips what it applied before.
    Fifo,
    /// The resumable TCP source on this address: each run is sent a stream per file of
    /// votes from the message it names in its RESUME, and a run that was given every
    /// message of the stream is stopped with SIGTERM once it answers that it applied them.
    Tcp(SocketAddr),
}

/// The writing end of a run's input, on a thread of its own.
struct Feed {
    fifo: Option<PathBuf>,
    stop: Arc<AtomicBool>,
    close: Option<mpsc::Sender<()>>,
    thread: JoinHandle<()>,
}

/// Writes `frames` (whole frames) on `to`: `burst` bytes at once, the rest a few frames at
/// a time, so that a kill at an output finds the run still reading, logging and writing.
fn write_frames(to: &mut impl Write, frames: &[u8], burst: usize) -> std::io::Result<()> {
    let (first, rest) = frames.split_at(burst.min(frames.len()));
    to.write_all(first)?;
    for chunk in rest.chunks(TRICKLE * 9) {
        std::thread::sleep(TRICKLE_PAUSE);
        to.write_all(chunk)?;
    }
    Ok(())
}

impl Feed {
    /// Writes the first `feed` frames of `part` (file `index`) to a run, with the frames
    /// up to the `burst`th at once (see [`write_frames`]); then ends the stream if `close`
    /// (for TCP: once the run says that it applied them all), or else keeps it open until
    /// [`Feed::stop`], so that the run sees no end.
    fn start(
        source: Source,
        fifo: &Path,
        index: usize,
        part: &[u8],
        feed: u64,
        burst: u64,
        close: bool,
    ) -> Feed {
        let (tx, rx) = mpsc::channel::<()>();
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = Arc::clone(&stop);
        let frames = part[..feed as usize * 9].to_vec();
        let burst = burst as usize * 9;
        let thread = match source {
            Source::Fifo => {
                let path = fifo.to_path_buf();
                std::thread::spawn(move || {
                    // Waits for a reader: the run, or `stop` when the run died before it
                    // opened the FIFO.
                    let Ok(mut fifo) = OpenOptions::new().write(true).open(&path) else {
                        return;
                    };
                    // Fails once the reader is gone (SIGPIPE is ignored in Rust programs).
                    if write_frames(&mut fifo, &frames, burst).is_ok() && !close {
                        let _ = rx.recv();
                    }
                })
            }
            Source::Tcp(addr) => std::thread::spawn(move || {
                let name = format!("crash votes {index}");
                let Some((mut conn, next)) = resume_point(addr, &name, &stopped) else {
                    return;
                };
                // Messages are numbered from 1: `next - 1` of them were applied.
                let from = ((next - 1) as usize * 9).min(frames.len());
                let _ = conn.set_nodelay(true);
                let written = write_frames(&mut conn, &frames[from..], burst.saturating_sub(from));
                if written.is_err() {
                    return;
                }
                if !close {
                    let _ = rx.recv();
                    return;
                }
                drop(conn);
                while let Some((_, next)) = resume_point(addr, &name, &stopped) {
                    if next > feed {
                        return;
                    }
                    std::thread::sleep(Duration::from_millis(10));
                }
            }),
        };
        Feed {
            fifo: matches!(source, Source::Fifo).then(|| fifo.to_path_buf()),
            stop,
            close: Some(tx),
            thread,
        }
    }

    /// Ends the writing, once the run is gone, whatever the writer was waiting for.
    fn stop(mut self) {
        self.stop.store(true, Ordering::Release);
        drop(self.close.take());
        while !self.thread.is_finished() {
            // Opened for reading and writing, a FIFO opens at once (on Linux) and lets a
            // writer that waits for a reader go on; closed again, it leaves that writer
            // without a reader, so that its write fails.
            if let Some(fifo) = &self.fifo {
                if let Ok(both) = OpenOptions::new().read(true).write(true).open(fifo) {
                    drop(both);
                }
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        self.thread.join().unwrap();
    }
}

/// Makes `path` a new FIFO, in place of the one an earlier run read.
///
/// Why a new one for every run: a FIFO's buffer lives as long as anything holds it open,
/// and a process that another test's thread forks holds a copy of this process's open
/// files until it runs its program; a FIFO kept open that way past a kill would hand the
/// next run the bytes the killed run did not read, ahead of its own, and numbered as its
/// first frames (seen here: 13 frames of a killed run read again by the next, under
/// numbers 13 higher, so that one vote was counted twice). The new FIFO takes the name,
/// which the stream is known by, and not the old one's buffer.
fn fresh_fifo(path: &Path) {
    let new = path.with_extension("fifo.new");
    let made = Command::new("mkfifo").arg(&new).status().expect("mkfifo");
    assert!(made.success(), "mkfifo {}", new.display());
    fs::rename(&new, path).unwrap();
}

/// Connects to the resumable TCP source at `addr` (retrying while the run starts) and says
/// HELLO for stream `name`: the connection, and the number of the first message to send;
/// `None` once `stop` is set.
fn resume_point(addr: SocketAddr, name: &str, stop: &AtomicBool) -> Option<(TcpStream, u64)> {
    use wallaroo::source::resume;
    while !stop.load(Ordering::Acquire) {
        if let Ok(mut conn) = TcpStream::connect(addr) {
            if let Ok(next) = resume::connect(&mut conn, name) {
                return Some((conn, next));
            }
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    None
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

/// Waits up to [`RUN_LIMIT`] for `child` to end.
fn wait_status(child: &mut Child, context: &str) -> ExitStatus {
    let deadline = Instant::now() + RUN_LIMIT;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("{context}: the run did not end within {RUN_LIMIT:?}");
        }
        std::thread::sleep(Duration::from_millis(2));
    }
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
fn crash_and_recover(name: &str, source: Source, extra: &[&str], monotonic: bool) -> Outcome {
    let (seed, points) = seed_and_points();
    let dir = std::env::temp_dir().join(format!("wallaroo-crash-{name}-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap();
    let (runs, lengths) = schedule(seed, points);
    let (parts, model) = write_votes(&dir, &lengths, seed);
    let fifos: Vec<PathBuf> = (0..parts.len())
        .map(|part| dir.join(format!("votes-{part}.fifo")))
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
        if matches!(source, Source::Fifo) {
            fresh_fifo(fifo);
        }
        let input = match source {
            Source::Fifo => format!("file:{}", fifo.display()),
            Source::Tcp(addr) => addr.to_string(),
        };
        let mut child = start(&input, "-", &state, extra);
        // Every frame up to the one whose output the kill waits for at once, the rest
        // trickled in.
        let burst = match run.end {
            End::AfterOutput(frame) => frame - first_frame[run.part] + 1,
            End::AtStart(_) | End::Itself => run.feed,
        };
        let feed = Feed::start(
            source,
            fifo,
            run.part,
            &parts[run.part],
            run.feed,
            burst,
            run.end == End::Itself,
        );
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
        let status = match (run.end, source) {
            (End::Itself, Source::Fifo) => wait_status(&mut child, &context),
            (End::Itself, Source::Tcp(_)) => {
                // Every message applied (the run says so), it is asked to stop.
                let deadline = Instant::now() + RUN_LIMIT;
                while !feed.thread.is_finished() {
                    if Instant::now() > deadline {
                        let _ = child.kill();
                        panic!("{context}: not every message applied within {RUN_LIMIT:?}");
                    }
                    std::thread::sleep(Duration::from_millis(2));
                }
                let term = Command::new("kill")
                    .args(["-TERM", &child.id().to_string()])
                    .status()
                    .unwrap();
                assert!(term.success(), "{context}: kill -TERM");
                wait_status(&mut child, &context)
            }
            _ => {
                // Sent to the process, or to what is left of it if it ended already.
                let _ = child.kill();
                child.wait().unwrap()
            }
        };
        feed.stop();
        seen.extend(lines.iter());
        let errors = stderr.join().unwrap();
        // Kept for a failure's post-mortem (the directory is removed when the test passes).
        fs::write(dir.join(format!("run-{index}.out")), seen.join("\n")).unwrap();
        fs::write(dir.join(format!("run-{index}.err")), &errors).unwrap();
        if let Some(line) = seen.iter().find(|line| model.frame(line).is_none()) {
            panic!("{context}: {line:?} is not a running total");
        }
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
    let outcome = crash_and_recover("interval", Source::Fifo, &["--sync-interval", "10"], false);
    report("--sync-interval 10", &outcome);
    assert_eq!(outcome.landed, seed_and_points().1);
}

#[test]
fn sigkill_by_default_never_recovers_a_state_behind_its_outputs() {
    // No sync flag: outputs wait for the changes they reflect to be durable.
    let outcome = crash_and_recover("default", Source::Fifo, &[], true);
    report("default", &outcome);
    assert_eq!(outcome.landed, seed_and_points().1);
}

#[test]
fn sigkill_with_a_resumable_tcp_sender() {
    let addr = format!("127.0.0.1:{}", support::free_port())
        .parse()
        .unwrap();
    let outcome = crash_and_recover("tcp", Source::Tcp(addr), &["--sync-interval", "10"], false);
    report("resumable TCP, --sync-interval 10", &outcome);
    assert_eq!(outcome.landed, seed_and_points().1);
}
