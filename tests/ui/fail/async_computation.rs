use wallaroo::prelude::*;

#[computation]
async fn double(x: u64) -> u64 {
    x * 2
}

fn main() {}
