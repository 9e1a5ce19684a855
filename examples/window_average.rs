//! Window average: per sensor, the count, mean and largest value of its readings over
//! tumbling windows of event time.
//!
//! Input: text lines `SENSOR,EVENT_TIME_MS,VALUE` (`boiler-1,10250,71.5`), in any order
//! within 2 seconds of event time. Without `--in`, an in-process [`Generator`] makes a demo
//! stream instead ([`demo_reading`]). Per sensor, windows of 10 000 ms aligned to 0; the
//! watermark is the largest event time read so far minus 2 000 ms, and moves reading by
//! reading in the input's order. A window `[start, start + 10000)` fires once the watermark
//! reaches its end, and at the end of the input every open window fires. A reading whose
//! window the watermark has passed when it arrives is late: dropped and counted
//! (`wallaroo_window_late_total` in `/metrics`), not applied.
//!
//! Output, one line per fired window, per sensor in order of start:
//! `boiler-1 [10000,20000) count=3 mean=71.833 max=72.500`.
//!
//! With `--pre-aggregate`, each source thread combines the readings of a sensor and window
//! before they cross to the worker that owns the sensor (`TimeWindows::pre_aggregate`): the
//! same windows, with far fewer entries crossing between threads when sensors are few.
//!
//! ```text
//! cargo run --example window_average -- --out -
//! cargo run --example window_average -- --in file:examples/data/sensor_readings.csv --out -
//! cargo run --release --example window_average -- --in 127.0.0.1:7010 --out 127.0.0.1:7002
//! ```

use std::time::Duration;

use wallaroo::clap;
use wallaroo::prelude::*;

/// The windows' size.
pub const WINDOW: Duration = Duration::from_millis(10_000);

/// How far behind the latest event time a reading may come.
pub const OUT_OF_ORDERNESS: Duration = Duration::from_millis(2_000);

/// The application's own flags.
#[derive(clap::Args, Debug, Clone, Default, PartialEq)]
pub struct Flags {
    /// Combine each sensor's readings per window on the source's thread, before they cross
    /// to the worker that owns the sensor
    #[arg(long)]
    pub pre_aggregate: bool,
}

/// One reading of one sensor.
#[derive(Debug, Clone, PartialEq)]
pub struct Reading {
    pub sensor: String,
    /// Event time, in milliseconds.
    pub time: i64,
    pub value: f64,
}

/// `SENSOR,EVENT_TIME_MS,VALUE`.
#[decoder(lines)]
pub fn decode(line: &[u8]) -> Result<Reading, DecodeError> {
    let bad = || DecodeError::new("expected SENSOR,EVENT_TIME_MS,VALUE");
    let line = std::str::from_utf8(line).map_err(|_| bad())?.trim();
    let mut fields = line.splitn(3, ',');
    let (Some(sensor), Some(time), Some(value)) = (fields.next(), fields.next(), fields.next())
    else {
        return Err(bad());
    };
    let time: i64 = time.trim().parse().map_err(|_| bad())?;
    let value: f64 = value.trim().parse().map_err(|_| bad())?;
    if sensor.is_empty() || !value.is_finite() {
        return Err(bad());
    }
    Ok(Reading {
        sensor: sensor.to_owned(),
        time,
        value,
    })
}

/// A reading's event time.
pub fn event_time(reading: &Reading) -> i64 {
    reading.time
}

/// Readings are partitioned by sensor.
#[partition]
pub fn by_sensor(reading: &Reading) -> &str {
    &reading.sensor
}

/// The count, sum and largest value of a window's readings.
#[aggregation]
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Stats {
    count: u64,
    sum: f64,
    max: f64,
}

/// What a fired window says: count, mean, largest value.
#[derive(Debug, Clone, PartialEq)]
pub struct Summary {
    pub count: u64,
    pub mean: f64,
    pub max: f64,
}

impl Aggregation<Reading> for Stats {
    type Out = Summary;

    fn update(&mut self, reading: &Reading) {
        self.max = if self.count == 0 {
            reading.value
        } else {
            self.max.max(reading.value)
        };
        self.count += 1;
        self.sum += reading.value;
    }

    fn combine(&mut self, other: &Self) {
        if other.count > 0 {
            self.max = if self.count == 0 {
                other.max
            } else {
                self.max.max(other.max)
            };
        }
        self.count += other.count;
        self.sum += other.sum;
    }

    fn output(&self) -> Summary {
        Summary {
            count: self.count,
            mean: self.sum / self.count as f64,
            max: self.max,
        }
    }
}

/// `"boiler-1 [10000,20000) count=3 mean=71.833 max=72.500\n"`.
#[encoder]
pub fn encode(fired: &Fired<String, Summary>, out: &mut Vec<u8>) {
    use std::io::Write;
    let Fired {
        key, window, value, ..
    } = fired;
    // Writing to a Vec cannot fail.
    let _ = writeln!(
        out,
        "{key} [{},{}) count={} mean={:.3} max={:.3}",
        window.start, window.end, value.count, value.mean, value.max
    );
}

/// Reading `i` of the demo stream, `None` after 60: two sensors, a reading every 500 ms of
/// event time each, arriving up to 1.5 s out of order, and one reading 5 s late.
pub fn demo_reading(i: u64) -> Option<Reading> {
    if i >= 60 {
        return None;
    }
    let (sensor, base) = if i.is_multiple_of(2) {
        ("boiler", 70.0)
    } else {
        ("chiller", 6.0)
    };
    let step = (i / 2) as i64;
    // Every third reading was sent late by up to 1.5 s; reading 50 by 5 s (too late).
    let delay = if i == 50 { 5_000 } else { (step % 3) * 750 };
    Some(Reading {
        sensor: sensor.to_owned(),
        time: step * 500 + 1_000 - delay,
        value: base + (step % 7) as f64 * 0.5,
    })
}

/// Per sensor, the count, mean and largest value of its readings in tumbling windows of
/// 10 s of event time.
///
/// Reads lines `SENSOR,EVENT_TIME_MS,VALUE` from --in, or a demo stream without it; writes
/// a line per fired window to --out.
#[wallaroo::main]
pub fn window_average(args: &Args, flags: &Flags) -> Application {
    let app = Application::new("Window Average");
    let readings = match args.inputs().first() {
        Some(input) => app.pipeline("Readings", Source::new(input.clone(), decode)),
        None => app.pipeline("Readings", Generator::new(demo_reading)),
    };
    let windows = Windows::tumbling(WINDOW);
    let windows = if flags.pre_aggregate {
        windows.pre_aggregate()
    } else {
        windows
    };
    readings
        .event_time(event_time, Watermarks::bounded(OUT_OF_ORDERNESS))
        .to_window(windows, Stats::default(), "sensor windows", by_sensor)
        .to_sink(Sink::new(args.output(0), encode))
}
