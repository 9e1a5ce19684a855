//! Micro-benchmarks of the hot path, one stage at a time, on the Alphabet application's own
//! decoder, state computation and encoder.
//!
//! ```sh
//! cargo bench --bench hot_path                 # every group
//! cargo bench --bench hot_path -- handoff      # one group (criterion's name filter)
//! ```
//!
//! Throughput is in messages (criterion's "elem/s").

#[allow(dead_code)]
#[path = "../examples/alphabet.rs"]
mod alphabet;

use std::any::Any;
use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use wallaroo::prelude::*;
use wallaroo::source::framing::{Fill, FrameReader, DEFAULT_MAX_FRAME};
use wallaroo::{Encoder, StateComputation};

use alphabet::LetterAndVotes;

const LETTERS: &[u8; 27] = b"abcdefghijklmnopqrstuvwxyz!";

/// `count` Alphabet frames of one vote each, the letters in turn.
fn alphabet_frames(count: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(count * 9);
    for i in 0..count {
        out.extend_from_slice(&5u32.to_be_bytes());
        out.push(LETTERS[i % LETTERS.len()]);
        out.extend_from_slice(&1u32.to_be_bytes());
    }
    out
}

fn votes(count: usize) -> Vec<LetterAndVotes> {
    (0..count)
        .map(|i| LetterAndVotes {
            letter: LETTERS[i % LETTERS.len()],
            votes: 1,
        })
        .collect()
}

/// Cuts `stream` into frames as a source does, read by read, handing `each` every payload.
fn cut_frames(mut stream: &[u8], mut each: impl FnMut(&[u8])) {
    let mut reader = FrameReader::new(Framing::DEFAULT, DEFAULT_MAX_FRAME);
    loop {
        reader
            .for_each_frame(|payload, _| each(payload))
            .expect("well-formed");
        if reader.fill(&mut stream).expect("a slice reads") == Fill::End {
            break;
        }
    }
}

/// Frame decode: the source's FrameReader cutting a buffer of Alphabet frames, with and
/// without the decoder, next to a hand-written loop over the same bytes.
fn frame_decode(c: &mut Criterion) {
    const FRAMES: usize = 64 * 1024;
    let stream = alphabet_frames(FRAMES);
    let mut group = c.benchmark_group("frame_decode");
    group.throughput(Throughput::Elements(FRAMES as u64));
    group.bench_function("FrameReader::next_frame", |b| {
        b.iter(|| {
            let mut reader = FrameReader::new(Framing::DEFAULT, DEFAULT_MAX_FRAME);
            let mut source = black_box(&stream[..]);
            let mut bytes = 0usize;
            loop {
                while let Some(payload) = reader.next_frame().expect("well-formed") {
                    bytes += payload.len();
                }
                if reader.fill(&mut source).expect("a slice reads") == Fill::End {
                    break;
                }
            }
            bytes
        })
    });
    group.bench_function("FrameReader::for_each_frame", |b| {
        b.iter(|| {
            let mut bytes = 0usize;
            cut_frames(black_box(&stream[..]), |payload| bytes += payload.len());
            bytes
        })
    });
    // What a source does with each read.
    group.bench_function("FrameReader::for_each_frame + alphabet decode", |b| {
        b.iter(|| {
            let mut sum = 0u64;
            cut_frames(black_box(&stream[..]), |payload| {
                sum += alphabet::decode(payload).map_or(0, |v| v.votes);
            });
            sum
        })
    });
    group.bench_function("hand-written cut + decode", |b| {
        b.iter(|| {
            let bytes = black_box(&stream[..]);
            let mut at = 0usize;
            let mut sum = 0u64;
            while bytes.len() - at >= 4 {
                let len = u32::from_be_bytes(bytes[at..at + 4].try_into().expect("4")) as usize;
                if bytes.len() - at < 4 + len {
                    break;
                }
                sum += alphabet::decode(&bytes[at + 4..at + 4 + len]).map_or(0, |v| v.votes);
                at += 4 + len;
            }
            sum
        })
    });
    group.finish();
}

/// Key routing, through the public API (the router is crate-private): a Generator source
/// feeding `add votes` by letter, ending without a sink. This is generate -> hash -> pick
/// a worker -> batch -> channel -> state update, on 1 and 2 workers.
fn key_routing(c: &mut Criterion) {
    const MESSAGES: u64 = 2_000_000;
    let mut group = c.benchmark_group("key_routing");
    group.throughput(Throughput::Elements(MESSAGES));
    group.sample_size(10);
    for workers in [1usize, 2] {
        group.bench_function(
            format!("generator -> add votes -> done, {workers} workers"),
            |b| {
                b.iter(|| {
                    let args = Args::new().with_workers(workers);
                    let votes = Generator::new(|i| {
                        (i < MESSAGES).then(|| LetterAndVotes {
                            letter: LETTERS[(i % 27) as usize],
                            votes: 1,
                        })
                    });
                    Application::new("Routing")
                        .pipeline("Routing", votes)
                        .to_state_partition(
                            alphabet::add_votes,
                            "running vote totals",
                            alphabet::by_letter,
                        )
                        .done()
                        .run(&args, |_| {})
                        .expect("runs to the end")
                })
            },
        );
    }
    group.finish();
}

/// A message keyed by a name, and the count of its name.
#[derive(Debug, Clone, Copy)]
struct Named(&'static str);

/// How many messages of one name were seen.
#[state]
#[derive(Debug, Default)]
struct NameCount {
    seen: u64,
}

/// The name as an owned `String`: a copy of the name per message.
#[partition]
fn by_owned_name(msg: &Named) -> String {
    msg.0.to_string()
}

/// The name borrowed from the message: no key is made per message.
#[partition]
fn by_name(msg: &Named) -> &str {
    msg.0
}

/// Counts a name; sends nothing on.
#[state_computation(name = "count name")]
fn count_name(_msg: Named, count: &mut NameCount) -> (Option<Named>, bool) {
    count.seen += 1;
    (None, false)
}

/// String keys through the public API: a Generator of 1 000 distinct names feeding
/// `count name` on 2 workers, partitioned by a partition function that returns a `String`
/// (a key made per message, dropped on the worker) or borrows a `&str` from the message.
fn string_keys(c: &mut Criterion) {
    let mut group = c.benchmark_group("string_keys");
    group.throughput(Throughput::Elements(NAMED_MESSAGES));
    group.sample_size(10);
    group.bench_function("partition -> String (a key per message)", |b| {
        b.iter(|| count_names(by_owned_name))
    });
    group.bench_function("partition -> &str (borrowed)", |b| {
        b.iter(|| count_names(by_name))
    });
    group.finish();
}

/// Messages of one `string_keys` run.
const NAMED_MESSAGES: u64 = 2_000_000;

/// One `string_keys` run: the names through `count name`, partitioned by `partition`.
fn count_names<P: wallaroo::Partition<Named, Key = String>>(partition: P) {
    static NAMES: std::sync::OnceLock<Vec<&'static str>> = std::sync::OnceLock::new();
    let names = NAMES.get_or_init(|| (0..1000).map(|i| &*format!("name-{i}").leak()).collect());
    let generator =
        Generator::new(move |i| (i < NAMED_MESSAGES).then(|| Named(names[(i % 1000) as usize])));
    let args = Args::new().with_workers(2);
    Application::new("Names")
        .pipeline("Names", generator)
        .to_state_partition(count_name, "counts", partition)
        .done()
        .run(&args, |_| {})
        .expect("runs to the end");
}

/// State update: the `add votes` state computation applied in a loop, on the states of the
/// 27 letters, called as a function and through the runtime's trait into a buffer.
fn state_update(c: &mut Criterion) {
    const MESSAGES: usize = 64 * 1024;
    let input = votes(MESSAGES);
    let mut group = c.benchmark_group("state_update");
    group.throughput(Throughput::Elements(MESSAGES as u64));
    group.bench_function("add_votes, states by letter", |b| {
        let mut states: Vec<alphabet::RunningVoteTotal> =
            (0..256).map(|_| Default::default()).collect();
        b.iter(|| {
            let mut last = 0;
            for &vote in black_box(&input) {
                let (out, _changed) = alphabet::add_votes(vote, &mut states[vote.letter as usize]);
                last = out.votes;
            }
            last
        })
    });
    group.bench_function("StateComputation::compute into a Vec", |b| {
        let mut states: Vec<alphabet::RunningVoteTotal> =
            (0..256).map(|_| Default::default()).collect();
        let mut out: Vec<LetterAndVotes> = Vec::with_capacity(MESSAGES);
        b.iter(|| {
            out.clear();
            for &vote in black_box(&input) {
                alphabet::add_votes.compute(vote, &mut states[vote.letter as usize], &mut out);
            }
            out.len()
        })
    });
    group.bench_function("add_votes, states in a HashMap by letter", |b| {
        let mut states: std::collections::HashMap<u8, alphabet::RunningVoteTotal> =
            LETTERS.iter().map(|&l| (l, Default::default())).collect();
        b.iter(|| {
            let mut last = 0;
            for &vote in black_box(&input) {
                let state = states.entry(vote.letter).or_default();
                last = alphabet::add_votes(vote, state).0.votes;
            }
            last
        })
    });
    group.finish();
}

/// The Alphabet encoder as it was before `PushText`: `"a => 12\n"` with `writeln!`.
#[encoder]
fn encode_writeln(total: &LetterAndVotes, out: &mut Vec<u8>) {
    use std::io::Write;
    let _ = writeln!(out, "{} => {}", total.letter as char, total.votes);
}

/// Encode: the Alphabet encoder (`PushText`) into a reused 64 KiB buffer, as a worker's sink
/// link does, next to the same line written with `writeln!` and with digits cut by hand.
fn encode(c: &mut Criterion) {
    const MESSAGES: usize = 64 * 1024;
    let input: Vec<LetterAndVotes> = (0..MESSAGES)
        .map(|i| LetterAndVotes {
            letter: LETTERS[i % 27],
            votes: 1_000_000 + i as u64,
        })
        .collect();
    let mut group = c.benchmark_group("encode");
    group.throughput(Throughput::Elements(MESSAGES as u64));
    group.bench_function("alphabet encoder (PushText)", |b| {
        let mut buf = Vec::with_capacity(64 * 1024);
        b.iter(|| {
            let mut bytes = 0;
            for msg in black_box(&input) {
                alphabet::encode.encode(msg, &mut buf);
                if buf.len() >= 64 * 1024 {
                    bytes += buf.len();
                    buf.clear();
                }
            }
            bytes
        })
    });
    group.bench_function("the same line with writeln!", |b| {
        let mut buf = Vec::with_capacity(64 * 1024);
        b.iter(|| {
            let mut bytes = 0;
            for msg in black_box(&input) {
                encode_writeln.encode(msg, &mut buf);
                if buf.len() >= 64 * 1024 {
                    bytes += buf.len();
                    buf.clear();
                }
            }
            bytes
        })
    });
    group.bench_function("same line without core::fmt", |b| {
        let mut buf = Vec::with_capacity(64 * 1024);
        b.iter(|| {
            let mut bytes = 0;
            for msg in black_box(&input) {
                buf.push(msg.letter);
                buf.extend_from_slice(b" => ");
                let mut digits = [0u8; 20];
                let mut n = msg.votes;
                let mut at = digits.len();
                loop {
                    at -= 1;
                    digits[at] = b'0' + (n % 10) as u8;
                    n /= 10;
                    if n == 0 {
                        break;
                    }
                }
                buf.extend_from_slice(&digits[at..]);
                buf.push(b'\n');
                if buf.len() >= 64 * 1024 {
                    bytes += buf.len();
                    buf.clear();
                }
            }
            bytes
        })
    });
    group.finish();
}

/// A message as the router batches it: 32 bits of the key's hash, the key, the message
/// (the runtime's `Keyed` is crate-private; this has its size, 24 bytes for Alphabet's).
#[derive(Clone, Copy)]
#[allow(dead_code)]
struct Keyed {
    hash: u32,
    key: u8,
    msg: LetterAndVotes,
}

/// Channel hand-off: a producer thread sends `MESSAGES` messages to a consumer thread over a
/// bounded flume channel that holds `IN_FLIGHT` messages, one message per send or in
/// batches boxed as the router boxes them (`Box<dyn Any + Send>`, downcast on the other
/// side); 4096 is the router's batch.
fn handoff(c: &mut Criterion) {
    const MESSAGES: u64 = 1 << 20;
    const IN_FLIGHT: usize = 16 * 1024;
    let template = Keyed {
        hash: 0,
        key: b'a',
        msg: LetterAndVotes {
            letter: b'a',
            votes: 1,
        },
    };
    let mut group = c.benchmark_group("handoff");
    group.throughput(Throughput::Elements(MESSAGES));
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(5));
    group.bench_function("flume bounded, 1 message per send", |b| {
        b.iter_custom(|iters| {
            let mut elapsed = Duration::ZERO;
            for _ in 0..iters {
                let (tx, rx) = flume::bounded::<Keyed>(IN_FLIGHT);
                let start = Instant::now();
                let consumer = std::thread::spawn(move || {
                    let mut sum = 0u64;
                    while let Ok(m) = rx.recv() {
                        sum += m.msg.votes;
                    }
                    sum
                });
                for i in 0..MESSAGES {
                    let mut m = template;
                    m.hash = i as u32;
                    tx.send(m).expect("consumer alive");
                }
                drop(tx);
                black_box(consumer.join().expect("consumer"));
                elapsed += start.elapsed();
            }
            elapsed
        })
    });
    for batch in [64usize, 1024, 4096] {
        group.bench_function(format!("flume bounded, batches of {batch}"), |b| {
            b.iter_custom(|iters| {
                let mut elapsed = Duration::ZERO;
                for _ in 0..iters {
                    let (tx, rx) =
                        flume::bounded::<(usize, Box<dyn Any + Send>)>(IN_FLIGHT / batch);
                    let start = Instant::now();
                    let consumer = std::thread::spawn(move || {
                        let mut sum = 0u64;
                        while let Ok((_, batch)) = rx.recv() {
                            let batch = batch.downcast::<Vec<Keyed>>().expect("batch type");
                            for m in *batch {
                                sum += m.msg.votes;
                            }
                        }
                        sum
                    });
                    let mut buffer = Vec::with_capacity(batch);
                    for i in 0..MESSAGES {
                        let mut m = template;
                        m.hash = i as u32;
                        buffer.push(m);
                        if buffer.len() == batch {
                            let full = std::mem::replace(&mut buffer, Vec::with_capacity(batch));
                            tx.send((0, Box::new(full))).expect("consumer alive");
                        }
                    }
                    if !buffer.is_empty() {
                        tx.send((0, Box::new(buffer))).expect("consumer alive");
                    }
                    drop(tx);
                    black_box(consumer.join().expect("consumer"));
                    elapsed += start.elapsed();
                }
                elapsed
            })
        });
    }
    group.finish();
}

criterion_group!(
    benches,
    frame_decode,
    key_routing,
    string_keys,
    state_update,
    encode,
    handoff
);
criterion_main!(benches);
