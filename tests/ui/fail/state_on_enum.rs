use wallaroo::prelude::*;

#[state]
#[derive(Default)]
enum Light {
    #[default]
    Red,
    Green,
}

#[state]
fn total() -> u64 {
    0
}

fn main() {}
