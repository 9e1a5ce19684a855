use wallaroo::prelude::*;

#[decoder]
fn decode(payload: &[u8]) -> Option<u8> {
    payload.first().copied()
}

fn main() {}
