// Every problem is reported, each at its own tokens, not just the first one.
use wallaroo::prelude::*;

struct Step;

impl Step {
    #[computation(nmae = "step")]
    const unsafe extern "C" fn step<T>(&self, x: T, _y: impl Copy) -> T {
        x
    }
}

fn main() {}
