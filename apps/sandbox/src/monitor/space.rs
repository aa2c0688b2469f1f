//! The program's address space: every range it owns, what the memory calls do to it.
//!
//! The monitor tracks each page range the program owns and its protection. Only
//! these ranges are user memory (`libdune::user::add_user_range`): ring 3 reaches
//! nothing else, and every pointer the program passes must lie in them.
//!
//! Address space, once the program's, stays the program's: `munmap` replaces the
//! pages with an inaccessible reservation instead of giving the range back to Linux.
//! So the monitor's own allocations can never land where the program still has a
//! pointer (a sibling thread unmapping a buffer between the monitor's check and the
//! kernel's use of it cannot make the kernel read the monitor's memory), and the
//! user-memory ranges never cover monitor memory.
//!
//! Where a range must be replaced, it is replaced in one step (`MAP_FIXED` over the
//! program's own pages). Where the kernel leaves a hole for a moment (`mremap` moving
//! pages away, shrinking in place, a failed `MAP_FIXED`), the hole is refilled with
//! `MAP_FIXED_NOREPLACE`: if a monitor mapping landed there meanwhile, the range stops
//! being the program's instead of being mapped over (libdune also takes user memory
//! away from any address space the kernel hands out fresh).
//!
//! Fork advice (`MADV_DONTFORK`, `MADV_WIPEONFORK` and their undoing) is kept here and
//! applied by the monitor in a forked child; it never reaches the kernel, so the
//! child's memory map is the parent's. The child still checks its ranges against the
//! kernel's map ([`ProgramSpace::after_fork`]).
//!
//! Memory the program makes accessible is counted for the whole sandbox
//! (`limits`): growth is reserved before the kernel maps it.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};

use super::limits::{self, Kind};
use crate::loader::map::RangeMap;
use crate::loader::{Placement, Space};

const PAGE: u64 = 4096;
/// The lowest address the program may map.
const MIN_ADDR: u64 = 0x1_0000;
/// End of the lower half (user space) of the address space.
pub const USER_END: u64 = 0x7fff_ffff_f000;
/// The protection recorded for pages the program made inaccessible with `mprotect`
/// after they were accessible: `PROT_NONE` to the kernel, but the pages written
/// there stay resident, so they still count against the memory limit (a fresh
/// reservation, plain `PROT_NONE`, holds no pages and does not).
const HELD: i32 = 0x4000_0000;
const RWX: i32 = libc::PROT_READ | libc::PROT_WRITE | libc::PROT_EXEC;

fn errno(e: i32) -> io::Error {
    io::Error::from_raw_os_error(e)
}

/// The program's address space.
#[derive(Debug)]
pub struct ProgramSpace {
    /// Owned ranges and their protection (`PROT_NONE` for reservations and
    /// quarantined ranges).
    owned: RangeMap<i32>,
    /// Bytes the program has mapped accessible (for the memory limit).
    accessible: u64,
    /// Growth reserved in the sandbox's total for the operation under way.
    pending: u64,
    /// The program's `RLIMIT_AS`/`RLIMIT_DATA` (the smaller), kept by the monitor.
    pub rlimit_bytes: u64,
    /// Fork advice by range: [`DONTFORK`] or [`WIPEONFORK`].
    fork_advice: RangeMap<u8>,
    /// Program break: start, current end (page-rounded up for the mapping).
    pub brk_start: u64,
    pub brk_cur: u64,
    /// Mappings the program shares with the monitor (the vDSO): never replaced.
    fixed: Vec<(u64, u64)>,
}

fn mmap_raw(addr: u64, len: u64, prot: i32, flags: i32, fd: i32, off: u64) -> io::Result<u64> {
    // SAFETY: callers pass MAP_FIXED only over ranges the program owns (no monitor
    // object lives there); otherwise the kernel picks a free range.
    let p = unsafe { libc::syscall(libc::SYS_mmap, addr, len, prot, flags, fd, off) };
    if p < 0 {
        // libc::syscall returns -1 and sets errno.
        return Err(io::Error::last_os_error());
    }
    Ok(p as u64)
}

fn page_up(x: u64) -> Option<u64> {
    x.checked_add(PAGE - 1).map(|v| v & !(PAGE - 1))
}

/// `mremap(from, len, new_len, MREMAP_MAYMOVE | MREMAP_FIXED [| flags], to)`.
fn mremap_to(from: u64, len: u64, new_len: u64, flags: i32, to: u64) -> io::Result<()> {
    // SAFETY: callers move pages between ranges the program owns (or staging ranges
    // of the monitor's making); MREMAP_FIXED replaces only the destination.
    let r = unsafe { libc::syscall(libc::SYS_mremap, from, len, new_len, libc::MREMAP_MAYMOVE | libc::MREMAP_FIXED | flags, to) };
    if r < 0 { Err(io::Error::last_os_error()) } else { Ok(()) }
}

/// Moves the mapping at `[from, from+len)` to `to`, `new_len` long there, leaving
/// `from` mapped (`MREMAP_DONTUNMAP`: emptied, for the caller to replace in one
/// step). Linux's own move would leave a hole at `from`, where the monitor's next
/// allocation could land while a call of a sibling still holds a pointer into it.
///
/// The pages go through a staging range of the monitor's first, which no pointer of
/// the program can name: every check Linux makes of the source (one mapping, one that
/// may move or grow) fails there, before anything is unmapped at `to` (Linux 6.1
/// unmaps a fixed destination before it checks the source). The last move, from the
/// staging range over `to`, is of one fresh mapping of the right size. On failure
/// `from` holds its pages again; the caller refills whatever of `to` is gone.
fn move_pages(from: u64, len: u64, new_len: u64, to: u64) -> io::Result<()> {
    let stage = mmap_raw(0, len, libc::PROT_NONE, libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE, -1, 0)?;
    if let Err(e) = mremap_to(from, len, len, libc::MREMAP_DONTUNMAP, stage) {
        // SAFETY: the staging range made above; nothing refers to it.
        unsafe { libc::munmap(stage as *mut libc::c_void, len as usize) };
        return Err(e);
    }
    // Growth where the kernel likes (in place, or moved to a fresh range).
    let mut at = stage;
    if new_len != len {
        // SAFETY: the staging range holds the program's pages; MREMAP_MAYMOVE without
        // MREMAP_FIXED replaces nothing.
        let r = unsafe { libc::syscall(libc::SYS_mremap, stage, len, new_len, libc::MREMAP_MAYMOVE) };
        if r < 0 {
            let e = io::Error::last_os_error();
            let _ = mremap_to(stage, len, len, 0, from);
            return Err(e);
        }
        at = r as u64;
    }
    if let Err(e) = mremap_to(at, new_len, new_len, 0, to) {
        // Back where they were, over the emptied mapping, in one step.
        if new_len == len || mremap_to(at, new_len, len, 0, from).is_err() {
            let _ = mremap_to(at, len, len, 0, from);
        }
        return Err(e);
    }
    Ok(())
}

/// Fork advice: the range is not in a forked child (`MADV_DONTFORK`).
pub const DONTFORK: u8 = 1;
/// Fork advice: the range reads as zeros in a forked child (`MADV_WIPEONFORK`).
pub const WIPEONFORK: u8 = 2;

impl Default for ProgramSpace {
    fn default() -> Self {
        Self::new()
    }
}

impl ProgramSpace {
    /// An empty space.
    pub fn new() -> Self {
        ProgramSpace { owned: RangeMap::default(), accessible: 0, pending: 0, rlimit_bytes: u64::MAX, fork_advice: RangeMap::default(), brk_start: 0, brk_cur: 0, fixed: Vec::new() }
    }

    /// Bytes the program has mapped accessible.
    pub fn accessible(&self) -> u64 {
        self.accessible
    }

    /// Whether `[addr, addr+len)` lies entirely in the program's ranges (any
    /// protection but none). `len == 0` is always fine.
    pub fn contains(&self, addr: u64, len: u64) -> bool {
        if len == 0 {
            return true;
        }
        match addr.checked_add(len) {
            Some(end) if end <= USER_END => self.owned.covers(addr, end, |p| *p & RWX != 0),
            _ => false,
        }
    }

    /// Every range the program owns, in address order.
    pub fn ranges(&self) -> Vec<(u64, u64)> {
        self.owned.iter().map(|r| (r.0, r.1)).collect()
    }

    /// Whether the program owns all of `[addr, end)` (inaccessible parts included).
    pub fn owns(&self, addr: u64, end: u64) -> bool {
        addr < end && self.owned.covers(addr, end, |_| true)
    }

    /// Whether `[addr, end)` touches a mapping shared with the monitor (the vDSO),
    /// which the program may use but never replace, move or change.
    fn touches_fixed(&self, addr: u64, end: u64) -> bool {
        self.fixed.iter().any(|&(s, e)| s < end && addr < e)
    }

    fn record(&mut self, start: u64, end: u64, prot: i32) -> io::Result<()> {
        let before: u64 = self.accessible_in(start, end);
        self.owned.set(start, end, Some(prot));
        let after = if prot == libc::PROT_NONE { 0 } else { end - start };
        self.account(before, after);
        libdune::user::add_user_range(start, end - start).map_err(|_| errno(libc::ENOMEM))
    }

    /// Accessible bytes went from `before` to `after` in a range: growth comes out of
    /// what [`Self::check_limit`] reserved (or is added when nothing was: the vDSO,
    /// the loader's first image), shrinking goes back to the sandbox's total.
    fn account(&mut self, before: u64, after: u64) {
        self.accessible = self.accessible - before + after;
        if after > before {
            let grow = after - before;
            let from_pending = grow.min(self.pending);
            self.pending -= from_pending;
            if grow > from_pending {
                limits::add(Kind::Bytes, grow - from_pending);
            }
        } else {
            limits::release(Kind::Bytes, before - after);
        }
    }

    /// Gives back growth reserved for an operation that did not use it.
    fn settle(&mut self) {
        if self.pending > 0 {
            limits::release(Kind::Bytes, self.pending);
            self.pending = 0;
        }
    }

    /// The range stops being the program's (the kernel put something else there):
    /// not owned, not user memory, no advice.
    fn disown(&mut self, start: u64, end: u64) {
        let before = self.accessible_in(start, end);
        self.owned.set(start, end, None);
        self.fork_advice.set(start, end, None);
        self.account(before, 0);
        let _ = libdune::user::remove_user_range(start, end - start);
    }

    fn accessible_in(&self, start: u64, end: u64) -> u64 {
        self.owned.iter().filter(|r| r.2 != libc::PROT_NONE && r.1 > start && r.0 < end).map(|r| r.1.min(end) - r.0.max(start)).sum()
    }

    /// Reserves the growth of making `[start, end)` accessible with `prot`, in the
    /// sandbox's total and against the program's own `RLIMIT_AS`; `ENOMEM` if either
    /// would be passed. Callers settle what they did not use.
    fn check_limit(&mut self, start: u64, end: u64, prot: i32) -> io::Result<()> {
        if prot == libc::PROT_NONE {
            return Ok(());
        }
        let grow = (end - start) - self.accessible_in(start, end);
        self.reserve_growth(grow)
    }

    /// Reserves `grow` new accessible bytes (a mapping the kernel places where it
    /// likes: none of it is accessible yet, whatever lies at low addresses).
    fn reserve_growth(&mut self, grow: u64) -> io::Result<()> {
        if grow == 0 {
            return Ok(());
        }
        if self.accessible.saturating_add(self.pending).saturating_add(grow) > self.rlimit_bytes || !limits::reserve(Kind::Bytes, grow) {
            return Err(errno(libc::ENOMEM));
        }
        self.pending += grow;
        Ok(())
    }

    /// Makes `[addr, end)` the program's: ranges it does not own yet are claimed with
    /// an inaccessible reservation that fails if anything (the monitor's memory) is
    /// there. On failure nothing is claimed.
    fn claim(&mut self, addr: u64, end: u64) -> io::Result<()> {
        if self.touches_fixed(addr, end) || addr < MIN_ADDR {
            return Err(errno(libc::EPERM));
        }
        let mut gaps = Vec::new();
        let mut at = addr;
        for &(s, e, _) in self.owned.iter() {
            if e <= at {
                continue;
            }
            if s >= end {
                break;
            }
            if s > at {
                gaps.push((at, s));
            }
            at = e;
        }
        if at < end {
            gaps.push((at, end));
        }
        let mut done: Vec<(u64, u64)> = Vec::new();
        for &(s, e) in &gaps {
            let flags = libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE | libc::MAP_FIXED_NOREPLACE;
            match mmap_raw(s, e - s, libc::PROT_NONE, flags, -1, 0) {
                Ok(p) if p == s => done.push((s, e)),
                res => {
                    if let Ok(p) = res {
                        // A kernel that took the flag as a hint.
                        // SAFETY: the mapping just made, nothing refers to it.
                        unsafe { libc::munmap(p as *mut libc::c_void, (e - s) as usize) };
                    }
                    for &(s, e) in &done {
                        // SAFETY: reservations made above, nothing refers to them.
                        unsafe { libc::munmap(s as *mut libc::c_void, (e - s) as usize) };
                    }
                    return Err(errno(libc::EPERM));
                }
            }
        }
        for (s, e) in done {
            self.record(s, e, libc::PROT_NONE)?;
        }
        Ok(())
    }

    /// The program's `mmap`. Returns the address.
    pub fn mmap(&mut self, addr: u64, len: u64, prot: i32, flags: i32, fd: i32, off: u64) -> io::Result<u64> {
        let r = self.mmap_inner(addr, len, prot, flags, fd, off);
        self.settle();
        r
    }

    fn mmap_inner(&mut self, addr: u64, len: u64, prot: i32, flags: i32, fd: i32, off: u64) -> io::Result<u64> {
        let len = page_up(len).filter(|&l| l > 0 && l <= USER_END).ok_or(errno(libc::EINVAL))?;
        if prot & !(libc::PROT_READ | libc::PROT_WRITE | libc::PROT_EXEC) != 0 {
            return Err(errno(libc::EINVAL));
        }
        // Flags the monitor passes on; others (MAP_GROWSDOWN, MAP_32BIT, MAP_HUGETLB…)
        // are refused rather than half-emulated.
        let known = libc::MAP_SHARED | libc::MAP_PRIVATE | libc::MAP_SHARED_VALIDATE | libc::MAP_FIXED | libc::MAP_FIXED_NOREPLACE
            | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE | libc::MAP_POPULATE | libc::MAP_STACK | libc::MAP_DENYWRITE | libc::MAP_EXECUTABLE;
        if flags & !known != 0 {
            return Err(errno(libc::EINVAL));
        }
        let fixed = flags & (libc::MAP_FIXED | libc::MAP_FIXED_NOREPLACE) != 0;
        // The lowest 64 KiB stay unmapped whatever the process's privileges (Linux's
        // mmap_min_addr for unprivileged processes): a null dereference in the
        // monitor or the runtime must never find program data.
        if fixed && addr < MIN_ADDR {
            return Err(errno(libc::EPERM));
        }
        if fixed {
            let end = addr.checked_add(len).filter(|&e| addr.is_multiple_of(PAGE) && e <= USER_END).ok_or(errno(libc::EINVAL))?;
            if flags & libc::MAP_FIXED_NOREPLACE != 0 && self.owned.iter().any(|r| r.2 != libc::PROT_NONE && r.1 > addr && r.0 < end) {
                return Err(errno(libc::EEXIST));
            }
            self.check_limit(addr, end, prot)?;
            self.claim(addr, end)?;
            self.map_over_own(addr, len, prot, flags & !(libc::MAP_FIXED | libc::MAP_FIXED_NOREPLACE), fd, off)?;
            self.fork_advice.set(addr, end, None);
            self.record(addr, end, prot)?;
            Ok(addr)
        } else {
            if prot != libc::PROT_NONE {
                self.reserve_growth(len)?;
            }
            // A hint is only a hint: without MAP_FIXED the kernel never replaces a
            // mapping, so wherever it puts the range, it was free.
            let hint = if addr.is_multiple_of(PAGE) { addr } else { 0 };
            let got = mmap_raw(hint, len, prot, flags, fd, off)?;
            if got.checked_add(len).is_none_or(|e| e > USER_END) {
                // SAFETY: the mapping just made, nothing refers to it.
                unsafe { libc::munmap(got as *mut libc::c_void, len as usize) };
                return Err(errno(libc::ENOMEM));
            }
            self.fork_advice.set(got, got + len, None);
            self.record(got, got + len, prot)?;
            Ok(got)
        }
    }

    /// Maps `[addr, addr+len)`, a range the program owns, anew (`flags` without
    /// `MAP_FIXED`): made where the kernel likes first (every way it or the runtime
    /// can refuse the mapping leaves the program's range as it was), then moved over
    /// the range in one step. A `MAP_FIXED` over the range can fail after the kernel
    /// unmapped it (Linux 6.1 checks the commit limit after), and the monitor's next
    /// allocation could land in the hole while a sibling's call holds a pointer into
    /// it. On failure whatever of the range is gone is refilled (or disowned).
    fn map_over_own(&mut self, addr: u64, len: u64, prot: i32, flags: i32, fd: i32, off: u64) -> io::Result<()> {
        let tmp = mmap_raw(0, len, prot, flags, fd, off)?;
        if let Err(e) = mremap_to(tmp, len, len, 0, addr) {
            // SAFETY: the mapping just made, still where the kernel put it.
            unsafe { libc::munmap(tmp as *mut libc::c_void, len as usize) };
            // Linux checks a move before it unmaps the destination; should it not
            // have, the hole is refilled.
            self.refill_where_unmapped(addr, addr + len);
            return Err(e);
        }
        Ok(())
    }

    /// After a failed `MAP_FIXED` or move over `[addr, end)` (owned): the pages the
    /// kernel already removed are refilled, and whatever someone else mapped in a gap
    /// meanwhile is disowned. The gaps are found by halving: `msync` without flags
    /// fails (`ENOMEM`) on a range with a gap, and a reservation that replaces nothing
    /// succeeds only on a range that is all gap, so a range mapped whole or removed
    /// whole costs two calls, and a few gaps a few calls each, not a call for every
    /// page (a 4 GiB destination was a million calls, each an exit: 78 s in the lane).
    fn refill_where_unmapped(&mut self, addr: u64, end: u64) {
        // SAFETY: msync without flags only reports whether the range is all mapped.
        if unsafe { libc::msync(addr as *mut libc::c_void, (end - addr) as usize, 0) } == 0 {
            return;
        }
        let flags = libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE | libc::MAP_FIXED_NOREPLACE;
        match mmap_raw(addr, end - addr, libc::PROT_NONE, flags, -1, 0) {
            Ok(p) if p == addr => {
                let _ = self.record(addr, end, libc::PROT_NONE);
                return;
            }
            Ok(p) => {
                // SAFETY: the mapping just made (a kernel that took the flag as a hint),
                // nothing refers to it.
                unsafe { libc::munmap(p as *mut libc::c_void, (end - addr) as usize) };
            }
            Err(e) if e.raw_os_error() != Some(libc::EEXIST) => {
                // No reservation can be made here (memory, the runtime's budget):
                // the range stops being the program's, failing closed.
                self.disown(addr, end);
                return;
            }
            Err(_) => {}
        }
        if end - addr <= PAGE {
            // A gap that could not be refilled: someone else's mapping is there now.
            self.disown(addr, end);
            return;
        }
        let mid = addr + (end - addr) / PAGE / 2 * PAGE;
        self.refill_where_unmapped(addr, mid);
        self.refill_where_unmapped(mid, end);
    }

    /// Replaces `[addr, end)` (owned, mapped) with an inaccessible reservation, in one
    /// step: `MAP_FIXED` over the program's own pages.
    fn quarantine(&mut self, addr: u64, end: u64) {
        let flags = libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE | libc::MAP_FIXED;
        // Cannot fail for lack of memory (PROT_NONE, no reserve); if it did, the range
        // is left as it was and stays the program's.
        let _ = mmap_raw(addr, end - addr, libc::PROT_NONE, flags, -1, 0);
        self.fork_advice.set(addr, end, None);
        let _ = self.record(addr, end, libc::PROT_NONE);
    }

    /// The program's `munmap`: its own pages become an inaccessible reservation. A
    /// range that is not all the program's is refused (it may be the monitor's).
    pub fn munmap(&mut self, addr: u64, len: u64) -> io::Result<()> {
        let len = page_up(len).ok_or(errno(libc::EINVAL))?;
        let end = addr.checked_add(len).filter(|&e| addr.is_multiple_of(PAGE) && len > 0 && e <= USER_END).ok_or(errno(libc::EINVAL))?;
        if self.touches_fixed(addr, end) || !self.owns(addr, end) {
            return Err(errno(libc::EPERM));
        }
        let parts: Vec<(u64, u64)> = self.owned.iter().filter(|r| r.1 > addr && r.0 < end && r.2 != libc::PROT_NONE).map(|r| (r.0.max(addr), r.1.min(end))).collect();
        for (s, e) in parts {
            self.quarantine(s, e);
        }
        Ok(())
    }

    /// The program's `mprotect`: only on its own accessible-or-reserved pages.
    pub fn mprotect(&mut self, addr: u64, len: u64, prot: i32) -> io::Result<()> {
        let r = self.mprotect_inner(addr, len, prot);
        self.settle();
        r
    }

    fn mprotect_inner(&mut self, addr: u64, len: u64, prot: i32) -> io::Result<()> {
        let len = page_up(len).ok_or(errno(libc::EINVAL))?;
        let end = addr.checked_add(len).filter(|&e| addr.is_multiple_of(PAGE) && e <= USER_END).ok_or(errno(libc::EINVAL))?;
        if prot & !(libc::PROT_READ | libc::PROT_WRITE | libc::PROT_EXEC) != 0 {
            return Err(errno(libc::EINVAL));
        }
        if len == 0 {
            return Ok(());
        }
        if !self.owns(addr, end) {
            return Err(errno(libc::ENOMEM));
        }
        if self.touches_fixed(addr, end) {
            return Err(errno(libc::EPERM));
        }
        self.check_limit(addr, end, prot)?;
        // SAFETY: the range is the program's (checked above).
        if unsafe { libc::mprotect(addr as *mut libc::c_void, len as usize, prot) } != 0 {
            return Err(io::Error::last_os_error());
        }
        if prot != libc::PROT_NONE {
            return self.record(addr, end, prot);
        }
        // What was accessible keeps its pages: it stays counted.
        let parts: Vec<(u64, u64, i32)> = self.owned.iter().filter(|r| r.1 > addr && r.0 < end).map(|r| (r.0.max(addr), r.1.min(end), if r.2 == libc::PROT_NONE { libc::PROT_NONE } else { HELD })).collect();
        for (s, e, p) in parts {
            self.record(s, e, p)?;
        }
        Ok(())
    }

    /// The program's `mremap`: the old range must be its own; a new place is claimed
    /// first (inside its own space, or fresh), then the kernel moves the pages, then
    /// the hole the old range left is refilled.
    pub fn mremap(&mut self, old: u64, old_len: u64, new_len: u64, flags: i32, new_addr: u64) -> io::Result<u64> {
        let r = self.mremap_inner(old, old_len, new_len, flags, new_addr);
        self.settle();
        r
    }

    fn mremap_inner(&mut self, old: u64, old_len: u64, new_len: u64, flags: i32, new_addr: u64) -> io::Result<u64> {
        let old_len = page_up(old_len).ok_or(errno(libc::EINVAL))?;
        let new_len = page_up(new_len).filter(|&l| l > 0 && l <= USER_END).ok_or(errno(libc::EINVAL))?;
        let old_end = old.checked_add(old_len).filter(|&e| old.is_multiple_of(PAGE) && e <= USER_END).ok_or(errno(libc::EINVAL))?;
        if old_len == 0 || flags & !(libc::MREMAP_MAYMOVE | libc::MREMAP_FIXED) != 0 || !self.contains(old, old_len) || self.touches_fixed(old, old_end) {
            return Err(errno(libc::EINVAL));
        }
        let prot = self.owned.iter().find(|r| r.0 <= old && r.1 > old).map_or(libc::PROT_NONE, |r| r.2);
        let advice = self.fork_advice.iter().find(|r| r.0 <= old && r.1 > old).map(|r| r.2);
        if new_len > old_len && prot != libc::PROT_NONE {
            // Growth is reserved against the limits like a new mapping of the difference.
            self.reserve_growth(new_len - old_len)?;
        }
        let fixed = flags & libc::MREMAP_FIXED != 0;
        if fixed {
            // Linux's order: the destination first, then the shrink, then the move.
            let end = new_addr.checked_add(new_len).filter(|&e| new_addr.is_multiple_of(PAGE) && e <= USER_END).ok_or(errno(libc::EINVAL))?;
            if new_addr < old_end && old < end {
                return Err(errno(libc::EINVAL));
            }
            self.claim(new_addr, end)?;
        }
        // Shrinking: the tail becomes an inaccessible reservation in one step (Linux
        // unmaps it; a hole there, even for a moment, could be given to the monitor
        // while a sibling's call still holds a pointer into it).
        let mut len = old_len;
        if new_len < old_len {
            self.quarantine(old + new_len, old_end);
            len = new_len;
        }
        if !fixed && new_len <= old_len {
            return Ok(old);
        }
        if !fixed {
            // Growing in place takes only free space right after (never a mapping).
            // SAFETY: the old range is the program's; the kernel grows only into
            // unmapped space.
            let r = unsafe { libc::syscall(libc::SYS_mremap, old, old_len, new_len, 0, 0) };
            if r >= 0 {
                self.record(old_end, old + new_len, prot)?;
                return Ok(old);
            }
            if flags & libc::MREMAP_MAYMOVE == 0 {
                return Err(io::Error::last_os_error());
            }
        }
        let target = if fixed {
            new_addr
        } else {
            let r = mmap_raw(0, new_len, libc::PROT_NONE, libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE, -1, 0)?;
            self.record(r, r + new_len, libc::PROT_NONE)?;
            r
        };
        if let Err(e) = move_pages(old, len, new_len, target) {
            // The destination may be gone (Linux unmaps it first): refilled, or
            // disowned if something else took it meanwhile.
            self.refill_where_unmapped(target, target + new_len);
            return Err(e);
        }
        // The old range is still mapped (emptied), never a hole: now a reservation.
        self.quarantine(old, old + len);
        self.fork_advice.set(target, target + new_len, advice);
        self.record(target, target + new_len, prot)?;
        Ok(target)
    }

    /// The program's `brk`: grows and shrinks an anonymous mapping after the image.
    pub fn brk(&mut self, want: u64) -> u64 {
        let r = self.brk_inner(want);
        self.settle();
        r
    }

    fn brk_inner(&mut self, want: u64) -> u64 {
        if self.brk_start == 0 || want < self.brk_start {
            return self.brk_cur;
        }
        let (Some(cur_top), Some(new_top)) = (page_up(self.brk_cur), page_up(want)) else { return self.brk_cur };
        if new_top > USER_END || self.touches_fixed(cur_top, new_top.max(cur_top + 1)) {
            return self.brk_cur;
        }
        if new_top > cur_top {
            let flags = libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_FIXED_NOREPLACE;
            if self.check_limit(cur_top, new_top, libc::PROT_READ | libc::PROT_WRITE).is_err() {
                return self.brk_cur;
            }
            let ok = if self.owns(cur_top, new_top) {
                // Over the program's own range: never a hole (see `map_over_own`).
                self.map_over_own(cur_top, new_top - cur_top, libc::PROT_READ | libc::PROT_WRITE, flags & !libc::MAP_FIXED_NOREPLACE, -1, 0).is_ok()
            } else {
                matches!(mmap_raw(cur_top, new_top - cur_top, libc::PROT_READ | libc::PROT_WRITE, flags, -1, 0), Ok(p) if p == cur_top)
            };
            if !ok || self.record(cur_top, new_top, libc::PROT_READ | libc::PROT_WRITE).is_err() {
                return self.brk_cur;
            }
        } else if new_top < cur_top {
            self.quarantine(new_top, cur_top);
        }
        self.brk_cur = want;
        want
    }

    /// Everything the program owns, quarantined (before `execve` loads a new image).
    pub fn clear(&mut self) {
        let all: Vec<(u64, u64)> = self.owned.iter().filter(|r| r.2 != libc::PROT_NONE && !self.touches_fixed(r.0, r.1)).map(|r| (r.0, r.1)).collect();
        for (s, e) in all {
            self.quarantine(s, e);
        }
        self.brk_start = 0;
        self.brk_cur = 0;
    }

    /// Adds a mapping that already exists in the process (the vDSO) to the program's
    /// ranges, with its protection.
    pub fn adopt(&mut self, start: u64, end: u64, prot: i32) -> io::Result<()> {
        self.fixed.push((start, end));
        self.record(start, end, prot)
    }

    /// The program's fork advice for `[addr, addr+len)` (`MADV_DONTFORK`,
    /// `MADV_DOFORK`, `MADV_WIPEONFORK`, `MADV_KEEPONFORK`): recorded, applied in a
    /// forked child by [`Self::after_fork`]. The range must be the program's.
    pub fn fork_advice(&mut self, addr: u64, len: u64, advice: i32) -> io::Result<()> {
        let len = page_up(len).ok_or(errno(libc::EINVAL))?;
        let end = addr.checked_add(len).filter(|&e| addr.is_multiple_of(PAGE) && e <= USER_END).ok_or(errno(libc::EINVAL))?;
        if len == 0 {
            return Ok(());
        }
        if !self.contains(addr, len) || self.touches_fixed(addr, end) {
            return Err(errno(libc::ENOMEM));
        }
        match advice {
            libc::MADV_DONTFORK => self.fork_advice.set(addr, end, Some(DONTFORK)),
            libc::MADV_WIPEONFORK => self.fork_advice.set(addr, end, Some(WIPEONFORK)),
            // Both undo only their own advice; the other stays.
            libc::MADV_DOFORK | libc::MADV_KEEPONFORK => {
                let undo = if advice == libc::MADV_DOFORK { DONTFORK } else { WIPEONFORK };
                let parts: Vec<(u64, u64)> = self.fork_advice.iter().filter(|r| r.2 == undo && r.1 > addr && r.0 < end).map(|r| (r.0.max(addr), r.1.min(end))).collect();
                for (s, e) in parts {
                    self.fork_advice.set(s, e, None);
                }
            }
            _ => return Err(errno(libc::EINVAL)),
        }
        Ok(())
    }

    /// In a forked child, before the program runs again: the fork advice applied (a
    /// `MADV_DONTFORK` range becomes an inaccessible reservation, a `MADV_WIPEONFORK`
    /// one fresh zero pages), then every range checked against the kernel's map. A
    /// range the kernel does not have stops being the program's.
    pub fn after_fork(&mut self) {
        let advice: Vec<(u64, u64, u8)> = self.fork_advice.iter().copied().collect();
        for (s, e, a) in advice {
            if a == DONTFORK {
                self.quarantine(s, e);
            } else {
                let prot = self.owned.iter().find(|r| r.0 <= s && r.1 > s).map_or(libc::PROT_NONE, |r| r.2 & RWX);
                let flags = libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_FIXED;
                if mmap_raw(s, e - s, prot, flags, -1, 0).is_err() {
                    self.quarantine(s, e);
                }
                self.fork_advice.set(s, e, Some(WIPEONFORK));
            }
        }
        let mapped = kernel_map();
        let owned: Vec<(u64, u64)> = self.owned.iter().map(|r| (r.0, r.1)).collect();
        for (s, e) in owned {
            let mut at = s;
            for &(ms, me) in mapped.iter().filter(|m| m.1 > s && m.0 < e) {
                if ms > at {
                    self.disown(at, ms.min(e));
                }
                at = at.max(me);
            }
            if at < e {
                self.disown(at, e);
            }
        }
    }
}

/// `/proc/self/maps` as the kernel shows it, read through the runtime's descriptor at
/// its own numbers: never opened here, where the descriptor would be born at the
/// lowest free number and a sibling thread of the program could duplicate it.
pub fn own_maps() -> Option<String> {
    libdune::runtime::own_maps().ok().and_then(|b| String::from_utf8(b).ok())
}

/// The process's mappings `(start, end)` from `/proc/self/maps`, sorted; everything
/// if it cannot be read (then nothing is disowned on its account).
fn kernel_map() -> Vec<(u64, u64)> {
    let Some(maps) = own_maps() else { return vec![(0, u64::MAX)] };
    let mut out = Vec::new();
    for l in maps.lines() {
        let Some((s, e)) = l.split_whitespace().next().and_then(|r| r.split_once('-')) else { continue };
        if let (Ok(s), Ok(e)) = (u64::from_str_radix(s, 16), u64::from_str_radix(e, 16)) {
            out.push((s, e));
        }
    }
    out
}

impl Space for ProgramSpace {
    fn reserve(&mut self, at: Placement, len: u64) -> io::Result<u64> {
        if len == 0 || !len.is_multiple_of(PAGE) || len > USER_END {
            return Err(errno(libc::EINVAL));
        }
        let base = libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE;
        match at {
            Placement::Exactly(a) => {
                let end = a.checked_add(len).filter(|&e| a.is_multiple_of(PAGE) && e <= USER_END).ok_or(errno(libc::EINVAL))?;
                if self.owned.iter().any(|r| r.2 != libc::PROT_NONE && r.1 > a && r.0 < end) {
                    return Err(errno(libc::EEXIST));
                }
                // Over the program's own quarantined space, or fresh space; never
                // over the monitor's.
                self.claim(a, end).map_err(|_| errno(libc::EEXIST))?;
                Ok(a)
            }
            Placement::Anywhere | Placement::Hint(_) => {
                let hint = if let Placement::Hint(h) = at { h & !(PAGE - 1) } else { 0 };
                let got = mmap_raw(hint, len, libc::PROT_NONE, base, -1, 0)?;
                if got.checked_add(len).is_none_or(|e| e > USER_END) {
                    // SAFETY: the mapping just made, nothing refers to it.
                    unsafe { libc::munmap(got as *mut libc::c_void, len as usize) };
                    return Err(errno(libc::ENOMEM));
                }
                self.record(got, got + len, libc::PROT_NONE)?;
                Ok(got)
            }
        }
    }

    fn map_file(&mut self, addr: u64, len: u64, prot: i32, fd: BorrowedFd<'_>, off: u64) -> io::Result<()> {
        let end = addr.checked_add(len).filter(|&e| self.owns(addr, e)).ok_or(errno(libc::EINVAL))?;
        // An image's memory counts against the limits like any mapping.
        let r = self.check_limit(addr, end, prot).and_then(|()| mmap_raw(addr, len, prot, libc::MAP_PRIVATE | libc::MAP_FIXED, fd.as_raw_fd(), off)).and_then(|_| self.record(addr, end, prot));
        self.settle();
        r
    }

    fn map_anon(&mut self, addr: u64, len: u64, prot: i32) -> io::Result<()> {
        let end = addr.checked_add(len).filter(|&e| self.owns(addr, e)).ok_or(errno(libc::EINVAL))?;
        let r = self.check_limit(addr, end, prot).and_then(|()| mmap_raw(addr, len, prot, libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_FIXED, -1, 0)).and_then(|_| self.record(addr, end, prot));
        self.settle();
        r
    }

    fn protect(&mut self, addr: u64, len: u64, prot: i32) -> io::Result<()> {
        self.mprotect(addr, len, prot)
    }

    fn write(&mut self, addr: u64, bytes: &[u8]) -> io::Result<()> {
        if !self.contains(addr, bytes.len() as u64) || !super::uaccess::write(addr, bytes) {
            return Err(errno(libc::EFAULT));
        }
        Ok(())
    }

    fn unmap(&mut self, addr: u64, len: u64) -> io::Result<()> {
        let end = addr.checked_add(len).filter(|&e| self.owns(addr, e)).ok_or(errno(libc::EINVAL))?;
        self.quarantine(addr, end);
        Ok(())
    }
}
