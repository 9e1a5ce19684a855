use wallaroo::prelude::*;

#[computation(name = double)]
fn double(x: u64) -> u64 {
    x * 2
}

#[state_computation(name = "")]
fn count(_x: u64, n: &mut Counter) -> (u64, bool) {
    *n = Counter(n.0 + 1);
    (n.0, true)
}

#[state]
#[derive(Default)]
struct Counter(u64);

#[decoder(header_length = "4")]
fn decode(payload: &[u8]) -> Result<u8, DecodeError> {
    Ok(payload[0])
}

#[decoder(lines = true)]
fn decode_line(payload: &[u8]) -> Result<u8, DecodeError> {
    Ok(payload[0])
}

#[state(builder = "Counter::default")]
struct Built(u64);

#[state(version = "2")]
#[derive(Default)]
struct Versioned(u64);

fn main() {}
