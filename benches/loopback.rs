//! End-to-end throughput of the Alphabet application over loopback TCP.
//!
//! ```sh
//! cargo bench --bench loopback                          # defaults below
//! cargo bench --bench loopback -- --messages 20000000 --connections 4 --workers 2 --keys 27
//! ```
//!
//! A sender writes pre-encoded vote frames as fast as the application takes them (over one
//! or more connections); a receiver reads the output lines. Throughput is messages per
//! second from the first byte sent to the last total line received.

#[allow(dead_code)]
#[path = "../examples/alphabet.rs"]
mod alphabet;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::Instant;

use wallaroo::Args;

struct Options {
    messages: u64,
    connections: usize,
    workers: usize,
    keys: u32,
}

fn options() -> Options {
    let mut o = Options {
        messages: 10_000_000,
        connections: 1,
        workers: 2,
        keys: 27,
    };
    let args: Vec<String> = std::env::args().collect();
    let mut i = 1;
    while i < args.len() {
        let value = || args.get(i + 1).map(String::as_str).unwrap_or("");
        match args[i].as_str() {
            "--messages" => o.messages = value().parse().expect("--messages N"),
            "--connections" => o.connections = value().parse().expect("--connections N"),
            "--workers" => o.workers = value().parse().expect("--workers N"),
            "--keys" => o.keys = value().parse().expect("--keys N"),
            // cargo bench passes --bench; ignore what is not ours.
            _ => {
                i += 1;
                continue;
            }
        }
        i += 2;
    }
    o
}

/// Frames for one connection: `count` votes of 1 over `keys` letters (bytes, wrapping).
fn frames(count: u64, keys: u32, offset: u64) -> Vec<u8> {
    let mut out = Vec::with_capacity(count as usize * 9);
    for i in 0..count {
        let key = ((i + offset) % u64::from(keys)) as u8;
        out.extend_from_slice(&5u32.to_be_bytes());
        out.push(key_byte(key));
        out.extend_from_slice(&1u32.to_be_bytes());
    }
    out
}

fn main() {
    let o = options();
    assert!(
        (1..=255).contains(&o.keys),
        "the Alphabet key is one byte: --keys 1..=255"
    );
    let receiver = TcpListener::bind("127.0.0.1:0").unwrap();
    let args = Args::new()
        .with_input("127.0.0.1:0")
        .with_output(receiver.local_addr().unwrap().to_string())
        .with_workers(o.workers);
    let running = alphabet::alphabet(&args).start(&args).unwrap();
    let input = running.local_addr(0).unwrap();

    let per_conn = o.messages / o.connections as u64;
    let total = per_conn * o.connections as u64;
    let payloads: Vec<Vec<u8>> = (0..o.connections)
        .map(|c| frames(per_conn, o.keys, c as u64))
        .collect();

    let reader = std::thread::spawn(move || {
        let (mut conn, _) = receiver.accept().unwrap();
        let mut buf = vec![0u8; 1 << 20];
        let mut lines = 0u64;
        while lines < total {
            let n = conn.read(&mut buf).unwrap();
            assert!(n > 0, "the sink closed after {lines} lines");
            lines += memchr_count(&buf[..n]);
        }
        Instant::now()
    });

    let start = Instant::now();
    std::thread::scope(|s| {
        for payload in &payloads {
            s.spawn(move || {
                let mut conn = TcpStream::connect(input).unwrap();
                for chunk in payload.chunks(64 * 1024) {
                    conn.write_all(chunk).unwrap();
                }
            });
        }
    });
    let sent = start.elapsed();
    let end = reader.join().unwrap();
    let elapsed = end - start;
    running.stop().unwrap();
    let rate = total as f64 / elapsed.as_secs_f64();
    println!(
        "loopback alphabet: {total} messages, {} connection(s), {} worker(s), {} keys: {:.2} s, {:.2} M msg/s (sender done after {:.2} s)",
        o.connections,
        o.workers,
        o.keys,
        elapsed.as_secs_f64(),
        rate / 1e6,
        sent.as_secs_f64(),
    );
}

/// The letter of key `index`: `a`..`z`, `!`, then other bytes, never a newline (which would
/// split an output line).
fn key_byte(index: u8) -> u8 {
    const FIRST: &[u8] = b"abcdefghijklmnopqrstuvwxyz!";
    match FIRST.get(index as usize) {
        Some(&letter) => letter,
        None => (0..=255u8)
            .filter(|b| !FIRST.contains(b) && *b != b'\n')
            .nth(index as usize - FIRST.len())
            .expect("at most 255 keys"),
    }
}

fn memchr_count(bytes: &[u8]) -> u64 {
    bytes.iter().filter(|&&b| b == b'\n').count() as u64
}
