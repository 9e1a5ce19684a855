use wallaroo::prelude::*;

struct Reading {
    value: f64,
}

/// An accumulator without `#[aggregation]`: it is not a state, so its windows could not be
/// saved.
#[derive(Clone, Default)]
struct Max {
    max: f64,
}

impl Aggregation<Reading> for Max {
    type Out = f64;
    fn update(&mut self, r: &Reading) {
        self.max = self.max.max(r.value);
    }
    fn combine(&mut self, other: &Self) {
        self.max = self.max.max(other.max);
    }
    fn output(&self) -> f64 {
        self.max
    }
}

fn main() {}
