//! The program's memory map changes, counted and remembered: every `munmap`,
//! `mremap`, `mprotect`, `mmap(MAP_FIXED)`, `shmdt` and re-read of the whole map bumps a
//! generation and records the range it touched, in a ring of the last [`KEPT`]. A
//! component that copied something of the map (sthreads' read-only ranges) asks what
//! changed since the generation it saw and looks again only when it touches its part.
//!
//! Lock-free: the writer takes a generation, fills its slot, then publishes the slot's
//! generation; a reader that finds a slot's generation changed under it takes the
//! history as lost.

use core::sync::atomic::{AtomicU64, Ordering};

/// Changes remembered.
pub const KEPT: usize = 64;

static GENERATION: AtomicU64 = AtomicU64::new(0);

struct Slot {
    gen: AtomicU64,
    start: AtomicU64,
    end: AtomicU64,
}

#[allow(clippy::declare_interior_mutable_const)] // only as the array's initializer
const EMPTY: Slot = Slot { gen: AtomicU64::new(0), start: AtomicU64::new(0), end: AtomicU64::new(0) };
static RING: [Slot; KEPT] = [EMPTY; KEPT];

/// Records that `[start, end)` of the map changed.
pub fn changed(start: u64, end: u64) {
    let g = GENERATION.fetch_add(1, Ordering::AcqRel) + 1;
    let s = &RING[g as usize % KEPT];
    // Invalid while being filled: a reader between these stores sees a generation
    // that is not the one it wants.
    s.gen.store(0, Ordering::Release);
    s.start.store(start, Ordering::Relaxed);
    s.end.store(end, Ordering::Relaxed);
    s.gen.store(g, Ordering::Release);
}

/// The current generation.
pub fn generation() -> u64 {
    GENERATION.load(Ordering::Acquire)
}

/// Calls `f(start, end)` for every change after generation `since` up to `until`.
/// False when some of them are no longer remembered (the caller must assume any range
/// changed).
pub fn since(since: u64, until: u64, mut f: impl FnMut(u64, u64)) -> bool {
    if until <= since {
        return true;
    }
    if until - since > KEPT as u64 {
        return false;
    }
    for g in since + 1..=until {
        let s = &RING[g as usize % KEPT];
        if s.gen.load(Ordering::Acquire) != g {
            return false;
        }
        let (a, b) = (s.start.load(Ordering::Relaxed), s.end.load(Ordering::Relaxed));
        if s.gen.load(Ordering::Acquire) != g {
            return false;
        }
        f(a, b);
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes_are_kept_until_the_ring_wraps() {
        let g0 = generation();
        changed(0x1000, 0x2000);
        changed(0x5000, 0x6000);
        let mut seen = Vec::new();
        assert!(since(g0, generation(), |a, b| seen.push((a, b))));
        assert_eq!(seen, [(0x1000, 0x2000), (0x5000, 0x6000)]);
        let g1 = generation();
        for i in 0..KEPT as u64 + 1 {
            changed(i, i + 1);
        }
        assert!(!since(g1, generation(), |_, _| {}), "more than the ring holds");
        assert!(since(generation(), generation(), |_, _| panic!()));
    }
}
