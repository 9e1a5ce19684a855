use wallaroo::prelude::*;

#[computation(name = "double", name = "twice")]
fn double(x: u64) -> u64 {
    x * 2
}

#[partition(keys = 0u64..4, keys = [7u64])]
fn by_value(n: &u64) -> u64 {
    *n
}

fn main() {}
