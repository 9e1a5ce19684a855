//! The User Sessions example against its contract (the module doc of
//! `examples/user_sessions.rs`), computed here without the framework's windows: out-of-order
//! events, sessions that a late-arriving event bridges, events too late for their own
//! window, with one and with several workers, from a file and over loopback TCP.

mod support;
#[allow(dead_code)]
#[path = "../examples/user_sessions.rs"]
mod user_sessions;

use std::collections::BTreeMap;
use std::process::{Command, Stdio};

use support::{example_bin, free_port, Receiver, Rng, TempDir};
use user_sessions::Flags;
use wallaroo::Args;

/// `(user, time, action)`, as a line of the input.
type Event = (String, i64, String);

/// One open session of the model: its first and last event times and its actions.
struct Open {
    first: i64,
    last: i64,
    actions: Vec<String>,
}

impl Open {
    /// The session's window: from its first event to its last plus the gap.
    fn end(&self, gap: i64) -> i64 {
        self.last + gap
    }

    fn line(&self, user: &str, gap: i64) -> String {
        let mut counts: BTreeMap<&str, u64> = BTreeMap::new();
        for action in &self.actions {
            *counts.entry(action).or_default() += 1;
        }
        let mut line = format!(
            "{user} [{},{}) events={} duration_ms={}",
            self.first,
            self.end(gap),
            self.actions.len(),
            self.last - self.first
        );
        for (action, n) in counts {
            line += &format!(" {action}={n}");
        }
        line
    }
}

/// What the contract says of an input.
struct Expected {
    /// Per user, its lines in order.
    lines: BTreeMap<String, Vec<String>>,
    /// Events too late for their own window.
    late: u64,
    /// Events that merged two or more open sessions into one.
    bridges: u64,
}

/// What the contract says the example outputs for `events`, read in this order, with
/// sessions of `gap` ms and a watermark 5 s behind the largest time.
fn model(events: &[Event], gap: i64) -> Expected {
    const BOUND: i64 = 5_000;
    // Per user, the open sessions, in no particular order.
    let mut open: BTreeMap<&str, Vec<Open>> = BTreeMap::new();
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let (mut largest, mut late, mut bridges) = (None::<i64>, 0, 0);
    for (user, time, action) in events {
        // The watermark at the event's arrival: the largest time before it, minus the bound.
        let watermark = largest.map(|t| t - BOUND);
        if watermark.is_some_and(|w| time + gap <= w) {
            late += 1;
        } else {
            // The event's own session [time, time + gap) absorbs every open session it
            // overlaps, until none is left that the grown session overlaps.
            let sessions = open.entry(user).or_default();
            let mut absorbed = 0;
            let mut merged = Open {
                first: *time,
                last: *time,
                actions: vec![action.clone()],
            };
            while let Some(at) = sessions
                .iter()
                .position(|s| s.first < merged.end(gap) && merged.first < s.end(gap))
            {
                let s = sessions.swap_remove(at);
                merged.first = merged.first.min(s.first);
                merged.last = merged.last.max(s.last);
                merged.actions.extend(s.actions);
                absorbed += 1;
            }
            if absorbed > 1 {
                bridges += 1;
            }
            sessions.push(merged);
        }
        largest = Some(largest.map_or(*time, |t| t.max(*time)));
        let watermark = largest.unwrap() - BOUND;
        for (user, sessions) in &mut open {
            let (mut due, keep): (Vec<Open>, Vec<Open>) =
                sessions.drain(..).partition(|s| s.end(gap) <= watermark);
            *sessions = keep;
            due.sort_by_key(|s| s.first);
            for s in due {
                out.entry(user.to_string())
                    .or_default()
                    .push(s.line(user, gap));
            }
        }
    }
    // The end of the input: every open session fires.
    for (user, mut sessions) in open {
        sessions.sort_by_key(|s| s.first);
        for s in sessions {
            out.entry(user.to_string())
                .or_default()
                .push(s.line(user, gap));
        }
    }
    Expected {
        lines: out,
        late,
        bridges,
    }
}

/// `n` events of 9 users on one clock that moves about half a second an event, each event
/// up to 8 s out of order (more than the watermark's 5 s). Now and then a user pauses for
/// up to two gaps, so that its sessions end; half the pauses are just over a gap, and the
/// user comes back with two events out of order, the second of which may fall before the
/// end of the session that the pause ended and bridge the two. About one event in 30 comes
/// up to 3 gaps back in time, mostly too late.
fn events(n: usize, gap: i64, seed: u64) -> Vec<Event> {
    let mut rng = Rng::new(seed);
    let mut clock = 0i64;
    // Per user: paused until, and whether it comes back from a pause just over a gap.
    let mut paused = [(0i64, false); 9];
    let actions = ["view", "click", "buy", "search"];
    let mut events = Vec::with_capacity(n);
    while events.len() < n {
        clock += rng.below(1_000) as i64;
        let user = rng.below(9) as usize;
        let (until, just_over) = paused[user];
        if clock < until {
            continue;
        }
        let mut time = clock - rng.below(8_000) as i64;
        if rng.below(30) == 0 {
            time -= rng.below(3 * gap as u64) as i64;
        }
        let action = actions[rng.below(actions.len() as u64) as usize];
        events.push((format!("user-{user}"), time, action.to_string()));
        if just_over {
            let earlier = time - 1 - rng.below(8_000) as i64;
            let action = actions[rng.below(actions.len() as u64) as usize];
            events.push((format!("user-{user}"), earlier, action.to_string()));
        }
        paused[user] = (0, false);
        if rng.below(40) == 0 {
            paused[user] = if rng.below(2) == 0 {
                (clock + gap + rng.below(5_000) as i64, true)
            } else {
                (clock + rng.below(2 * gap as u64) as i64, false)
            };
        }
    }
    events
}

fn input_text(events: &[Event]) -> String {
    events
        .iter()
        .map(|(u, t, a)| format!("{u},{t},{a}\n"))
        .collect()
}

fn grouped(text: &str) -> BTreeMap<String, Vec<String>> {
    let mut groups: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for line in text.lines() {
        let user = line.split(' ').next().unwrap();
        groups
            .entry(user.to_string())
            .or_default()
            .push(line.to_string());
    }
    groups
}

fn event(user: &str, time: i64, action: &str) -> Event {
    (user.to_string(), time, action.to_string())
}

/// Runs the example on `events` with `gap_secs` and `workers`: its output, by user.
fn run(events: &[Event], gap_secs: u64, workers: usize) -> BTreeMap<String, Vec<String>> {
    let dir = TempDir::new("user-sessions");
    std::fs::write(dir.0.join("in.csv"), input_text(events)).unwrap();
    let args = Args::new()
        .with_input(dir.address("in.csv"))
        .with_output(dir.address("out.txt"))
        .with_workers(workers);
    user_sessions::user_sessions(&args, &Flags { gap_secs })
        .run(&args, |_| {})
        .unwrap();
    grouped(&dir.read("out.txt"))
}

#[test]
fn the_model_follows_the_contract_on_a_small_input() {
    // Gap 10 s, watermark 5 s behind. a: 0 and 12 000 are two sessions until 6 000 bridges
    // them; a's 30 000 moves the watermark to 25 000, which closes a's [0, 22000) and b's
    // [1000, 11000); then 14 000 is late (its own window ends at 24 000).
    let events = [
        event("a", 0, "view"),
        event("a", 12_000, "click"),
        event("b", 1_000, "view"),
        event("a", 6_000, "view"),
        event("a", 30_000, "buy"),
        event("a", 14_000, "view"),
        event("b", 40_000, "click"),
    ];
    let Expected {
        lines: out,
        late,
        bridges,
    } = model(&events, 10_000);
    assert_eq!((late, bridges), (1, 1));
    assert_eq!(
        out["a"],
        [
            "a [0,22000) events=3 duration_ms=12000 click=1 view=2",
            "a [30000,40000) events=1 duration_ms=0 buy=1",
        ]
    );
    assert_eq!(
        out["b"],
        [
            "b [1000,11000) events=1 duration_ms=0 view=1",
            "b [40000,50000) events=1 duration_ms=0 click=1",
        ]
    );
}

#[test]
fn a_file_of_out_of_order_events_gives_every_session_as_the_contract_says() {
    let gap = 60_000;
    let events = events(20_000, gap, 17);
    let Expected {
        lines: expected,
        late,
        bridges,
    } = model(&events, gap);
    assert!(late > 100, "the input has late events: {late}");
    assert!(bridges > 20, "the input bridges sessions: {bridges}");
    let sessions: usize = expected.values().map(Vec::len).sum();
    assert!(sessions > 200, "{sessions} sessions");
    for workers in [1, 3] {
        let got = run(&events, 60, workers);
        assert_eq!(got.len(), expected.len(), "{workers} workers");
        for (user, lines) in &expected {
            assert_eq!(&got[user], lines, "user {user}, {workers} workers");
        }
    }
}

#[test]
fn sessions_bridged_by_a_late_arrival_merge_into_one() {
    // Gap 30 minutes. 1 803 000 opens a second session while the first, [0, 1800000), is
    // still open (the watermark is at 1 798 000); 900 000 bridges them.
    let events = [
        event("carol", 0, "view"),
        event("carol", 1_803_000, "view"),
        event("carol", 900_000, "click"),
    ];
    let expected = ["carol [0,3603000) events=3 duration_ms=1803000 click=1 view=2"];
    assert_eq!(model(&events, 1_800_000).lines["carol"], expected);
    assert_eq!(run(&events, 1_800, 1)["carol"], expected);
}

#[test]
fn the_demo_stream_drops_its_one_late_event() {
    let dir = TempDir::new("user-sessions-demo");
    let args = Args::new().with_output(dir.address("out.txt"));
    user_sessions::user_sessions(&args, &Flags::default())
        .run(&args, |_| {})
        .unwrap();
    let events: Vec<Event> = (0..)
        .map_while(user_sessions::demo_event)
        .map(|e| (e.user, e.time, e.action))
        .collect();
    let Expected {
        lines: expected,
        late,
        ..
    } = model(&events, 1_800_000);
    assert_eq!(late, 1);
    assert!(
        expected.values().all(|lines| lines.len() == 3),
        "{expected:?}"
    );
    assert_eq!(grouped(&dir.read("out.txt")), expected);
}

#[test]
fn the_shipped_data_file_gives_the_sessions_of_the_contract() {
    let dir = TempDir::new("user-sessions-data");
    let args = Args::new()
        .with_input(support::data_file("sessions.csv"))
        .with_output(dir.address("out.txt"));
    user_sessions::user_sessions(&args, &Flags::default())
        .run(&args, |_| {})
        .unwrap();
    let text = std::fs::read_to_string(format!(
        "{}/examples/data/sessions.csv",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    let events: Vec<Event> = text
        .lines()
        .map(|line| {
            let e = user_sessions::decode::call(line.as_bytes()).unwrap();
            (e.user, e.time, e.action)
        })
        .collect();
    let Expected {
        lines: expected,
        late,
        bridges,
    } = model(&events, 1_800_000);
    assert_eq!(bridges, 1, "900000 bridges carol's first two sessions");
    assert_eq!(
        late, 1,
        "bob's event at 1000 comes after his session closed"
    );
    assert_eq!(grouped(&dir.read("out.txt")), expected);
}

#[test]
fn the_decoder_takes_one_word_users_and_actions() {
    let e = user_sessions::decode::call(b" alice , 1000 , click ").unwrap();
    assert_eq!(
        (e.user.as_str(), e.time, e.action.as_str()),
        ("alice", 1000, "click")
    );
    for bad in [
        &b"alice,1000"[..],
        b"alice,x,click",
        b",1000,click",
        b"alice,1000,",
        b"al ice,1000,click",
        b"alice,1000,a=b",
    ] {
        assert!(user_sessions::decode::call(bad).is_err(), "{bad:?}");
    }
}

#[test]
fn the_binary_over_tcp_takes_its_gap_flag_and_counts_late_events() {
    let gap = 20_000;
    let events = events(5_000, gap, 33);
    let Expected {
        lines: expected,
        late,
        ..
    } = model(&events, gap);
    assert!(late > 10, "the input has late events: {late}");
    let receiver = Receiver::start();
    let (port, http) = (free_port(), free_port());
    let mut app = Command::new(example_bin("user_sessions"))
        .args(["--in", &format!("127.0.0.1:{port}")])
        .args(["--out", &receiver.addr.to_string()])
        .args(["--http", &format!("127.0.0.1:{http}")])
        .args(["--workers", "2", "--gap-secs", "20"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stream = support::connect(format!("127.0.0.1:{port}").parse().unwrap());
    support::send_in_pieces(stream, &input_text(&events));
    let sessions: usize = expected.values().map(Vec::len).sum();
    let got = receiver.wait_for(sessions);
    let counted = format!(
        "wallaroo_window_late_total{{pipeline=\"Events\",state=\"user sessions\"}} {late}\n"
    );
    let metrics = support::metrics_when(format!("127.0.0.1:{http}").parse().unwrap(), &counted);
    let _ = app.kill();
    let _ = app.wait();
    assert_eq!(got.len(), sessions);
    assert_eq!(grouped(&(got.join("\n") + "\n")), expected);
    assert!(
        metrics.contains(&counted),
        "{late} late events expected in:\n{metrics}"
    );
}
