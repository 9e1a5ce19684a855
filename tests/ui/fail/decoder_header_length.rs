use wallaroo::prelude::*;

#[decoder(header_length = 9)]
fn decode(payload: &[u8]) -> Result<u8, DecodeError> {
    Ok(payload[0])
}

#[decoder(header_length = 0)]
fn decode_empty(payload: &[u8]) -> Result<u8, DecodeError> {
    Ok(payload[0])
}

fn main() {}
