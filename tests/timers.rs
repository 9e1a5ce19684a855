//! Timers of a process step: of event time (due when the watermark reaches them, and at the
//! end of the input), of the wall clock (due with no message coming), and kept across a
//! restart with a resilience directory.

mod support;

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use support::{texts, Collect, TempDir};
use wallaroo::prelude::*;
use wallaroo::resilience::SyncPolicy;
use wallaroo::time::{Process, Timer, TimerKind, Timers};

/// A click of a user at an event time.
#[derive(Debug, Clone)]
pub struct Click {
    pub user: String,
    pub time: i64,
}

/// `USER,TIME`.
#[decoder(lines)]
fn decode(line: &[u8]) -> Result<Click, DecodeError> {
    let line = std::str::from_utf8(line).map_err(|_| DecodeError::new("not UTF-8"))?;
    let (user, time) = line
        .trim()
        .split_once(',')
        .ok_or_else(|| DecodeError::new("USER,TIME"))?;
    let time = time.parse().map_err(|_| DecodeError::new("a time"))?;
    Ok(Click {
        user: user.to_string(),
        time,
    })
}

fn time(click: &Click) -> i64 {
    click.time
}

#[partition]
fn by_user(click: &Click) -> &str {
    &click.user
}

/// A user's clicks since the visit began.
#[state]
#[derive(Debug, Default)]
pub struct Visit {
    clicks: u64,
    first: i64,
    last: i64,
}

/// Closes a visit [`GAP`] of event time after its last click: `alice 3 clicks [0,2000]`.
pub struct Visits;

const GAP: i64 = 10_000;

impl Process<Click> for Visits {
    type State = Visit;
    type Key = String;
    type Out = String;

    fn on_message(
        &self,
        click: Click,
        visit: &mut Visit,
        timers: &mut Timers<'_, String>,
        _: &mut impl Emit<String>,
    ) -> bool {
        if visit.clicks == 0 {
            visit.first = click.time;
        }
        visit.clicks += 1;
        visit.last = visit.last.max(click.time);
        timers.at_event_time(visit.last + GAP);
        true
    }

    fn on_timer(
        &self,
        timer: Timer,
        visit: &mut Visit,
        timers: &mut Timers<'_, String>,
        out: &mut impl Emit<String>,
    ) -> bool {
        assert_eq!(timer.kind, TimerKind::EventTime);
        if visit.clicks == 0 || timer.time < visit.last + GAP {
            // A later click moved the visit's end: its own timer closes it.
            return false;
        }
        out.emit(format!(
            "{} {} clicks [{},{}] closed at watermark {}",
            timers.key(),
            visit.clicks,
            visit.first,
            visit.last,
            timers.watermark()
        ));
        *visit = Visit::default();
        true
    }
}

#[encoder]
fn encode(line: &String, out: &mut Vec<u8>) {
    out.extend_from_slice(line.as_bytes());
}

fn clicks(list: &[(&str, i64)]) -> Vec<Click> {
    list.iter()
        .map(|(user, time)| Click {
            user: user.to_string(),
            time: *time,
        })
        .collect()
}

#[test]
fn event_time_timers_fire_when_the_watermark_reaches_them_and_at_the_end() {
    let input = clicks(&[
        ("alice", 0),
        ("alice", 2_000),
        ("bob", 5_000),
        ("alice", 11_999), // alice's visit now ends at 21 999
        ("bob", 15_000),
        ("carol", 22_000),
        ("bob", 23_000),
    ]);
    let got = Arc::default();
    Application::new("visits")
        .pipeline(
            "clicks",
            Generator::new(move |i| input.get(i as usize).cloned()),
        )
        .event_time(time, Watermarks::bounded(Duration::ZERO))
        .to_process(Visits, "visits", by_user)
        .to_sink(Sink::to_connector(Collect(Arc::clone(&got)), encode))
        .run(&Args::new().with_workers(2), |_| {})
        .unwrap();
    let mut got = texts(&got);
    got.sort();
    assert_eq!(
        got,
        [
            // alice's timers at 10 000 and 12 000 found a later end; 21 999 closed it.
            "alice 3 clicks [0,11999] closed at watermark 22000",
            // The watermark reached bob's timer with the message at 15 000, before it: the
            // message began a new visit, which the end of the input closed.
            "bob 1 clicks [5000,5000] closed at watermark 15000",
            "bob 2 clicks [15000,23000] closed at watermark 9223372036854775807",
            "carol 1 clicks [22000,22000] closed at watermark 9223372036854775807",
        ]
    );
}

/// A step that asks, for each message, to be called 300 ms of wall-clock time later.
pub struct Later;

impl Process<Click> for Later {
    type State = Visit;
    type Key = String;
    type Out = String;

    fn on_message(
        &self,
        click: Click,
        visit: &mut Visit,
        timers: &mut Timers<'_, String>,
        _: &mut impl Emit<String>,
    ) -> bool {
        visit.clicks += 1;
        visit.last = click.time;
        timers.after(Duration::from_millis(300));
        true
    }

    fn on_timer(
        &self,
        timer: Timer,
        visit: &mut Visit,
        timers: &mut Timers<'_, String>,
        out: &mut impl Emit<String>,
    ) -> bool {
        assert_eq!(timer.kind, TimerKind::ProcessingTime);
        out.emit(format!("{} {} clicks", timers.key(), visit.clicks));
        true
    }
}

#[test]
fn a_wall_clock_timer_fires_with_no_message_coming() {
    let got = Arc::default();
    let args = Args::new().with_input("127.0.0.1:0").with_workers(2);
    let running = Application::new("later")
        .pipeline("clicks", Source::new(args.input(0), decode))
        .to_process(Later, "later", by_user)
        .to_sink(Sink::to_connector(Collect(Arc::clone(&got)), encode))
        .start(&args)
        .unwrap();
    let mut stream = support::connect(running.local_addr(0).unwrap());
    let sent = Instant::now();
    stream.write_all(b"alice,1\nalice,2\n").unwrap();
    // The connection stays open and quiet: only the clock can fire the timer.
    let deadline = sent + Duration::from_secs(10);
    while got.lock().unwrap().is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    let waited = sent.elapsed();
    let fired = texts(&got);
    running.stop().unwrap();
    drop(stream);
    assert!(
        fired.first().is_some_and(|f| f.starts_with("alice ")),
        "{fired:?}"
    );
    assert!(
        waited >= Duration::from_millis(300),
        "fired after {waited:?}"
    );
    assert!(waited < Duration::from_secs(3), "fired after {waited:?}");
}

#[test]
fn timers_are_kept_across_a_restart() {
    let dir = TempDir::new("timers-restart");
    let got: Arc<Mutex<Vec<Vec<u8>>>> = Arc::default();
    let run = |lines: &[u8], close: bool, expect: usize| {
        let args = Args::new()
            .with_input("127.0.0.1:0")
            .with_workers(2)
            .with_resilience(dir.0.join("state"), SyncPolicy::BeforeOutput);
        let running = Application::new("visits")
            .pipeline("clicks", Source::new(args.input(0), decode))
            .event_time(time, Watermarks::bounded(Duration::ZERO))
            .to_process(Visits, "visits", by_user)
            .to_sink(Sink::to_connector(Collect(Arc::clone(&got)), encode))
            .start(&args)
            .unwrap();
        let mut stream = support::connect(running.local_addr(0).unwrap());
        stream.write_all(lines).unwrap();
        if close {
            drop(stream);
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        while got.lock().unwrap().len() < expect && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        std::thread::sleep(Duration::from_millis(200));
        running.stop().unwrap();
    };
    // alice's visit is open at the stop, with its timer at 11 000.
    run(b"alice,0\nalice,1000\n", false, 0);
    assert!(texts(&got).is_empty(), "a stop fires nothing");
    // The next run's watermark passes it: the recovered timer closes the recovered visit.
    run(b"bob,30000\n", false, 1);
    assert_eq!(
        texts(&got),
        ["alice 2 clicks [0,1000] closed at watermark 30000"]
    );
}
