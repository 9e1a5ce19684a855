use wallaroo::prelude::*;

#[partition]
fn by_value(n: u64) -> u64 {
    n % 4
}

fn main() {}
