//! Crash recovery: the Alphabet application is killed with SIGKILL at random moments while
//! it reads a file of votes, and restarted on the same resilience directory until a run
//! ends by itself. The final totals must equal those of a run that never crashed, and no
//! total printed along the way may count a vote twice.
//!
//! `WALLAROO_CRASH_SEED` and `WALLAROO_CRASH_POINTS` pick the seed and how many kills.

mod support;

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use support::{parse_line, vote_frame, Rng};

const LETTERS: &[u8] = b"abcdefghijklmnopqrstuvwxyz!ABC";

fn alphabet_bin() -> PathBuf {
    support::example_bin("alphabet")
}

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

struct Model {
    /// Per letter, every running total a correct run prints, in order.
    prefix_sums: HashMap<u8, Vec<u64>>,
}

impl Model {
    /// Checks the runs' outputs and the final states against the model: every whole line a
    /// run wrote is a running total of its letter (no vote counted twice), and a probe of
    /// zero votes per letter on the directory shows the crash-free final totals. With
    /// `monotonic`, no run recovered a state behind a total an earlier run wrote: each
    /// letter's totals only grow, from run to run.
    fn check(
        &self,
        outputs: &[PathBuf],
        state: &Path,
        extra: &[&str],
        dir: &Path,
        killed: usize,
        monotonic: bool,
    ) {
        // Per letter, the largest total written by the runs before.
        let mut written: HashMap<u8, u64> = HashMap::new();
        for output in outputs {
            // A killed run may leave its last line cut short: only whole lines count.
            let text = fs::read_to_string(output).unwrap_or_default();
            let whole = text.rfind('\n').map_or("", |end| &text[..=end]);
            let mut this_run: HashMap<u8, u64> = HashMap::new();
            for line in whole.lines() {
                let (letter, total) = parse_line(line);
                assert!(
                    self.prefix_sums[&letter].contains(&total),
                    "{}: {line:?} is not a running total of {:?}",
                    output.display(),
                    letter as char
                );
                let before = written.get(&letter).copied().unwrap_or(0);
                assert!(
                    !monotonic || total > before,
                    "{}: {line:?} is behind {before}, a total an earlier run wrote: the \
                     state recovered was behind its outputs",
                    output.display()
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
            start(&probe, &probe_out, state, extra),
            Duration::from_secs(60),
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
                "letter {:?} after {killed} crashes",
                *letter as char
            );
        }
    }
}

/// Writes `parts` files of `per_part` random votes, read one after the other.
fn write_votes(dir: &Path, parts: usize, per_part: usize, seed: u64) -> (Vec<PathBuf>, Model) {
    let mut rng = Rng::new(seed);
    let mut prefix_sums: HashMap<u8, Vec<u64>> = HashMap::new();
    let mut files = Vec::new();
    for part in 0..parts {
        let mut bytes = Vec::with_capacity(per_part * 9);
        for _ in 0..per_part {
            let letter = LETTERS[rng.below(LETTERS.len() as u64) as usize];
            let votes = 1 + rng.below(1000) as u32;
            bytes.extend_from_slice(&vote_frame(letter, votes));
            let sums = prefix_sums.entry(letter).or_default();
            let last = sums.last().copied().unwrap_or(0);
            sums.push(last + u64::from(votes));
        }
        let path = dir.join(format!("votes-{part}.frames"));
        fs::write(&path, bytes).unwrap();
        files.push(path);
    }
    (files, Model { prefix_sums })
}

fn start(input: &Path, output: &Path, state: &Path, extra: &[&str]) -> Child {
    Command::new(alphabet_bin())
        .arg("--in")
        .arg(format!("file:{}", input.display()))
        .arg("--out")
        .arg(format!("file:{}", output.display()))
        .arg("--resilience-dir")
        .arg(state)
        .args(["--workers", "2"])
        .args(extra)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
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

/// Runs the kill-restart loop; returns how many runs were killed mid-way. `monotonic`: see
/// [`Model::check`].
fn crash_and_recover(name: &str, extra: &[&str], monotonic: bool) -> usize {
    let seed = env_or("WALLAROO_CRASH_SEED", 7);
    let points = env_or("WALLAROO_CRASH_POINTS", 16) as usize;
    let dir = std::env::temp_dir().join(format!("wallaroo-crash-{name}-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap();
    let (parts, model) = write_votes(&dir, 8, 25_000, seed);
    let state = dir.join("state");

    // How long a part takes without a crash, on a scratch directory: kills land within it.
    let scratch = dir.join("scratch");
    let started = Instant::now();
    let out = wait(
        start(&parts[0], &dir.join("scratch.txt"), &scratch, extra),
        Duration::from_secs(120),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let part_run = started.elapsed();

    // Each part is read by runs on the same directory until one ends by itself; runs are
    // killed at random moments until `points` kills have landed mid-run.
    let mut rng = Rng::new(seed ^ 0x5eed);
    let mut outputs = Vec::new();
    let mut killed = 0;
    let mut part = 0;
    while part < parts.len() {
        let output = dir.join(format!("run-{}.txt", outputs.len()));
        outputs.push(output.clone());
        let mut child = start(&parts[part], &output, &state, extra);
        if killed < points {
            std::thread::sleep(part_run.mul_f64(rng.below(1000) as f64 / 1000.0));
            if child.try_wait().unwrap().is_none() {
                child.kill().unwrap(); // SIGKILL
                let _ = child.wait();
                killed += 1;
                continue;
            }
        }
        let out = wait(child, Duration::from_secs(120));
        assert!(
            out.status.success(),
            "{}: {}",
            output.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        part += 1;
    }

    model.check(&outputs, &state, extra, &dir, killed, monotonic);
    fs::remove_dir_all(&dir).unwrap();
    killed
}

#[test]
fn sigkill_at_random_points_loses_and_duplicates_nothing() {
    let killed = crash_and_recover("interval", &["--sync-interval", "10"], false);
    assert!(killed >= 8, "only {killed} runs were killed mid-way");
    eprintln!("crash points tried: {killed}");
}

#[test]
fn sigkill_by_default_never_recovers_a_state_behind_its_outputs() {
    // No sync flag: outputs wait for the changes they reflect to be durable.
    let killed = crash_and_recover("default", &[], true);
    assert!(killed >= 8, "only {killed} runs were killed mid-way");
    eprintln!("crash points tried: {killed}");
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
    let (parts, model) = write_votes(&dir, 1, 500_000, seed);
    let frames = fs::read(&parts[0]).unwrap();
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

    let outputs: Vec<PathBuf> = (0..=run)
        .map(|r| dir.join(format!("run-{r}.txt")))
        .collect();
    model.check(&outputs, &state, &[], &dir, killed, false);
    assert!(killed >= 8, "only {killed} kills");
    eprintln!("crash points tried: {killed} (sender connections: {connections})");
    fs::remove_dir_all(&dir).unwrap();
}
