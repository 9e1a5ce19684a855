use wallaroo::prelude::*;

#[computation]
fn digits(x: u64) -> impl Iterator<Item = u8> {
    x.to_string().into_bytes().into_iter()
}

fn main() {}
