use wallaroo::prelude::*;

#[derive(Debug, Clone, Default)]
pub struct Reading {
    pub value: f64,
}

#[state]
#[derive(Default)]
pub struct Stats {
    last: Reading,
    count: u64,
}

fn main() {}
