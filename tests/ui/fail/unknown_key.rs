use wallaroo::prelude::*;

#[computation(nmae = "double")]
fn double(x: u64) -> u64 {
    x * 2
}

#[decoder(header_len = 2)]
fn decode(payload: &[u8]) -> Result<u8, DecodeError> {
    Ok(payload[0])
}

#[encoder(name = "text")]
fn encode(n: &u64) -> String {
    n.to_string()
}

#[computation("triple")]
fn triple(x: u64) -> u64 {
    x * 3
}

fn main() {}
