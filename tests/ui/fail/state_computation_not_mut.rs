use wallaroo::prelude::*;

#[state]
#[derive(Default)]
struct Total {
    votes: u64,
}

#[state_computation]
fn peek(votes: u64, total: &Total) -> (u64, bool) {
    (votes + total.votes, false)
}

#[state_computation]
fn replace(votes: u64, total: Total) -> (u64, bool) {
    (votes + total.votes, true)
}

fn main() {}
