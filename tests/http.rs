//! `--http`: the metrics, the topology and the states of a running application, read over
//! HTTP with a plain HTTP/1.1 client while it runs.

#[allow(dead_code)]
#[path = "../examples/alphabet.rs"]
mod alphabet;
mod support;
#[allow(dead_code)]
#[path = "../examples/word_count.rs"]
mod word_count;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use support::{connect, send_bytes, send_votes, vote_frame, Receiver};
use wallaroo::resilience::SyncPolicy;
use wallaroo::{Args, OnError, Running};

/// The Alphabet application on loopback with 2 workers and `--http 127.0.0.1:0`.
fn start() -> (Receiver, Running, SocketAddr) {
    let (receiver, running, http, _) = start_with_args();
    (receiver, running, http)
}

/// [`start`], and the arguments it was started with.
fn start_with_args() -> (Receiver, Running, SocketAddr, Args) {
    let receiver = Receiver::start();
    let args = Args::new()
        .with_input("127.0.0.1:0")
        .with_output(receiver.addr.to_string().as_str())
        .with_workers(2)
        .with_http("127.0.0.1:0");
    let running = alphabet::alphabet(&args).start(&args).unwrap();
    let http = running.http_addr().expect("the HTTP server's address");
    (receiver, running, http, args)
}

/// Sends `request` (a whole HTTP request) and returns the status and the body.
fn exchange(addr: SocketAddr, request: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    stream.write_all(request.as_bytes()).unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let (head, body) = response
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("not an HTTP response: {response:?}"));
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status in {head:?}"));
    (status, body.to_string())
}

fn get(addr: SocketAddr, path: &str) -> (u16, String) {
    exchange(
        addr,
        &format!("GET {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n"),
    )
}

/// The value of the sample `name{labels}` in a Prometheus text body.
fn sample(body: &str, series: &str) -> f64 {
    body.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
        .unwrap_or_else(|| panic!("no sample {series} in:\n{body}"))
        .parse()
        .unwrap()
}

/// GETs /metrics until `ready` holds of it (or 10 s pass).
fn metrics_when(addr: SocketAddr, ready: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (status, body) = get(addr, "/metrics");
        assert_eq!(status, 200);
        if ready(&body) || Instant::now() > deadline {
            return body;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

const STATE: &str = "/state/running%20vote%20totals";

/// The Alphabet application as [`start`] starts it, its states kept in `dir` and synced
/// before output.
fn start_resilient(receiver: &Receiver, dir: &std::path::Path) -> (Running, SocketAddr) {
    let args = Args::new()
        .with_input("127.0.0.1:0")
        .with_output(receiver.addr.to_string().as_str())
        .with_workers(2)
        .with_http("127.0.0.1:0")
        .with_resilience(dir, SyncPolicy::BeforeOutput);
    let running = alphabet::alphabet(&args).start(&args).unwrap();
    let http = running.http_addr().expect("the HTTP server's address");
    (running, http)
}

/// The sizes of the log segments in a partition directory, added up.
fn log_file_bytes(dir: &std::path::Path) -> u64 {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "log"))
        .map(|p| std::fs::metadata(p).unwrap().len())
        .sum()
}

/// A resilience sample of the Alphabet's state partition, added up over its 2 workers.
fn per_worker_sum(body: &str, name: &str) -> f64 {
    (0..2)
        .map(|w| {
            sample(
                body,
                &format!("{name}{{state=\"running vote totals\",worker=\"{w}\"}}"),
            )
        })
        .sum()
}

#[test]
fn resilience_metrics_count_the_log_on_disk_and_the_recovery() {
    let dir = std::env::temp_dir().join(format!("wallaroo-http-resilience-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let partition = dir.join("running_vote_totals");
    let recovered = "wallaroo_recovered_keys{state=\"running vote totals\"}";
    let recovery = "wallaroo_recovery_seconds{state=\"running vote totals\"}";
    let keys = "wallaroo_state_keys{state=\"running vote totals\"}";

    let receiver = Receiver::start();
    let (running, http) = start_resilient(&receiver, &dir);
    let mut votes = vec![(b'a', 1); 60];
    votes.extend(vec![(b'b', 2); 40]);
    send_votes(running.local_addr(0).unwrap(), &votes, 7);
    assert_eq!(receiver.wait_for(100).len(), 100);
    // Outputs leave a worker only once its log is written and synced: every record of the
    // 100 votes is on disk, and counted, before the receiver has their lines.
    let body = metrics_when(http, |_| true);
    let logged = per_worker_sum(&body, "wallaroo_log_bytes_total");
    assert!(logged > 0.0, "{body}");
    assert_eq!(logged, log_file_bytes(&partition) as f64, "{body}");
    assert!(per_worker_sum(&body, "wallaroo_log_sync_seconds_count") >= 1.0);
    assert!(per_worker_sum(&body, "wallaroo_log_sync_seconds_sum") > 0.0);
    // Far below the 64 MiB a segment grows to before compaction.
    assert_eq!(per_worker_sum(&body, "wallaroo_snapshots_total"), 0.0);
    // A new directory: recovery found nothing, and took some time to say so.
    assert_eq!(sample(&body, recovered), 0.0);
    assert!(sample(&body, recovery) > 0.0);
    assert!(body.contains("# TYPE wallaroo_log_sync_seconds histogram\n"));
    // The keys declared up front and those the votes made (`a` and `b` among them).
    let held = sample(&body, keys);
    assert!(held >= 2.0, "{body}");
    running.stop().unwrap();

    // Started again on the directory, the application reads back every state it held.
    let receiver = Receiver::start();
    let (running, http) = start_resilient(&receiver, &dir);
    // Each worker publishes its count of keys once its thread runs.
    let body = metrics_when(http, |body| body.contains(&format!("{keys} {held}\n")));
    assert_eq!(sample(&body, recovered), held, "{body}");
    assert!(sample(&body, recovery) > 0.0);
    assert_eq!(sample(&body, keys), held);
    // This run's segments hold only their headers so far: the last run's are gone.
    let logged = per_worker_sum(&body, "wallaroo_log_bytes_total");
    assert!(logged > 0.0);
    assert_eq!(logged, log_file_bytes(&partition) as f64, "{body}");
    running.stop().unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn without_a_resilience_directory_the_resilience_families_are_left_out() {
    let (_receiver, running, http) = start();
    let body = metrics_when(http, |_| true);
    assert!(body.contains("wallaroo_state_keys"), "{body}");
    for family in [
        "wallaroo_log_",
        "wallaroo_snapshot",
        "wallaroo_recovery_seconds",
        "wallaroo_recovered_keys",
    ] {
        assert!(!body.contains(family), "{family} in:\n{body}");
    }
    running.stop().unwrap();
}

#[test]
fn without_a_kafka_source_the_lag_family_is_left_out() {
    let (_receiver, running, http) = start();
    let body = metrics_when(http, |_| true);
    assert!(body.contains("wallaroo_source_messages_total"), "{body}");
    assert!(!body.contains("wallaroo_source_kafka_lag"), "{body}");
    running.stop().unwrap();
}

#[test]
fn metrics_count_exactly_what_a_known_input_did() {
    let (receiver, running, http) = start();
    let addr = running.local_addr(0).unwrap();
    // 60 votes of 1 for `a`, 40 of 2 for `b`, one frame the decoder refuses, on one
    // connection.
    let mut votes = vec![(b'a', 1); 60];
    votes.extend(vec![(b'b', 2); 40]);
    send_votes(addr, &votes, 7);
    let mut stream = connect(addr);
    stream.write_all(&[0, 0, 0, 3, b'a', 0, 0]).unwrap();
    drop(stream);
    let lines = receiver.wait_for(100);
    assert_eq!(lines.len(), 100);
    let body = metrics_when(http, |body| {
        body.contains("wallaroo_source_messages_total{pipeline=\"Alphabet\"} 100\n")
            && body.contains("wallaroo_source_decode_errors_total{pipeline=\"Alphabet\"} 1\n")
            && body.contains("wallaroo_source_open_connections{pipeline=\"Alphabet\"} 0\n")
            // A chunk's latency is observed once the sink's write of it returned: the
            // receiver can see its lines a moment before.
            && body.contains("wallaroo_latency_seconds_count{pipeline=\"Alphabet\"} 100\n")
    });
    let p = "{pipeline=\"Alphabet\"}";
    assert_eq!(
        sample(&body, &format!("wallaroo_source_messages_total{p}")),
        100.0
    );
    assert_eq!(
        sample(&body, &format!("wallaroo_source_decode_errors_total{p}")),
        1.0
    );
    assert_eq!(
        sample(&body, &format!("wallaroo_source_framing_errors_total{p}")),
        0.0
    );
    assert_eq!(
        sample(&body, &format!("wallaroo_source_bytes_total{p}")),
        (100 * 9 + 7) as f64
    );
    assert_eq!(
        sample(&body, &format!("wallaroo_source_connections_total{p}")),
        2.0
    );
    assert_eq!(
        sample(&body, &format!("wallaroo_source_open_connections{p}")),
        0.0
    );
    assert_eq!(
        sample(&body, &format!("wallaroo_sink_messages_total{p}")),
        100.0
    );
    let bytes: usize = lines.iter().map(|l| l.len() + 1).sum();
    assert_eq!(
        sample(&body, &format!("wallaroo_sink_bytes_total{p}")),
        bytes as f64
    );
    // `a`..`z` and `!` are declared; `a` and `b` are among them.
    assert_eq!(
        sample(&body, "wallaroo_state_keys{state=\"running vote totals\"}"),
        27.0
    );
    let taken: f64 = (0..2)
        .map(|w| {
            sample(
                &body,
                &format!("wallaroo_worker_messages_total{{state=\"running vote totals\",worker=\"{w}\"}}"),
            )
        })
        .sum();
    assert_eq!(taken, 100.0);
    let busy: f64 = (0..2)
        .map(|w| {
            sample(
                &body,
                &format!("wallaroo_worker_busy_seconds_total{{state=\"running vote totals\",worker=\"{w}\"}}"),
            )
        })
        .sum();
    assert!(busy > 0.0 && busy < 10.0, "busy {busy} s");
    for w in 0..2 {
        assert_eq!(
            sample(
                &body,
                &format!(
                    "wallaroo_worker_queue_depth{{state=\"running vote totals\",worker=\"{w}\"}}"
                )
            ),
            0.0
        );
    }
    assert_eq!(
        sample(&body, &format!("wallaroo_sink_connections_total{p}")),
        1.0
    );
    assert!(sample(&body, &format!("wallaroo_sink_blocked_seconds_total{p}")) >= 0.0);
    // Alphabet has no stateless step.
    assert!(!body.contains("wallaroo_step_messages_in_total{"));
    for w in 0..2 {
        let series = format!(
            "wallaroo_worker_blocked_seconds_total{{state=\"running vote totals\",worker=\"{w}\"}}"
        );
        assert!(sample(&body, &series) >= 0.0);
    }
    // Every output was observed once, in the histogram's last bucket at least.
    assert_eq!(
        sample(&body, &format!("wallaroo_latency_seconds_count{p}")),
        100.0
    );
    assert_eq!(
        sample(
            &body,
            "wallaroo_latency_seconds_bucket{pipeline=\"Alphabet\",le=\"+Inf\"}"
        ),
        100.0
    );
    assert!(sample(&body, &format!("wallaroo_latency_seconds_sum{p}")) > 0.0);
    assert!(body.contains("# TYPE wallaroo_latency_seconds histogram\n"));
    running.stop().unwrap();
}

#[test]
fn a_stateless_step_counts_the_messages_it_takes_and_those_it_passes_on() {
    // Plain, and guarded against panics (a step link of another kind).
    for on_error in [OnError::Stop, OnError::Skip] {
        let receiver = Receiver::start();
        let args = Args::new()
            .with_input("127.0.0.1:0")
            .with_output(receiver.addr.to_string().as_str())
            .with_workers(2)
            .with_http("127.0.0.1:0")
            .with_on_error(on_error);
        let running = word_count::word_count(&args).start(&args).unwrap();
        let http = running.http_addr().unwrap();
        // 4 lines, 7 words: one line fans out into 5, one into none.
        send_bytes(
            running.local_addr(0).unwrap(),
            b"the cat saw the dog\n...\nThe end\n\n",
        );
        assert_eq!(receiver.wait_for(7).len(), 7);
        let series = |what: &str| {
            format!("wallaroo_step_messages_{what}_total{{pipeline=\"Word Count\",step=\"split into words\"}}")
        };
        let body = metrics_when(http, |body| {
            body.contains(&format!("{} 4\n", series("in")))
                && body.contains(&format!("{} 7\n", series("out")))
        });
        assert_eq!(sample(&body, &series("in")), 4.0);
        assert_eq!(sample(&body, &series("out")), 7.0);
        assert_eq!(
            sample(
                &body,
                "wallaroo_sink_messages_total{pipeline=\"Word Count\"}"
            ),
            7.0
        );
        // A few batches, in a worker channel that has room for them: the source never waited.
        assert_eq!(
            sample(
                &body,
                "wallaroo_source_blocked_seconds_total{pipeline=\"Word Count\"}"
            ),
            0.0
        );
        running.stop().unwrap();
    }
}

#[test]
fn a_source_held_back_by_full_worker_channels_counts_its_wait() {
    // A receiver that accepts the sink's connection and reads nothing until told.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let output = listener.local_addr().unwrap().to_string();
    let (drain_tx, drain_rx) = std::sync::mpsc::channel::<()>();
    let stalled = std::thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        drain_rx.recv().unwrap();
        std::io::copy(&mut stream, &mut std::io::sink()).unwrap();
    });
    let args = Args::new()
        .with_input("127.0.0.1:0")
        .with_output(output.as_str())
        .with_workers(1)
        .with_http("127.0.0.1:0");
    let running = alphabet::alphabet(&args).start(&args).unwrap();
    let http = running.http_addr().unwrap();
    let addr = running.local_addr(0).unwrap();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let sender = {
        let stop = std::sync::Arc::clone(&stop);
        std::thread::spawn(move || {
            let mut stream = connect(addr);
            let buf: Vec<u8> = (0..10_000u32)
                .flat_map(|i| vote_frame(b'a' + (i % 26) as u8, 1))
                .collect();
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                stream.write_all(&buf).unwrap();
            }
        })
    };
    // The worker's channel full: the source is held back (or about to be, at its next
    // send), and stays so while the sink's receiver reads nothing.
    let depth = "wallaroo_worker_queue_depth{state=\"running vote totals\",worker=\"0\"}";
    let deadline = Instant::now() + Duration::from_secs(60);
    while sample(&get(http, "/metrics").1, depth) < 4.0 {
        assert!(
            Instant::now() < deadline,
            "the worker's channel never filled"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let series = "wallaroo_source_blocked_seconds_total{pipeline=\"Alphabet\"}";
    let before = sample(&get(http, "/metrics").1, series);
    let held = Duration::from_millis(500);
    std::thread::sleep(held);
    // Drained: the send that waits ends, and adds its wait, most of the time held.
    drain_tx.send(()).unwrap();
    let body = metrics_when(http, |body| sample(body, series) >= before + 0.3);
    let after = sample(&body, series);
    assert!(
        after >= before + 0.3,
        "waited {before} s, then {after} s, held back {held:?}"
    );
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    sender.join().unwrap();
    running.stop().unwrap();
    stalled.join().unwrap();
}

#[test]
fn the_latency_runs_until_the_sink_writes_not_until_it_is_handed_the_output() {
    // The sink's receiver is not there yet: the output is encoded and handed to the sink's
    // thread at once, and written only once the receiver listens, a second later.
    let port = support::free_port();
    let output = format!("127.0.0.1:{port}");
    let args = Args::new()
        .with_input("127.0.0.1:0")
        .with_output(output.as_str())
        .with_workers(2)
        .with_http("127.0.0.1:0");
    let running = alphabet::alphabet(&args).start(&args).unwrap();
    let http = running.http_addr().unwrap();
    send_votes(running.local_addr(0).unwrap(), &[(b'a', 1); 100], 10);
    let p = "{pipeline=\"Alphabet\"}";
    let handed = format!("wallaroo_sink_messages_total{p} 100\n");
    metrics_when(http, |body| body.contains(&handed));
    let body = get(http, "/metrics").1;
    assert_eq!(
        sample(&body, &format!("wallaroo_latency_seconds_count{p}")),
        0.0,
        "handed to the sink's thread, not written: not observed yet"
    );
    let stalled = Duration::from_secs(1);
    std::thread::sleep(stalled);
    let listener = std::net::TcpListener::bind(output.as_str()).unwrap();
    let (stream, _) = listener.accept().unwrap();
    let mut lines = std::io::BufReader::new(stream);
    for _ in 0..100 {
        let mut line = String::new();
        std::io::BufRead::read_line(&mut lines, &mut line).unwrap();
        assert!(line.starts_with("a => "), "{line:?}");
    }
    let observed = format!("wallaroo_latency_seconds_count{p} 100\n");
    let body = metrics_when(http, |body| body.contains(&observed));
    assert_eq!(
        sample(&body, &format!("wallaroo_latency_seconds_count{p}")),
        100.0
    );
    // Every message waited for the receiver: none within half a second, and at least the
    // second the receiver was away on average.
    assert_eq!(
        sample(
            &body,
            "wallaroo_latency_seconds_bucket{pipeline=\"Alphabet\",le=\"0.5\"}"
        ),
        0.0,
        "{body}"
    );
    let sum = sample(&body, &format!("wallaroo_latency_seconds_sum{p}"));
    assert!(sum >= 100.0 * stalled.as_secs_f64(), "sum {sum} s");
    running.stop().unwrap();
}

#[test]
fn the_state_of_a_key_is_its_workers_answer() {
    let (receiver, running, http) = start();
    let addr = running.local_addr(0).unwrap();
    let mut votes = vec![(b'a', 1); 60];
    votes.extend(vec![(b'b', 2); 40]);
    send_votes(addr, &votes, 5);
    receiver.wait_for(100);

    assert_eq!(
        get(http, &format!("{STATE}?key=97")),
        (200, "{\"votes\":60}".into())
    );
    assert_eq!(
        get(http, &format!("{STATE}?key=98")),
        (200, "{\"votes\":80}".into())
    );
    // Declared, never voted for.
    assert_eq!(
        get(http, &format!("{STATE}?key=120")),
        (200, "{\"votes\":0}".into())
    );

    // A `u8` never seen: no state.
    let (status, body) = get(http, &format!("{STATE}?key=200"));
    assert_eq!(status, 404, "{body}");
    let error: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert!(
        error["error"].as_str().unwrap().contains("no state"),
        "{body}"
    );

    // Not a `u8`: a string, a number out of range, not JSON, or no key at all.
    for key in ["%22a%22", "300", "nope", "-1"] {
        let (status, body) = get(http, &format!("{STATE}?key={key}"));
        assert_eq!(status, 400, "key {key}: {body}");
        let error: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert!(
            error["error"].as_str().unwrap().contains("malformed key"),
            "{body}"
        );
    }
    assert_eq!(get(http, STATE).0, 400);

    let (status, body) = get(http, "/state/no%20such%20state?key=97");
    assert_eq!(status, 404);
    assert!(
        body.contains("running vote totals"),
        "names the states there are: {body}"
    );
    running.stop().unwrap();
}

#[test]
fn the_topology_is_the_json_the_flag_prints_and_other_requests_are_refused() {
    let (_receiver, running, http, args) = start_with_args();
    let expected = alphabet::alphabet(&args).topology().to_json();
    assert_eq!(get(http, "/topology"), (200, expected));

    let (status, body) = get(http, "/nowhere");
    assert_eq!(status, 404);
    assert!(serde_json::from_str::<serde_json::Value>(&body).unwrap()["error"].is_string());
    let (status, body) = exchange(
        http,
        "POST /metrics HTTP/1.1\r\nHost: test\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(status, 405, "{body}");
    running.stop().unwrap();
}

#[test]
fn the_live_page_is_one_html_file_that_loads_nothing_from_elsewhere() {
    let (_receiver, running, http) = start();
    let mut stream = TcpStream::connect(http).unwrap();
    stream
        .write_all(b"GET / HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let (head, body) = response.split_once("\r\n\r\n").unwrap();
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(
        head.lines()
            .any(|h| h.eq_ignore_ascii_case("content-type: text/html; charset=utf-8")),
        "{head}"
    );
    assert!(body.starts_with("<!doctype html>"));
    // Its script and style are inline; it reads the application's own paths.
    for outside in ["http://", "https://", "src=", "<link", "@import"] {
        assert!(!body.contains(outside), "the page refers to {outside:?}");
    }
    // `url(...)` only for the markers of its own SVG.
    assert!(body.split("url(").skip(1).all(|rest| rest.starts_with('#')));
    assert!(body.contains("fetch(\"/topology\"") && body.contains("fetch(\"/metrics\""));
    running.stop().unwrap();
}

#[test]
fn silent_and_malformed_clients_hold_up_neither_the_server_nor_the_pipeline() {
    let (receiver, running, http) = start();
    let addr = running.local_addr(0).unwrap();
    // Clients that connect and send nothing, and one that sends garbage.
    let silent: Vec<TcpStream> = (0..50).map(|_| TcpStream::connect(http).unwrap()).collect();
    let mut garbage = TcpStream::connect(http).unwrap();
    garbage
        .write_all(b"\x00\x01 not http at all\r\n\r\n")
        .unwrap();
    // The pipeline goes on, and the server answers.
    send_votes(addr, &[(b'c', 3); 10], 10);
    assert_eq!(receiver.wait_for(10).len(), 10);
    let body = metrics_when(http, |body| {
        body.contains("wallaroo_source_messages_total{pipeline=\"Alphabet\"} 10\n")
    });
    assert_eq!(
        sample(&body, "wallaroo_sink_messages_total{pipeline=\"Alphabet\"}"),
        10.0
    );
    assert_eq!(
        get(http, &format!("{STATE}?key=99")),
        (200, "{\"votes\":30}".into())
    );
    drop(silent);
    drop(garbage);
    running.stop().unwrap();
}

/// A child process, killed when this is dropped (at the end of a test, or as it panics).
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The threads of process `pid` now, from `/proc/PID/status`.
fn threads_of(pid: u32) -> usize {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("Threads:"))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("no Threads: line in\n{status}"))
}

#[test]
fn hundreds_of_idle_connections_grow_no_thread_and_a_scrape_still_answers() {
    // In a process of its own, so that its thread count is the application's alone.
    let port = support::free_port();
    let http: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let app = std::process::Command::new(support::example_bin("alphabet"))
        .args([
            "--in",
            "127.0.0.1:0",
            "--out",
            "file:/dev/null",
            "--workers",
            "2",
        ])
        .args(["--http", &http.to_string()])
        .env("RUST_LOG", "warn")
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("run the alphabet example");
    let app = KillOnDrop(app);
    let deadline = Instant::now() + Duration::from_secs(30);
    while TcpStream::connect(http).is_err() {
        assert!(
            Instant::now() < deadline,
            "the application never served --http"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(get(http, "/metrics").0, 200);
    let before = threads_of(app.0.id());

    // 200 clients that connect and send nothing, all at once.
    let idle: Vec<TcpStream> = (0..200)
        .map(|_| TcpStream::connect(http).unwrap())
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    let during = threads_of(app.0.id());
    assert!(
        during <= before,
        "{before} threads before 200 idle connections, {during} with them"
    );
    // A scrape is answered at once: it takes the place of the silent client that waited
    // longest, not a new thread.
    let asked = Instant::now();
    let (status, body) = get(http, "/metrics");
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("wallaroo_source_messages_total{pipeline=\"Alphabet\"} 0\n"));
    assert!(
        asked.elapsed() < Duration::from_secs(3),
        "answered in {:?}",
        asked.elapsed()
    );
    // Every idle connection is closed by the server: the oldest as newer ones came (or
    // answered 503, when they came faster than the pool's threads turned over), the last
    // ones after the read timeout (5 s).
    let mut refused = 0;
    for mut stream in idle {
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let mut answer = Vec::new();
        let read = stream.read_to_end(&mut answer);
        let answer = String::from_utf8_lossy(&answer);
        match read {
            Ok(_) if answer.is_empty() => {}
            Ok(_) if answer.starts_with("HTTP/1.1 503 ") => refused += 1,
            Ok(_) => panic!("a client that sent nothing was answered {answer:?}"),
            Err(e) => panic!("an idle connection is still open after 10 s: {e}"),
        }
    }
    eprintln!(
        "threads: {before} before, {during} with 200 idle connections; of these, {refused} \
         were answered 503, the rest closed"
    );
    let after = threads_of(app.0.id());
    assert!(after <= before, "{before} threads before, {after} after");
    assert_eq!(get(http, "/metrics").0, 200);
    drop(app);
}

#[test]
fn an_address_that_cannot_be_served_is_a_usage_error() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let args = Args::new()
        .with_input("127.0.0.1:0")
        .with_output("-")
        .with_http(taken.local_addr().unwrap().to_string());
    let err = match alphabet::alphabet(&args).start(&args) {
        Ok(_) => panic!("started on a port that is taken"),
        Err(e) => e.to_string(),
    };
    assert!(err.contains("--http"), "{err}");
    // Without --http there is no server.
    let (_r, running) = {
        let receiver = Receiver::start();
        let args = Args::new()
            .with_input("127.0.0.1:0")
            .with_output(receiver.addr.to_string().as_str());
        let running = alphabet::alphabet(&args).start(&args).unwrap();
        (receiver, running)
    };
    assert_eq!(running.http_addr(), None);
    running.stop().unwrap();
}
