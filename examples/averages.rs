//! Averages: lines of `SENSOR TOTAL COUNT` in (a sensor's readings summed, and how many),
//! their mean out, each numbered among its sensor's lines.
//!
//! A line whose `COUNT` is 0 makes the mean's integer division panic: a poison message, as
//! a bug or an input nobody expected makes one. What happens then is the error policy's
//! choice (README, "When a step panics"): by default the application stops, naming the
//! step, the key and the line's position, after writing the outputs of the lines before
//! it; with `--on-error skip` the line is skipped, counted and logged, its record goes to
//! `--dead-letter`, and the others go on. The step counts the line before it divides, so
//! a skipped line still counts: what a step did before it panicked stands.
//!
//! ```text
//! cargo run --example averages -- --in file:examples/data/averages.txt --out -
//! cargo run --example averages -- --in file:examples/data/averages.txt --out - --on-error skip --dead-letter -
//! ```

use wallaroo::prelude::*;

/// One line: a sensor's readings summed, and how many there were.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Readings {
    pub sensor: String,
    pub total: u64,
    pub count: u64,
}

/// A line's mean, and its number among its sensor's lines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mean {
    pub sensor: String,
    pub line: u64,
    pub mean: u64,
}

/// How many lines of one sensor were seen.
#[state]
#[derive(Debug, Default)]
pub struct Lines {
    seen: u64,
}

/// `SENSOR TOTAL COUNT`; anything else is refused (and skipped by the source, counted).
#[decoder(lines)]
pub fn decode(line: &[u8]) -> Result<Readings, String> {
    let line = std::str::from_utf8(line).map_err(|e| e.to_string())?;
    let mut fields = line.split_whitespace();
    let (Some(sensor), Some(total), Some(count), None) =
        (fields.next(), fields.next(), fields.next(), fields.next())
    else {
        return Err(format!("not `SENSOR TOTAL COUNT`: {line:?}"));
    };
    let number = |text: &str| text.parse::<u64>().map_err(|e| format!("{text:?}: {e}"));
    Ok(Readings {
        sensor: sensor.to_string(),
        total: number(total)?,
        count: number(count)?,
    })
}

/// Lines are partitioned by sensor.
#[partition]
pub fn by_sensor(readings: &Readings) -> &str {
    &readings.sensor
}

/// Counts the line, then divides: a count of 0 panics ("attempt to divide by zero").
#[state_computation(name = "mean")]
pub fn line_mean(readings: Readings, lines: &mut Lines) -> (Mean, bool) {
    lines.seen += 1;
    let mean = Mean {
        line: lines.seen,
        mean: readings.total / readings.count,
        sensor: readings.sensor,
    };
    (mean, true)
}

/// `"boiler #2 => 71\n"`.
#[encoder]
pub fn encode(mean: &Mean, out: &mut Vec<u8>) {
    out.push_str(&mean.sensor);
    out.push_str(" #");
    out.push_int(mean.line);
    out.push_str(" => ");
    out.push_int(mean.mean);
    out.push(b'\n');
}

/// One pipeline: the mean of each line, per sensor.
#[wallaroo::main]
pub fn averages(args: &Args) -> Application {
    Application::new("Averages")
        .pipeline("Averages", Source::new(args.input(0), decode))
        .to_state_partition(line_mean, "sensor lines", by_sensor)
        .to_sink(Sink::new(args.output(0), encode))
}
