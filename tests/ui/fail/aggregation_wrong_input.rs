use std::time::Duration;

use wallaroo::prelude::*;

#[derive(Clone)]
struct Reading {
    sensor: String,
    time: i64,
}

struct Other;

#[decoder(lines)]
fn decode(line: &[u8]) -> Result<Reading, DecodeError> {
    Ok(Reading {
        sensor: String::from_utf8_lossy(line).into_owned(),
        time: 0,
    })
}

fn event_time(r: &Reading) -> i64 {
    r.time
}

#[partition]
fn by_sensor(r: &Reading) -> &str {
    &r.sensor
}

/// Aggregates `Other`, not the `Reading`s the window takes.
#[aggregation]
#[derive(Clone, Default)]
struct Count {
    n: u64,
}

impl Aggregation<Other> for Count {
    type Out = u64;
    fn update(&mut self, _: &Other) {
        self.n += 1;
    }
    fn combine(&mut self, other: &Self) {
        self.n += other.n;
    }
    fn output(&self) -> u64 {
        self.n
    }
}

#[encoder]
fn encode(fired: &Fired<String, u64>) -> String {
    format!("{} {}\n", fired.key, fired.value)
}

#[wallaroo::main]
fn setup(args: &Args) -> Application {
    Application::new("Counts")
        .pipeline("Readings", Source::new(args.input(0), decode))
        .event_time(event_time, Watermarks::bounded(Duration::from_secs(2)))
        .to_window(
            Windows::tumbling(Duration::from_secs(10)),
            Count::default(),
            "counts",
            by_sensor,
        )
        .to_sink(Sink::new(args.output(0), encode))
}
