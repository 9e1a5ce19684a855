//! CPU time from `/proc`: what the system under test spent per message (robust to other
//! load on the machine, unlike throughput), and a gate that waits for the machine to be
//! quiet before a run.

use std::time::{Duration, Instant};

/// Nanoseconds of CPU this process has used, its ended threads included (10 ms ticks).
pub fn process_ns() -> u64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // The fields after the command name, which is in parentheses and may hold spaces.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map_or("", |(_, rest)| rest)
        .split_whitespace()
        .collect();
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after the name.
    let ticks: u64 = [11, 12]
        .iter()
        .filter_map(|&i| fields.get(i)?.parse::<u64>().ok())
        .sum();
    ticks * 10_000_000
}

/// Nanoseconds of CPU the calling thread has used.
pub fn thread_ns() -> u64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// Busy and total jiffies of the whole machine.
fn machine() -> (u64, u64) {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let values: Vec<u64> = stat
        .lines()
        .next()
        .unwrap_or("")
        .split_whitespace()
        .skip(1)
        .filter_map(|v| v.parse().ok())
        .collect();
    let total: u64 = values.iter().take(8).sum();
    // idle and iowait
    let idle = values.get(3).copied().unwrap_or(0) + values.get(4).copied().unwrap_or(0);
    (total - idle, total)
}

/// Waits (up to `limit`) until other programs use less than a tenth of the machine over a
/// quarter of a second; returns the busy fraction last seen.
pub fn wait_quiet(limit: Duration) -> f64 {
    let start = Instant::now();
    loop {
        let (busy0, total0) = machine();
        std::thread::sleep(Duration::from_millis(250));
        let (busy1, total1) = machine();
        let busy = (busy1 - busy0) as f64 / (total1 - total0).max(1) as f64;
        if busy < 0.1 || start.elapsed() > limit {
            return busy;
        }
    }
}
