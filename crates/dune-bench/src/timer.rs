//! The time stamp counter: the clock of every measurement.
//!
//! A timed region is `start()` … `stop()`: `lfence; rdtsc; lfence` before it (earlier
//! instructions finish before the read, later ones wait for it) and `rdtscp; lfence`
//! after it (`rdtscp` waits for the region's instructions to finish). The smallest
//! `stop() - start()` of an empty region is the overhead subtracted from every
//! interval ([`overhead`]). Both instructions work in guest ring 0: KVM does not
//! intercept them, the guest sees the host's TSC plus a fixed offset.
//!
//! The values are TSC ticks. On CPUs with an invariant TSC (all recent ones) a tick
//! is a fixed fraction of a second, not a core cycle; the paper's figures are read
//! the same way, with `rdtsc`.

use core::arch::x86_64::{__rdtscp, _mm_lfence, _rdtsc};

/// Reads the TSC at the start of a timed region.
#[inline(always)]
pub fn start() -> u64 {
    // SAFETY: lfence and rdtsc have no memory operands and exist on every x86-64 CPU.
    unsafe {
        _mm_lfence();
        let t = _rdtsc();
        _mm_lfence();
        t
    }
}

/// Reads the TSC at the end of a timed region. Usable in a signal handler.
#[inline(always)]
pub fn stop() -> u64 {
    let mut aux = 0u32;
    // SAFETY: rdtscp writes only `aux`, a local; every x86-64 CPU Linux runs on has it.
    unsafe {
        let t = __rdtscp(&mut aux);
        _mm_lfence();
        t
    }
}

/// The smallest `stop() - start()` over `tries` empty regions, in ticks.
pub fn overhead(tries: usize) -> u64 {
    (0..tries.max(1))
        .map(|_| {
            let t0 = start();
            let t1 = stop();
            t1.wrapping_sub(t0)
        })
        .min()
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tsc_moves_forward_and_overhead_is_small() {
        let t0 = start();
        let mut x = 0u64;
        for i in 0..1000u64 {
            x = std::hint::black_box(x.wrapping_add(i));
        }
        let t1 = stop();
        assert!(t1 > t0, "{t0} {t1} {x}");
        // Generous: even under emulation an empty pair costs far less than this.
        assert!(overhead(1000) < 1_000_000);
    }
}
