//! The Window Average example against ARCHITECTURE.md §9, computed here without the
//! framework: out-of-order readings with late ones and readings at window edges, from a file
//! with one and with several workers, and over loopback TCP, whose close ends the input.

mod support;
#[allow(dead_code)]
#[path = "../examples/window_average.rs"]
mod window_average;

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use support::windows::{grouped, input_text, model, model_until, readings, Reading};
use support::{example_bin, free_port, Receiver, TempDir};
use wallaroo::resilience::SyncPolicy;
use wallaroo::Args;

#[test]
fn the_model_follows_the_contract_on_a_small_input() {
    // Window [0,10000) fires once a reading at 12 000 moves the watermark to 10 000; the
    // reading at 9 999 after it is late; 10 000 opens the next window.
    let readings: Vec<Reading> = [
        ("a", 5_000, 1.0),
        ("a", 9_999, 3.0),
        ("b", 100, 2.0),
        ("a", 11_999, 5.0),
        ("a", 12_000, 7.0),
        ("a", 9_999, 100.0),
        ("b", 10_000, 4.0),
    ]
    .iter()
    .map(|(s, t, v)| (s.to_string(), *t, *v))
    .collect();
    let (out, late) = model(&readings);
    assert_eq!(late, 1);
    assert_eq!(
        out["a"],
        [
            "a [0,10000) count=2 mean=2.000 max=3.000",
            "a [10000,20000) count=2 mean=6.000 max=7.000"
        ]
    );
    assert_eq!(
        out["b"],
        [
            "b [0,10000) count=1 mean=2.000 max=2.000",
            "b [10000,20000) count=1 mean=4.000 max=4.000"
        ]
    );
}

#[test]
fn a_file_of_out_of_order_readings_gives_every_window_as_the_contract_says() {
    let readings = readings(20_000, 9);
    let (expected, late) = model(&readings);
    assert!(late > 100, "the input has late readings: {late}");
    assert!(expected.values().map(Vec::len).sum::<usize>() > 100);
    let dir = TempDir::new("window-average");
    std::fs::write(dir.0.join("in.csv"), input_text(&readings)).unwrap();
    for workers in [1, 3] {
        let out = format!("out-{workers}.txt");
        let args = Args::new()
            .with_input(dir.address("in.csv"))
            .with_output(dir.address(&out))
            .with_workers(workers);
        window_average::window_average(&args, &window_average::Flags::default())
            .run(&args, |_| {})
            .unwrap();
        let got = grouped(&dir.read(&out));
        assert_eq!(got.len(), expected.len(), "{workers} workers");
        for (sensor, lines) in &expected {
            assert_eq!(&got[sensor], lines, "sensor {sensor}, {workers} workers");
        }
    }
}

#[test]
fn the_demo_stream_drops_its_one_late_reading() {
    let dir = TempDir::new("window-average-demo");
    let args = Args::new().with_output(dir.address("out.txt"));
    window_average::window_average(&args, &window_average::Flags::default())
        .run(&args, |_| {})
        .unwrap();
    let readings: Vec<Reading> = (0..)
        .map_while(window_average::demo_reading)
        .map(|r| (r.sensor, r.time, r.value))
        .collect();
    let (expected, late) = model(&readings);
    assert_eq!(late, 1);
    assert_eq!(grouped(&dir.read("out.txt")), expected);
}

#[test]
fn over_tcp_the_input_ends_when_its_connection_closes_and_late_readings_are_counted() {
    let readings = readings(5_000, 21);
    let (_, crossed) = over_tcp(&readings, &[]);
    assert_eq!(crossed, 5_000, "one entry a reading");
}

#[test]
fn combined_before_the_exchange_the_windows_are_the_same_and_far_fewer_entries_cross() {
    let readings = readings(5_000, 21);
    let (windows, crossed) = over_tcp(&readings, &["--pre-aggregate"]);
    // A partial per sensor and window, and the late readings one by one.
    let (_, late) = model(&readings);
    assert!(
        crossed <= windows as u64 + late,
        "{crossed} entries crossed for {windows} windows and {late} late readings"
    );
    assert!(crossed < 5_000 / 10, "{crossed}");
}

/// Runs the example with `flags` over loopback TCP on `readings`, sent in pieces, with two
/// workers: checks its windows against the model and the late count in `/metrics`; how many
/// windows, and how many entries crossed to the workers.
fn over_tcp(readings: &[Reading], flags: &[&str]) -> (usize, u64) {
    let (expected, late) = model(readings);
    let receiver = Receiver::start();
    let (port, http) = (free_port(), free_port());
    let mut app = Command::new(example_bin("window_average"))
        .args(["--in", &format!("127.0.0.1:{port}")])
        .args(["--out", &receiver.addr.to_string()])
        .args(["--http", &format!("127.0.0.1:{http}")])
        .args(["--workers", "2"])
        .args(flags)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stream = support::connect(format!("127.0.0.1:{port}").parse().unwrap());
    support::send_in_pieces(stream, &input_text(readings));
    let windows: usize = expected.values().map(Vec::len).sum();
    let got = receiver.wait_for(windows);
    let counted = format!(
        "wallaroo_window_late_total{{pipeline=\"Readings\",state=\"sensor windows\"}} {late}\n"
    );
    let metrics = support::metrics_when(format!("127.0.0.1:{http}").parse().unwrap(), &counted);
    let _ = app.kill();
    let _ = app.wait();
    assert_eq!(got.len(), windows);
    assert_eq!(grouped(&(got.join("\n") + "\n")), expected);
    assert!(
        metrics.contains(&counted),
        "{late} late readings expected in:\n{metrics}"
    );
    let crossed = metrics
        .lines()
        .filter(|l| l.starts_with("wallaroo_worker_messages_total{"))
        .map(|l| l.rsplit(' ').next().unwrap().parse::<u64>().unwrap())
        .sum();
    (windows, crossed)
}

#[test]
fn a_stop_keeps_the_open_windows_and_the_watermark_for_the_next_run() {
    let mut readings = readings(6_000, 33);
    // The second run begins with a reading for a window that closed in the first: late, as
    // the first run's watermark says, though the new input's own has not got there.
    let closed = readings[..3_000].iter().map(|r| r.1).max().unwrap() - 12_000;
    readings.insert(3_000, ("sensor-1".to_string(), closed, 1.0));
    let (expected, late) = model(&readings);
    assert!(late > 0);
    let (first, second) = readings.split_at(3_000);
    let (before_stop, _) = model_until(first, false);
    let fired_first: usize = before_stop.values().map(Vec::len).sum();
    let total: usize = expected.values().map(Vec::len).sum();
    let dir = TempDir::new("window-average-restart");
    let receiver = Receiver::start();
    let run = |part: &[Reading], wait_for: usize, close: bool| {
        let args = Args::new()
            .with_input("127.0.0.1:0")
            .with_output(receiver.addr.to_string())
            .with_workers(2)
            .with_resilience(dir.0.join("state"), SyncPolicy::BeforeOutput);
        let running = window_average::window_average(&args, &window_average::Flags::default())
            .start(&args)
            .unwrap();
        let mut stream = support::connect(running.local_addr(0).unwrap());
        stream.write_all(input_text(part).as_bytes()).unwrap();
        if close {
            drop(stream);
            receiver.wait_for(wait_for);
            running.stop().unwrap();
        } else {
            // The connection stays open: the stop is not the end of the input.
            receiver.wait_for(wait_for);
            std::thread::sleep(Duration::from_millis(300));
            running.stop().unwrap();
            drop(stream);
        }
    };
    run(first, fired_first, false);
    // What a stop would have fired would be here by now.
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        grouped(&(receiver.lines().join("\n") + "\n")),
        before_stop,
        "a stop fires nothing"
    );
    run(second, total, true);
    let got = receiver.lines();
    assert_eq!(got.len(), total);
    assert_eq!(grouped(&(got.join("\n") + "\n")), expected);
}

#[test]
fn the_shipped_file_gives_the_windows_the_contract_says() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/examples/data/sensor_readings.csv"
    );
    let readings: Vec<Reading> = std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|line| {
            let mut fields = line.split(',');
            let mut next = || fields.next().unwrap();
            (
                next().to_string(),
                next().parse().unwrap(),
                next().parse().unwrap(),
            )
        })
        .collect();
    let (expected, late) = model(&readings);
    assert_eq!(late, 1, "the file has one reading too late");
    let dir = TempDir::new("window-average-shipped");
    let args = Args::new()
        .with_input(support::data_file("sensor_readings.csv"))
        .with_output(dir.address("out.txt"));
    window_average::window_average(&args, &window_average::Flags::default())
        .run(&args, |_| {})
        .unwrap();
    assert_eq!(grouped(&dir.read("out.txt")), expected);
}

#[test]
fn the_topology_shows_the_window_step_and_where_its_time_comes_from() {
    for pre_aggregate in [false, true] {
        topology_of_the_window_step(pre_aggregate);
    }
}

fn topology_of_the_window_step(pre_aggregate: bool) {
    let flags: &[&str] = if pre_aggregate {
        &["--pre-aggregate"]
    } else {
        &[]
    };
    let run = |format: &str| {
        let out = Command::new(example_bin("window_average"))
            .args(["--topology", format])
            .args(flags)
            .env("RUST_LOG", "warn")
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        String::from_utf8(out.stdout).unwrap()
    };
    let json: serde_json::Value = serde_json::from_str(&run("json")).expect("valid JSON");
    let step = &json["pipelines"][0]["steps"][0];
    assert_eq!(step["kind"], "window");
    assert_eq!(step["name"], "Stats");
    assert_eq!(step["state"], "sensor windows");
    assert_eq!(step["partition"], "by_sensor");
    assert_eq!(step["input"], "Reading");
    assert_eq!(step["output"], "Fired<String, Summary>");
    assert_eq!(
        step["window"],
        serde_json::json!({
            "kind": "tumbling",
            "size_ms": 10_000,
            "allowed_lateness_ms": 0,
            "late": "drop",
            "timestamp": "event_time",
            "out_of_orderness_ms": 2_000,
            "pre_aggregate": pre_aggregate,
        })
    );
    let dot = run("dot");
    assert!(dot.starts_with("digraph \"Window Average\" {"), "{dot}");
    let label = dot
        .lines()
        .find(|line| line.contains("p0_step0 ["))
        .unwrap_or_else(|| panic!("no window step in:\n{dot}"));
    assert!(
        label.contains("tumbling 10000 ms, event_time - 2000 ms"),
        "{label}"
    );
    assert_eq!(label.contains("pre-aggregated"), pre_aggregate, "{label}");
    assert!(dot.contains("p0_source -> p0_step0"), "{dot}");
    assert!(dot.contains("p0_step0 -> p0_sink0"), "{dot}");
}

#[test]
fn after_kill_9_the_input_read_again_gives_each_window_once_and_right() {
    killed_and_read_again(&[]);
}

#[test]
fn combined_before_the_exchange_after_kill_9_each_window_is_still_once_and_right() {
    // Readings of a file are logged by position: they cross one by one, exactly once.
    killed_and_read_again(&["--pre-aggregate"]);
}

/// Runs the example with `flags` and a resilience directory on half of an input, kills it,
/// then runs it on the whole input: no window twice, every window right, every window of the
/// second half there.
fn killed_and_read_again(flags: &[&str]) {
    let readings = readings(40_000, 47);
    let (expected, _) = model(&readings);
    let text = input_text(&readings);
    let half = text
        .match_indices('\n')
        .nth(readings.len() / 2)
        .map_or(text.len(), |(at, _)| at + 1);
    let dir = TempDir::new("window-average-kill");
    let input = dir.0.join("in.csv");
    let state = dir.0.join("state");
    let start = |out: &str| {
        Command::new(example_bin("window_average"))
            .args(["--in", &format!("file:{}", input.display())])
            .args(["--out", &dir.address(out)])
            .args(["--resilience-dir", &state.display().to_string()])
            .args(["--workers", "2"])
            .args(flags)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap()
    };
    // The first run reads half of the input from a FIFO that stays open, so that it is
    // still reading when it is killed.
    assert!(Command::new("mkfifo")
        .arg(&input)
        .status()
        .unwrap()
        .success());
    let mut first = start("first.txt");
    let mut fifo = std::fs::OpenOptions::new()
        .write(true)
        .open(&input)
        .unwrap();
    fifo.write_all(&text.as_bytes()[..half]).unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while dir.read("first.txt").lines().count() < 100 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    first.kill().unwrap();
    first.wait().unwrap();
    drop(fifo);
    // The next reads the whole input, at the same name, to its end.
    std::fs::remove_file(&input).unwrap();
    std::fs::write(&input, &text).unwrap();
    let status = start("second.txt").wait().unwrap();
    assert!(status.success());

    let (first, second) = (dir.read("first.txt"), dir.read("second.txt"));
    assert!(
        first.lines().count() >= 100,
        "the first run wrote windows before its kill"
    );
    let mut seen = std::collections::HashSet::new();
    for line in first.lines().chain(second.lines()) {
        assert!(seen.insert(line), "written twice: {line}");
        let sensor = line.split(' ').next().unwrap();
        assert!(
            expected[sensor].iter().any(|l| l == line),
            "not a window of the input: {line}"
        );
    }
    // Every window of the second half fired after the kill: each is there, exactly right.
    let got = grouped(&second);
    let last_time = readings[readings.len() / 2].1;
    for (sensor, lines) in &expected {
        for line in lines {
            let start: i64 = line.split(['[', ',']).nth(1).unwrap().parse().unwrap();
            if start > last_time + 10_000 {
                assert!(got[sensor].contains(line), "missing: {line}");
            }
        }
    }
}
