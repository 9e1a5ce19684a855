use wallaroo::prelude::*;

#[state]
#[derive(Default)]
struct Total(u64);

#[computation]
fn add(x: u64, total: &mut Total) -> u64 {
    total.0 += x;
    total.0
}

fn main() {}
