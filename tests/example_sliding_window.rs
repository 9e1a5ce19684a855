//! The Sliding Window example: per-sensor windows from the shipped file, over loopback TCP,
//! and from the in-process generator; every average to one sink, the alerts to another.

#[allow(dead_code)]
#[path = "../examples/sliding_window.rs"]
mod sliding_window;
mod support;

use std::collections::BTreeMap;

use support::{data_file, send_bytes, Receiver, TempDir};
use wallaroo::Args;

/// What the example should output for `readings`, computed here without the framework:
/// (averages, alerts), each line as the encoders write it.
fn model(readings: &[(String, f64)]) -> (Vec<String>, Vec<String>) {
    let mut windows: BTreeMap<&str, Vec<f64>> = BTreeMap::new();
    let (mut averages, mut alerts) = (Vec::new(), Vec::new());
    for (sensor, value) in readings {
        let window = windows.entry(sensor).or_default();
        let before = (window.len() == 5).then(|| window.iter().sum::<f64>() / 5.0);
        if window.len() == 5 {
            window.remove(0);
        }
        window.push(*value);
        let average = window.iter().sum::<f64>() / window.len() as f64;
        averages.push(format!("{sensor} {average:.2} over {}", window.len()));
        if let Some(before) = before.filter(|b| (value - b).abs() > 5.0) {
            alerts.push(format!(
                "alert: {sensor} {value:.2} is {:+.2} from the average {before:.2} of the last 5",
                value - before
            ));
        }
    }
    (averages, alerts)
}

/// Lines grouped by their first word (the sensor), each group in its order.
fn by_sensor(lines: &[String]) -> BTreeMap<String, Vec<String>> {
    let mut groups: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for line in lines {
        let sensor = line
            .trim_start_matches("alert: ")
            .split(' ')
            .next()
            .unwrap();
        groups
            .entry(sensor.to_string())
            .or_default()
            .push(line.clone());
    }
    groups
}

fn lines(text: &str) -> Vec<String> {
    text.lines().map(String::from).collect()
}

#[test]
fn the_shipped_file_gives_every_average_and_two_alerts() {
    let dir = TempDir::new("sliding-window");
    let args = Args::new()
        .with_input(data_file("readings.txt"))
        .with_output(dir.address("averages.txt"))
        .with_output(dir.address("alerts.txt"))
        .with_workers(1);
    sliding_window::sliding_window(&args, &Default::default())
        .run(&args, |_| {})
        .unwrap();
    assert_eq!(
        dir.read("averages.txt"),
        "\
oven 180.00 over 1
oven 180.75 over 2
fridge 4.00 over 1
oven 180.33 over 3
fridge 4.25 over 2
oven 180.38 over 4
fridge 4.00 over 3
oven 180.30 over 5
fridge 4.00 over 4
oven 183.30 over 5
fridge 4.00 over 5
fridge 5.70 over 5
oven 183.20 over 5
"
    );
    assert_eq!(
        dir.read("alerts.txt"),
        "\
alert: oven 195.00 is +14.70 from the average 180.30 of the last 5
alert: fridge 12.50 is +8.50 from the average 4.00 of the last 5
"
    );
}

#[test]
fn without_input_the_generator_feeds_the_demo_stream_and_the_run_ends() {
    let dir = TempDir::new("sliding-window");
    let args = Args::new()
        .with_output(dir.address("averages.txt"))
        .with_output(dir.address("alerts.txt"))
        .with_workers(2);
    sliding_window::sliding_window(&args, &Default::default())
        .run(&args, |_| {})
        .unwrap();
    let demo: Vec<(String, f64)> = (0..)
        .map_while(sliding_window::demo_reading)
        .map(|r| (r.sensor, r.value))
        .collect();
    assert_eq!(demo.len(), 90);
    let (averages, alerts) = model(&demo);
    // Two workers: sensors interleave freely, each sensor's lines keep their order.
    assert_eq!(
        by_sensor(&lines(&dir.read("averages.txt"))),
        by_sensor(&averages)
    );
    assert_eq!(
        by_sensor(&lines(&dir.read("alerts.txt"))),
        by_sensor(&alerts)
    );
    assert_eq!(
        alerts,
        [
            "alert: boiler-2 92.50 is +11.80 from the average 80.70 of the last 5",
            "alert: chiller -2.00 is -8.30 from the average 6.30 of the last 5",
        ]
    );
}

#[test]
fn readings_over_tcp_slide_each_sensors_window_and_alert_on_jumps() {
    let averages_receiver = Receiver::start();
    let alerts_receiver = Receiver::start();
    let args = Args::new()
        .with_input("127.0.0.1:0")
        .with_output(averages_receiver.addr.to_string().as_str())
        .with_output(alerts_receiver.addr.to_string().as_str())
        .with_workers(3);
    let running = sliding_window::sliding_window(&args, &Default::default())
        .start(&args)
        .unwrap();
    let addr = running.local_addr(0).unwrap();

    // 20 sensors, 50 readings each, a saw-tooth with a jump every 17th reading.
    let mut readings = Vec::new();
    for step in 0..50u32 {
        for sensor in 0..20u32 {
            let jump = if (step + sensor) % 17 == 16 { 9.0 } else { 0.0 };
            let value = f64::from(sensor) + f64::from(step % 4) * 0.5 + jump;
            readings.push((format!("s{sensor:02}"), value));
        }
    }
    let mut text = String::from("not a reading\n");
    for (sensor, value) in &readings {
        text.push_str(&format!("{sensor}\t{value}\n"));
    }
    text.push_str("s00 NaN\n");
    send_bytes(addr, text.as_bytes());

    let (averages, alerts) = model(&readings);
    assert!(alerts.len() > 20, "the data has jumps: {}", alerts.len());
    let got_averages = averages_receiver.wait_for(averages.len());
    let got_alerts = alerts_receiver.wait_for(alerts.len());
    let counts = support::counts_when(&running, 0, |c| c.messages + c.decode_errors >= 1002);
    running.stop().unwrap();
    assert_eq!(by_sensor(&got_averages), by_sensor(&averages));
    assert_eq!(by_sensor(&got_alerts), by_sensor(&alerts));
    assert_eq!(counts.messages, 1000);
    assert_eq!(counts.decode_errors, 2);
}

#[test]
fn the_steps_are_plain_functions_too() {
    use sliding_window::{Reading, Windowed};
    let reading = Reading {
        sensor: "x".into(),
        value: 10.0,
    };
    let windowed = |before| Windowed {
        reading: reading.clone(),
        average: 9.0,
        count: 5,
        before,
    };
    assert_eq!(sliding_window::outliers(windowed(None)), None);
    assert_eq!(sliding_window::outliers(windowed(Some(6.0))), None);
    assert!(sliding_window::outliers(windowed(Some(4.0))).is_some());
    assert_eq!(
        sliding_window::decode::call(b"oven  180.5").unwrap().value,
        180.5
    );
}

#[test]
fn the_topology_draws_each_sink_after_the_step_that_feeds_it() {
    let topology = sliding_window::sliding_window(&Args::new(), &Default::default())
        .topology()
        .clone();
    let pipeline = &topology.pipelines[0];
    let steps: Vec<&str> = pipeline.steps.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(steps, ["slide window", "keep outliers"]);
    let sinks: Vec<(&str, Option<usize>)> = pipeline
        .sinks
        .iter()
        .map(|s| (s.encoder.as_str(), s.after))
        .collect();
    assert_eq!(
        sinks,
        [("encode_average", Some(0)), ("encode_alert", Some(1))]
    );
    let json: serde_json::Value = serde_json::from_str(&topology.to_json()).unwrap();
    assert_eq!(json["pipelines"][0]["sinks"][0]["after"], 0);
    assert_eq!(json["pipelines"][0]["sinks"][1]["after"], 1);
    let dot = topology.to_dot();
    assert!(dot.contains("p0_step0 -> p0_sink0 "), "{dot}");
    assert!(dot.contains("p0_step1 -> p0_sink1 "), "{dot}");
    assert!(!dot.contains("p0_step1 -> p0_sink0 "), "{dot}");
}
