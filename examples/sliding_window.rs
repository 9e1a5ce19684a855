//! Sliding window: the average of each sensor's last readings, and an alert when a reading
//! jumps away from it.
//!
//! Input: text lines `SENSOR VALUE` (`boiler-1 71.5`). Without `--in`, an in-process
//! [`Generator`] makes a fixed demo stream instead: three sensors, 30 readings each, and
//! one spike. State: per sensor, a window of its last [`WINDOW`] readings (count-based, so
//! the results depend only on the input, never on the clock). Output, to two sinks:
//! - `--out` #1, every reading: `"{sensor} {average} over {n}\n"`, the window's average
//!   after the reading;
//! - `--out` #2, only the readings more than `--max-deviation` (default [`MAX_DEVIATION`])
//!   away from the average of a full window before them: `"alert: {sensor} {value} is
//!   {±deviation} from the average {avg} of the last 5\n"`.
//!
//! The pipeline sends the state computation's output to the first sink with `also_to_sink`,
//! then goes on to a filter and the second sink.
//!
//! `--max-deviation` is the application's own flag ([`Flags`]), listed by `--help` beside
//! wallaroo's. A step is a function, not a closure: the filter reads the flag's value from a
//! static that the setup function sets, once per process.
//!
//! ```text
//! cargo run --example sliding_window -- --out - --out -
//! cargo run --example sliding_window -- --out - --out - --max-deviation 2.5
//! cargo run --example sliding_window -- --in file:examples/data/readings.txt --out - --out -
//! cargo run --release --example sliding_window -- --in 127.0.0.1:7010 --out 127.0.0.1:7002,127.0.0.1:7003
//! ```

use std::collections::VecDeque;
use std::sync::OnceLock;

use wallaroo::clap;
use wallaroo::prelude::*;

/// Readings in a sensor's window.
pub const WINDOW: usize = 5;

/// A reading this far from the average of the full window before it raises an alert, unless
/// `--max-deviation` says otherwise.
pub const MAX_DEVIATION: f64 = 5.0;

/// The application's own flags.
#[derive(clap::Args, Debug, Clone, PartialEq)]
pub struct Flags {
    /// Alert on a reading further than this from the average of the full window before it
    #[arg(long, value_name = "X", default_value_t = MAX_DEVIATION)]
    pub max_deviation: f64,
}

impl Default for Flags {
    fn default() -> Self {
        Flags {
            max_deviation: MAX_DEVIATION,
        }
    }
}

/// `--max-deviation`, which the setup function sets for [`outliers`]: the first application
/// built in the process decides.
static MAX_DEVIATION_FLAG: OnceLock<f64> = OnceLock::new();

/// One reading of one sensor.
#[derive(Debug, Clone, PartialEq)]
pub struct Reading {
    pub sensor: String,
    pub value: f64,
}

/// A reading with its sensor's window around it.
#[derive(Debug, Clone, PartialEq)]
pub struct Windowed {
    pub reading: Reading,
    /// The average of the window after this reading.
    pub average: f64,
    /// How many readings that average is over (up to [`WINDOW`]).
    pub count: usize,
    /// The average of the window before this reading, if the window was full.
    pub before: Option<f64>,
}

/// The last [`WINDOW`] readings of one sensor, oldest first.
#[state]
#[derive(Debug, Default)]
pub struct Window {
    readings: VecDeque<f64>,
}

impl Window {
    fn average(&self) -> f64 {
        self.readings.iter().sum::<f64>() / self.readings.len() as f64
    }
}

/// `SENSOR VALUE`, separated by whitespace.
#[decoder(lines)]
pub fn decode(line: &[u8]) -> Result<Reading, DecodeError> {
    let bad = || DecodeError::new("expected SENSOR VALUE");
    let line = std::str::from_utf8(line).map_err(|_| bad())?;
    let (sensor, value) = line
        .trim()
        .split_once(char::is_whitespace)
        .ok_or_else(bad)?;
    let value: f64 = value.trim().parse().map_err(|_| bad())?;
    if !value.is_finite() {
        return Err(bad());
    }
    Ok(Reading {
        sensor: sensor.to_owned(),
        value,
    })
}

/// Reading `i` of the demo stream, `None` after 90: sensors `boiler-1`, `boiler-2` and
/// `chiller` in turn, 30 readings each. `boiler-1` warms up by one degree a reading, then
/// holds; `boiler-2` wobbles around 80 and spikes once; `chiller` drops once.
pub fn demo_reading(i: u64) -> Option<Reading> {
    if i >= 90 {
        return None;
    }
    let step = i / 3;
    let wobble = ((step * 3) % 4) as f64 * 0.5;
    let (sensor, value) = match i % 3 {
        0 => ("boiler-1", 60.0 + step.min(10) as f64),
        1 if step == 20 => ("boiler-2", 92.5),
        1 => ("boiler-2", 80.0 + wobble),
        _ if step == 25 => ("chiller", -2.0),
        _ => ("chiller", 6.0 + wobble / 2.0),
    };
    Some(Reading {
        sensor: sensor.to_owned(),
        value,
    })
}

/// Readings are partitioned by sensor; each sensor gets its window on its first reading.
#[partition]
pub fn by_sensor(reading: &Reading) -> &str {
    &reading.sensor
}

/// Slides the sensor's window by one reading.
#[state_computation(name = "slide window")]
pub fn slide(reading: Reading, window: &mut Window) -> (Windowed, bool) {
    let before = (window.readings.len() == WINDOW).then(|| window.average());
    if window.readings.len() == WINDOW {
        window.readings.pop_front();
    }
    window.readings.push_back(reading.value);
    let windowed = Windowed {
        reading,
        average: window.average(),
        count: window.readings.len(),
        before,
    };
    (windowed, true)
}

/// Keeps the readings far from the average before them: further than `--max-deviation`.
#[computation(name = "keep outliers")]
pub fn outliers(windowed: Windowed) -> Option<Windowed> {
    let before = windowed.before?;
    let max = MAX_DEVIATION_FLAG.get().copied().unwrap_or(MAX_DEVIATION);
    ((windowed.reading.value - before).abs() > max).then_some(windowed)
}

/// `"boiler-1 70.00 over 5\n"`.
#[encoder]
pub fn encode_average(windowed: &Windowed, out: &mut Vec<u8>) {
    use std::io::Write;
    // Writing to a Vec cannot fail.
    let _ = writeln!(
        out,
        "{} {:.2} over {}",
        windowed.reading.sensor, windowed.average, windowed.count
    );
}

/// `"alert: boiler-2 92.50 is +11.80 from the average 80.70 of the last 5\n"`.
#[encoder]
pub fn encode_alert(windowed: &Windowed, out: &mut Vec<u8>) {
    use std::io::Write;
    let before = windowed.before.unwrap_or(f64::NAN);
    let _ = writeln!(
        out,
        "alert: {} {:.2} is {:+.2} from the average {before:.2} of the last {WINDOW}",
        windowed.reading.sensor,
        windowed.reading.value,
        windowed.reading.value - before
    );
}

/// Each sensor's average over its last 5 readings, and an alert for a reading far from the
/// average before it.
///
/// Reads lines `SENSOR VALUE` from --in, or a demo stream without it; writes every average to
/// the first --out and the alerts to the second.
#[wallaroo::main]
pub fn sliding_window(args: &Args, flags: &Flags) -> Application {
    MAX_DEVIATION_FLAG.get_or_init(|| flags.max_deviation);
    let app = Application::new("Sliding Window");
    // Both sources produce `Pipeline<Reading>`, so the rest of the pipeline is the same.
    let readings = match args.inputs().first() {
        Some(input) => app.pipeline("Readings", Source::new(input.clone(), decode)),
        None => app.pipeline("Readings", Generator::new(demo_reading)),
    };
    readings
        .to_state_partition(slide, "sensor windows", by_sensor)
        .also_to_sink(Sink::new(args.output(0), encode_average))
        .to(outliers)
        .to_sink(Sink::new(args.output(1), encode_alert))
}
