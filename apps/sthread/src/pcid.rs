//! PCIDs per Linux thread: a compartment keeps its TLB entries across switches when
//! its PCID slot on this thread still holds it at the same TLB generation; otherwise
//! the switch flushes that PCID. Without PCIDs (CR4.PCIDE off, as in the QEMU lane)
//! every switch flushes everything.

use core::cell::RefCell;
use core::sync::atomic::{AtomicBool, Ordering};

/// PCIDs used per thread (1..=SLOTS; 0 is the process's own table).
const SLOTS: usize = 64;

static ENABLED: AtomicBool = AtomicBool::new(true);

/// Per-thread slots: (compartment id, TLB generation), 0 = free; a clock hand.
struct Cache {
    slots: [(u64, u64); SLOTS],
    hand: usize,
}

thread_local! {
    static CACHE: RefCell<Cache> = const { RefCell::new(Cache { slots: [(0, 0); SLOTS], hand: 0 }) };
}

pub(crate) fn set_enabled(on: bool) {
    ENABLED.store(on, Ordering::Relaxed);
}

/// Slots held on this thread.
pub(crate) fn held() -> usize {
    CACHE.with(|c| c.borrow().slots.iter().filter(|s| s.0 != 0).count())
}

/// The slot a compartment gets, and whether its TLB entries may be kept.
fn pick(slots: &mut [(u64, u64); SLOTS], hand: &mut usize, id: u64, gen: u64) -> (usize, bool) {
    if let Some(i) = slots.iter().position(|s| s.0 == id) {
        let keep = slots[i].1 == gen;
        slots[i].1 = gen;
        return (i, keep);
    }
    let i = slots.iter().position(|s| s.0 == 0).unwrap_or_else(|| {
        *hand = (*hand + 1) % SLOTS;
        *hand
    });
    slots[i] = (id, gen);
    (i, false)
}

/// CR3 to run compartment `id` (TLB generation `gen`, root `root`) on this thread.
pub(crate) fn cr3_for(id: u64, gen: u64, root: u64) -> u64 {
    if !ENABLED.load(Ordering::Relaxed) || !libdune::vm::pcid_enabled() {
        return root;
    }
    CACHE.with(|c| {
        let c = &mut *c.borrow_mut();
        let (i, keep) = pick(&mut c.slots, &mut c.hand, id, gen);
        root | (i as u64 + 1) | if keep { 1 << 63 } else { 0 }
    })
}

/// A compartment is gone: its slot on this thread is free (other threads' slots
/// simply miss: ids are never reused).
pub(crate) fn forget(id: u64) {
    CACHE.with(|c| {
        for s in c.borrow_mut().slots.iter_mut().filter(|s| s.0 == id) {
            *s = (0, 0);
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_keep_only_the_same_generation_and_evict_when_full() {
        let (mut s, mut h) = ([(0, 0); SLOTS], 0);
        assert_eq!(pick(&mut s, &mut h, 7, 0), (0, false));
        assert_eq!(pick(&mut s, &mut h, 7, 0), (0, true));
        // Reset bumped the generation: flush once, then keep again.
        assert_eq!(pick(&mut s, &mut h, 7, 1), (0, false));
        assert_eq!(pick(&mut s, &mut h, 7, 1), (0, true));
        for id in 100..100 + SLOTS as u64 - 1 {
            assert!(!pick(&mut s, &mut h, id, 0).1);
        }
        // Full: a new compartment evicts one, and never inherits its entries.
        let (i, keep) = pick(&mut s, &mut h, 999, 0);
        assert!(!keep && i < SLOTS);
        assert_eq!(s.iter().filter(|x| x.0 != 0).count(), SLOTS);
        // The evicted one comes back without its old entries.
        let evicted = if i == 0 { 7 } else { 100 + i as u64 - 1 };
        assert!(!pick(&mut s, &mut h, evicted, if evicted == 7 { 1 } else { 0 }).1);
    }
}
