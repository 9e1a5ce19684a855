use wallaroo::prelude::*;

#[state]
#[derive(Default)]
struct Total {
    votes: u64,
}

#[state_computation]
fn add_votes(votes: u64, total: &mut Total) -> u64 {
    total.votes += votes;
    total.votes
}

#[state_computation]
fn add_more(votes: u64, total: &mut Total) {
    total.votes += votes;
}

#[state_computation]
fn add_and_say(votes: u64, total: &mut Total) -> (u64, String) {
    total.votes += votes;
    (total.votes, "changed".to_owned())
}

fn main() {}
