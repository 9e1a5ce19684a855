use wallaroo::prelude::*;

#[data(rename_all = "camelCase")]
pub struct WithArgs {
    value: f64,
}

#[data]
pub fn not_a_type() {}

pub struct Opaque;

#[data]
pub enum Event {
    Reading(Opaque),
}

fn main() {}
