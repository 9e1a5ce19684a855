//! Emptied buffers that threads hand back for reuse, so that the hot path does not allocate.
//!
//! A stack, not a queue: the buffer handed back last is the one most likely still in the
//! caches, and reusing few buffers keeps the working set small. The routers' batches, the
//! sinks' chunks and standard input's read buffers come back through it: one lock per
//! batch, chunk or read, never per message.

use std::sync::{Arc, Mutex, PoisonError};

/// A bounded stack of spare buffers, shared by the threads that fill them and the threads
/// that empty them.
pub(crate) struct Pool<T> {
    spares: Arc<Mutex<Vec<T>>>,
    capacity: usize,
}

impl<T> Clone for Pool<T> {
    fn clone(&self) -> Self {
        Pool {
            spares: Arc::clone(&self.spares),
            capacity: self.capacity,
        }
    }
}

impl<T> Pool<T> {
    /// A pool that keeps at most `capacity` spares; more are freed.
    pub(crate) fn new(capacity: usize) -> Self {
        Pool {
            spares: Arc::new(Mutex::new(Vec::with_capacity(capacity))),
            capacity,
        }
    }

    /// The spare handed back last, if any.
    #[inline]
    pub(crate) fn take(&self) -> Option<T> {
        self.spares
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop()
    }

    /// Keeps `spare` for reuse, unless the pool is full.
    #[inline]
    pub(crate) fn give(&self, spare: T) {
        let mut spares = self.spares.lock().unwrap_or_else(PoisonError::into_inner);
        if spares.len() < self.capacity {
            spares.push(spare);
            return;
        }
        drop(spares);
        // Freed outside the lock.
        drop(spare);
    }

    /// How many spares the pool holds.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.spares
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_last_spare_given_is_the_first_taken_and_the_pool_is_bounded() {
        let pool = Pool::new(2);
        let other = pool.clone();
        pool.give(1);
        other.give(2);
        pool.give(3);
        assert_eq!(pool.len(), 2);
        assert_eq!(other.take(), Some(2));
        assert_eq!(pool.take(), Some(1));
        assert_eq!(pool.take(), None);
    }
}
