//! Celsius to Fahrenheit: stateless arithmetic in two steps, on binary floats.
//!
//! Input: frames with a 4-byte big-endian length header, each payload one big-endian `f64`
//! (8 bytes), a temperature in degrees Celsius. A payload of another length, or a value that
//! is not finite, is refused by the decoder and skipped. Two steps, multiply by 1.8 then add
//! 32, make it Fahrenheit; each reading leaves as a line with two decimals.
//!
//! ```text
//! cargo run --example celsius -- --in file:examples/data/celsius.frames --out -
//! cargo run --release --example celsius -- --in 127.0.0.1:7010 --out 127.0.0.1:7002
//! ```
//!
//! `examples/data/celsius.frames` holds -40, 0, 36.6, 100 and -273.15:
//!
//! ```text
//! python3 -c 'import struct,sys; sys.stdout.buffer.write(b"".join(struct.pack(">Id", 8, c) for c in [-40, 0, 36.6, 100, -273.15]))' > examples/data/celsius.frames
//! ```

use wallaroo::prelude::*;

/// A temperature in degrees Celsius.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Celsius(pub f64);

/// A temperature in degrees Celsius, scaled by 1.8: halfway to Fahrenheit.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Scaled(pub f64);

/// A temperature in degrees Fahrenheit.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Fahrenheit(pub f64);

/// One big-endian `f64`; NaN and infinities are refused.
#[decoder(header_length = 4)]
pub fn decode(payload: &[u8]) -> Result<Celsius, DecodeError> {
    let bytes: [u8; 8] = payload
        .try_into()
        .map_err(|_| DecodeError::wrong_length(8, payload.len()))?;
    let celsius = f64::from_be_bytes(bytes);
    if celsius.is_finite() {
        Ok(Celsius(celsius))
    } else {
        Err(DecodeError::new(format!("{celsius} is not a temperature")))
    }
}

/// The first step: `× 1.8`.
#[computation(name = "multiply by 1.8")]
pub fn multiply(celsius: Celsius) -> Scaled {
    Scaled(celsius.0 * 1.8)
}

/// The second step: `+ 32`.
#[computation(name = "add 32")]
pub fn add(scaled: Scaled) -> Fahrenheit {
    Fahrenheit(scaled.0 + 32.0)
}

/// `"97.88\n"`.
#[encoder]
pub fn encode(fahrenheit: &Fahrenheit) -> String {
    format!("{:.2}\n", fahrenheit.0)
}

/// One pipeline: decode, multiply, add, encode.
#[wallaroo::main]
pub fn celsius(args: &Args) -> Application {
    Application::new("Celsius")
        .pipeline("Celsius to Fahrenheit", Source::new(args.input(0), decode))
        .to(multiply)
        .to(add)
        .to_sink(Sink::new(args.output(0), encode))
}
