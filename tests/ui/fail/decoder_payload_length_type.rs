use wallaroo::prelude::*;

fn length(header: &[u8]) -> u32 {
    header[0].into()
}

#[decoder(header_length = 1, payload_length = length)]
fn decode(payload: &[u8]) -> Result<u8, DecodeError> {
    Ok(payload[0])
}

fn main() {}
