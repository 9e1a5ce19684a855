//! `#[data]` on structs and enums kept inside a state, a `#[state]` whose layout is
//! recorded, and `upgrade = path` from an earlier version.
#![deny(warnings, missing_docs, missing_debug_implementations)]

use wallaroo::prelude::*;
use wallaroo::State;

/// A struct of the user's, kept in a state.
#[data]
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Reading {
    /// Which sensor.
    pub sensor: String,
    /// What it read.
    pub value: f64,
}

/// An enum of the user's, with every kind of variant.
#[data]
#[derive(Debug, Clone, Default, PartialEq)]
pub enum Trend {
    /// No change.
    #[default]
    Flat,
    /// Up by this much.
    Rising(f64),
    /// Down by this much.
    Falling {
        /// How much.
        by: f64,
    },
}

/// A generic type: serde infers its bounds.
#[data]
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Tagged<T> {
    /// The tag.
    pub tag: u8,
    /// The value.
    pub value: T,
}

/// The user's own serde attributes still apply after `#[data]`.
#[data]
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Skipping {
    /// Saved.
    pub kept: u32,
    /// Not saved.
    #[serde(skip)]
    pub cache: Vec<u8>,
}

/// Version 0 of a state, kept to read what it saved.
#[state]
#[derive(Debug, Default)]
pub struct SensorV0 {
    last: Option<Reading>,
}

/// Version 1, which upgrades version 0's states.
#[state(version = 1, upgrade = from_v0)]
#[derive(Debug, Default)]
pub struct Sensor {
    last: Option<Reading>,
    trend: Trend,
    history: Vec<Tagged<f64>>,
    skipping: Skipping,
}

/// Version 0's states have no trend yet.
pub fn from_v0(old: SensorV0) -> Sensor {
    Sensor {
        last: old.last,
        ..Sensor::default()
    }
}

fn main() {
    assert_eq!(Sensor::VERSION, 1);
    assert_eq!(SensorV0::LAYOUT, "{ last: Option<Reading> }");
    assert_eq!(
        Sensor::LAYOUT,
        "{ last: Option<Reading>, trend: Trend, history: Vec<Tagged<f64>>, skipping: Skipping }"
    );
    let state = Sensor {
        last: Some(Reading { sensor: "s1".into(), value: 2.5 }),
        trend: Trend::Falling { by: 1.0 },
        history: vec![Tagged { tag: 1, value: 0.5 }],
        skipping: Skipping { kept: 7, cache: vec![1, 2] },
    };
    let bytes = wallaroo::__private::postcard::to_allocvec(&state).unwrap();
    let back: Sensor = wallaroo::__private::postcard::from_bytes(&bytes).unwrap();
    assert_eq!(back.last, state.last);
    assert_eq!(back.trend, state.trend);
    assert_eq!(back.history, state.history);
    assert_eq!(back.skipping, Skipping { kept: 7, cache: Vec::new() });
}
