//! `#[state]` on named, tuple and unit structs, with `Default` or a builder.
#![deny(warnings, missing_docs, missing_debug_implementations)]

use wallaroo::prelude::*;
use wallaroo::State;

/// Named fields, built with `Default`.
#[state]
#[derive(Debug, Default, PartialEq)]
pub struct Total {
    votes: u64,
    letters: Vec<char>,
}

/// A tuple struct with a builder.
#[state(builder = Window::new)]
#[derive(Debug)]
pub struct Window(Vec<u64>, usize);

impl Window {
    fn new() -> Self {
        Window(Vec::with_capacity(8), 8)
    }
}

/// A unit struct.
#[state]
#[derive(Debug, Default)]
pub struct Seen;

/// The user's own serde attributes are kept, after the derive that introduces them.
#[state]
#[derive(Debug, Default)]
#[serde(rename_all = "camelCase")]
pub struct Renamed {
    #[serde(default)]
    last_value: Option<u32>,
}

fn main() {
    assert_eq!(Total::build(), Total::default());
    assert_eq!(Window::build().1, 8);
    let _: Seen = Seen::build();
    assert_eq!(Renamed::build().last_value, None);
    assert_eq!(Total::info().name, "Total");
    assert_eq!(Window::info().kind.as_str(), "state");
}
