//! The Alphabet example as a process of its own, its log lines collected.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use super::Receiver;

/// The Alphabet application as a process of its own, its log lines collected.
pub struct App {
    pub child: Child,
    pub addr: SocketAddr,
    log: mpsc::Receiver<String>,
    seen: Vec<String>,
}

impl App {
    pub fn start(receiver: &Receiver, extra: &[&str]) -> App {
        let port = super::free_port();
        let input = format!("127.0.0.1:{port}");
        let mut child = Command::new(super::example_bin("alphabet"))
            .args(["--in", &input, "--out", &receiver.addr.to_string()])
            .args(["--workers", "2"])
            .args(extra)
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let (tx, log) = mpsc::channel();
        let stderr = BufReader::new(child.stderr.take().unwrap());
        std::thread::spawn(move || {
            for line in stderr.lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let mut app = App {
            child,
            addr: input.parse().unwrap(),
            log,
            seen: Vec::new(),
        };
        app.wait_log(&["listening on", &input]);
        app
    }

    /// Waits (up to 20 s) for a log line that has every one of `parts`.
    pub fn wait_log(&mut self, parts: &[&str]) -> String {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(line) = self
                .seen
                .iter()
                .find(|l| parts.iter().all(|p| l.contains(p)))
            {
                return line.clone();
            }
            let left = deadline.saturating_duration_since(Instant::now());
            match self.log.recv_timeout(left) {
                Ok(line) => self.seen.push(line),
                Err(_) => panic!(
                    "no log line with {parts:?}; seen:\n{}",
                    self.seen.join("\n")
                ),
            }
        }
    }

    /// Whether a log line that came so far has `part`.
    pub fn saw(&mut self, part: &str) -> bool {
        while let Ok(line) = self.log.try_recv() {
            self.seen.push(line);
        }
        self.seen.iter().any(|l| l.contains(part))
    }

    /// A number from the process's `/proc/PID/status`.
    pub fn status(&self, field: &str) -> usize {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        status
            .lines()
            .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
            .unwrap_or_else(|| panic!("no {field} in the status"))
            .trim()
            .parse()
            .unwrap()
    }

    /// The process's open file descriptors.
    pub fn fds(&self) -> usize {
        std::fs::read_dir(format!("/proc/{}/fd", self.child.id()))
            .unwrap()
            .count()
    }
}

impl Drop for App {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
