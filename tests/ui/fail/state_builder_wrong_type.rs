use wallaroo::prelude::*;

#[state(builder = zero)]
struct Total(u64);

fn zero() -> u64 {
    0
}

fn main() {}
