//! The cost of resilience: throughput with and without a resilience directory, the size of
//! the directory after N state updates, and how long recovery takes.
//!
//! ```sh
//! cargo bench --bench recovery                                  # 10 M updates, 10 000 keys
//! cargo bench --bench recovery -- --updates 1000000 --keys 27
//! ```
//!
//! The application counts messages per key: a generator makes `updates` messages over
//! `keys` keys, a state computation adds each to its key's total and reports a change, so
//! every message is one logged state update.

use std::path::Path;
use std::time::{Duration, Instant};

use wallaroo::prelude::*;
use wallaroo::resilience::SyncPolicy;

#[state]
#[derive(Default)]
pub struct Count {
    total: u64,
}

#[partition]
fn by_key(key: &u32) -> u32 {
    *key
}

#[state_computation(name = "count")]
fn count(_key: u32, state: &mut Count) -> (Option<u32>, bool) {
    state.total += 1;
    (None, true)
}

fn app(updates: u64, keys: u32) -> Application {
    Application::new("recovery bench")
        .pipeline(
            "updates",
            Generator::new(move |i| (i < updates).then_some((i % u64::from(keys)) as u32)),
        )
        .to_state_partition(count, "counts", by_key)
        .done()
}

fn dir_size(dir: &Path) -> u64 {
    let mut total = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let entry = entry.unwrap();
        let meta = entry.metadata().unwrap();
        total += if meta.is_dir() {
            dir_size(&entry.path())
        } else {
            meta.len()
        };
    }
    total
}

fn run(
    updates: u64,
    keys: u32,
    workers: usize,
    resilience: Option<(&Path, SyncPolicy)>,
) -> Duration {
    let mut args = Args::new().with_workers(workers);
    if let Some((dir, sync)) = resilience {
        args = args.with_resilience(dir, sync);
    }
    let start = Instant::now();
    app(updates, keys).run(&args, |_| {}).unwrap();
    start.elapsed()
}

fn main() {
    let mut updates = 10_000_000u64;
    let mut keys = 10_000u32;
    let mut workers = 2usize;
    let argv: Vec<String> = std::env::args().collect();
    for pair in argv.windows(2) {
        match pair[0].as_str() {
            "--updates" => updates = pair[1].parse().expect("--updates N"),
            "--keys" => keys = pair[1].parse().expect("--keys N"),
            "--workers" => workers = pair[1].parse().expect("--workers N"),
            _ => {}
        }
    }
    let dir = std::env::temp_dir().join(format!("wallaroo-recovery-bench-{}", std::process::id()));
    let rate = |d: Duration| updates as f64 / d.as_secs_f64() / 1e6;

    let off = run(updates, keys, workers, None);
    println!("{updates} updates over {keys} keys, {workers} workers");
    println!(
        "  resilience off:                {:>7.2} s  {:>6.2} M updates/s",
        off.as_secs_f64(),
        rate(off)
    );
    for (label, sync) in [
        (
            "resilience on, --sync-interval 20 (faster, outputs may run ahead)",
            SyncPolicy::Interval(Duration::from_millis(20)),
        ),
        (
            "resilience on, sync before output (the default)",
            SyncPolicy::BeforeOutput,
        ),
    ] {
        let _ = std::fs::remove_dir_all(&dir);
        let on = run(updates, keys, workers, Some((&dir, sync)));
        let size = dir_size(&dir);
        // Recovery: start on the directory (it loads and writes the new generation), then stop.
        let args = Args::new()
            .with_workers(workers)
            .with_resilience(&dir, sync);
        let start = Instant::now();
        let running = app(0, keys).start(&args).unwrap();
        let recovery = start.elapsed();
        running.stop().unwrap();
        println!(
            "  {label}: {:>7.2} s  {:>6.2} M updates/s  ({:.2}x of off)  directory {:.1} MiB  recovery {:.1} ms",
            on.as_secs_f64(),
            rate(on),
            on.as_secs_f64() / off.as_secs_f64(),
            size as f64 / (1024.0 * 1024.0),
            recovery.as_secs_f64() * 1e3
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}
