//! Counts the process's live heap bytes, so that benchmarks report exact memory per governor
//! rather than RSS deltas. The counter is sharded by thread stack address with relaxed
//! atomics, so counting costs the measured code almost nothing (a single shared SeqCst
//! counter, as `stats_alloc` keeps, contends on every allocation).

#![allow(
    unsafe_code,
    reason = "a global allocator is an unsafe trait; this one forwards every call to System"
)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering};

const SHARDS: usize = 64;

/// One counter per cache line.
#[repr(align(128))]
struct Shard(AtomicIsize);

static NET_BYTES: [Shard; SHARDS] = [const { Shard(AtomicIsize::new(0)) }; SHARDS];

/// Picks a shard from the address of the current thread's stack: threads' stacks lie
/// megabytes apart, so threads rarely share a shard.
#[inline]
fn shard() -> &'static AtomicIsize {
    let marker = 0u8;
    let addr = std::ptr::from_ref(&marker) as usize;
    &NET_BYTES[(addr >> 21) % SHARDS].0
}

#[inline]
fn add(bytes: usize) {
    shard().fetch_add(isize::try_from(bytes).unwrap_or(isize::MAX), Ordering::Relaxed);
}

#[inline]
fn sub(bytes: usize) {
    shard().fetch_sub(isize::try_from(bytes).unwrap_or(isize::MAX), Ordering::Relaxed);
}

/// The system allocator, counted.
pub(crate) struct Counting;

// SAFETY: every method forwards to `System` with the caller's arguments unchanged, so
// `System`'s guarantees hold; the counting touches only atomics and never allocates.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        add(layout.size());
        // SAFETY: forwarded unchanged (see the impl's comment).
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        add(layout.size());
        // SAFETY: forwarded unchanged.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        sub(layout.size());
        // SAFETY: forwarded unchanged.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        add(new_size);
        sub(layout.size());
        // SAFETY: forwarded unchanged.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

/// Live heap bytes of the whole process.
pub(crate) fn live_bytes() -> i64 {
    let net: isize = NET_BYTES.iter().map(|s| s.0.load(Ordering::Relaxed)).sum();
    i64::try_from(net).unwrap_or(i64::MAX)
}
