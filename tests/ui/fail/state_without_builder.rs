use wallaroo::prelude::*;

#[state]
pub struct Total {
    votes: u64,
}

fn main() {}
