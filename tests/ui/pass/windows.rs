//! Every kind of window, on a pipeline with event time and (count windows) without it, with
//! allowed lateness, each `Late` policy and a sink of late messages.
#![deny(warnings, missing_docs)]

use std::time::Duration;

use wallaroo::prelude::*;

/// A reading of one sensor.
#[derive(Clone, Debug)]
pub struct Reading {
    sensor: String,
    time: i64,
    value: f64,
}

#[decoder(lines)]
fn decode(line: &[u8]) -> Result<Reading, DecodeError> {
    let line = std::str::from_utf8(line).map_err(|_| DecodeError::new("not UTF-8"))?;
    Ok(Reading {
        sensor: line.to_owned(),
        time: 0,
        value: 0.0,
    })
}

fn event_time(r: &Reading) -> i64 {
    r.time
}

#[partition]
fn by_sensor(r: &Reading) -> &str {
    &r.sensor
}

/// The count and sum of a window's readings.
#[aggregation]
#[derive(Clone, Debug, Default)]
pub struct Stats {
    n: u64,
    sum: f64,
}

impl Aggregation<Reading> for Stats {
    type Out = (u64, f64);
    fn update(&mut self, r: &Reading) {
        self.n += 1;
        self.sum += r.value;
    }
    fn combine(&mut self, other: &Self) {
        self.n += other.n;
        self.sum += other.sum;
    }
    fn output(&self) -> (u64, f64) {
        (self.n, self.sum)
    }
}

#[encoder]
fn encode(fired: &Fired<String, (u64, f64)>) -> String {
    let Window { start, end } = fired.window;
    format!("{} [{start},{end}) {:?} late={}\n", fired.key, fired.value, fired.late)
}

#[encoder]
fn encode_late(r: &Reading) -> String {
    format!("late {} {}\n", r.sensor, r.time)
}

fn app(args: &Args) -> Application {
    let app = Application::new("Windows");
    let timed = |app: Application, name: &str| {
        app.pipeline(name, Source::new(args.input(0), decode))
            .event_time(event_time, Watermarks::bounded(Duration::from_secs(2)))
    };
    let app = timed(app, "tumbling")
        .to_window(
            Windows::tumbling(Duration::from_secs(10)),
            Stats::default(),
            "tumbling",
            by_sensor,
        )
        .to_sink(Sink::new(args.output(0), encode));
    let app = timed(app, "sliding")
        .to_window(
            Windows::sliding(Duration::from_secs(60), Duration::from_secs(10))
                .allowed_lateness(Duration::from_secs(5))
                .late(Late::FirePerMessage),
            Stats::default(),
            "sliding",
            by_sensor,
        )
        .to_sink(Sink::new(args.output(0), encode));
    let app = app
        .pipeline("session", Source::new(args.input(0), decode))
        .event_time(
            event_time,
            Watermarks::bounded(Duration::from_secs(2)).idle_after(Duration::from_secs(1)),
        )
        .late_to_sink(Sink::new(args.output(1), encode_late))
        .to_window(
            Windows::session(Duration::from_secs(30 * 60)).late(Late::PlaceInOldest),
            Stats::default(),
            "session",
            by_sensor,
        )
        .to_sink(Sink::new(args.output(0), encode));
    // Count windows, with event time and without.
    let app = timed(app, "count with time")
        .to_window(Windows::count(100), Stats::default(), "count with time", by_sensor)
        .to_sink(Sink::new(args.output(0), encode));
    app.pipeline("count", Source::new(args.input(0), decode))
        .to_window(Windows::count(100), Stats::default(), "count", by_sensor)
        .done()
}

fn main() {
    let args = Args::new();
    let app = app(&args);
    let kinds: Vec<(String, String)> = app
        .topology()
        .pipelines
        .iter()
        .map(|p| {
            let window = p.steps[0].window.as_ref().expect("a window step");
            (window.kind.clone(), window.late.clone())
        })
        .collect();
    let expected = [
        ("tumbling", "drop"),
        ("sliding", "fire_per_message"),
        ("session", "side_output"),
        ("count", "drop"),
        ("count", "drop"),
    ];
    assert_eq!(kinds.len(), expected.len());
    for ((kind, late), (want_kind, want_late)) in kinds.iter().zip(expected) {
        assert_eq!((kind.as_str(), late.as_str()), (want_kind, want_late));
    }
}
