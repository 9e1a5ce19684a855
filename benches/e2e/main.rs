//! End to end over loopback TCP: the Alphabet application, the same job hand-written on one
//! thread, and the same job in timely dataflow, fed and drained the same way, side by side;
//! then how throughput grows with keys, workers and connections; then memory under overload.
//!
//! ```sh
//! cargo bench --bench e2e                                  # everything, about 6 minutes
//! cargo bench --bench e2e -- --section compare             # or scaling, memory
//! cargo bench --bench e2e -- --messages 20000000 --rate 1000000 --seconds 5 --repeat 3
//! cargo bench --bench e2e -- --section compare --rate 0      # saturation only
//! cargo bench --bench e2e -- --systems hand,wallaroo-2,wallaroo-writeln-2,timely-2,timely-1
//! cargo bench --bench e2e -- --keys alphabet,27,10000,1000000 --connections 1,8
//! cargo bench --bench e2e -- --section scaling --plot docs/scaling.svg
//! cargo bench --bench e2e -- --overload-seconds 30         # the memory section's length
//! cargo bench --bench e2e -- --quick                       # a smoke run of every section
//! ```
//!
//! Throughput is output lines per second from the first frame written to the last line
//! read. Latency is from the write of a frame to the read of its output line (see
//! `harness.rs`), in microseconds.

#[allow(dead_code)]
#[path = "../../examples/alphabet.rs"]
mod alphabet;
mod apps;
mod cpu;
mod handwritten;
mod harness;
mod memory;
mod plot;
mod timely_job;

use std::net::SocketAddr;

use apps::Encoding;
use harness::{Load, Outcome, Started, Workload};

struct Options {
    messages: u64,
    rate: f64,
    seconds: f64,
    repeat: usize,
    sections: Vec<String>,
    overload_seconds: u64,
    /// The systems of the comparison, by short name.
    systems: Vec<System>,
    /// The key counts of the scaling table (u32 keys), and whether it has the Alphabet row.
    keys: Vec<u32>,
    alphabet_row: bool,
    /// The sender connection counts of the scaling table.
    connections: Vec<usize>,
    /// Where the scaling section draws its curve (SVG); a relative path is taken from the
    /// repository's root, as the examples above write it.
    plot: std::path::PathBuf,
}

fn options() -> Options {
    let mut o = Options {
        messages: 20_000_000,
        rate: 1_000_000.0,
        seconds: 5.0,
        repeat: 3,
        sections: vec!["compare".into(), "scaling".into(), "memory".into()],
        overload_seconds: 8,
        systems: vec![
            System::HandWritten,
            System::Wallaroo(2, Encoding::PushText),
            System::Wallaroo(2, Encoding::Writeln),
            System::Wallaroo(1, Encoding::PushText),
            System::Timely(2),
            System::Timely(1),
        ],
        keys: vec![27, 10_000, 1_000_000],
        alphabet_row: true,
        connections: vec![1, 8],
        plot: repository_root().join("target/e2e-scaling.svg"),
    };
    let args: Vec<String> = std::env::args().collect();
    let mut i = 1;
    while i < args.len() {
        let value = || args.get(i + 1).map(String::as_str).unwrap_or("");
        match args[i].as_str() {
            "--serve-alphabet" => {
                memory::serve(value());
                std::process::exit(0);
            }
            "--messages" => o.messages = value().parse().expect("--messages N"),
            "--rate" => o.rate = value().parse().expect("--rate MSG_PER_S"),
            "--seconds" => o.seconds = value().parse().expect("--seconds S"),
            "--repeat" => o.repeat = value().parse().expect("--repeat N"),
            "--keys" => {
                let cases: Vec<&str> = value().split(',').collect();
                o.alphabet_row = cases.contains(&"alphabet");
                o.keys = cases
                    .iter()
                    .filter(|&&c| c != "alphabet")
                    .map(|c| c.parse().expect("--keys alphabet,27,10000,1000000"))
                    .collect();
            }
            "--connections" => {
                o.connections = value()
                    .split(',')
                    .map(|c| c.parse().expect("--connections 1,8"))
                    .collect()
            }
            "--overload-seconds" => {
                o.overload_seconds = value().parse().expect("--overload-seconds S")
            }
            "--plot" => o.plot = repository_root().join(value()),
            "--section" => o.sections = value().split(',').map(str::to_string).collect(),
            "--systems" => {
                o.systems = value()
                    .split(',')
                    .map(|name| {
                        System::parse(name).expect(
                        "--systems hand,wallaroo-2,wallaroo-writeln-2,wallaroo-1,timely-2,timely-1",
                    )
                    })
                    .collect()
            }
            "--quick" => {
                o.messages = 4_000_000;
                o.seconds = 1.0;
                o.repeat = 1;
                o.overload_seconds = 3;
                i += 1;
                continue;
            }
            // cargo bench passes --bench; ignore what is not ours.
            _ => {
                i += 1;
                continue;
            }
        }
        i += 2;
    }
    o
}

/// The repository's root: `cargo bench` runs this benchmark in its own package's directory,
/// `benches/`.
fn repository_root() -> &'static std::path::Path {
    let package = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    package.parent().unwrap_or(package)
}

/// A system under test.
#[derive(Clone, Copy)]
enum System {
    HandWritten,
    /// Workers, and how the encoder writes its lines.
    Wallaroo(usize, Encoding),
    Timely(usize),
}

impl System {
    /// `hand`, `wallaroo-N` (the example's `PushText` encoder), `wallaroo-writeln-N` (a
    /// `writeln!` encoder, as the hand-written and timely programs format), `timely-N`.
    fn parse(name: &str) -> Option<System> {
        let (family, workers) = match name.rsplit_once('-') {
            None if name == "hand" => return Some(System::HandWritten),
            None => return None,
            Some((family, workers)) => (family, workers.parse().ok()?),
        };
        match family {
            "wallaroo" => Some(System::Wallaroo(workers, Encoding::PushText)),
            "wallaroo-writeln" => Some(System::Wallaroo(workers, Encoding::Writeln)),
            "timely" => Some(System::Timely(workers)),
            _ => None,
        }
    }

    fn name(self) -> String {
        match self {
            System::HandWritten => "hand-written, 1 thread".into(),
            System::Wallaroo(w, encoding) => format!(
                "wallaroo, {w} worker{}, {}",
                plural(w),
                match encoding {
                    Encoding::PushText => "PushText",
                    Encoding::Writeln => "writeln!",
                }
            ),
            System::Timely(w) => format!("timely, {w} worker{}", plural(w)),
        }
    }

    fn start(self, workload: Workload, output: SocketAddr) -> Started {
        match self {
            System::HandWritten => handwritten::start(workload, output),
            System::Wallaroo(w, encoding) => apps::start(workload, w, encoding, output),
            System::Timely(w) => timely_job::start(workload, w, output),
        }
    }

    /// Whether it takes more than one input connection.
    fn many_connections(self) -> bool {
        matches!(self, System::Wallaroo(..))
    }
}

fn plural(n: usize) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

/// Runs `load` on every system `repeat` times, the systems in turn so that a busy spell of
/// the machine does not fall on one system alone; every run, per system.
fn all_runs(systems: &[System], load: &Load, repeat: usize) -> Vec<Vec<Outcome>> {
    let mut runs: Vec<Vec<Outcome>> = systems.iter().map(|_| Vec::new()).collect();
    for _ in 0..repeat.max(1) {
        for (system, runs) in systems.iter().zip(&mut runs) {
            let outcome = harness::run(load, |out| system.start(load.workload, out));
            // Each run on standard error, so that an outlier is seen; the tables go to
            // standard output.
            eprintln!(
                "  {}: {} M msg/s, {:.0} CPU ns/msg",
                system.name(),
                mega(outcome.rate),
                outcome.cpu_per_message
            );
            runs.push(outcome);
        }
    }
    runs
}

/// Each system's run of median throughput, out of `runs`.
fn medians(runs: &[Vec<Outcome>]) -> Vec<&Outcome> {
    runs.iter()
        .map(|runs| {
            let mut sorted: Vec<&Outcome> = runs.iter().collect();
            sorted.sort_by(|a, b| a.rate.total_cmp(&b.rate));
            sorted[sorted.len() / 2]
        })
        .collect()
}

/// [`all_runs`], and each system's run of median throughput.
fn median_runs(systems: &[System], load: &Load, repeat: usize) -> Vec<Outcome> {
    let runs = all_runs(systems, load, repeat);
    medians(&runs).into_iter().cloned().collect()
}

/// Wallaroo against timely with as many workers, run by run: the runs of one round ran one
/// right after the other, so their ratio is less exposed to the machine's slow drifts than
/// the ratio of the medians.
fn pairs(systems: &[System], runs: &[Vec<Outcome>]) {
    for (i, a) in systems.iter().enumerate() {
        for (j, b) in systems.iter().enumerate() {
            let (System::Wallaroo(wa, _), System::Timely(wb)) = (*a, *b) else {
                continue;
            };
            if wa != wb || runs[i].len() < 2 {
                continue;
            }
            let mut ratios: Vec<f64> = runs[i]
                .iter()
                .zip(&runs[j])
                .map(|(x, y)| x.rate / y.rate)
                .collect();
            ratios.sort_by(f64::total_cmp);
            let ahead = ratios.iter().filter(|&&r| r > 1.0).count();
            println!(
                "\n{} ÷ {}, round by round: median {:.2}, range {:.2}-{:.2}, wallaroo ahead in {} of {}",
                a.name(),
                b.name(),
                ratios[ratios.len() / 2],
                ratios[0],
                ratios[ratios.len() - 1],
                ahead,
                ratios.len()
            );
        }
    }
}

fn micros(ns: u64) -> String {
    let us = ns as f64 / 1000.0;
    if us < 10.0 {
        format!("{us:.1}")
    } else {
        format!("{us:.0}")
    }
}

fn percentiles(outcome: &Outcome) -> String {
    match &outcome.latency {
        Some(h) => format!(
            "{} | {} | {} | {}",
            micros(h.value_at_quantile(0.5)),
            micros(h.value_at_quantile(0.99)),
            micros(h.value_at_quantile(0.999)),
            micros(h.max())
        ),
        None => "- | - | - | -".into(),
    }
}

fn mega(rate: f64) -> String {
    format!("{:.2}", rate / 1e6)
}

fn compare(o: &Options) {
    let systems = &o.systems;
    let saturation = Load {
        workload: Workload::Alphabet,
        keys: 27,
        messages: o.messages,
        connections: 1,
        rate: None,
    };
    println!(
        "\n### Alphabet at saturation: 27 keys, 1 connection, {} messages, median of {}\n",
        saturation.messages, o.repeat
    );
    println!(
        "| system | M msg/s | vs {} | CPU ns/msg | p50 µs | p99 µs | p99.9 µs | max µs |",
        systems[0].name()
    );
    println!("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
    let runs = all_runs(systems, &saturation, o.repeat);
    let outcomes = medians(&runs);
    for (system, outcome) in systems.iter().zip(&outcomes) {
        println!(
            "| {} | {} | {:.2} | {:.0} | {} |{}",
            system.name(),
            mega(outcome.rate),
            outcome.rate / outcomes[0].rate,
            outcome.cpu_per_message,
            percentiles(outcome),
            notes(outcome)
        );
    }
    pairs(systems, &runs);

    if o.rate <= 0.0 {
        // `--rate 0`: saturation only.
        return;
    }
    let paced = Load {
        messages: (o.rate * o.seconds) as u64,
        rate: Some(o.rate),
        ..saturation
    };
    println!(
        "\n### Alphabet at a fixed offered rate: {} M msg/s for {} s ({} messages), 1 connection\n",
        o.rate / 1e6,
        o.seconds,
        paced.messages
    );
    println!("| system | offered M msg/s | delivered M msg/s | CPU ns/msg | p50 µs | p99 µs | p99.9 µs | max µs |");
    println!("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
    for &system in systems {
        let outcome = harness::run(&paced, |out| system.start(paced.workload, out));
        println!(
            "| {} | {} | {} | {:.0} | {} |{}",
            system.name(),
            mega(outcome.offered),
            mega(outcome.rate),
            outcome.cpu_per_message,
            percentiles(&outcome),
            notes(&outcome)
        );
    }
}

/// What to say after a row: lines that matched no message (a bug), or a machine that was
/// busy with other programs when the run started.
fn notes(outcome: &Outcome) -> String {
    let mut notes = String::new();
    if outcome.unmatched > 0 {
        notes += &format!(" {} lines answered no message sent!", outcome.unmatched);
    }
    if outcome.busy_before >= 0.1 {
        notes += &format!(
            " (other programs used {:.0}% of the machine)",
            outcome.busy_before * 100.0
        );
    }
    notes
}

fn scaling(o: &Options) {
    let mut cases = Vec::new();
    if o.alphabet_row {
        cases.push((Workload::Alphabet, 27u32));
    }
    cases.extend(o.keys.iter().map(|&k| (Workload::Wide, k)));
    let mut columns = o.systems.clone();
    columns.sort_by_key(|s| match *s {
        System::Wallaroo(w, Encoding::PushText) => w,
        System::Wallaroo(w, Encoding::Writeln) => 50 + w,
        System::Timely(w) => 100 + w,
        System::HandWritten => 1000,
    });
    println!(
        "\n### Throughput by keys, workers and connections: M msg/s at saturation, {} messages, median of {}\n",
        o.messages, o.repeat
    );
    print!("| payload | keys | connections |");
    for &system in &columns {
        print!(" {} |", system.name());
    }
    println!("\n| --- | ---: | ---: |{}", " ---: |".repeat(columns.len()));
    // The u32-key rows, per system and connection count, for the plot.
    let mut curves: Vec<plot::Series> = Vec::new();
    for &(workload, keys) in &cases {
        for &connections in &o.connections {
            let load = Load {
                workload,
                keys,
                messages: o.messages,
                connections,
                rate: None,
            };
            let payload = match workload {
                Workload::Alphabet => "Alphabet (u8 key)",
                Workload::Wide => "u32 key",
            };
            print!("| {payload} | {keys} | {connections} |");
            let runnable: Vec<System> = columns
                .iter()
                .copied()
                .filter(|s| connections == 1 || s.many_connections())
                .collect();
            let mut outcomes = median_runs(&runnable, &load, o.repeat).into_iter();
            for &system in &columns {
                if connections > 1 && !system.many_connections() {
                    print!(" - |");
                } else if let Some(outcome) = outcomes.next() {
                    print!(" {} |", mega(outcome.rate));
                    if workload == Workload::Wide {
                        curve(&mut curves, system, connections)
                            .points
                            .push((f64::from(keys), outcome.rate / 1e6));
                    }
                }
            }
            println!();
        }
    }
    if curves.iter().any(|c| c.points.len() > 1) {
        let title = format!(
            "u32 keys: M msg/s at saturation, 2 cores, median of {}",
            o.repeat
        );
        match plot::scaling(&o.plot, &title, &curves) {
            Ok(()) => println!("\nThe curve: {}", o.plot.display()),
            Err(e) => eprintln!("{e}"),
        }
    }
}

/// The plot line of `system` with `connections` senders, added on first use.
fn curve(curves: &mut Vec<plot::Series>, system: System, connections: usize) -> &mut plot::Series {
    let mut label = system.name();
    if connections > 1 {
        label += &format!(", {connections} connections");
    }
    let index = match curves.iter().position(|c| c.label == label) {
        Some(index) => index,
        None => {
            curves.push(plot::Series {
                family: match system {
                    System::Wallaroo(workers, encoding) => plot::Family::Wallaroo {
                        workers,
                        writeln: encoding == Encoding::Writeln,
                    },
                    System::Timely(workers) => plot::Family::Timely { workers },
                    System::HandWritten => plot::Family::HandWritten,
                },
                many_connections: connections > 1,
                label,
                points: Vec::new(),
            });
            curves.len() - 1
        }
    };
    &mut curves[index]
}

fn overload(o: &Options) {
    println!(
        "\n### Memory under overload: Alphabet (2 workers) in a child process, a saturating sender, {} s\n",
        o.overload_seconds
    );
    println!("| receiver reads | sender M msg/s (whole run / 2nd half) | receiver M lines/s (whole / 2nd half) | RSS idle MiB | RSS each second MiB | peak RSS (VmHWM) MiB |");
    println!("| --- | ---: | ---: | ---: | --- | ---: |");
    for drain in [None, Some(1_000_000u64)] {
        let r = memory::overload(o.overload_seconds, drain);
        let mib = |kib: u64| format!("{:.1}", kib as f64 / 1024.0);
        println!(
            "| {} | {:.3} / {:.3} | {:.3} / {:.3} | {} | {} | {} |",
            r.drain.map_or("as fast as it can".to_string(), |b| format!(
                "{} MB/s",
                b as f64 / 1e6
            )),
            r.sent_rate / 1e6,
            r.sent_rate_late / 1e6,
            r.received_rate / 1e6,
            r.received_rate_late / 1e6,
            mib(r.idle_kib),
            r.per_second_kib
                .iter()
                .map(|&k| mib(k))
                .collect::<Vec<_>>()
                .join(" "),
            mib(r.peak_kib)
        );
    }
}

fn main() {
    let o = options();
    // `cargo bench` passes --bench; `cargo test --all-targets` does not, and gets no run of
    // several minutes.
    if !std::env::args().any(|a| a == "--bench") {
        println!("e2e: nothing run without --bench (cargo bench --bench e2e)");
        return;
    }
    println!(
        "e2e: {} cores; loopback TCP; sender and receiver in this process",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    for section in &o.sections {
        match section.as_str() {
            "compare" => compare(&o),
            "scaling" => scaling(&o),
            "memory" => overload(&o),
            other => {
                eprintln!("unknown section {other}: compare, scaling or memory");
                std::process::exit(2);
            }
        }
    }
}
