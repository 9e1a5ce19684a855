//! `#[wallaroo::main]` on a setup function that takes no arguments.
//!
//! trybuild runs the program with stdin closed, so the application ends at once.
#![deny(warnings)]

use wallaroo::prelude::*;

#[decoder(lines)]
fn decode(line: &[u8]) -> Result<String, DecodeError> {
    String::from_utf8(line.to_vec()).map_err(|_| DecodeError::new("not UTF-8"))
}

#[computation]
fn shout(s: String) -> String {
    s.to_uppercase()
}

#[wallaroo::main]
fn setup() -> Application {
    Application::new("shout")
        .pipeline("shout", Source::new(Input::Stdin, decode))
        .to(shout)
        .done()
}
