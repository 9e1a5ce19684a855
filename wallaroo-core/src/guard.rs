//! A stateless step whose panics the error policy skips (`--on-error skip`): the message is
//! skipped, counted, logged and written to the dead-letter output, and the rest of its
//! batch goes on. Built only when the policy skips, so that the chains of an application
//! that stops on a panic are the plain ones ([`crate::link::StepLink`]).

use std::any::Any;
use std::marker::PhantomData;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;

use crate::context::panic_message;
use crate::link::{BoxLink, Link, StepCounts, StepTally};
use crate::poison::{quiet_panics_here, take_panic_location, ErrorPolicy, Poisoned, Stop, Within};
use crate::resilience::record::Origin;
use crate::step::{Computation, Emit};

/// A stateless step fused into the chain, each panic of which skips its message.
pub(crate) struct GuardedStepLink<C: Computation<In>, In> {
    step: Arc<C>,
    next: BoxLink<C::Out>,
    /// The outputs of one message or one batch, passed on once the step is done with it:
    /// a panic after it (in a later step, the router, the encoder) is not this step's.
    out: Vec<C::Out>,
    policy: Arc<ErrorPolicy>,
    /// The pipeline's name, for the log and the dead letters.
    pipeline: Arc<str>,
    /// Whether this thread's panics are reported by the policy yet, not the panic hook.
    quiet: bool,
    /// Messages in and out since the last flush.
    tally: StepTally,
    _in: PhantomData<fn(In)>,
}

impl<C: Computation<In>, In> GuardedStepLink<C, In> {
    pub(crate) fn new(
        step: Arc<C>,
        next: BoxLink<C::Out>,
        policy: Arc<ErrorPolicy>,
        pipeline: Arc<str>,
        counts: Arc<StepCounts>,
    ) -> Self {
        GuardedStepLink {
            step,
            next,
            out: Vec::new(),
            policy,
            pipeline,
            quiet: false,
            tally: StepTally::new(counts),
            _in: PhantomData,
        }
    }

    /// Has this thread's panics reported by the policy: the link is built on another
    /// thread than the one it runs on.
    #[inline]
    fn quiet(&mut self) {
        if !self.quiet {
            self.quiet = true;
            quiet_panics_here();
        }
    }
}

/// Skips the message of `origin` that `step` of `pipeline` panicked on, as `policy` says;
/// if its dead letter cannot be written, panics on, for the thread to stop the application.
#[cold]
#[inline(never)]
fn skip(
    policy: &ErrorPolicy,
    pipeline: &str,
    step: &'static str,
    panic: Box<dyn Any + Send>,
    origin: Origin,
) {
    let poisoned = Poisoned {
        step,
        stateless: true,
        after: false,
        key: None,
        origin,
        panic: panic_message(&*panic),
        location: take_panic_location(),
    };
    skip_poisoned(policy, pipeline, &poisoned);
}

/// Skips `poisoned`, a message that a step on a thread of `pipeline`'s source panicked on,
/// as `policy` says; if its dead letter cannot be written, or the policy is to stop, panics
/// on, for the thread to stop the application.
#[cold]
#[inline(never)]
pub(crate) fn skip_poisoned(policy: &ErrorPolicy, pipeline: &str, poisoned: &Poisoned) {
    match policy.on_panic(Within::Pipeline(pipeline), poisoned) {
        Ok(()) => {}
        Err(Stop::DeadLetter { output, source }) => {
            panic!("{output}: write failed: {source}")
        }
        Err(Stop::Policy { step, at, message }) => {
            panic!("{step} panicked on {at}: {message}")
        }
    }
}

impl<C: Computation<In>, In> GuardedStepLink<C, In> {
    /// Computes the step on `msg`, of `origin` (or none), skipping it if the step panics;
    /// the outputs stay in `out`.
    #[inline]
    fn compute(&mut self, origin: Origin, msg: In) {
        self.quiet();
        let (step, out) = (&self.step, &mut self.out);
        if let Err(panic) = catch_unwind(AssertUnwindSafe(|| step.compute(msg, out))) {
            let name = self.step.info().name;
            skip(&self.policy, &self.pipeline, name, panic, origin);
        }
        self.tally.taken += 1;
        self.tally.given += self.out.len() as u64;
    }
}

impl<C: Computation<In>, In> Emit<In> for GuardedStepLink<C, In> {
    fn emit(&mut self, msg: In) {
        self.compute(Origin::NONE, msg);
        // One at a time, as the step would have emitted them.
        for output in self.out.drain(..) {
            self.next.emit(output);
        }
    }
}

impl<C: Computation<In>, In> Link<In> for GuardedStepLink<C, In> {
    fn emit_from(&mut self, origin: Origin, msg: In) {
        self.compute(origin, msg);
        // One at a time, as the step would have emitted them, each with the origin of the
        // message it came from.
        for output in self.out.drain(..) {
            self.next.emit_from(origin, output);
        }
    }

    fn emit_all(&mut self, msgs: &mut Vec<In>) {
        self.quiet();
        self.tally.taken += msgs.len() as u64;
        let (step, out) = (&self.step, &mut self.out);
        // Taken outside the catch, so that a skip goes on with the rest of the batch.
        let mut todo = msgs.drain(..);
        while let Err(panic) = catch_unwind(AssertUnwindSafe(|| {
            for msg in &mut todo {
                step.compute(msg, out);
            }
        })) {
            // A batch's messages have no positions: positioned ones come one at a time,
            // through `emit_from`.
            skip(
                &self.policy,
                &self.pipeline,
                step.info().name,
                panic,
                Origin::NONE,
            );
        }
        drop(todo);
        self.tally.given += self.out.len() as u64;
        self.next.emit_all(&mut self.out);
    }

    fn positions(&mut self, positions: &[Origin]) {
        self.next.positions(positions);
    }

    fn flush(&mut self) {
        self.tally.publish();
        self.next.flush();
    }

    fn wants_keys(&self) -> bool {
        self.next.wants_keys()
    }
}
