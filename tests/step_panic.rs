//! A step that panics stops the application cleanly: what was done before is written, and
//! the error names the step, its state partition and the positions of the batch it failed in.

mod support;

use std::sync::Arc;
use std::time::Duration;

use support::Collect;
use wallaroo::connector::{
    ConnectorError, ConnectorInfo, MessageConnector, MessageInput, MessageSource,
};
use wallaroo::prelude::*;

/// The numbers 0 to 999, each at its position of one stream, a few at a time.
struct Numbers;

impl MessageConnector<u64> for Numbers {
    fn info(&self) -> ConnectorInfo {
        ConnectorInfo::new("numbers", "0..1000")
    }

    fn run(self: Box<Self>, mut input: MessageInput<u64>) -> Result<(), ConnectorError> {
        let stream = input.stream("numbers");
        for i in 0..1000 {
            input.push_at(&stream, i, i);
            if i % 10 == 9 {
                input.flush();
                std::thread::sleep(Duration::from_millis(2));
            }
        }
        input.flush();
        Ok(())
    }
}

#[state]
#[derive(Default)]
struct Sum {
    total: u64,
}

#[partition]
fn by_parity(n: &u64) -> u64 {
    n % 2
}

/// Adds `n` to its parity's sum; 500 is poison.
#[state_computation(name = "add up")]
fn add_up(n: u64, sum: &mut Sum) -> (u64, bool) {
    assert!(n != 500, "cannot add 500");
    sum.total += n;
    (n, true)
}

/// Doubles `n`; 500 is poison.
#[computation]
fn double(n: u64) -> u64 {
    assert!(n != 500, "cannot double 500");
    n * 2
}

#[encoder]
fn encode(n: &u64, out: &mut Vec<u8>) {
    out.push_int(*n);
}

#[test]
fn a_panicking_step_stops_the_application_naming_it_after_writing_what_was_done() {
    let got = Arc::default();
    let args = Args::new().with_workers(2);
    let result = Application::new("panics")
        .pipeline("numbers", MessageSource::new(Numbers))
        .to_state_partition(add_up, "sums", by_parity)
        .to_sink(Sink::to_connector(Collect(Arc::clone(&got)), encode))
        .run(&args, |_| {});
    let message = result.expect_err("the step panicked").to_string();
    for part in [
        "add up",
        "\"sums\"",
        "cannot add 500",
        "input positions 500 to",
    ] {
        assert!(message.contains(part), "{part:?} not in: {message}");
    }
    // What was done before the batch that failed was written.
    let got: Vec<u64> = got
        .lock()
        .unwrap()
        .iter()
        .map(|m| std::str::from_utf8(m).unwrap().parse().unwrap())
        .collect();
    assert!(got.len() >= 400, "{} outputs written", got.len());
    assert!(got.iter().all(|&n| n != 500));
}

#[test]
fn a_step_that_panics_on_a_sources_thread_stops_the_application_naming_its_pipeline() {
    let got = Arc::default();
    let args = Args::new().with_workers(1);
    let result = Application::new("panics")
        .pipeline("doubled", MessageSource::new(Numbers))
        .to(double)
        .to_sink(Sink::to_connector(Collect(Arc::clone(&got)), encode))
        .run(&args, |_| {});
    let message = result.expect_err("the step panicked").to_string();
    for part in ["\"doubled\"", "panicked", "cannot double 500"] {
        assert!(message.contains(part), "{part:?} not in: {message}");
    }
    // What the source sent on before the panic was written.
    assert!(got.lock().unwrap().len() >= 400);
}
