use wallaroo::prelude::*;

#[derive(Default)]
struct Total {
    votes: u64,
}

#[state_computation]
fn add_votes(votes: u64, total: &mut Total) -> (u64, bool) {
    total.votes += votes;
    (total.votes, true)
}

fn main() {}
