//! The Celsius example: framed big-endian f64 readings in over loopback TCP and from the
//! shipped file, Fahrenheit lines out, bad payloads skipped.

#[allow(dead_code)]
#[path = "../examples/celsius.rs"]
mod celsius;
mod support;

use support::{data_file, frame, send_bytes, Receiver, TempDir};
use wallaroo::Args;

fn reading(celsius: f64) -> Vec<u8> {
    frame(&celsius.to_be_bytes())
}

#[test]
fn readings_over_tcp_leave_in_fahrenheit_and_bad_ones_are_skipped() {
    let receiver = Receiver::start();
    let args = Args::new()
        .with_input("127.0.0.1:0")
        .with_output(receiver.addr.to_string().as_str());
    let running = celsius::celsius(&args).start(&args).unwrap();
    let addr = running.local_addr(0).unwrap();

    let mut bytes = Vec::new();
    bytes.extend(reading(37.0));
    bytes.extend(reading(f64::NAN));
    bytes.extend(frame(&[1, 2, 3, 4])); // 4 bytes, not 8
    bytes.extend(reading(-17.5));
    bytes.extend(reading(f64::INFINITY));
    bytes.extend(reading(1000.0));
    send_bytes(addr, &bytes);

    let lines = receiver.wait_for(3);
    let counts = support::counts_when(&running, 0, |c| c.messages + c.decode_errors >= 6);
    running.stop().unwrap();
    assert_eq!(lines, ["98.60", "0.50", "1832.00"]);
    assert_eq!(counts.messages, 3);
    assert_eq!(counts.decode_errors, 3);
}

#[test]
fn ten_thousand_readings_each_convert() {
    let receiver = Receiver::start();
    let args = Args::new()
        .with_input("127.0.0.1:0")
        .with_output(receiver.addr.to_string().as_str());
    let running = celsius::celsius(&args).start(&args).unwrap();
    let addr = running.local_addr(0).unwrap();

    // Tenths of a degree from -500.0 to 499.9, in order on one connection.
    let values: Vec<f64> = (-5000..5000).map(|t| f64::from(t) / 10.0).collect();
    let bytes: Vec<u8> = values.iter().flat_map(|&c| reading(c)).collect();
    send_bytes(addr, &bytes);
    let lines = receiver.wait_for(values.len());
    running.stop().unwrap();
    let expected: Vec<String> = values
        .iter()
        .map(|c| format!("{:.2}", c * 1.8 + 32.0))
        .collect();
    assert_eq!(lines, expected);
}

#[test]
fn the_shipped_file_converts_five_readings() {
    let dir = TempDir::new("celsius");
    let args = Args::new()
        .with_input(data_file("celsius.frames"))
        .with_output(dir.address("out.txt"));
    celsius::celsius(&args).run(&args, |_| {}).unwrap();
    assert_eq!(
        dir.read("out.txt"),
        "-40.00\n32.00\n97.88\n212.00\n-459.67\n"
    );
}

#[test]
fn the_steps_are_plain_functions_too() {
    use celsius::{Celsius, Fahrenheit, Scaled};
    assert_eq!(celsius::multiply(Celsius(10.0)), Scaled(18.0));
    assert_eq!(celsius::add(Scaled(18.0)), Fahrenheit(50.0));
    assert!(celsius::decode::call(&[0; 7]).is_err());
}
