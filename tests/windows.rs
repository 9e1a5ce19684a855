//! Windows in a running application: each kind and each late-data policy on a small input
//! whose every output is written out here, and the watermark of several inputs (the least
//! of them, an idle one left out).

mod support;

use std::io::Write;
use std::net::TcpStream;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use support::{texts, Collect};
use wallaroo::prelude::*;
use wallaroo::time::TimeWindows;

/// A message: its key, event time and value.
#[derive(Debug, Clone, PartialEq)]
pub struct Ev {
    pub key: String,
    pub time: i64,
    pub value: i64,
}

/// `KEY,TIME,VALUE`.
#[decoder(lines)]
fn decode(line: &[u8]) -> Result<Ev, DecodeError> {
    let line = std::str::from_utf8(line).map_err(|_| DecodeError::new("not UTF-8"))?;
    let mut fields = line.trim().split(',');
    let mut next = || {
        fields
            .next()
            .ok_or_else(|| DecodeError::new("KEY,TIME,VALUE"))
    };
    let key = next()?.to_string();
    let time = next()?.parse().map_err(|_| DecodeError::new("a time"))?;
    let value = next()?.parse().map_err(|_| DecodeError::new("a value"))?;
    Ok(Ev { key, time, value })
}

fn time(ev: &Ev) -> i64 {
    ev.time
}

#[partition]
fn by_key(ev: &Ev) -> &str {
    &ev.key
}

/// How many values, and their sum.
#[aggregation]
#[derive(Debug, Clone, Default)]
pub struct Sum {
    n: u64,
    sum: i64,
}

impl Aggregation<Ev> for Sum {
    type Out = (u64, i64);
    fn update(&mut self, ev: &Ev) {
        self.n += 1;
        self.sum += ev.value;
    }
    fn combine(&mut self, other: &Self) {
        self.n += other.n;
        self.sum += other.sum;
    }
    fn output(&self) -> (u64, i64) {
        (self.n, self.sum)
    }
}

/// `a [0,10000) n=2 sum=3`, and ` late` for a late firing.
#[encoder]
fn encode(fired: &Fired<String, (u64, i64)>, out: &mut Vec<u8>) {
    let Fired {
        key,
        window,
        value: (n, sum),
        late,
    } = fired;
    let late = if *late { " late" } else { "" };
    out.extend_from_slice(
        format!(
            "{key} [{},{}) n={n} sum={sum}{late}",
            window.start, window.end
        )
        .as_bytes(),
    );
}

/// A late message, as the side output writes it: `late a@2000`.
#[encoder]
fn encode_late(ev: &Ev, out: &mut Vec<u8>) {
    out.extend_from_slice(format!("late {}@{}", ev.key, ev.time).as_bytes());
}

fn events(list: &[(&str, i64, i64)]) -> Vec<Ev> {
    list.iter()
        .map(|(key, time, value)| Ev {
            key: key.to_string(),
            time: *time,
            value: *value,
        })
        .collect()
}

/// Runs `input` (in this order, from one input) through `windows` of event time with a
/// watermark `bound` ms behind; what fired, per key in order, and what the side output got
/// when `side` (else the windows' own policy).
fn run_timed(
    input: &[(&str, i64, i64)],
    windows: TimeWindows,
    bound: u64,
    side: bool,
) -> (Vec<String>, Vec<String>) {
    let args = Args::new().with_workers(2);
    let (running, fired, late) = start_timed(input, windows, bound, side, Sum::default(), &args);
    running.wait().unwrap();
    (texts(&fired), texts(&late))
}

/// What a `Collect` sink got.
type Collected = Arc<Mutex<Vec<Vec<u8>>>>;

/// Starts `input` (in this order, from one input) through `windows` of event time of the
/// aggregation `initial`, with a watermark `bound` ms behind and `args`; where what fires
/// goes, and where the side output goes when `side`.
fn start_timed<A: Aggregation<Ev, Out = (u64, i64)>>(
    input: &[(&str, i64, i64)],
    windows: TimeWindows,
    bound: u64,
    side: bool,
    initial: A,
    args: &Args,
) -> (wallaroo::Running, Collected, Collected) {
    let input = events(input);
    let (fired, late) = (Collected::default(), Collected::default());
    let timed = Application::new("windows")
        .pipeline(
            "events",
            Generator::new(move |i| input.get(i as usize).cloned()),
        )
        .event_time(time, Watermarks::bounded(Duration::from_millis(bound)));
    let timed = if side {
        timed.late_to_sink(Sink::to_connector(Collect(Arc::clone(&late)), encode_late))
    } else {
        timed
    };
    let running = timed
        .to_window(windows, initial, "sums", by_key)
        .to_sink(Sink::to_connector(Collect(Arc::clone(&fired)), encode))
        .start(args)
        .unwrap();
    (running, fired, late)
}

/// The lines of `key`, in order.
fn of(lines: &[String], key: &str) -> Vec<String> {
    lines
        .iter()
        .filter(|l| l.starts_with(&format!("{key} ")))
        .cloned()
        .collect()
}

const SECONDS_10: Duration = Duration::from_secs(10);

#[test]
fn sliding_windows_fire_each_window_a_message_is_in_once_the_watermark_passes_its_end() {
    let (fired, _) = run_timed(
        &[
            ("a", 1_000, 1),
            ("a", 6_000, 2),
            ("b", 4_999, 100),
            ("a", 12_000, 4),
        ],
        Windows::sliding(SECONDS_10, Duration::from_secs(5)),
        0,
        false,
    );
    assert_eq!(
        of(&fired, "a"),
        [
            "a [-5000,5000) n=1 sum=1",
            "a [0,10000) n=2 sum=3",
            "a [5000,15000) n=2 sum=6",
            "a [10000,20000) n=1 sum=4",
        ]
    );
    // b's message at 4 999 came after the watermark reached 6 000: its window [-5000,5000)
    // is closed, [0,10000) is not.
    assert_eq!(of(&fired, "b"), ["b [0,10000) n=1 sum=100"]);
}

#[test]
fn session_windows_close_a_gap_after_a_keys_last_message() {
    let (fired, _) = run_timed(
        &[
            ("a", 0, 1),
            ("a", 2_999, 2),
            ("a", 8_000, 4),
            ("a", 5_500, 8),
            ("a", 30_000, 16),
        ],
        Windows::session(Duration::from_secs(3)),
        5_000,
        false,
    );
    // 0 and 2 999 are one session, [0,5999); 8 000 starts another; 5 500 (out of order, in
    // time) bridges the two; 30 000 starts a third.
    assert_eq!(
        fired,
        ["a [0,11000) n=4 sum=15", "a [30000,33000) n=1 sum=16"]
    );
}

#[test]
fn count_windows_need_no_event_time_and_fire_what_they_have_at_the_end() {
    let input = events(&[
        ("a", 0, 1),
        ("b", 0, 10),
        ("a", 0, 2),
        ("a", 0, 4),
        ("b", 0, 20),
        ("a", 0, 8),
        ("a", 0, 16),
    ]);
    let fired = Arc::default();
    let args = Args::new().with_workers(2);
    Application::new("counts")
        .pipeline(
            "events",
            Generator::new(move |i| input.get(i as usize).cloned()),
        )
        .to_window(Windows::count(2), Sum::default(), "pairs", by_key)
        .to_sink(Sink::to_connector(Collect(Arc::clone(&fired)), encode))
        .run(&args, |_| {})
        .unwrap();
    let fired = texts(&fired);
    assert_eq!(
        of(&fired, "a"),
        [
            "a [0,2) n=2 sum=3",
            "a [2,4) n=2 sum=12",
            "a [4,6) n=1 sum=16"
        ]
    );
    assert_eq!(of(&fired, "b"), ["b [0,2) n=2 sum=30"]);
}

#[test]
fn a_running_aggregate_fires_with_every_message_of_its_key() {
    let input = events(&[("a", 0, 1), ("b", 0, 10), ("a", 0, 2), ("a", 0, 4)]);
    let fired = Arc::default();
    Application::new("running")
        .pipeline(
            "events",
            Generator::new(move |i| input.get(i as usize).cloned()),
        )
        .to_window(Windows::running(), Sum::default(), "sums", by_key)
        .to_sink(Sink::to_connector(Collect(Arc::clone(&fired)), encode))
        .run(&Args::new().with_workers(2), |_| {})
        .unwrap();
    let fired = texts(&fired);
    let all = format!("[{},{})", i64::MIN, i64::MAX);
    assert_eq!(
        of(&fired, "a"),
        [
            format!("a {all} n=1 sum=1"),
            format!("a {all} n=2 sum=3"),
            format!("a {all} n=3 sum=7"),
        ]
    );
    assert_eq!(of(&fired, "b"), [format!("b {all} n=1 sum=10")]);
}

#[test]
fn allowed_lateness_fires_a_window_again_for_each_message_in_time_and_then_drops_it() {
    let (fired, _) = run_timed(
        &[
            ("a", 1_000, 1),
            ("a", 10_000, 2), // watermark 10 000: [0,10000) fires
            ("a", 3_000, 4),  // within the 5 s of lateness: it fires again
            ("a", 15_000, 8), // watermark 15 000: [0,10000) is dropped
            ("a", 4_000, 16), // too late: dropped
        ],
        Windows::tumbling(SECONDS_10).allowed_lateness(Duration::from_secs(5)),
        0,
        false,
    );
    assert_eq!(
        fired,
        [
            "a [0,10000) n=1 sum=1",
            "a [0,10000) n=2 sum=5 late",
            "a [10000,20000) n=2 sum=10",
        ]
    );
}

/// a's window [0,10000) fires at 12 000; then a message at 2 000 comes for it, and one of b
/// at 500, a key without an open window.
const LATE: [(&str, i64, i64); 4] = [
    ("a", 1_000, 1),
    ("a", 12_000, 2),
    ("a", 2_000, 4),
    ("b", 500, 8),
];

#[test]
fn a_late_message_is_dropped_by_default() {
    let (fired, _) = run_timed(&LATE, Windows::tumbling(SECONDS_10), 0, false);
    assert_eq!(
        fired,
        ["a [0,10000) n=1 sum=1", "a [10000,20000) n=1 sum=2"]
    );
}

#[test]
fn a_late_message_can_fire_a_window_of_its_own() {
    let (fired, _) = run_timed(
        &LATE,
        Windows::tumbling(SECONDS_10).late(Late::FirePerMessage),
        0,
        false,
    );
    assert_eq!(
        of(&fired, "a"),
        [
            "a [0,10000) n=1 sum=1",
            "a [0,10000) n=1 sum=4 late",
            "a [10000,20000) n=1 sum=2",
        ]
    );
    assert_eq!(of(&fired, "b"), ["b [0,10000) n=1 sum=8 late"]);
}

#[test]
fn a_late_message_can_go_to_the_oldest_open_window_of_its_key() {
    let (fired, _) = run_timed(
        &LATE,
        Windows::tumbling(SECONDS_10).late(Late::PlaceInOldest),
        0,
        false,
    );
    // a's 2 000 joins [10000,20000); b has no open window: its message is dropped.
    assert_eq!(
        fired,
        ["a [0,10000) n=1 sum=1", "a [10000,20000) n=2 sum=6"]
    );
}

#[test]
fn late_messages_can_go_to_a_sink_of_their_own() {
    let (fired, mut late) = run_timed(&LATE, Windows::tumbling(SECONDS_10), 0, true);
    late.sort();
    assert_eq!(
        fired,
        ["a [0,10000) n=1 sum=1", "a [10000,20000) n=1 sum=2"]
    );
    assert_eq!(late, ["late a@2000", "late b@500"]);
}

/// Starts an application of tumbling windows over a TCP source, its watermark as given; the
/// source's address, what fired, and the stop.
fn start_tcp(watermarks: Watermarks) -> (wallaroo::Running, Arc<Mutex<Vec<Vec<u8>>>>) {
    start_tcp_with(watermarks, Windows::tumbling(SECONDS_10))
}

/// [`start_tcp`] with `windows`.
fn start_tcp_with(
    watermarks: Watermarks,
    windows: TimeWindows,
) -> (wallaroo::Running, Arc<Mutex<Vec<Vec<u8>>>>) {
    let fired = Arc::default();
    let args = Args::new().with_input("127.0.0.1:0").with_workers(2);
    let running = Application::new("inputs")
        .pipeline("events", Source::new(args.input(0), decode))
        .event_time(time, watermarks)
        .to_window(windows, Sum::default(), "sums", by_key)
        .to_sink(Sink::to_connector(Collect(Arc::clone(&fired)), encode))
        .start(&args)
        .unwrap();
    (running, fired)
}

fn send(stream: &mut TcpStream, lines: &str) {
    stream.write_all(lines.as_bytes()).unwrap();
    stream.flush().unwrap();
}

/// Waits up to `within` for `fired` to hold `count` outputs.
fn wait_for(fired: &Mutex<Vec<Vec<u8>>>, count: usize, within: Duration) -> Vec<String> {
    let deadline = Instant::now() + within;
    while fired.lock().unwrap().len() < count && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    texts(fired)
}

#[test]
fn the_watermark_is_the_least_of_the_inputs_until_the_slow_one_ends() {
    let (running, fired) = start_tcp(Watermarks::bounded(Duration::ZERO));
    let addr = running.local_addr(0).unwrap();
    let mut slow = support::connect(addr);
    send(&mut slow, "a,1000,1\n");
    // The slow input's message reaches the workers before the fast one connects.
    support::counts_when(&running, 0, |c| c.messages == 1);
    std::thread::sleep(Duration::from_millis(200));
    let mut fast = support::connect(addr);
    send(&mut fast, "b,1000,2\nb,25000,4\n");
    // The slow input is at 1 000: nothing closes.
    let early = wait_for(&fired, 1, Duration::from_millis(700));
    assert!(early.is_empty(), "{early:?}");
    drop(slow);
    let got = wait_for(&fired, 2, Duration::from_secs(10));
    let mut got = got;
    got.sort();
    assert_eq!(got, ["a [0,10000) n=1 sum=1", "b [0,10000) n=1 sum=2"]);
    drop(fast);
    wait_for(&fired, 3, Duration::from_secs(10));
    running.stop().unwrap();
    assert_eq!(
        texts(&fired).len(),
        3,
        "b's [20000,30000) fires as its input ends"
    );
}

#[test]
fn an_idle_input_stops_holding_the_watermark_back() {
    idle_input_left_out(Windows::tumbling(SECONDS_10));
}

#[test]
fn an_idle_input_combining_before_the_exchange_sends_what_it_holds_when_it_runs_dry() {
    // Else the quiet input's message would wait in its partial while the busy one's
    // watermark closes the window.
    idle_input_left_out(Windows::tumbling(SECONDS_10).pre_aggregate());
}

fn idle_input_left_out(windows: TimeWindows) {
    let (running, fired) = start_tcp_with(
        Watermarks::bounded(Duration::ZERO).idle_after(Duration::from_millis(300)),
        windows,
    );
    let addr = running.local_addr(0).unwrap();
    let mut quiet = support::connect(addr);
    send(&mut quiet, "a,1000,1\n");
    let mut busy = support::connect(addr);
    send(&mut busy, "b,1000,2\n");
    std::thread::sleep(Duration::from_millis(500));
    // The quiet input has said nothing for 500 ms: the busy one's next message moves the
    // watermark on its own.
    send(&mut busy, "b,25000,4\n");
    let mut got = wait_for(&fired, 2, Duration::from_secs(10));
    got.sort();
    assert_eq!(got, ["a [0,10000) n=1 sum=1", "b [0,10000) n=1 sum=2"]);
    drop((quiet, busy));
    running.stop().unwrap();
}

/// `n` events of 40 keys with small values, up to 3 s out of order (so some are late), about
/// one in 8 at a window's first or last millisecond.
fn shuffled(n: usize, seed: u64) -> Vec<(String, i64, i64)> {
    let mut rng = support::Rng::new(seed);
    let mut clock = 0i64;
    (0..n)
        .map(|_| {
            clock += rng.below(30) as i64;
            let mut time = (clock - rng.below(3_000) as i64).max(0);
            match rng.below(16) {
                0 => time = time / 3_000 * 3_000,
                1 => time = time / 10_000 * 10_000 + 9_999,
                _ => {}
            }
            (format!("k{}", rng.below(40)), time, rng.below(1_000) as i64)
        })
        .collect()
}

#[test]
fn windows_combined_before_the_exchange_fire_what_the_messages_one_by_one_fire() {
    let input = shuffled(20_000, 5);
    let input: Vec<(&str, i64, i64)> = input.iter().map(|(k, t, v)| (k.as_str(), *t, *v)).collect();
    let lateness = Duration::from_millis(1_500);
    for (name, windows, bound) in [
        ("tumbling", Windows::tumbling(SECONDS_10), 2_000),
        (
            "sliding",
            Windows::sliding(SECONDS_10, Duration::from_millis(3_000)),
            1_000,
        ),
        (
            "lateness",
            Windows::tumbling(SECONDS_10).allowed_lateness(lateness),
            500,
        ),
        (
            "fire per message",
            Windows::tumbling(SECONDS_10).late(Late::FirePerMessage),
            500,
        ),
        (
            "oldest",
            Windows::sliding(SECONDS_10, Duration::from_millis(4_000))
                .allowed_lateness(lateness)
                .late(Late::PlaceInOldest),
            500,
        ),
    ] {
        let (one_by_one, _) = run_timed(&input, windows, bound, false);
        let counted = Checked::default();
        let combines = Arc::clone(&counted.combines);
        let args = Args::new().with_workers(2);
        let (running, combined, _) = start_timed(
            &input,
            windows.pre_aggregate(),
            bound,
            false,
            counted,
            &args,
        );
        running.wait().unwrap();
        let combined = texts(&combined);
        // The workers combined partials, far fewer than the messages.
        let combines = combines.load(std::sync::atomic::Ordering::Relaxed);
        assert!(
            combines > 100 && combines < 20_000 / 2,
            "{name}: {combines} combines"
        );
        assert!(
            one_by_one.len() > 500,
            "{name}: {} windows",
            one_by_one.len()
        );
        if name != "tumbling" && name != "sliding" {
            assert!(
                one_by_one.iter().any(|l| l.ends_with(" late")),
                "{name}: the input has late firings"
            );
        }
        let grouped = |lines: &[String]| support::windows::grouped(&lines.join("\n"));
        let (one_by_one, combined) = (grouped(&one_by_one), grouped(&combined));
        assert_eq!(one_by_one.len(), 40, "{name}");
        for (key, lines) in &one_by_one {
            assert_eq!(&combined[key], lines, "{name}: key {key}");
        }
        assert_eq!(combined.len(), one_by_one.len(), "{name}");
    }
}

#[test]
fn windows_that_cannot_be_combined_before_the_exchange_are_an_error_at_start() {
    let timed = || {
        Application::new("windows")
            .pipeline("events", Generator::new(|_| None::<Ev>))
            .event_time(time, Watermarks::bounded(Duration::ZERO))
    };
    let sessions = timed()
        .to_window(
            Windows::session(SECONDS_10).pre_aggregate(),
            Sum::default(),
            "sessions",
            by_key,
        )
        .done();
    let late = Arc::default();
    let with_side_output = timed()
        .late_to_sink(Sink::to_connector(Collect(late), encode_late))
        .to_window(
            Windows::tumbling(SECONDS_10).pre_aggregate(),
            Sum::default(),
            "sums",
            by_key,
        )
        .done();
    for (app, expected) in [
        (
            sessions,
            "window state \"sessions\": session windows cannot be combined before the exchange",
        ),
        (
            with_side_output,
            "window state \"sums\": windows whose late messages go to a sink cannot be combined",
        ),
    ] {
        let Err(error) = app.start(&Args::new()) else {
            panic!("started: {expected}");
        };
        let error = error.to_string();
        assert!(error.contains(expected), "{error}");
        assert!(error.contains("drop `.pre_aggregate()`"), "{error}");
    }
}

/// How many values, and their sum, as [`Sum`]; and what tests check of an aggregation: a
/// negative value makes it panic, and its windows count the combines they make (every window
/// of one run shares the count of the accumulator it was given).
#[aggregation]
#[derive(Debug, Clone, Default)]
pub struct Checked {
    n: u64,
    sum: i64,
    #[serde(skip)]
    combines: Arc<std::sync::atomic::AtomicU64>,
}

impl Aggregation<Ev> for Checked {
    type Out = (u64, i64);
    fn update(&mut self, ev: &Ev) {
        assert!(ev.value >= 0, "unlucky {}", ev.key);
        self.n += 1;
        self.sum += ev.value;
    }
    fn combine(&mut self, other: &Self) {
        self.combines
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.n += other.n;
        self.sum += other.sum;
    }
    fn output(&self) -> (u64, i64) {
        (self.n, self.sum)
    }
}

/// Runs `input` through tumbling windows of 10 s of a [`Checked`] aggregation, as `on_error`
/// says: what fired, sorted, and how many messages were skipped; or the error it stopped
/// with.
fn run_checked(
    input: &[(&str, i64, i64)],
    windows: TimeWindows,
    on_error: wallaroo::OnError,
) -> Result<(Vec<String>, u64), String> {
    let args = Args::new().with_workers(2).with_on_error(on_error);
    let (running, fired, _) = start_timed(input, windows, 0, false, Checked::default(), &args);
    // Its four windows fire at the end of the input, after any skip.
    let deadline = Instant::now() + Duration::from_secs(10);
    while fired.lock().unwrap().len() < 4 && Instant::now() < deadline {
        if on_error == wallaroo::OnError::Stop {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let skipped = running.skipped();
    let stopped = running.wait();
    let mut got = texts(&fired);
    got.sort();
    stopped.map(|()| (got, skipped)).map_err(|e| e.to_string())
}

#[test]
fn a_panicking_aggregation_skips_or_stops_as_the_policy_says_combined_or_not() {
    let input = [
        ("a", 1_000, 1),
        ("b", 2_000, 2),
        ("a", 3_000, -13), // the aggregation panics on it
        ("a", 4_000, 4),
        ("b", 12_000, 8),
        ("a", 13_000, 16),
    ];
    let expected = [
        "a [0,10000) n=2 sum=5",
        "a [10000,20000) n=1 sum=16",
        "b [0,10000) n=1 sum=2",
        "b [10000,20000) n=1 sum=8",
    ];
    for windows in [
        Windows::tumbling(SECONDS_10),
        Windows::tumbling(SECONDS_10).pre_aggregate(),
    ] {
        let (got, skipped) = run_checked(&input, windows, wallaroo::OnError::Skip).unwrap();
        assert_eq!(got, expected, "{windows:?}");
        assert_eq!(skipped, 1, "{windows:?}");
        let stopped = run_checked(&input, windows, wallaroo::OnError::Stop).unwrap_err();
        // Combined, the aggregation runs on the source's thread: the error names its
        // pipeline, as for a stateless step there.
        let step = if windows == Windows::tumbling(SECONDS_10) {
            "state computation `Checked`"
        } else {
            "pipeline \"events\""
        };
        for part in [step, "panicked", "unlucky a"] {
            assert!(stopped.contains(part), "{part:?} not in: {stopped}");
        }
    }
}
