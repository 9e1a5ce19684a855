//! Cache hints for buffers that come back from another core: asking for a line before
//! writing to it, so that its transfer overlaps the work before the write.

/// Asks for the cache line of the element `ahead` places past the end of `buf`, which the
/// caller is about to append to. A hint only: it changes no value, and does nothing on
/// targets other than x86_64.
#[inline(always)]
pub(crate) fn prefetch_ahead<T>(buf: &[T], ahead: usize) {
    #[cfg(target_arch = "x86_64")]
    {
        // A prefetch never faults, so an address past the allocation is harmless; the
        // address is only computed, never read through.
        let line = buf.as_ptr().wrapping_add(buf.len() + ahead).cast::<i8>();
        // SAFETY: `prefetcht0` reads nothing and cannot fault; SSE is part of x86_64.
        unsafe {
            std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(line);
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = (buf, ahead);
}

#[cfg(test)]
mod tests {
    use super::prefetch_ahead;

    #[test]
    fn a_hint_past_the_end_changes_nothing() {
        // Empty, full and ordinary buffers, and a distance far past any allocation.
        let mut v: Vec<u64> = Vec::new();
        prefetch_ahead(&v, 16);
        v.extend(0..100);
        prefetch_ahead(&v, 16);
        prefetch_ahead(&v, usize::MAX / 64);
        prefetch_ahead(&v[..0], 0);
        assert_eq!(v, (0..100).collect::<Vec<u64>>());
    }
}
