//! `#[computation]`: one, zero-or-one and many outputs, with and without a name.
#![deny(warnings, missing_docs, missing_debug_implementations)]

use wallaroo::prelude::*;
use wallaroo::Computation;

/// Doubles a number.
#[computation]
pub fn double(x: u64) -> u64 {
    x * 2
}

/// Keeps even numbers.
#[computation(name = "keep even")]
pub fn keep_even(x: u64) -> Option<u64> {
    (x % 2 == 0).then_some(x)
}

/// Splits a line into words.
#[computation]
pub fn words(line: String) -> Vec<String> {
    line.split_whitespace().map(str::to_owned).collect()
}

mod private {
    use wallaroo::prelude::*;

    #[computation]
    pub(crate) fn negate(x: i64) -> i64 {
        -x
    }
}

fn main() {
    assert_eq!(double(4), 8);
    assert_eq!(keep_even(3), None);
    assert_eq!(words("a b".to_owned()), ["a", "b"]);
    assert_eq!(private::negate(3), -3);

    let mut out = Vec::new();
    keep_even.compute(6, &mut out);
    double.compute(1, &mut out);
    assert_eq!(out, [6, 2]);
    assert_eq!(keep_even.info().name, "keep even");
    assert_eq!(keep_even.info().ident, "keep_even");
    assert_eq!(uses_deprecated(), 4);
}

/// Deprecation warns where the step is used, not inside what the macro generates.
#[computation]
#[deprecated(note = "use `double`")]
pub fn twice(x: u64) -> u64 {
    x * 2
}

/// `#[expect]` holds for the whole expansion.
#[computation]
#[expect(dead_code)]
fn never_used(x: u64) -> u64 {
    x
}

#[allow(deprecated)]
fn uses_deprecated() -> u64 {
    twice(2)
}
