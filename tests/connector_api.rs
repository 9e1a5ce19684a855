//! The connector API as a user's connector uses it: several streams read on one thread,
//! where each resumes after a restart, and a sink that sees each message apart, with the
//! key of the state it came from when it asks for keys.

mod support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use support::{Collect, CollectKeyed, TempDir};
use wallaroo::connector::{
    ConnectorError, ConnectorInfo, MessageConnector, MessageInput, MessageSource, SourceConnector,
    SourceInput,
};
use wallaroo::prelude::*;
use wallaroo::resilience::SyncPolicy;

/// Two streams, `left` and `right`, read in turns on one thread: message `i` of each is
/// the byte `i % 7` (the key) at position `i`. Records where each stream resumed.
struct Interleaved {
    count: u64,
    resumed: Arc<Mutex<Vec<(String, u64)>>>,
}

impl SourceConnector for Interleaved {
    fn info(&self) -> ConnectorInfo {
        ConnectorInfo::new("interleaved", "left, right")
    }

    fn run(self: Box<Self>, mut input: SourceInput) -> Result<(), ConnectorError> {
        let streams = [input.stream("left"), input.stream("right")];
        let from: Vec<u64> = streams.iter().map(|s| input.resume_from(s)).collect();
        for (stream, from) in streams.iter().zip(&from) {
            self.resumed
                .lock()
                .unwrap()
                .push((stream.name().to_string(), *from));
        }
        for i in 0..self.count {
            for (stream, from) in streams.iter().zip(&from) {
                if i >= *from {
                    input.push_at(stream, i, &[(i % 7) as u8]);
                }
            }
            if i % 100 == 99 {
                input.flush();
            }
        }
        input.flush();
        Ok(())
    }
}

#[state]
#[derive(Default)]
struct Count {
    n: u64,
}

#[decoder]
fn read_key(payload: &[u8]) -> Result<u8, DecodeError> {
    payload.first().copied().ok_or(DecodeError::new("empty"))
}

#[partition]
fn by_key(key: &u8) -> u8 {
    *key
}

/// A key and its count.
type KeyCount = (u8, u64);

#[state_computation]
fn add_one(key: u8, total: &mut Count) -> (KeyCount, bool) {
    total.n += 1;
    ((key, total.n), true)
}

/// Doubles a count, to show that a key stays with what its outputs become.
#[computation]
fn double(count: KeyCount) -> KeyCount {
    (count.0, count.1 * 2)
}

#[encoder]
fn encode_key(key: &u8, out: &mut Vec<u8>) {
    out.push(*key);
}

#[encoder]
fn encode(count: &KeyCount, out: &mut Vec<u8>) {
    out.push(count.0);
    out.push_int(count.1);
}

fn run(state: &std::path::Path, count: u64) -> (Vec<(String, u64)>, Vec<Vec<u8>>) {
    let resumed = Arc::default();
    let got = Arc::default();
    let args = Args::new()
        .with_workers(3)
        .with_resilience(state, SyncPolicy::BeforeOutput);
    let source = Interleaved {
        count,
        resumed: Arc::clone(&resumed),
    };
    Application::new("connector api")
        .pipeline("p", Source::from_connector(source, read_key))
        .to_state_partition(add_one, "counts", by_key)
        .to_sink(Sink::to_connector(Collect(Arc::clone(&got)), encode))
        .run(&args, |_| {})
        .unwrap();
    let resumed = resumed.lock().unwrap().clone();
    let got = got.lock().unwrap().clone();
    (resumed, got)
}

#[test]
fn streams_read_on_one_thread_each_resume_where_they_were_applied() {
    let tmp = TempDir::new("connector-api");
    let state = tmp.0.join("state");
    let (resumed, got) = run(&state, 1000);
    assert_eq!(resumed, [("left".to_string(), 0), ("right".to_string(), 0)]);
    assert_eq!(got.len(), 2000, "each message reaches the sink on its own");
    // Per key, the counts go 1, 2, … in order.
    let mut last = [0u64; 7];
    for message in &got {
        let key = usize::from(message[0]);
        let n: u64 = std::str::from_utf8(&message[1..]).unwrap().parse().unwrap();
        assert_eq!(n, last[key] + 1);
        last[key] = n;
    }

    // Both streams were applied to their ends: each resumes after its last message, and
    // nothing is counted again.
    let (resumed, got) = run(&state, 1000);
    assert_eq!(
        resumed,
        [("left".to_string(), 1000), ("right".to_string(), 1000)]
    );
    assert!(got.is_empty(), "{} messages counted twice", got.len());

    // More messages: only the new ones count, from where the counts were.
    let (resumed, got) = run(&state, 1100);
    assert_eq!(
        resumed,
        [("left".to_string(), 1000), ("right".to_string(), 1000)]
    );
    assert_eq!(got.len(), 200);
}

#[test]
fn a_sink_that_wants_keys_gets_each_output_with_its_state_key() {
    let keyed = Arc::default();
    let stateless = Arc::default();
    let resumed_a = Arc::default();
    let resumed_b: Arc<Mutex<Vec<(String, u64)>>> = Arc::default();
    let args = Args::new().with_workers(2);
    Application::new("keyed sink")
        .pipeline(
            "counted",
            Source::from_connector(
                Interleaved {
                    count: 300,
                    resumed: resumed_a,
                },
                read_key,
            ),
        )
        .to_state_partition(add_one, "counts", by_key)
        .to(double)
        .to_sink(Sink::to_connector(CollectKeyed(Arc::clone(&keyed)), encode))
        .pipeline(
            "passed through",
            Source::from_connector(
                Interleaved {
                    count: 10,
                    resumed: Arc::clone(&resumed_b),
                },
                read_key,
            ),
        )
        .to_sink(Sink::to_connector(
            CollectKeyed(Arc::clone(&stateless)),
            encode_key,
        ))
        .run(&args, |_| {})
        .unwrap();

    let keyed = keyed.lock().unwrap().clone();
    assert_eq!(keyed.len(), 600);
    let mut last = [0u64; 7];
    for (key, value) in &keyed {
        // The state key, a `u8`, as its JSON; through the stateless step after the state.
        assert_eq!(key.as_deref(), Some(&*value[0].to_string()), "{value:?}");
        let n: u64 = std::str::from_utf8(&value[1..]).unwrap().parse().unwrap();
        assert_eq!(n, last[usize::from(value[0])] + 2);
        last[usize::from(value[0])] = n;
    }
    // The second pipeline's streams have the names of the first's, and are its own: they
    // start from 0 however far the first has come.
    let resumed_b = resumed_b.lock().unwrap().clone();
    assert_eq!(
        resumed_b,
        [("left".to_string(), 0), ("right".to_string(), 0)]
    );
    // Outputs that come from no state have no key.
    let stateless = stateless.lock().unwrap().clone();
    assert_eq!(stateless.len(), 20);
    assert!(stateless.iter().all(|(key, _)| key.is_none()));
}

/// Makes keys `i % 7` as values on two threads: the even `i` at position `i / 2` of stream
/// `even`, the odd ones of stream `odd` (a stream is made in order, on one thread), each
/// from where it resumes; records where that was.
struct Made {
    count: u64,
    resumed: Arc<Mutex<Vec<u64>>>,
}

impl MessageConnector<u8> for Made {
    fn info(&self) -> ConnectorInfo {
        ConnectorInfo::new("made", "in-process")
    }

    fn run(self: Box<Self>, mut input: MessageInput<u8>) -> Result<(), ConnectorError> {
        let count = self.count;
        let make = move |input: &mut MessageInput<u8>, parity: u64| {
            let stream = input.stream(if parity == 0 { "even" } else { "odd" });
            let from = input.resume_from(&stream);
            for i in (0..count).filter(|i| i % 2 == parity && i / 2 >= from) {
                input.push_at(&stream, i / 2, (i % 7) as u8);
            }
            input.flush();
            from
        };
        let mut odd = input.fork();
        let other = std::thread::spawn(move || make(&mut odd, 1));
        let even = make(&mut input, 0);
        let odd = other.join().unwrap();
        self.resumed.lock().unwrap().extend([even, odd]);
        Ok(())
    }
}

/// Runs the application over `count` made messages; also the source's count of messages
/// once it reaches `expect` (or after 10 s).
fn run_made(state: &std::path::Path, count: u64, expect: u64) -> (Vec<u64>, Vec<Vec<u8>>, u64) {
    let resumed = Arc::default();
    let got = Arc::default();
    let args = Args::new()
        .with_workers(2)
        .with_resilience(state, SyncPolicy::BeforeOutput);
    let made = Made {
        count,
        resumed: Arc::clone(&resumed),
    };
    let app = Application::new("message connector")
        .pipeline("p", MessageSource::new(made))
        .to_state_partition(add_one, "counts", by_key)
        .to_sink(Sink::to_connector(Collect(Arc::clone(&got)), encode));
    let running = app.start(&args).unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let mut counted = 0;
    while std::time::Instant::now() < deadline {
        counted = running.source_counts(0).unwrap().messages;
        if counted >= expect {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    running.wait().unwrap();
    let resumed = resumed.lock().unwrap().clone();
    let got = got.lock().unwrap().clone();
    (resumed, got, counted)
}

#[test]
fn a_message_connector_feeds_values_that_are_applied_once_across_restarts() {
    let tmp = TempDir::new("message-connector");
    let state = tmp.0.join("state");
    let (resumed, got, counted) = run_made(&state, 700, 700);
    assert_eq!(resumed, [0, 0]);
    assert_eq!(counted, 700, "every message counted by the source");
    assert_eq!(got.len(), 700);
    let mut totals = [0u64; 7];
    for message in &got {
        let n: u64 = std::str::from_utf8(&message[1..]).unwrap().parse().unwrap();
        let key = usize::from(message[0]);
        totals[key] = totals[key].max(n);
    }
    assert_eq!(totals, [100; 7]);

    // Made again from where the stream was applied: nothing counts twice.
    let (resumed, got, _) = run_made(&state, 700, 0);
    assert_eq!(resumed, [350, 350]);
    assert!(got.is_empty(), "{} messages counted twice", got.len());
}
