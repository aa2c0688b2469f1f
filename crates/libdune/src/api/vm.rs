//! The process's own page tables, from Dune mode (libdune's `vm.c`).
//!
//! In Dune mode the guest page table maps the process's address space (guest virtual
//! == host virtual). These functions let the process change it, build others, and
//! read accessed and dirty bits, with the TLB control that makes that correct.
//!
//! - Tables live in runtime memory; a table is named by the guest-physical address of
//!   its root ([`Root`]). [`pgroot`] is the process's own.
//! - Editing functions take the runtime lock and may allocate tables: call them from
//!   ordinary code, not from a trap handler that may have interrupted the runtime.
//!   [`lookup`] without creation, [`walk`] and the TLB functions take no lock and are
//!   fine in handlers.
//! - A page the application maps away from its host address (or maps at an address
//!   the host has no mapping for) is invisible to the kernel: system calls given such
//!   an address fail with `EFAULT`. Host-side changes (`mmap`, `munmap`, `mprotect` of
//!   the same range) overwrite edits made here.
//! - Edits are not flushed from the TLB by themselves: call [`flush_tlb_one`] or
//!   [`flush_tlb`] (this vCPU) after changing or removing a present entry.

use core::ops::ControlFlow;

use dune_x86::paging::{self, Create, FlagUpdate, FrameSource, Mapper, PageSize, PageTable as Table, Pte, PteRef, WalkMode};

use crate::error::{Error, Result};
use crate::host::memory::{arena_gpa_to_hva, PAGE, USER_END};
use crate::host::pagetable::{self, Frames};
use crate::host::state as runtime;

/// Readable (present).
pub const PERM_R: u64 = 0x1;
/// Writable.
pub const PERM_W: u64 = 0x2;
/// Executable.
pub const PERM_X: u64 = 0x4;
/// Accessible from ring 3.
pub const PERM_U: u64 = 0x8;
/// Uncached.
pub const PERM_UC: u64 = 0x10;
/// Copy on write (a software bit for the application's own use).
pub const PERM_COW: u64 = 0x20;
/// 2 MiB pages where the range allows.
pub const PERM_BIG: u64 = 0x100;
/// 1 GiB pages where the range allows.
pub const PERM_BIG_1GB: u64 = 0x200;

/// Sets [`PTE_USR1`] (a bit for the application's own use).
pub const PERM_USR1: u64 = 0x1000;
/// Sets [`PTE_USR2`].
pub const PERM_USR2: u64 = 0x2000;
/// Sets [`PTE_USR3`]. (The original's value, 0x3000, was both of the others.)
pub const PERM_USR3: u64 = 0x4000;

/// The software bit `PERM_COW` sets in entries (an available bit).
pub const PTE_COW: u64 = 1 << 11;
/// Bits of the entry the hardware ignores, for the application (with protection
/// keys off, as the runtime runs): `PERM_USR1`..`PERM_USR3` set them.
pub const PTE_USR1: u64 = 1 << 62;
/// See [`PTE_USR1`].
pub const PTE_USR2: u64 = 1 << 61;
/// See [`PTE_USR1`].
pub const PTE_USR3: u64 = 1 << 60;

/// A page table, named by the guest-physical address of its root.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Root(pub u64);

impl Root {
    /// The root table's address as the guest (and host) sees it.
    pub fn as_ptr(self) -> *mut u64 {
        arena_gpa_to_hva(self.0).unwrap_or(0) as *mut u64
    }
}

/// The process's own page table (libdune's `pgroot`).
pub fn pgroot() -> Result<Root> {
    runtime::with_state(|st| Ok(Root(st.mem.root())))
}

/// Leaf flags for `perm` (P is added by the mapper).
pub fn perm_to_flags(perm: u64) -> u64 {
    let mut f = 0;
    if perm & PERM_W != 0 {
        f |= paging::PTE_W;
    }
    if perm & PERM_X == 0 {
        f |= paging::PTE_NX;
    }
    if perm & PERM_U != 0 {
        f |= paging::PTE_U;
    }
    if perm & PERM_UC != 0 {
        f |= paging::PTE_PCD | paging::PTE_PWT;
    }
    if perm & PERM_COW != 0 {
        f |= PTE_COW;
    }
    for (p, bit) in [(PERM_USR1, PTE_USR1), (PERM_USR2, PTE_USR2), (PERM_USR3, PTE_USR3)] {
        if perm & p != 0 {
            f |= bit;
        }
    }
    f
}

fn max_size(perm: u64) -> PageSize {
    if perm & PERM_BIG_1GB != 0 {
        PageSize::Size1G
    } else if perm & PERM_BIG != 0 {
        PageSize::Size2M
    } else {
        PageSize::Size4K
    }
}

fn check_range(va: u64, len: u64) -> Result<()> {
    if !va.is_multiple_of(PAGE) || !len.is_multiple_of(PAGE) || va.checked_add(len).is_none() {
        return Err(Error::PageTable(paging::Error::Misaligned { addr: va | len, align: PAGE }));
    }
    Ok(())
}

/// Tables reached without any lock: lookups and walks only.
struct ReadFrames;

impl FrameSource for ReadFrames {
    fn alloc_table(&mut self) -> Option<u64> {
        None
    }

    fn free_table(&mut self, _pa: u64) {}

    fn table(&self, pa: u64) -> Option<&Table> {
        let hva = arena_gpa_to_hva(pa).filter(|_| pa.is_multiple_of(PAGE))?;
        // SAFETY: runtime memory stays mapped for the life of the process; a table is
        // 512 atomics, so shared references alongside the CPU's and other writers' are sound.
        Some(unsafe { &*(hva as *const Table) })
    }
}

/// Runs `f` with a mapper that allocates tables, under the runtime lock.
fn with_mapper<T>(f: impl FnOnce(&mut Mapper<Frames<'_>>) -> core::result::Result<T, paging::Error>) -> Result<T> {
    runtime::with_state(|st| {
        st.mem.reserve_pages(&st.vm, 1024)?;
        let mut m = Mapper::new(Frames::new(&mut st.mem));
        f(&mut m).map_err(Error::PageTable)
    })
}

/// Maps `[va, va+len)` to guest-physical `[pa, pa+len)` with `perm`, replacing what
/// was there (libdune's `dune_vm_map_phys`).
pub fn map_phys(root: Root, va: u64, len: u64, pa: u64, perm: u64) -> Result<()> {
    check_range(va, len)?;
    with_mapper(|m| pagetable::replace_range(m, root.0, va, pa, len, perm_to_flags(perm), max_size(perm)))
}

/// Maps `[va, va+len)` to fresh zeroed pages from the page allocator
/// (`dune_vm_map_pages`); [`unmap`] returns them.
pub fn map_pages(root: Root, va: u64, len: u64, perm: u64) -> Result<()> {
    check_range(va, len)?;
    runtime::with_state(|st| {
        let flags = perm_to_flags(perm);
        let mut at = va;
        while at < va + len {
            st.mem.reserve_pages(&st.vm, 8)?;
            let pa = st.mem.page_alloc(&st.vm)?;
            let mut m = Mapper::new(Frames::new(&mut st.mem));
            let res = m.unmap_range(root.0, at..at + PAGE).and_then(|_| m.map(root.0, at, pa, PageSize::Size4K, flags).map(|_| ()));
            if let Err(e) = res {
                st.mem.page_put(pa);
                return Err(Error::PageTable(e));
            }
            at += PAGE;
        }
        Ok(())
    })
}

/// Changes the permissions of the present pages in `[va, va+len)` (`dune_vm_mprotect`).
/// Without `PERM_R` the pages become not present.
pub fn mprotect(root: Root, va: u64, len: u64, perm: u64) -> Result<()> {
    check_range(va, len)?;
    if perm & (PERM_R | PERM_W | PERM_X) == 0 {
        // Not-present entries keep their address, so PERM_R can bring them back.
        return walk(root, va, va + len, |_, e, _| {
            e.clear_bits(paging::PTE_P);
            ControlFlow::<()>::Continue(())
        })
        .map(|_| ());
    }
    let update = FlagUpdate { set: perm_to_flags(perm), clear: paging::PTE_W | paging::PTE_NX | paging::PTE_U | paging::PTE_PCD | paging::PTE_PWT | PTE_COW | PTE_USR1 | PTE_USR2 | PTE_USR3 };
    // Entries made not present earlier become present again.
    let _ = walk_all(root, va, va + len, |_, e, _| {
        let p = e.get();
        if !p.is_present() && p.addr() != 0 {
            e.set_bits(paging::PTE_P);
        }
        ControlFlow::<()>::Continue(())
    })?;
    with_mapper(|m| m.protect_range(root.0, va..va + len, update))
}

/// Removes the mappings of `[va, va+len)` (`dune_vm_unmap`). Pages from the page
/// allocator lose the reference the mapping held.
pub fn unmap(root: Root, va: u64, len: u64) -> Result<()> {
    check_range(va, len)?;
    runtime::with_state(|st| {
        let mut freed: [u64; 64] = [0; 64];
        let mut at = va;
        // In batches: the mapper borrows the memory tables, page_put needs them too.
        while at < va + len {
            let end = (at + 64 * PAGE).min(va + len);
            let mut n = 0;
            {
                let mut m = Mapper::new(Frames::new(&mut st.mem));
                m.unmap_range_with(root.0, at..end, |_, old, size| {
                    if size == PageSize::Size4K && n < freed.len() {
                        freed[n] = old.addr();
                        n += 1;
                    }
                })
                .map_err(Error::PageTable)?;
            }
            for &pa in &freed[..n] {
                if st.mem.page_is_allocated(pa) {
                    st.mem.page_put(pa);
                }
            }
            at = end;
        }
        Ok(())
    })
}

/// The entry that maps `va`, creating tables down to the level `create` asks for
/// (`dune_vm_lookup`). Without creation it takes no lock.
pub fn lookup(root: Root, va: u64, create: Create) -> Result<(PteRef<'static>, PageSize)> {
    fn leak<'a>(r: PteRef<'a>) -> PteRef<'static> {
        // SAFETY: entries live in runtime memory, which is never unmapped; the handle
        // is an atomic reference into it.
        unsafe { core::mem::transmute::<PteRef<'a>, PteRef<'static>>(r) }
    }
    if create == Create::None {
        let m = Mapper::new(ReadFrames);
        // A read-only source never allocates; lookup only needs &mut for creation.
        let mut m = m;
        return m.lookup(root.0, va, create).map(|(r, s)| (leak(r), s)).map_err(Error::PageTable);
    }
    with_mapper(|m| m.lookup(root.0, va, create).map(|(r, s)| (leak(r), s)))
}

/// Calls `f(va, entry, size)` for each present leaf in `[start, end)`
/// (`dune_vm_page_walk`). Takes no lock; `f` may change entries.
pub fn walk<B>(root: Root, start: u64, end: u64, f: impl FnMut(u64, PteRef<'_>, PageSize) -> ControlFlow<B>) -> Result<ControlFlow<B>> {
    Mapper::new(ReadFrames).walk(root.0, start..end, WalkMode::Present, f).map_err(Error::PageTable)
}

fn walk_all<B>(root: Root, start: u64, end: u64, f: impl FnMut(u64, PteRef<'_>, PageSize) -> ControlFlow<B>) -> Result<ControlFlow<B>> {
    Mapper::new(ReadFrames).walk(root.0, start..end, WalkMode::IncludeEmpty, f).map_err(Error::PageTable)
}

/// A deep copy of the table structure; leaves point to the same pages (`dune_vm_clone`).
/// Each page from the page allocator it maps gains a reference, so unmapping it from
/// either table leaves it to the other.
pub fn clone(root: Root) -> Result<Root> {
    let new = with_mapper(|m| m.clone_table(root.0)).map(Root)?;
    for_allocator_pages(new, |st, pa| {
        st.mem.page_get(pa);
    })?;
    Ok(new)
}

/// Splits every 2 MiB and 1 GiB leaf of `root` that maps the process's own memory
/// (not the runtime's) into 4 KiB leaves with the same frames and flags. The
/// runtime mirrors the process's mappings with large pages where a mapping allows;
/// libdune mapped them with 4 KiB pages only, and its programs edit a clone page by
/// page (Wedge's `sthread.c` remaps each page of each writable mapping to a private
/// copy, counting one page per entry its walk visits). Guest-only large mappings
/// (`map_phys` with `PERM_BIG`) and runtime memory are left alone.
pub fn split_process_leaves(root: Root) -> Result<()> {
    let mut large: Vec<(u64, u64, PageSize)> = Vec::new();
    let _ = walk(root, 0, USER_END, |va, e, size| {
        if size != PageSize::Size4K {
            large.push((va, e.get().addr(), size));
        }
        ControlFlow::<()>::Continue(())
    })?;
    for (va, pa, size) in large {
        // A mirror maps the host's own page at its address (guest-physical pa is the
        // memslot's page for va).
        let mirror = runtime::with_state(|st| Ok(!st.mem.is_runtime(va) && st.mem.gpa_to_hva(pa) == Some(va)))?;
        if !mirror {
            continue;
        }
        with_mapper(|m| {
            m.split(root.0, va)?;
            if size == PageSize::Size1G {
                for i in 0..512u64 {
                    m.split(root.0, va + i * (2 << 20))?;
                }
            }
            Ok(())
        })?;
    }
    Ok(())
}

/// Frees the tables of a root made by [`clone`], dropping the references its
/// mappings of allocator pages hold (the pages themselves go when no table maps them).
pub fn free(root: Root) -> Result<()> {
    if root == pgroot()? {
        return Err(Error::InvalidOption { name: "root", why: "the process's own page table cannot be freed" });
    }
    for_allocator_pages(root, |st, pa| {
        st.mem.page_put(pa);
    })?;
    with_mapper(|m| m.free_tables(root.0))
}

/// Calls `f` for each 4 KiB leaf of `root` that maps a page from the page allocator,
/// except where the runtime maps its own memory at its own address.
fn for_allocator_pages(root: Root, mut f: impl FnMut(&mut runtime::State, u64)) -> Result<()> {
    let mut pages: Vec<u64> = Vec::new();
    let _ = walk(root, 0, USER_END, |va, e, size| {
        let pa = e.get().addr();
        if size == PageSize::Size4K && arena_gpa_to_hva(pa) != Some(va) {
            pages.push(pa);
        }
        ControlFlow::<()>::Continue(())
    })?;
    runtime::with_state(|st| {
        for &pa in &pages {
            if st.mem.page_is_allocated(pa) {
                f(st, pa);
            }
        }
        Ok(())
    })
}

/// Guest-physical address of `va` in the process's page table (`dune_va_to_pa`).
pub fn va_to_pa(va: u64) -> Option<u64> {
    let root = pgroot().ok()?;
    Mapper::new(ReadFrames).translate(root.0, va).ok().map(|t| t.pa)
}

/// Host (= guest virtual) address of a page from the page allocator or of a table.
pub fn pa_to_va(pa: u64) -> Option<u64> {
    arena_gpa_to_hva(pa)
}

/// Drops this vCPU's translations (CR3 reload; no global pages are used).
pub fn flush_tlb() {
    crate::guest::dispatch::flush_tlb();
}

/// Drops the translations of every vCPU of the process (a TLB shootdown by IPI) and
/// returns when none running guest code can use a stale one. Call it from ordinary
/// code, not from a trap handler.
pub fn flush_tlb_all() {
    crate::guest::shootdown::shootdown();
}

/// Drops this vCPU's translation of one page (`invlpg`).
pub fn flush_tlb_one(va: u64) {
    // SAFETY: invlpg only invalidates a translation; in Dune mode this runs in ring 0.
    unsafe { core::arch::asm!("invlpg [{0}]", in(reg) va, options(nostack, preserves_flags)) };
}

/// Switches this vCPU to another page table (`load_cr3`). The process's own system
/// calls and faults keep working only under tables that map what they touch.
///
/// # Safety
/// `cr3` must be the root of a valid table that maps the running code, its stack and
/// the runtime's memory (a [`clone`] of [`pgroot`] does).
pub unsafe fn load_cr3(cr3: u64) {
    // SAFETY: the caller vouches for the table.
    unsafe { core::arch::asm!("mov cr3, {0}", in(reg) cr3, options(nostack, preserves_flags)) };
}

/// Whether process-context identifiers are on (CR4.PCIDE): the CPU and KVM offer PCID.
/// Read once: every vCPU gets the same CR4, and a CR4 read is a VM exit on AMD.
pub fn pcid_enabled() -> bool {
    use core::sync::atomic::{AtomicU8, Ordering};
    static PCIDE: AtomicU8 = AtomicU8::new(0);
    match PCIDE.load(Ordering::Relaxed) {
        1 => false,
        2 => true,
        _ => {
            let cr4: u64;
            // SAFETY: reading CR4 in Dune mode (ring 0) has no side effects.
            unsafe { core::arch::asm!("mov {0}, cr4", out(reg) cr4, options(nostack, nomem, preserves_flags)) };
            let on = cr4 & dune_x86::regs::cr4::PCIDE != 0;
            PCIDE.store(if on { 2 } else { 1 }, Ordering::Relaxed);
            on
        }
    }
}

/// Switches this vCPU to `root` tagged with `pcid` (1 to 4095; 0 is the process's own
/// table). With `keep_tlb` the translations cached for that PCID survive the switch
/// (CR3 bit 63), so switching between address spaces costs no TLB refill.
///
/// # Safety
/// As [`load_cr3`]; and translations kept with `keep_tlb` must still be right for `root`.
pub unsafe fn load_cr3_pcid(root: Root, pcid: u16, keep_tlb: bool) -> Result<()> {
    if !pcid_enabled() {
        return Err(Error::MissingCapability("PCID (CPUID.1:ECX[17]) on this CPU"));
    }
    if pcid > 0xfff {
        return Err(Error::InvalidOption { name: "pcid", why: "PCIDs are 12 bits" });
    }
    let cr3 = root.0 | pcid as u64 | if keep_tlb { 1 << 63 } else { 0 };
    // SAFETY: the caller vouches for the table and the kept translations.
    unsafe { load_cr3(cr3) };
    Ok(())
}

/// Drops this vCPU's translations for every PCID.
pub fn flush_tlb_all_pcids() {
    crate::guest::dispatch::flush_tlb_all_pcids();
}

/// The accessed and dirty bits of an entry.
pub fn accessed_dirty(pte: Pte) -> (bool, bool) {
    (pte.contains(paging::PTE_A), pte.contains(paging::PTE_D))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn permissions_become_entry_bits() {
        assert_eq!(perm_to_flags(PERM_R), paging::PTE_NX);
        assert_eq!(perm_to_flags(PERM_R | PERM_W | PERM_X), paging::PTE_W);
        assert_eq!(perm_to_flags(PERM_R | PERM_U | PERM_COW), paging::PTE_NX | paging::PTE_U | PTE_COW);
        assert_eq!(max_size(PERM_R | PERM_BIG), PageSize::Size2M);
        assert_eq!(max_size(PERM_R | PERM_BIG_1GB), PageSize::Size1G);
    }

    #[test]
    fn misaligned_ranges_are_errors() {
        assert!(check_range(0x1001, 0x1000).is_err());
        assert!(check_range(0x1000, 0x10).is_err());
        assert!(check_range(!0xfff, 0x2000).is_err());
        assert!(check_range(0x1000, 0x2000).is_ok());
    }
}
