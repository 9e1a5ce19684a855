//! What generated code uses to turn a misuse into advice at the user's own code: traits that
//! no type implements, whose `on_unimplemented` says what to write instead, and the
//! placeholder that stands in for a type a rejected item does not name.
//!
//! A `#[state_computation]` also implements `Computation<In>` under a bound on
//! [`UseToStatePartition`], which never holds: `.to(add_votes)` then fails on that bound,
//! whose message says to use `.to_state_partition`. A `#[computation]` does the same the
//! other way round with [`UseTo`].

use serde::{Deserialize, Serialize};

use crate::args::Args;
use crate::component::ComponentInfo;
use crate::state::State;

/// Not implemented by any type: the bound under which a state computation would be a
/// stateless step.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is a state computation: use `.to_state_partition({Self}, \"state name\", partition_fn)`",
    label = "a state computation goes in `.to_state_partition`, not in `.to`",
    note = "`.to_state_partition` routes each message to the state of its key, which the partition function (a `#[partition] fn by_key(msg: &{In}) -> Key`) reads"
)]
pub trait UseToStatePartition<In> {}

/// Not implemented by any type: the bound under which a stateless step would be a state
/// computation.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is a stateless computation: use `.to({Self})`",
    label = "a `#[computation]` goes in `.to`, not in `.to_state_partition`",
    note = "a step over state is a `#[state_computation] fn step(msg: {In}, state: &mut S) -> (Out, bool)`"
)]
pub trait UseTo<In> {}

/// The state type of a rejected `#[state_computation]` whose state could not be read from
/// its parameters; it has no values and is never built.
#[derive(Serialize, Deserialize)]
pub enum UnknownState {}

impl State for UnknownState {
    fn info() -> &'static ComponentInfo {
        unreachable!("an item rejected at compile time is never run")
    }

    fn build() -> Self {
        unreachable!("an item rejected at compile time is never run")
    }
}

/// Implemented by [`Args`] alone: what the first parameter of a `#[wallaroo::main]` function
/// lends, checked where its type is written.
#[diagnostic::on_unimplemented(
    message = "the first parameter of a `#[wallaroo::main]` function is the command line, `&Args`, not `&{Self}`",
    label = "write `args: &Args` here",
    note = "the application's own flags come second: `fn setup(args: &Args, flags: &{Self}) -> Application`"
)]
pub trait CommandLine {}

impl CommandLine for Args {}

/// Compiles when `T` is [`Args`]; generated code calls it with the type that the first
/// parameter of a `#[wallaroo::main]` function names.
pub fn is_command_line<T: CommandLine + ?Sized>() {}
