//! The address-space layout globals of libdune's `entry.c`: `phys_limit`,
//! `mmap_base` and `stack_base`, set by `dune_init` and `dune_enter`.
//!
//! The original's kernel module reported them (`DUNE_GET_LAYOUT`): `phys_limit` was
//! `1 << x86_phys_bits`, `mmap_base` 63 GiB below the 1 GiB-rounded `mm->mmap_base`,
//! `stack_base` 1 GiB below the 1 GiB-rounded `mm->start_stack`. Here they are found
//! from the runtime (the guest's MAXPHYADDR), `/proc/self/stat` (`startstack`) and
//! `/proc/self/maps` (where the kernel's mmap area begins). The pure functions below
//! do the arithmetic and are tested without KVM.

use std::sync::atomic::{AtomicUsize, Ordering};

/// 1 GiB: the alignment of the windows, as the original's `LG_ALIGN`.
pub const GIB: u64 = 1 << 30;
/// Free address space at `mmap_base` when it is chosen.
pub const MMAP_WINDOW: u64 = 64 * GIB;
/// The part of the window programs use (the original's sandbox: 8 GiB).
pub const MMAP_USABLE: u64 = 8 * GIB;
/// Size of the stack window at `stack_base` (the original's `GPA_STACK_SIZE`).
pub const STACK_WINDOW: u64 = GIB;

/// libdune's `uintptr_t phys_limit`. An `AtomicUsize` has the size and alignment of
/// `uintptr_t`, so C reads it as one.
#[allow(non_upper_case_globals)]
#[no_mangle]
pub static phys_limit: AtomicUsize = AtomicUsize::new(0);

/// libdune's `uintptr_t mmap_base` (see `dune.h`).
#[allow(non_upper_case_globals)]
#[no_mangle]
pub static mmap_base: AtomicUsize = AtomicUsize::new(0);

/// libdune's `uintptr_t stack_base` (see `dune.h`).
#[allow(non_upper_case_globals)]
#[no_mangle]
pub static stack_base: AtomicUsize = AtomicUsize::new(0);

/// Why the layout could not be found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LayoutError {
    /// `/proc/self/stat` or `/proc/self/maps` could not be read or parsed.
    Proc(&'static str),
    /// No free window of [`MMAP_WINDOW`] bytes between the heap and the mmap area.
    NoWindow,
}

impl core::fmt::Display for LayoutError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            LayoutError::Proc(what) => write!(f, "cannot find the address-space layout: {what}"),
            LayoutError::NoWindow => write!(f, "no free {} GiB window below the mmap area for mmap_base", MMAP_WINDOW / GIB),
        }
    }
}

const fn align_down(x: u64, a: u64) -> u64 {
    x & !(a - 1)
}

/// `stack_base` for a main-thread stack that starts at `start_stack`: the 1 GiB window
/// that ends at `start_stack` rounded up to 1 GiB.
pub fn stack_base_of(start_stack: u64) -> u64 {
    align_down(start_stack.saturating_add(GIB - 1), GIB).saturating_sub(STACK_WINDOW)
}

/// The `startstack` field (28th) of a `/proc/<pid>/stat` line.
pub fn start_stack_of(stat: &str) -> Option<u64> {
    // The command name (field 2) is in parentheses and may hold spaces or ')'.
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_ascii_whitespace().nth(28 - 3)?.parse().ok()
}

/// The `[begin, end)` ranges of a `/proc/<pid>/maps` text.
pub fn ranges_of(maps: &str) -> Vec<(u64, u64)> {
    maps.lines()
        .filter_map(|l| {
            let (b, e) = l.split_whitespace().next()?.split_once('-')?;
            Some((u64::from_str_radix(b, 16).ok()?, u64::from_str_radix(e, 16).ok()?))
        })
        .collect()
}

/// `mmap_base` for a process with these mappings and program break `brk`: below the
/// lowest mapping above the break (where the kernel's mmap area begins, whether it
/// grows down from the top or up from `TASK_UNMAPPED_BASE`), 1 GiB aligned, the
/// highest base whose [`MMAP_WINDOW`] bytes no mapping touches, and not closer to
/// the break than one window (room for the heap).
pub fn mmap_base_of(ranges: &[(u64, u64)], brk: u64) -> Option<u64> {
    let lowest = ranges.iter().filter(|&&(b, _)| b >= brk).map(|&(b, _)| b).min()?;
    let mut top = align_down(lowest, GIB);
    loop {
        let base = top.checked_sub(MMAP_WINDOW)?;
        if base < brk.checked_add(MMAP_WINDOW)? {
            return None;
        }
        // The lowest mapping that overlaps [base, top), if any: the window moves below it.
        match ranges.iter().filter(|&&(b, e)| b < top && e > base).map(|&(b, _)| b).min() {
            None => return Some(base),
            Some(b) => top = align_down(b, GIB),
        }
    }
}

/// Finds the layout of this process and publishes it in the globals (`phys_bits`:
/// the guest's MAXPHYADDR).
pub(crate) fn publish(phys_bits: u8) -> Result<(), LayoutError> {
    let stat = std::fs::read_to_string("/proc/self/stat").map_err(|_| LayoutError::Proc("cannot read /proc/self/stat"))?;
    let start = start_stack_of(&stat).ok_or(LayoutError::Proc("no startstack in /proc/self/stat"))?;
    let maps = std::fs::read_to_string("/proc/self/maps").map_err(|_| LayoutError::Proc("cannot read /proc/self/maps"))?;
    // SAFETY: sbrk(0) only reads the current program break.
    let brk = unsafe { libc::sbrk(0) } as u64;
    let base = mmap_base_of(&ranges_of(&maps), brk).ok_or(LayoutError::NoWindow)?;
    let limit = 1u64.checked_shl(phys_bits as u32).unwrap_or(0);
    phys_limit.store(limit as usize, Ordering::Release);
    mmap_base.store(base as usize, Ordering::Release);
    stack_base.store(stack_base_of(start) as usize, Ordering::Release);
    Ok(())
}

/// Whether the globals are set.
pub(crate) fn published() -> bool {
    mmap_base.load(Ordering::Acquire) != 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stack_windows_end_at_the_rounded_stack_start() {
        assert_eq!(stack_base_of(0x7ffd_1234_5678), 0x7ffd_0000_0000);
        assert_eq!(stack_base_of(0x7ffd_4000_0000), 0x7ffd_0000_0000);
        let s = 0x7ffc_9876_5432;
        let b = stack_base_of(s);
        assert!(b <= s && s < b + STACK_WINDOW && b.is_multiple_of(GIB));
    }

    #[test]
    fn startstack_is_field_28() {
        let line = "1234 (a b) c) S 1 1234 1234 0 -1 4194560 100 0 0 0 0 0 0 0 20 0 1 0 555 10000000 300 18446744073709551615 94000000000000 94000000100000 140723456789000 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0\n";
        assert_eq!(start_stack_of(line), Some(140_723_456_789_000));
        assert_eq!(start_stack_of("1 (x) S 1"), None);
        assert_eq!(start_stack_of("garbage"), None);
    }

    #[test]
    fn our_own_stack_is_in_its_window() {
        let stat = std::fs::read_to_string("/proc/self/stat").expect("stat");
        let start = start_stack_of(&stat).expect("startstack");
        let b = stack_base_of(start);
        assert!(b <= start && start < b + STACK_WINDOW);
    }

    const MAPS: &str = "\
55d0c0a00000-55d0c0a20000 r-xp 00000000 fe:01 123 /usr/bin/prog
55d0c1000000-55d0c1021000 rw-p 00000000 00:00 0 [heap]
7f1234500000-7f1234700000 r-xp 00000000 fe:01 456 /usr/lib/libc.so.6
7f1234800000-7f1234900000 rw-p 00000000 00:00 0
7ffd00000000-7ffd00021000 rw-p 00000000 00:00 0 [stack]
ffffffffff600000-ffffffffff601000 --xp 00000000 00:00 0 [vsyscall]
";

    #[test]
    fn the_window_is_below_the_mmap_area() {
        let r = ranges_of(MAPS);
        assert_eq!(r.len(), 6);
        let base = mmap_base_of(&r, 0x55d0_c102_1000).expect("window");
        assert_eq!(base, 0x7f12_0000_0000 - MMAP_WINDOW);
        assert!(r.iter().all(|&(b, e)| e <= base || b >= base + MMAP_WINDOW));
    }

    #[test]
    fn the_window_skips_fixed_mappings() {
        let mut r = ranges_of(MAPS);
        // A MAP_FIXED mapping 10 GiB below the mmap area: the window moves below it.
        r.push((0x7f12_0000_0000 - 10 * GIB, 0x7f12_0000_0000 - 10 * GIB + 0x1000));
        let base = mmap_base_of(&r, 0x55d0_c102_1000).expect("window");
        assert_eq!(base, 0x7f12_0000_0000 - 10 * GIB - MMAP_WINDOW);
        assert!(r.iter().all(|&(b, e)| e <= base || b >= base + MMAP_WINDOW));
    }

    #[test]
    fn no_window_without_room() {
        let r = [(0x10_0000_0000, 0x10_0001_0000)];
        assert_eq!(mmap_base_of(&r, 0x1000), None);
        assert_eq!(mmap_base_of(&[], 0x1000), None);
    }

    #[test]
    fn this_process_has_a_window() {
        let maps = std::fs::read_to_string("/proc/self/maps").expect("maps");
        // SAFETY: sbrk(0) only reads the program break.
        let brk = unsafe { libc::sbrk(0) } as u64;
        let r = ranges_of(&maps);
        let base = mmap_base_of(&r, brk).expect("window");
        assert!(base.is_multiple_of(GIB));
        assert!(r.iter().all(|&(b, e)| e <= base || b >= base + MMAP_WINDOW));
    }
}
