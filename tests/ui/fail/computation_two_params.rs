use wallaroo::prelude::*;

#[computation]
fn add(x: u64, y: u64) -> u64 {
    x + y
}

#[computation]
fn nothing() -> u64 {
    0
}

fn main() {}
