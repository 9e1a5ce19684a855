//! Appending to a vector in a hot loop without storing and loading its length for every
//! element.

use crate::link::BoxLink;
use crate::step::Emit;

/// Outputs appended to a vector with the vector's length, pointer and capacity held in
/// the gatherer, which the compiler keeps in registers: appended through the vector
/// itself, its length is stored and loaded again for every output, since the state
/// written between two outputs might, for all the compiler knows, be the vector.
pub(crate) struct Gather<'v, T> {
    vec: &'v mut Vec<T>,
    ptr: *mut T,
    len: usize,
    cap: usize,
    /// Whether the vector's own length is the true one: while `with_vec` runs `f`.
    synced: bool,
}

/// Elements made room for at once when the vector is full.
const GROW_BY: usize = 256;

impl<'v, T> Gather<'v, T> {
    /// Elements gathered so far, those the vector held before included.
    #[inline(always)]
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    #[inline(always)]
    pub(crate) fn new(vec: &'v mut Vec<T>) -> Self {
        Gather {
            ptr: vec.as_mut_ptr(),
            len: vec.len(),
            cap: vec.capacity(),
            synced: false,
            vec,
        }
    }

    /// Gives the vector its length back, and takes its parts again after `f`.
    #[inline(always)]
    pub(crate) fn with_vec(&mut self, f: impl FnOnce(&mut Vec<T>)) {
        // SAFETY: the elements up to `len` were there or written by `emit`, within the
        // capacity.
        unsafe { self.vec.set_len(self.len) };
        // Should `f` panic, the vector keeps the length `f` left it with.
        self.synced = true;
        f(self.vec);
        self.synced = false;
        self.ptr = self.vec.as_mut_ptr();
        self.len = self.vec.len();
        self.cap = self.vec.capacity();
    }

    /// Hands what is gathered to the next link.
    #[inline(always)]
    pub(crate) fn pass_on(&mut self, down: &mut BoxLink<T>) {
        self.with_vec(|vec| down.emit_all(vec));
    }

    #[cold]
    #[inline(never)]
    fn grow(&mut self) {
        self.with_vec(|vec| vec.reserve(GROW_BY));
    }
}

impl<T> Emit<T> for Gather<'_, T> {
    #[inline(always)]
    fn emit(&mut self, msg: T) {
        if self.len == self.cap {
            self.grow();
        }
        // SAFETY: `len < cap`, so the slot is within the allocation and not yet initialised;
        // `len` counts it only once it is written.
        unsafe { self.ptr.add(self.len).write(msg) };
        self.len += 1;
    }
}

impl<T> Drop for Gather<'_, T> {
    #[inline(always)]
    fn drop(&mut self) {
        if !self.synced {
            // SAFETY: as in `with_vec`; also when a computation panics, so that what it
            // emitted before is dropped with the vector.
            unsafe { self.vec.set_len(self.len) };
        }
    }
}

#[cfg(test)]
mod tests {
    use std::panic::{catch_unwind, AssertUnwindSafe};
    use std::sync::Arc;

    use super::*;
    use crate::link::Link;

    /// A link that takes every element handed to it, and panics on the `n`-th call if asked.
    struct Taker {
        taken: Vec<Arc<u32>>,
        calls: usize,
        panic_on: Option<usize>,
    }

    impl Emit<Arc<u32>> for Taker {
        fn emit(&mut self, msg: Arc<u32>) {
            self.taken.push(msg);
        }
    }

    impl Link<Arc<u32>> for Taker {
        fn emit_from(&mut self, _origin: crate::resilience::record::Origin, msg: Arc<u32>) {
            self.taken.push(msg);
        }
        fn emit_all(&mut self, msgs: &mut Vec<Arc<u32>>) {
            self.calls += 1;
            // Takes half, then panics if asked: the vector keeps the other half.
            let half = msgs.len() / 2;
            self.taken.extend(msgs.drain(..half));
            if self.panic_on == Some(self.calls) {
                panic!("downstream failed");
            }
            self.taken.append(msgs);
        }
        fn flush(&mut self) {}
    }

    #[test]
    fn appends_past_the_capacity_and_hands_on_in_order() {
        let mut vec = vec![Arc::new(0)];
        let mut gather = Gather::new(&mut vec);
        for i in 1..1000 {
            gather.emit(Arc::new(i));
        }
        assert_eq!(gather.len(), 1000);
        drop(gather);
        assert_eq!(vec.len(), 1000);
        assert!(vec.iter().enumerate().all(|(i, v)| **v == i as u32));
    }

    #[test]
    fn every_element_is_dropped_once_even_when_a_step_or_the_next_link_panics() {
        let one = Arc::new(7);
        let mut vec = Vec::new();
        let mut down: BoxLink<Arc<u32>> = Box::new(Taker {
            taken: Vec::new(),
            calls: 0,
            panic_on: Some(2),
        });
        let result = catch_unwind(AssertUnwindSafe(|| {
            let mut gather = Gather::new(&mut vec);
            for round in 0.. {
                for _ in 0..300 {
                    gather.emit(Arc::clone(&one));
                }
                gather.pass_on(&mut down);
                assert_eq!(gather.len(), 0, "all handed on in round {round}");
            }
        }));
        assert!(result.is_err());
        // The second hand-off took 150 and panicked: the other 150 are still in the vector.
        assert_eq!(vec.len(), 150);
        drop(down);
        drop(vec);
        assert_eq!(
            Arc::strong_count(&one),
            1,
            "no element leaked or dropped twice"
        );

        let mut vec = Vec::new();
        let result = catch_unwind(AssertUnwindSafe(|| {
            let mut gather = Gather::new(&mut vec);
            for i in 0..10 {
                if i == 5 {
                    panic!("a computation failed");
                }
                gather.emit(Arc::clone(&one));
            }
        }));
        assert!(result.is_err());
        assert_eq!(vec.len(), 5, "what was emitted before the panic is kept");
        drop(vec);
        assert_eq!(Arc::strong_count(&one), 1);
    }
}
