use wallaroo::prelude::*;

#[state]
#[derive(Default)]
struct Window<T> {
    last: Vec<T>,
}

#[state]
union Bits {
    int: u64,
    float: f64,
}

fn main() {}
