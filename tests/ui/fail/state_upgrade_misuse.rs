use wallaroo::prelude::*;

#[state]
#[derive(Default)]
pub struct TotalV0 {
    votes: u32,
}

// `upgrade` without a version above the previous one.
#[state(upgrade = from_v0)]
#[derive(Default)]
pub struct Total {
    votes: u64,
}

pub fn from_v0(old: TotalV0) -> Total {
    Total { votes: old.votes.into() }
}

// An upgrade function that does not return the state it upgrades to.
#[state(version = 1, upgrade = to_something_else)]
#[derive(Default)]
pub struct Count {
    votes: u64,
}

pub fn to_something_else(old: TotalV0) -> Total {
    Total { votes: old.votes.into() }
}

// An upgrade from a type that is not a state.
#[state(version = 2, upgrade = from_number)]
#[derive(Default)]
pub struct Sum {
    votes: u64,
}

pub fn from_number(old: u64) -> Sum {
    Sum { votes: old }
}

fn main() {}
