use wallaroo::prelude::*;

#[computation]
struct Double;

#[partition]
const KEY: u64 = 0;

fn main() {}
