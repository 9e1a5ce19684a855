//! Compile-time tests of the attribute macros: each `tests/ui/pass/*.rs` must compile (and
//! run), each `tests/ui/fail/*.rs` must fail with exactly the errors in its `.stderr`.
//!
//! The toolchain is pinned (`rust-toolchain.toml`) so that the compiler's messages are
//! stable. To re-bless after a deliberate change: `TRYBUILD=overwrite cargo test --test ui`,
//! then review every changed `.stderr`.
//!
//! They run without the `kafka` feature only (`cargo test --test ui`): with it, librdkafka's
//! dependencies bring a second item named `Default` (num_enum's derive) into the build, and
//! the compiler then spells the standard trait `std::default::Default` in its messages.

#![cfg(not(feature = "kafka"))]

#[test]
fn ui() {
    let t = trybuild::TestCases::new();
    t.pass("tests/ui/pass/*.rs");
    t.compile_fail("tests/ui/fail/*.rs");
}
