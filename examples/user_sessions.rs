//! User sessions: per user, each burst of activity as one session, with how many actions
//! of each kind it held and how long it lasted.
//!
//! Input: text lines `USER,EVENT_TIME_MS,ACTION` (`alice,1000,click`), in any order within
//! 5 seconds of event time; a user or an action is one word, without spaces or `=`. Without
//! `--in`, an in-process [`Generator`] makes a demo stream instead ([`demo_event`]).
//!
//! Per user, session windows of event time with a gap of 30 minutes (`--gap-secs`): events
//! less than the gap apart share a session `[first, last + gap)`, and an event that bridges
//! two sessions merges them into one. The watermark is the largest event time read so far
//! minus 5 000 ms, and moves event by event in the input's order. A session fires once the
//! watermark reaches its last event plus the gap, and at the end of the input every open
//! session fires. An event whose own window `[time, time + gap)` the watermark has passed
//! when it arrives is late: dropped and counted (`wallaroo_window_late_total` in
//! `/metrics`), not applied.
//!
//! Output, one line per session, per user in order of start: the window, the number of
//! events, the time from the first event to the last, and the count of each action, by
//! action name:
//! `alice [1000,1802500) events=3 duration_ms=1500 click=2 view=1`.
//!
//! ```text
//! cargo run --example user_sessions -- --out -
//! cargo run --example user_sessions -- --in file:examples/data/sessions.csv --out -
//! cargo run --example user_sessions -- --in file:examples/data/sessions.csv --out - --gap-secs 60
//! cargo run --release --example user_sessions -- --in 127.0.0.1:7010 --out 127.0.0.1:7002
//! ```

use std::collections::BTreeMap;
use std::time::Duration;

use wallaroo::clap;
use wallaroo::prelude::*;

/// The gap that ends a session, in seconds, unless `--gap-secs` says otherwise.
pub const GAP_SECS: u64 = 30 * 60;

/// How far behind the latest event time an event may come.
pub const OUT_OF_ORDERNESS: Duration = Duration::from_millis(5_000);

/// The application's own flags.
#[derive(clap::Args, Debug, Clone, PartialEq)]
pub struct Flags {
    /// End a user's session after this many seconds of event time without an event
    #[arg(long, value_name = "SECONDS", default_value_t = GAP_SECS, value_parser = gap_secs)]
    pub gap_secs: u64,
}

/// `--gap-secs`: a whole number of seconds, at least 1 (a session of no gap would hold one
/// event at most).
fn gap_secs(value: &str) -> Result<u64, String> {
    match value.parse::<u64>() {
        Ok(0) => Err("a session's gap must be at least 1 second".to_string()),
        Ok(secs) => Ok(secs),
        Err(_) => Err("expected a whole number of seconds".to_string()),
    }
}

impl Default for Flags {
    fn default() -> Self {
        Flags { gap_secs: GAP_SECS }
    }
}

/// One action of one user.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub user: String,
    /// Event time, in milliseconds.
    pub time: i64,
    pub action: String,
}

/// Whether `word` can stand in an output line: not empty, no spaces, no `=`.
fn is_word(word: &str) -> bool {
    !word.is_empty() && !word.contains(|c: char| c.is_whitespace() || c == '=')
}

/// `USER,EVENT_TIME_MS,ACTION`.
#[decoder(lines)]
pub fn decode(line: &[u8]) -> Result<Event, DecodeError> {
    let bad = || DecodeError::new("expected USER,EVENT_TIME_MS,ACTION");
    let line = std::str::from_utf8(line).map_err(|_| bad())?.trim();
    let mut fields = line.splitn(3, ',');
    let (Some(user), Some(time), Some(action)) = (fields.next(), fields.next(), fields.next())
    else {
        return Err(bad());
    };
    let (user, action) = (user.trim(), action.trim());
    let time: i64 = time.trim().parse().map_err(|_| bad())?;
    // The user starts each output line and an action names a count in it: a space or
    // `=` in either would make the line ambiguous to read back.
    if !is_word(user) || !is_word(action) {
        return Err(bad());
    }
    Ok(Event {
        user: user.to_owned(),
        time,
        action: action.to_owned(),
    })
}

/// An event's event time.
pub fn event_time(event: &Event) -> i64 {
    event.time
}

/// Events are partitioned by user.
#[partition]
pub fn by_user(event: &Event) -> &str {
    &event.user
}

/// What a session holds so far: its events' first and last times and a count per action.
#[aggregation]
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Activity {
    events: u64,
    first: i64,
    last: i64,
    /// By action name; ordered, so that a session's line lists them the same way each time.
    actions: BTreeMap<String, u64>,
}

/// What a fired session says.
#[derive(Debug, Clone, PartialEq)]
pub struct Session {
    pub events: u64,
    /// From the first event to the last, in milliseconds.
    pub duration_ms: i64,
    /// How many of each action, by name.
    pub actions: BTreeMap<String, u64>,
}

impl Aggregation<Event> for Activity {
    type Out = Session;

    fn update(&mut self, event: &Event) {
        // Events come out of order: the first and last are the smallest and largest times.
        if self.events == 0 {
            (self.first, self.last) = (event.time, event.time);
        } else {
            self.first = self.first.min(event.time);
            self.last = self.last.max(event.time);
        }
        self.events += 1;
        *self.actions.entry(event.action.clone()).or_default() += 1;
    }

    fn combine(&mut self, other: &Self) {
        if other.events == 0 {
            return;
        }
        if self.events == 0 {
            (self.first, self.last) = (other.first, other.last);
        } else {
            self.first = self.first.min(other.first);
            self.last = self.last.max(other.last);
        }
        self.events += other.events;
        for (action, n) in &other.actions {
            *self.actions.entry(action.clone()).or_default() += n;
        }
    }

    fn output(&self) -> Session {
        Session {
            events: self.events,
            duration_ms: self.last - self.first,
            actions: self.actions.clone(),
        }
    }
}

/// `"alice [1000,1802500) events=3 duration_ms=1500 click=2 view=1\n"`.
#[encoder]
pub fn encode(fired: &Fired<String, Session>, out: &mut Vec<u8>) {
    use std::io::Write;
    let Fired {
        key, window, value, ..
    } = fired;
    // Writing to a Vec cannot fail.
    let _ = write!(
        out,
        "{key} [{},{}) events={} duration_ms={}",
        window.start, window.end, value.events, value.duration_ms
    );
    for (action, n) in &value.actions {
        let _ = write!(out, " {action}={n}");
    }
    out.push(b'\n');
}

/// The users of the demo stream.
const DEMO_USERS: [&str; 3] = ["alice", "bob", "carol"];

/// The actions of the demo stream, in the order a user takes them.
const DEMO_ACTIONS: [&str; 5] = ["view", "view", "click", "view", "buy"];

/// Event `i` of the demo stream, `None` after 60: three users, each with an event every
/// 2 minutes of event time but 42 minutes after every 7th, so each has three sessions with
/// the default gap; events arrive up to 3 s out of order, and one comes 2 hours late.
pub fn demo_event(i: u64) -> Option<Event> {
    if i >= 60 {
        return None;
    }
    let user = (i % 3) as usize;
    let step = (i / 3) as i64;
    let minute = 60_000;
    // Event 50 was sent 2 hours late (dropped); every third is up to 3 s out of order.
    let delay = if i == 50 {
        120 * minute
    } else {
        (step % 3) * 1_500
    };
    Some(Event {
        user: DEMO_USERS[user].to_owned(),
        time: step * 2 * minute + step / 7 * 40 * minute + user as i64 * 10_000 - delay,
        action: DEMO_ACTIONS[(step as usize + user) % DEMO_ACTIONS.len()].to_owned(),
    })
}

/// Per user, one line per session of activity: events less than `--gap-secs` apart in
/// event time (30 minutes unless said) are one session.
///
/// Reads lines `USER,EVENT_TIME_MS,ACTION` from --in, or a demo stream without it; writes a
/// line per session to --out.
#[wallaroo::main]
pub fn user_sessions(args: &Args, flags: &Flags) -> Application {
    let app = Application::new("User Sessions");
    let events = match args.inputs().first() {
        Some(input) => app.pipeline("Events", Source::new(input.clone(), decode)),
        None => app.pipeline("Events", Generator::new(demo_event)),
    };
    events
        .event_time(event_time, Watermarks::bounded(OUT_OF_ORDERNESS))
        .to_window(
            Windows::session(Duration::from_secs(flags.gap_secs)),
            Activity::default(),
            "user sessions",
            by_user,
        )
        .to_sink(Sink::new(args.output(0), encode))
}
