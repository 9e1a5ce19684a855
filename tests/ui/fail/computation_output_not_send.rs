use std::rc::Rc;

use wallaroo::prelude::*;

// Messages cross threads (source, workers, sinks), so a step's output must be `Send`.
#[computation]
fn share(x: u64) -> Rc<u64> {
    Rc::new(x)
}

fn main() {}
