use wallaroo::prelude::*;

fn length(header: &[u8]) -> usize {
    header[0].into()
}

#[decoder(lines, header_length = 2)]
fn decode(payload: &[u8]) -> Result<u8, DecodeError> {
    Ok(payload[0])
}

#[decoder(payload_length = length, lines)]
fn decode_other(payload: &[u8]) -> Result<u8, DecodeError> {
    Ok(payload[0])
}

fn main() {}
