//! Steps of a pipeline: stateless computations and state computations, and the
//! [`Emit`] sink they send their output into.

use crate::component::ComponentInfo;
use crate::state::State;

/// Receives the messages a step sends on, one at a time, on the step's own thread.
pub trait Emit<T> {
    /// Sends `msg` to the next step.
    fn emit(&mut self, msg: T);
}

impl<T> Emit<T> for Vec<T> {
    #[inline]
    fn emit(&mut self, msg: T) {
        self.push(msg);
    }
}

impl<T, E: Emit<T> + ?Sized> Emit<T> for Box<E> {
    #[inline]
    fn emit(&mut self, msg: T) {
        (**self).emit(msg);
    }
}

/// A stateless step: one message in, zero, one or many out.
///
/// Implemented by `#[computation]` on `fn(In) -> Out`, `fn(In) -> Option<Out>` (filter) or
/// `fn(In) -> Vec<Out>` (fan-out).
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a computation that takes `{In}`",
    label = "the previous step produces `{In}`, which this step does not take",
    note = "a step's input must be the previous step's output; a stateless step is a `#[computation] fn(msg: {In}) -> …`"
)]
pub trait Computation<In>: Send + Sync + 'static {
    /// The message type it sends on.
    type Out: Send + 'static;
    /// The step's registry entry.
    fn info(&self) -> &'static ComponentInfo;
    /// Computes on one message, emitting its outputs.
    fn compute(&self, input: In, out: &mut impl Emit<Self::Out>);
}

/// A step over partitioned state: one message and the state of its key in, outputs out,
/// and whether the state changed and must be saved.
///
/// Implemented by `#[state_computation]` on `fn(In, &mut S) -> (R, bool)` where `R` is
/// `Out`, `Option<Out>` or `Vec<Out>`.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a state computation that takes `{In}`",
    label = "the previous step produces `{In}`, which this state computation does not take",
    note = "a step's input must be the previous step's output; a state computation is a `#[state_computation] fn(msg: {In}, state: &mut S) -> (…, bool)`"
)]
pub trait StateComputation<In>: Send + Sync + 'static {
    /// The message type it sends on.
    type Out: Send + 'static;
    /// The state it works on.
    type State: State;
    /// The step's registry entry.
    fn info(&self) -> &'static ComponentInfo;
    /// Computes on one message and its key's state; returns `true` when the state changed
    /// and should be saved.
    fn compute(&self, input: In, state: &mut Self::State, out: &mut impl Emit<Self::Out>) -> bool;
}

/// Emits the single output of a step.
#[inline]
pub fn emit_one<T>(out: &mut impl Emit<T>, msg: T) {
    out.emit(msg);
}

/// Emits the output of a filtering step, if any.
#[inline]
pub fn emit_option<T>(out: &mut impl Emit<T>, msg: Option<T>) {
    if let Some(msg) = msg {
        out.emit(msg);
    }
}

/// Emits every output of a fan-out step, in order.
#[inline]
pub fn emit_many<T>(out: &mut impl Emit<T>, msgs: impl IntoIterator<Item = T>) {
    for msg in msgs {
        out.emit(msg);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emit_helpers_keep_order_and_drop_none() {
        let mut out = Vec::new();
        emit_one(&mut out, 1);
        emit_option(&mut out, None);
        emit_option(&mut out, Some(2));
        emit_many(&mut out, vec![3, 4]);
        let mut boxed: Box<dyn Emit<i32>> = Box::new(Vec::new());
        boxed.emit(5);
        assert_eq!(out, vec![1, 2, 3, 4]);
    }
}
