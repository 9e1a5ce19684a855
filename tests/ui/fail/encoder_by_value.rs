use wallaroo::prelude::*;

#[encoder]
fn encode(n: u64, out: &mut Vec<u8>) {
    out.extend_from_slice(n.to_string().as_bytes());
}

#[encoder]
fn encode_text(n: u64) -> String {
    n.to_string()
}

fn main() {}
