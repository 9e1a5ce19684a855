use wallaroo::prelude::*;

pub struct SensorStats {
    pub value: f64,
}

#[state]
#[derive(Default)]
pub struct Reading {
    last: f64,
}

#[state_computation]
fn record(state: &mut Reading, msg: SensorStats) -> (f64, bool) {
    state.last = msg.value;
    (state.last, true)
}

#[state_computation]
fn record_borrowed(msg: &mut Reading, stats: &SensorStats) -> (f64, bool) {
    msg.last = stats.value;
    (msg.last, true)
}

fn main() {}
