use wallaroo::prelude::*;

struct Reading {
    value: f64,
}

#[aggregation]
#[derive(Clone, Default)]
enum Level {
    #[default]
    Low,
    High,
}

// A rejected #[aggregation] still stands for an aggregation: its impl reports nothing more.
impl Aggregation<Reading> for Level {
    type Out = bool;
    fn update(&mut self, r: &Reading) {
        if r.value > 1.0 {
            *self = Level::High;
        }
    }
    fn combine(&mut self, other: &Self) {
        if let Level::High = other {
            *self = Level::High;
        }
    }
    fn output(&self) -> bool {
        matches!(self, Level::High)
    }
}

#[aggregation]
#[derive(Clone, Default)]
struct Sum<T> {
    sum: T,
}

#[derive(Clone, Default)]
struct Max {
    max: f64,
}

#[aggregation]
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
