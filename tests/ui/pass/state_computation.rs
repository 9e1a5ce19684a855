//! `#[state_computation]` with each output shape.
#![deny(warnings, missing_docs, missing_debug_implementations)]

use wallaroo::prelude::*;
use wallaroo::{State, StateComputation};

/// A running total.
#[state]
#[derive(Debug, Default)]
pub struct Total {
    sum: u64,
}

/// Adds to the total and sends it on.
#[state_computation(name = "add")]
pub fn add(x: u64, total: &mut Total) -> (u64, bool) {
    total.sum += x;
    (total.sum, true)
}

/// Sends the total on only when it reaches a multiple of ten.
#[state_computation]
pub fn every_ten(x: u64, total: &mut Total) -> (Option<u64>, bool) {
    total.sum += x;
    ((total.sum % 10 == 0).then_some(total.sum), x != 0)
}

/// Reads the total without changing it, and sends it twice.
#[state_computation]
pub fn twice(_x: u64, total: &mut Total) -> (Vec<u64>, bool) {
    (vec![total.sum; 2], false)
}

fn main() {
    let mut total = Total::build();
    let mut out = Vec::new();
    assert!(add.compute(4, &mut total, &mut out));
    assert!(every_ten.compute(6, &mut total, &mut out));
    assert!(!twice.compute(0, &mut total, &mut out));
    assert_eq!(out, [4, 10, 10, 10]);
    assert_eq!(add(1, &mut total), (11, true));
}
