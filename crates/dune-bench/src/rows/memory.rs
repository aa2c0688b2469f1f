//! page fault and page walk: what nested paging costs.

use crate::loops;
use crate::measure::{verify, Ctx, Measured, RowError};
use crate::sys::{Mapping, PAGE};

/// First write to each page of a fresh anonymous mapping (4 KiB pages: THP is turned
/// off for it). One repetition maps a region, touches every page once, checks with
/// `mincore` that none was resident before and all are after, and unmaps it.
pub fn page_fault(ctx: &mut Ctx) -> Result<Measured, RowError> {
    let pages = ctx.pick(1024, 256);
    let mut touched = 0usize;
    let summary = ctx.repeat(|rep| {
        let m = Mapping::anon(pages)?;
        let before = m.resident_pages()?;
        verify!(before == 0, "{before} of {pages} pages of a fresh mapping were already resident");
        // SAFETY: the mapping's pages are writable and nothing refers into them.
        rep.time(pages as u64, || unsafe { loops::touch_pages(m.at(0, 0), pages as u64, 1) })?;
        let after = m.resident_pages()?;
        verify!(after == pages, "only {after} of {pages} pages resident after writing each");
        verify!((0..pages).all(|i| m.read(i) == i as u64 + 1), "a written value did not stick");
        touched += pages;
        Ok(())
    })?;
    Ok(Measured {
        summary,
        check: format!("{touched} pages, each absent before its first write and resident after (mincore)"),
    })
}

/// Pointer chase over one cache line in each 4 KiB page of a large region, in a random
/// cyclic order: every load depends on the previous one and lands on another page,
/// so each costs a TLB miss (a page walk; under nested paging a two-dimensional one).
/// One line per page keeps the data itself small (working set / 64) so the walk,
/// not the data, dominates.
pub fn page_walk(ctx: &mut Ctx) -> Result<Measured, RowError> {
    let pages = ctx.pick(256 << 20, 64 << 20) / PAGE;
    let steps = ctx.pick(100_000u64, 20_000);
    let m = Mapping::anon(pages)?;
    // Populate in one call where the kernel can (5.14+); the chain below writes every
    // page anyway.
    let _ = m.advise(libc::MADV_POPULATE_WRITE);
    let next = random_cycle(pages, 0x9E37_79B9_7F4A_7C15);
    let slot = |p: usize| m.at(p, line_of(p) * 64).cast::<usize>();
    for (p, &n) in next.iter().enumerate() {
        // SAFETY: both slots are aligned and inside the mapping, which outlives the
        // chase; nothing else refers to them.
        unsafe { slot(p).write(slot(n as usize) as usize) };
    }
    // The order is one cycle through every page: following it `pages` times from page
    // 0 comes back to page 0 and not earlier.
    let start = slot(0);
    let mut p = start.cast_const();
    for k in 1..=pages {
        p = chase(p, 1);
        verify!((p == start.cast_const()) == (k == pages), "the chain is not one cycle through all {pages} pages");
    }
    let mut at = 0usize;
    let mut total = 0u64;
    let summary = ctx.repeat(|rep| {
        let end = rep.time(steps, || chase(slot(at), steps))?;
        for _ in 0..steps {
            at = next[at] as usize;
        }
        verify!(end == slot(at).cast_const(), "the chase ended at {end:p}, not at page {at}");
        total += steps;
        Ok(())
    })?;
    Ok(Measured {
        summary,
        check: format!(
            "{total} dependent loads over {} MiB ({pages} pages, one random cycle), each ending where the order says",
            (pages * PAGE) >> 20
        ),
    })
}

/// Follows `steps` pointers from `p`, a slot of the chain built by `page_walk`.
fn chase(p: *const usize, steps: u64) -> *const usize {
    // SAFETY: every slot of the chain holds the address of another slot, in the mapping,
    // which page_walk keeps alive while it chases.
    unsafe { loops::chase(p, steps) }
}

/// Which of the 64 cache lines of page `p` holds its slot: spread by a hash so the
/// slots do not all fall into the same cache sets.
fn line_of(p: usize) -> usize {
    (p.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 58) & 63
}

/// `next[i]`: a random order of `0..n` (Fisher-Yates shuffle) closed into one cycle
/// through all elements. Deterministic for a seed.
fn random_cycle(n: usize, seed: u64) -> Vec<u32> {
    let mut order: Vec<u32> = (0..n as u32).collect();
    let mut x = seed | 1;
    for i in (1..n).rev() {
        // xorshift64
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let j = (x % (i as u64 + 1)) as usize;
        order.swap(i, j);
    }
    // Link each element to its successor in the shuffled order, the last to the first.
    let mut next = vec![0u32; n];
    for w in 0..n {
        next[order[w] as usize] = order[(w + 1) % n];
    }
    next
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_cycle_is_one_cycle() {
        for n in [1, 2, 3, 10, 4097] {
            let next = random_cycle(n, 7);
            let mut seen = vec![false; n];
            let mut at = 0usize;
            for _ in 0..n {
                assert!(!seen[at], "n={n}: revisited {at}");
                seen[at] = true;
                at = next[at] as usize;
            }
            assert_eq!(at, 0);
        }
    }

    #[test]
    fn lines_spread_over_the_page() {
        let mut used = [false; 64];
        for p in 0..4096 {
            used[line_of(p)] = true;
        }
        assert!(used.iter().all(|&u| u));
    }
}
