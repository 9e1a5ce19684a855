//! A state whose layout changes: refused without a new version, read back through upgrade
//! functions with one, over as many versions as the chain has.

mod support;

use std::fs;
use std::path::Path;

use support::TempDir;
use wallaroo::resilience::{ResilienceError, SyncPolicy};
use wallaroo::{Application, Args, RunError};

/// Input lines `sensor,value`, and what each version of the application writes per line.
mod common {
    use wallaroo::prelude::*;

    #[data]
    #[derive(Debug, Clone)]
    pub struct Reading {
        pub sensor: String,
        pub value: f64,
    }

    #[decoder(lines)]
    pub fn parse(line: &[u8]) -> Result<Reading, DecodeError> {
        let line = std::str::from_utf8(line).map_err(|_| DecodeError::new("not UTF-8"))?;
        let (sensor, value) = line.split_once(',').ok_or(DecodeError::new("no comma"))?;
        let value = value
            .parse()
            .map_err(|_| DecodeError::new("not a number"))?;
        Ok(Reading {
            sensor: sensor.to_string(),
            value,
        })
    }

    #[partition]
    pub fn by_sensor(reading: &Reading) -> &str {
        &reading.sensor
    }

    #[encoder]
    pub fn write_line(line: &String, out: &mut Vec<u8>) {
        out.extend_from_slice(line.as_bytes());
        out.push(b'\n');
    }
}

/// The first layout: the mean and the maximum, in that order.
mod v0 {
    use super::common::*;
    use wallaroo::prelude::*;

    #[state]
    #[derive(Default)]
    pub struct Stats {
        pub mean: f64,
        pub max: f64,
    }

    #[state_computation(name = "update stats")]
    pub fn update(r: Reading, s: &mut Stats) -> (String, bool) {
        s.mean = (s.mean + r.value) / 2.0;
        s.max = s.max.max(r.value);
        (format!("{} mean={} max={}", r.sensor, s.mean, s.max), true)
    }

    pub fn app(args: &Args) -> Application {
        Application::new("stats")
            .pipeline("stats", Source::new(args.input(0), parse))
            .to_state_partition(update, "sensor stats", by_sensor)
            .to_sink(Sink::new(args.output(0), write_line))
    }
}

/// The same fields swapped, and no new version: both are `f64`, so postcard would read the
/// old states back swapped.
mod swapped {
    use super::common::*;
    use wallaroo::prelude::*;

    #[state]
    #[derive(Default)]
    pub struct Stats {
        pub max: f64,
        pub mean: f64,
    }

    #[state_computation(name = "update stats")]
    pub fn update(r: Reading, s: &mut Stats) -> (String, bool) {
        s.max = s.max.max(r.value);
        (format!("{} max={}", r.sensor, s.max), true)
    }

    pub fn app(args: &Args) -> Application {
        Application::new("stats")
            .pipeline("stats", Source::new(args.input(0), parse))
            .to_state_partition(update, "sensor stats", by_sensor)
            .to_sink(Sink::new(args.output(0), write_line))
    }
}

/// Version 1 counts readings; version 0 is kept, under another name, to be upgraded.
mod v1 {
    use super::common::*;
    use wallaroo::prelude::*;

    #[state]
    #[derive(Default)]
    pub struct StatsV0 {
        pub mean: f64,
        pub max: f64,
    }

    #[state(version = 1, upgrade = from_v0)]
    #[derive(Default)]
    pub struct Stats {
        pub mean: f64,
        pub max: f64,
        pub count: u64,
    }

    /// A version-0 state had seen at least one reading.
    pub fn from_v0(old: StatsV0) -> Stats {
        Stats {
            mean: old.mean,
            max: old.max,
            count: 1,
        }
    }

    #[state_computation(name = "update stats")]
    pub fn update(r: Reading, s: &mut Stats) -> (String, bool) {
        s.mean = (s.mean + r.value) / 2.0;
        s.max = s.max.max(r.value);
        s.count += 1;
        let line = format!(
            "{} mean={} max={} count={}",
            r.sensor, s.mean, s.max, s.count
        );
        (line, true)
    }

    pub fn app(args: &Args) -> Application {
        Application::new("stats")
            .pipeline("stats", Source::new(args.input(0), parse))
            .to_state_partition(update, "sensor stats", by_sensor)
            .to_sink(Sink::new(args.output(0), write_line))
    }
}

/// Version 2 renames `max` and adds a unit: a chain of two upgrades back to version 0.
mod v2 {
    use super::common::*;
    use wallaroo::prelude::*;

    #[data]
    #[derive(Debug, Clone, Default, PartialEq)]
    pub enum Unit {
        #[default]
        Unknown,
        Celsius,
    }

    #[state]
    #[derive(Default)]
    pub struct StatsV0 {
        pub mean: f64,
        pub max: f64,
    }

    #[state(version = 1, upgrade = from_v0)]
    #[derive(Default)]
    pub struct StatsV1 {
        pub mean: f64,
        pub max: f64,
        pub count: u64,
    }

    pub fn from_v0(old: StatsV0) -> StatsV1 {
        StatsV1 {
            mean: old.mean,
            max: old.max,
            count: 1,
        }
    }

    #[state(version = 2, upgrade = from_v1)]
    #[derive(Default)]
    pub struct Stats {
        pub mean: f64,
        pub highest: f64,
        pub count: u64,
        pub unit: Unit,
    }

    pub fn from_v1(old: StatsV1) -> Stats {
        Stats {
            mean: old.mean,
            highest: old.max,
            count: old.count,
            unit: Unit::Celsius,
        }
    }

    #[state_computation(name = "update stats")]
    pub fn update(r: Reading, s: &mut Stats) -> (String, bool) {
        s.mean = (s.mean + r.value) / 2.0;
        s.highest = s.highest.max(r.value);
        s.count += 1;
        let line = format!(
            "{} mean={} highest={} count={} unit={:?}",
            r.sensor, s.mean, s.highest, s.count, s.unit
        );
        (line, true)
    }

    pub fn app(args: &Args) -> Application {
        Application::new("stats")
            .pipeline("stats", Source::new(args.input(0), parse))
            .to_state_partition(update, "sensor stats", by_sensor)
            .to_sink(Sink::new(args.output(0), write_line))
    }
}

/// Runs `app` over `lines` (a new input file each time: a file read again is replayed,
/// and its lines count once) with the resilience directory `state`; returns the output,
/// its lines sorted (the two workers write theirs in any order).
fn run(
    tmp: &Path,
    name: &str,
    lines: &str,
    state: &Path,
    app: fn(&Args) -> Application,
) -> Result<String, RunError> {
    let input = tmp.join(format!("{name}.in"));
    let output = tmp.join(format!("{name}.out"));
    fs::write(&input, lines).unwrap();
    let args = Args::new()
        .with_input(format!("file:{}", input.display()))
        .with_output(format!("file:{}", output.display()))
        .with_workers(2)
        .with_resilience(state, SyncPolicy::BeforeOutput);
    app(&args).run(&args, |_| {})?;
    let mut lines: Vec<String> = fs::read_to_string(output)
        .unwrap()
        .lines()
        .map(|line| format!("{line}\n"))
        .collect();
    lines.sort();
    Ok(lines.concat())
}

/// Every file under `dir`, with its bytes.
fn files(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(files(&path));
        } else if path.file_name().unwrap() != "LOCK" {
            out.push((path.display().to_string(), fs::read(&path).unwrap()));
        }
    }
    out.sort();
    out
}

#[test]
fn swapped_fields_without_a_new_version_are_refused_and_the_directory_is_left_as_it_was() {
    let tmp = TempDir::new("swapped");
    let state = tmp.0.join("state");
    let out = run(&tmp.0, "first", "a,10\nb,4\n", &state, v0::app).unwrap();
    assert_eq!(out, "a mean=5 max=10\nb mean=2 max=4\n");
    let before = files(&state);

    let err = run(&tmp.0, "swapped", "a,1\n", &state, swapped::app).expect_err("refused");
    let message = err.to_string();
    assert!(
        matches!(
            err,
            RunError::Resilience(ResilienceError::Incompatible { .. })
        ),
        "{message}"
    );
    assert!(
        message.contains(
            "states of version 0 were saved with the layout `{ mean: f64, max: f64 }`, \
             but this build's version 0 (`Stats`) has the layout `{ max: f64, mean: f64 }`"
        ),
        "{message}"
    );
    assert!(
        message.contains("#[state(version = 1, upgrade = from_v0)]"),
        "{message}"
    );
    assert_eq!(files(&state), before, "a refused start changes nothing");

    // The build that wrote them reads them as they were.
    let out = run(&tmp.0, "again", "a,20\n", &state, v0::app).unwrap();
    assert_eq!(out, "a mean=12.5 max=20\n");
}

#[test]
fn an_upgrade_function_reads_the_previous_version_and_the_upgrade_is_kept() {
    let tmp = TempDir::new("upgrade");
    let state = tmp.0.join("state");
    run(&tmp.0, "v0", "a,10\nb,4\n", &state, v0::app).unwrap();

    let out = run(&tmp.0, "v1", "a,20\n", &state, v1::app).unwrap();
    assert_eq!(out, "a mean=12.5 max=20 count=2\n");
    // Recovery wrote the upgraded states as version 1: read again, they are not upgraded twice.
    let out = run(&tmp.0, "v1 again", "a,0\nb,4\n", &state, v1::app).unwrap();
    assert_eq!(out, "a mean=6.25 max=20 count=3\nb mean=3 max=4 count=2\n");

    // Version 0 cannot read what version 1 wrote, and says which versions it knows.
    let err = run(&tmp.0, "back", "a,1\n", &state, v0::app).expect_err("refused");
    assert!(
        err.to_string()
            .contains("states were saved by version 1, and this build reads version 0 (`Stats`)"),
        "{err}"
    );
}

#[test]
fn upgrades_chain_over_versions() {
    let tmp = TempDir::new("chain");
    // From version 0 straight to version 2, and from version 1 to version 2.
    let from_v0 = tmp.0.join("from v0");
    run(&tmp.0, "v0", "a,10\n", &from_v0, v0::app).unwrap();
    let out = run(&tmp.0, "v2 from v0", "a,30\n", &from_v0, v2::app).unwrap();
    assert_eq!(out, "a mean=17.5 highest=30 count=2 unit=Celsius\n");

    let from_v1 = tmp.0.join("from v1");
    run(&tmp.0, "v1", "a,10\na,30\n", &from_v1, v1::app).unwrap();
    let out = run(&tmp.0, "v2 from v1", "a,0\n", &from_v1, v2::app).unwrap();
    assert_eq!(out, "a mean=8.75 highest=30 count=3 unit=Celsius\n");

    // Version 1 knows versions 1 and 0, not 2.
    let err = run(&tmp.0, "v1 after v2", "a,1\n", &from_v1, v1::app).expect_err("refused");
    assert!(
        err.to_string().contains(
            "states were saved by version 2, and this build reads versions 1 (`Stats`), 0 (`StatsV0`)"
        ),
        "{err}"
    );
}
