use wallaroo::prelude::*;

#[partition]
fn by_weight(n: &(String, f64)) -> f64 {
    n.1
}

fn main() {}
