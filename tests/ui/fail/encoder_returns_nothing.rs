use wallaroo::prelude::*;

#[encoder]
fn encode(n: &u64) {
    println!("{n}");
}

#[encoder]
fn encode_number(n: &u64) -> u64 {
    *n
}

fn main() {}
