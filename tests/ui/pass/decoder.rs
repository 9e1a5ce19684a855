//! `#[decoder]` with each framing.
#![deny(warnings, missing_docs, missing_debug_implementations)]

use wallaroo::prelude::*;
use wallaroo::Decoder;

/// The default framing: a 4-byte big-endian length header.
#[decoder]
pub fn decode(payload: &[u8]) -> Result<u8, DecodeError> {
    payload
        .first()
        .copied()
        .ok_or_else(|| DecodeError::new("empty payload"))
}

/// A 1-byte header.
#[decoder(header_length = 1)]
pub fn decode_short(payload: &[u8]) -> Result<Vec<u8>, DecodeError> {
    Ok(payload.to_vec())
}

fn little_endian(header: &[u8]) -> usize {
    usize::from(u16::from_le_bytes([header[0], header[1]]))
}

/// A 2-byte little-endian header.
#[decoder(header_length = 2, payload_length = little_endian)]
pub fn decode_le(payload: &[u8]) -> Result<usize, DecodeError> {
    Ok(payload.len())
}

/// Lines of text; any `Result` alias whose error is `Display` works.
#[decoder(lines)]
pub fn decode_line(line: &[u8]) -> std::io::Result<String> {
    String::from_utf8(line.to_vec()).map_err(std::io::Error::other)
}

fn main() {
    assert_eq!(decode(&[7]), Ok(7));
    assert_eq!(decode.decode(&[]).unwrap_err().to_string(), "empty payload");
    assert_eq!(
        decode.framing().to_string(),
        "4-byte big-endian length header"
    );
    assert_eq!(
        decode_short.framing().to_string(),
        "1-byte big-endian length header"
    );
    assert_eq!(
        decode_le.framing().to_string(),
        "2-byte length header (custom)"
    );
    assert_eq!(decode_line.framing().to_string(), "newline-delimited lines");
    assert_eq!(decode_line.decode(b"hi").unwrap(), "hi");
}
