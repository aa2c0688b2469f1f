//! Page tables (libdune's `vm.c`): `dune_vm_*`, `dune_va_to_pa`, TLB control.
//!
//! C names a page table by a pointer to its root table (`ptent_t *root`), the runtime
//! by the root's guest-physical address ([`Root`]). `root_of` converts without the
//! runtime lock: `pgroot` is recognised from a cache, any other root (a clone) is
//! translated through the process's table.
//!
//! The runtime's `vm::lookup` and `vm::walk` give atomic entry handles, not entry
//! addresses; C wants `ptent_t *`. `slot_ptr` finds the address of the entry for an
//! address at a given level by reading the tables, lock-free like the runtime's own
//! lookups, so the lookup and walk wrappers stay usable in trap handlers.

use core::ops::ControlFlow;
use std::ffi::{c_int, c_void};
use std::sync::atomic::{AtomicU64, Ordering};

use dune_x86::paging::{PageSize, ADDR_MASK, PTE_NX, PTE_P, PTE_PS, PTE_U, PTE_W};
use dune_x86::regs::cr3;
use libdune::vm::{self as rvm, Root, PERM_R, PERM_W};

use crate::abi::create_of;
use crate::{guard, neg};

const PAGE: u64 = 4096;

/// Guest-physical address and virtual address of the process's root (0: not known yet).
static PGROOT_PA: AtomicU64 = AtomicU64::new(0);
static PGROOT_VA: AtomicU64 = AtomicU64::new(0);

/// Remembers the process's root (called by `entry` after init and enter).
pub(crate) fn set_pgroot(root: Root) {
    PGROOT_VA.store(root.as_ptr() as u64, Ordering::Release);
    PGROOT_PA.store(root.0, Ordering::Release);
}

/// The process's root, if known.
pub(crate) fn pgroot_root() -> Option<Root> {
    match PGROOT_PA.load(Ordering::Acquire) {
        0 => None,
        pa => Some(Root(pa)),
    }
}

/// Shift of the linear-address bits that index the table whose entries map `size`.
fn shift_of(size: PageSize) -> u32 {
    match size {
        PageSize::Size4K => 12,
        PageSize::Size2M => 21,
        PageSize::Size1G => 30,
    }
}

/// The entry at `index` of the table at guest-physical `table_pa`, if that is runtime
/// memory (every table is).
fn entry_ref(table_pa: u64, index: u64) -> Option<&'static AtomicU64> {
    let base = rvm::pa_to_va(table_pa & ADDR_MASK)?;
    let p = (base + (index & 511) * 8) as *const AtomicU64;
    // SAFETY: `base` is a 4 KiB table page in runtime memory, which stays mapped (in
    // the host and the guest) for the life of the process; `p` is one of its 512
    // aligned entries. The CPU and other writers change entries atomically, so a
    // shared atomic reference is sound.
    Some(unsafe { &*p })
}

/// Address of the entry that maps `va` at the level of `size` pages under `root_pa`,
/// found by reading the tables above it (which must be present and not large pages).
pub(crate) fn slot_ptr(root_pa: u64, va: u64, size: PageSize) -> Option<*mut u64> {
    let target = shift_of(size);
    let mut table = root_pa;
    let mut shift = 39;
    loop {
        let e = entry_ref(table, va >> shift)?;
        if shift == target {
            return Some(e.as_ptr());
        }
        let v = e.load(Ordering::Acquire);
        if v & PTE_P == 0 || v & PTE_PS != 0 {
            return None;
        }
        table = v & ADDR_MASK;
        shift -= 9;
    }
}

/// A present leaf found by [`translate`], with the permissions of the whole path.
pub(crate) struct Leaf {
    /// Guest-physical address `va` translates to.
    pub pa: u64,
    /// Writable at every level.
    pub writable: bool,
    /// User-accessible at every level.
    pub user: bool,
    /// Executable (no level has NX).
    pub exec: bool,
}

/// Walks `root_pa` for `va` as the CPU would, without any lock.
pub(crate) fn translate(root_pa: u64, va: u64) -> Option<Leaf> {
    let (mut table, mut shift) = (root_pa, 39u32);
    let (mut w, mut u, mut nx) = (true, true, false);
    loop {
        let v = entry_ref(table, va >> shift)?.load(Ordering::Acquire);
        if v & PTE_P == 0 {
            return None;
        }
        w &= v & PTE_W != 0;
        u &= v & PTE_U != 0;
        nx |= v & PTE_NX != 0;
        let leaf = shift == 12 || (shift <= 30 && v & PTE_PS != 0);
        if leaf {
            let span = 1u64 << shift;
            let pa = (v & ADDR_MASK & !(span - 1)) | (va & (span - 1));
            return Some(Leaf { pa, writable: w, user: u, exec: !nx });
        }
        table = v & ADDR_MASK;
        shift -= 9;
    }
}

/// Whether the access described by page-fault error code `fec` at `va` is allowed by
/// the table the CPU uses now (CR3). Ring 0 only (it reads CR3).
pub(crate) fn access_allowed(va: u64, fec: u64) -> bool {
    let cr3: u64;
    // SAFETY: reading CR3 has no side effects; callers run in guest ring 0 (trap handlers).
    unsafe { core::arch::asm!("mov {0}, cr3", out(reg) cr3, options(nomem, nostack, preserves_flags)) };
    let Some(leaf) = translate(cr3 & ADDR_MASK, va) else { return false };
    use dune_x86::exception::PageFaultError as F;
    let needs = |bit: u64| fec & bit != 0;
    (!needs(F::W) || leaf.writable) && (!needs(F::U) || leaf.user) && (!needs(F::ID) || leaf.exec)
}

/// The runtime's name for the C root pointer `root`: `pgroot`, or a table in runtime
/// memory reached through the process's page table (a clone).
pub(crate) fn root_of(root: *mut u64) -> Option<Root> {
    let p = root as u64;
    let pg = pgroot_root()?;
    if p == 0 || !p.is_multiple_of(PAGE) {
        return None;
    }
    if p == PGROOT_VA.load(Ordering::Acquire) {
        return Some(pg);
    }
    let pa = translate(pg.0, p)?.pa;
    (rvm::pa_to_va(pa) == Some(p)).then_some(Root(pa))
}

/// `[va, va+len)` widened to whole pages, as `(start, length)`; `None` on overflow.
fn page_span(va: u64, len: u64) -> Option<(u64, u64)> {
    let start = va & !(PAGE - 1);
    let end = va.checked_add(len)?.checked_add(PAGE - 1)? & !(PAGE - 1);
    Some((start, end - start))
}

/// Whether any page in `[start, start+len)` is mapped (a change there needs a flush).
fn any_present(root: Root, start: u64, len: u64) -> bool {
    matches!(rvm::walk(root, start, start + len, |_, _, _| ControlFlow::Break(())), Ok(ControlFlow::Break(())))
}

/// Drops this vCPU's translations if the caller is in Dune mode (there is no guest
/// TLB to flush otherwise, and CR3 is out of reach).
fn flush_if_in_dune() {
    if libdune::in_dune_mode() {
        rvm::flush_tlb();
    }
}

/// `int dune_vm_mprotect(ptent_t *root, void *va, size_t len, int perm)`.
#[no_mangle]
pub extern "C" fn dune_vm_mprotect(root: *mut u64, va: *mut c_void, len: usize, perm: c_int) -> c_int {
    guard(-libc::EINVAL, || {
        let Some(root) = root_of(root) else { return -libc::EINVAL };
        let mut perm = perm as u32 as u64;
        if perm & PERM_R == 0 {
            if perm & PERM_W != 0 {
                return -libc::EINVAL;
            }
            perm = crate::abi::PERM_NONE;
        }
        let Some((start, plen)) = page_span(va as u64, len as u64) else { return -libc::EINVAL };
        if plen == 0 {
            return 0;
        }
        let r = rvm::mprotect(root, start, plen, perm);
        flush_if_in_dune();
        match r {
            Ok(()) => 0,
            Err(e) => neg(&e),
        }
    })
}

/// `int dune_vm_map_phys(ptent_t *root, void *va, size_t len, void *pa, int perm)`:
/// maps the pages of `[va, va+len)` to the guest-physical pages from `pa` on.
#[no_mangle]
pub extern "C" fn dune_vm_map_phys(root: *mut u64, va: *mut c_void, len: usize, pa: *mut c_void, perm: c_int) -> c_int {
    guard(-libc::EINVAL, || {
        let Some(root) = root_of(root) else { return -libc::EINVAL };
        let (va, pa) = (va as u64, pa as u64);
        let Some((start, plen)) = page_span(va, len as u64) else { return -libc::EINVAL };
        // As libdune: page `va - off` maps the page holding `pa - off`.
        let Some(pa_start) = pa.checked_sub(va - start) else { return -libc::EINVAL };
        if plen == 0 {
            return 0;
        }
        replace(root, start, plen, || rvm::map_phys(root, start, plen, pa_start & !(PAGE - 1), perm as u32 as u64))
    })
}

/// Runs `map` over `[start, start+len)` and flushes this CPU's TLB if it replaced
/// present entries (as libdune did); 0 or -errno.
fn replace(root: Root, start: u64, len: u64, map: impl FnOnce() -> libdune::Result<()>) -> c_int {
    let replacing = any_present(root, start, len);
    let r = map();
    if replacing {
        flush_if_in_dune();
    }
    match r {
        Ok(()) => 0,
        Err(e) => neg(&e),
    }
}

/// `int dune_vm_map_pages(ptent_t *root, void *va, size_t len, int perm)`.
#[no_mangle]
pub extern "C" fn dune_vm_map_pages(root: *mut u64, va: *mut c_void, len: usize, perm: c_int) -> c_int {
    guard(-libc::EINVAL, || {
        let Some(root) = root_of(root) else { return -libc::EINVAL };
        let perm = perm as u32 as u64;
        if perm & PERM_R == 0 {
            return -libc::EINVAL;
        }
        let Some((start, plen)) = page_span(va as u64, len as u64) else { return -libc::EINVAL };
        if plen == 0 {
            return 0;
        }
        replace(root, start, plen, || rvm::map_pages(root, start, plen, perm))
    })
}

/// `void dune_vm_unmap(ptent_t *root, void *va, size_t len)`.
#[no_mangle]
pub extern "C" fn dune_vm_unmap(root: *mut u64, va: *mut c_void, len: usize) {
    guard((), || {
        let Some(root) = root_of(root) else { return };
        let Some((start, plen)) = page_span(va as u64, len as u64) else { return };
        if plen != 0 {
            let _ = rvm::unmap(root, start, plen);
            flush_if_in_dune();
        }
    })
}

/// `int dune_vm_lookup(ptent_t *root, void *va, int create, ptent_t **pte_out)`.
///
/// # Safety
/// `pte_out` must be valid for a write of a pointer.
#[no_mangle]
pub unsafe extern "C" fn dune_vm_lookup(root: *mut u64, va: *mut c_void, create: c_int, pte_out: *mut *mut u64) -> c_int {
    guard(-libc::EINVAL, || {
        let (Some(root), Some(create)) = (root_of(root), create_of(create)) else { return -libc::EINVAL };
        if pte_out.is_null() {
            return -libc::EINVAL;
        }
        let va = va as u64;
        match rvm::lookup(root, va, create) {
            Ok((_, size)) => match slot_ptr(root.0, va, size) {
                Some(p) => {
                    // SAFETY: the caller passes a writable `ptent_t **`.
                    unsafe { pte_out.write(p) };
                    0
                }
                None => -libc::ENOENT,
            },
            Err(e) => neg(&e),
        }
    })
}

/// `int dune_vm_insert_page(ptent_t *root, void *va, struct page *pg, int perm)`:
/// maps the page holding `va` to allocator page `pg` with `perm`, replacing what was
/// there (and flushing it). The mapping holds a reference to `pg`, which
/// `dune_vm_unmap` drops. -EINVAL for a handle that is not an allocated page.
/// (The original declared this but never defined it.)
#[no_mangle]
pub extern "C" fn dune_vm_insert_page(root: *mut u64, va: *mut c_void, pg: *mut crate::page::Page, perm: c_int) -> c_int {
    guard(-libc::EINVAL, || {
        let Some(root) = root_of(root) else { return -libc::EINVAL };
        let perm = perm as u32 as u64;
        let Some(pa) = crate::page::pa_of(pg) else { return -libc::EINVAL };
        if perm & PERM_R == 0 || perm & (rvm::PERM_BIG | rvm::PERM_BIG_1GB) != 0 || libdune::page::get(pa).is_err() {
            return -libc::EINVAL;
        }
        let start = va as u64 & !(PAGE - 1);
        let r = replace(root, start, PAGE, || rvm::map_phys(root, start, PAGE, pa, perm));
        if r != 0 {
            let _ = libdune::page::put(pa);
        }
        r
    })
}

/// `struct page *dune_vm_lookup_page(ptent_t *root, void *va)`: the allocator page a
/// present 4 KiB entry maps `va` to, or NULL (nothing there, a large page, or a page
/// that is not the allocator's). (The original declared this but never defined it.)
#[no_mangle]
pub extern "C" fn dune_vm_lookup_page(root: *mut u64, va: *mut c_void) -> *mut crate::page::Page {
    guard(core::ptr::null_mut(), || {
        let Some(root) = root_of(root) else { return core::ptr::null_mut() };
        match rvm::lookup(root, va as u64, dune_x86::paging::Create::None) {
            Ok((e, PageSize::Size4K)) => {
                let p = e.get();
                if p.is_present() && libdune::page::is_allocated(p.addr()) {
                    crate::page::handle(p.addr())
                } else {
                    core::ptr::null_mut()
                }
            }
            _ => core::ptr::null_mut(),
        }
    })
}

/// The `page_walk_cb` of `dune_vm_page_walk`.
pub type PageWalkCb = unsafe extern "C" fn(arg: *const c_void, ptep: *mut u64, va: *mut c_void) -> c_int;

/// `int dune_vm_page_walk(ptent_t *root, void *start_va, void *end_va, page_walk_cb cb,
/// const void *arg)`: `end_va` is inclusive, as in libdune.
///
/// # Safety
/// `cb` must be safe to call with `arg`, each entry's address and its virtual address.
#[no_mangle]
pub unsafe extern "C" fn dune_vm_page_walk(root: *mut u64, start_va: *mut c_void, end_va: *mut c_void, cb: Option<PageWalkCb>, arg: *const c_void) -> c_int {
    guard(-libc::EINVAL, || {
        let (Some(root), Some(cb)) = (root_of(root), cb) else { return -libc::EINVAL };
        let (start, end) = (start_va as u64, end_va as u64);
        if start > end {
            return 0;
        }
        // Exclusive end for the runtime; u64::MAX itself still reaches the last page.
        let end = end.saturating_add(1);
        let r = rvm::walk(root, start, end, |va, _, size| {
            let Some(p) = slot_ptr(root.0, va, size) else { return ControlFlow::Continue(()) };
            // SAFETY: a C callback registered by the caller, given an entry of a live
            // table and the address it maps.
            match unsafe { cb(arg, p, va as *mut c_void) } {
                0 => ControlFlow::Continue(()),
                v => ControlFlow::Break(v),
            }
        });
        match r {
            Ok(ControlFlow::Break(v)) => v,
            Ok(ControlFlow::Continue(())) => 0,
            Err(e) => neg(&e),
        }
    })
}

/// `ptent_t *dune_vm_clone(ptent_t *root)`: a copy of the tables; each page of the
/// allocator the copy maps gains a reference, as in libdune, so that unmapping or
/// freeing the copy leaves the original's pages alone.
#[no_mangle]
pub extern "C" fn dune_vm_clone(root: *mut u64) -> *mut u64 {
    guard(core::ptr::null_mut(), || {
        let Some(root) = root_of(root) else { return core::ptr::null_mut() };
        // vm::clone takes a reference for every allocator page the copy maps.
        // The copy maps the process's memory with 4 KiB pages, as libdune's tables did
        // (see dune.h): programs edit clones page by page.
        match rvm::clone(root).and_then(|copy| match rvm::split_process_leaves(copy) {
            Ok(()) => Ok(copy),
            Err(e) => {
                let _ = rvm::free(copy);
                Err(e)
            }
        }) {
            Ok(copy) => copy.as_ptr(),
            Err(e) => {
                crate::report("dune_vm_clone", &e);
                core::ptr::null_mut()
            }
        }
    })
}

/// `void dune_vm_free(ptent_t *root)`: drops the references the clone's mappings hold
/// and frees its tables. The process's own table is left alone.
#[no_mangle]
pub extern "C" fn dune_vm_free(root: *mut u64) {
    guard((), || {
        let Some(root) = root_of(root) else { return };
        if Some(root) == pgroot_root() {
            return;
        }
        // vm::free drops the references the copy's mappings hold.
        let _ = rvm::free(root);
    })
}

/// `uintptr_t dune_va_to_pa(void *va)`: 0 when `va` is not mapped in `pgroot`.
#[no_mangle]
pub extern "C" fn dune_va_to_pa(va: *mut c_void) -> usize {
    pgroot_root().and_then(|r| translate(r.0, va as u64)).map_or(0, |l| l.pa as usize)
}

/// `void dune_flush_tlb(void)`.
#[no_mangle]
pub extern "C" fn dune_flush_tlb() {
    flush_if_in_dune();
}

/// `void dune_flush_tlb_one(unsigned long addr)`.
#[no_mangle]
pub extern "C" fn dune_flush_tlb_one(addr: u64) {
    if libdune::in_dune_mode() {
        rvm::flush_tlb_one(addr);
    }
}

/// The root `load_cr3` means by `cr3` (flag and PCID bits removed): a root table
/// named by its address (as the original, where address and guest-physical address
/// were one) is translated; anything else is taken as a guest-physical address.
fn cr3_root(cr3: u64) -> Root {
    let v = cr3 & !(cr3::NOFLUSH | cr3::PCID_MASK);
    if rvm::pa_to_va(v).is_none() {
        if let Some(r) = root_of(v as *mut u64) {
            return r;
        }
    }
    Root(v)
}

/// `void load_cr3(unsigned long cr3)`: a root (its address or guest-physical
/// address), a PCID in bits 11:0 and `CR3_NOFLUSH`; without PCID support the PCID
/// and `CR3_NOFLUSH` are dropped (a full flush is always correct). Ignored outside
/// Dune mode.
///
/// # Safety
/// As [`libdune::vm::load_cr3`]: the root must be a table that maps the running code,
/// its stack and the runtime's memory (a clone of `pgroot` does); with `CR3_NOFLUSH`,
/// what the TLB holds for the PCID must still be right for it.
#[no_mangle]
pub unsafe extern "C" fn load_cr3(cr3: u64) {
    if !libdune::in_dune_mode() {
        return;
    }
    let root = cr3_root(cr3);
    let pcid = (cr3 & cr3::PCID_MASK) as u16;
    if rvm::pcid_enabled() {
        // SAFETY: the caller vouches for the table and the kept translations (dune.h).
        if unsafe { rvm::load_cr3_pcid(root, pcid, cr3 & cr3::NOFLUSH != 0) }.is_ok() {
            return;
        }
    }
    // SAFETY: the caller vouches for the table, as documented in dune.h.
    unsafe { rvm::load_cr3(root.0) };
}

/// The CR3 the CPU uses now, as a table address. Ring 0 only.
fn current_root_pa() -> u64 {
    let cr3: u64;
    // SAFETY: reading CR3 has no side effects; callers run in guest ring 0.
    unsafe { core::arch::asm!("mov {0}, cr3", out(reg) cr3, options(nomem, nostack, preserves_flags)) };
    cr3 & ADDR_MASK
}

/// `void dune_vm_default_pgflt_handler(uintptr_t addr, uint64_t fec)`: resolves a
/// copy-on-write fault on a 4 KiB entry of the table in use (see `dune.h`).
///
/// Runs in a page-fault handler: it reads the tables without a lock, and takes the
/// runtime's lock only to look at or change page reference counts and to allocate the
/// copy, as `dune_vm_map_pages` in a demand-paging handler does.
#[no_mangle]
pub extern "C" fn dune_vm_default_pgflt_handler(addr: usize, fec: u64) {
    use dune_x86::exception::PageFaultError as F;
    if !libdune::in_dune_mode() || fec & F::W == 0 || fec & F::RSVD != 0 {
        return;
    }
    let va = addr as u64;
    let Some(slot) = slot_ptr(current_root_pa(), va, PageSize::Size4K) else { return };
    // SAFETY: slot_ptr gives the address of a live entry of a table in runtime memory
    // (aligned, never unmapped); entries are changed atomically by everyone.
    let entry = unsafe { &*(slot as *const AtomicU64) };
    let old = entry.load(Ordering::Acquire);
    if old & PTE_P == 0 || old & rvm::PTE_COW == 0 {
        return;
    }
    let old_pa = old & ADDR_MASK;
    let flags = (old & !ADDR_MASK & !rvm::PTE_COW) | PTE_W;
    let pooled = libdune::page::is_allocated(old_pa);
    if pooled && libdune::page::refcount(old_pa) == Some(1) {
        // The last reference: the page becomes this entry's alone.
        if entry.compare_exchange(old, old_pa | flags, Ordering::AcqRel, Ordering::Acquire).is_ok() {
            rvm::flush_tlb_one(va);
        }
        return;
    }
    let Ok(new_pa) = libdune::page::alloc() else { return };
    let Some(new_va) = rvm::pa_to_va(new_pa) else {
        let _ = libdune::page::put(new_pa);
        return;
    };
    let page = va & !(PAGE - 1);
    // SAFETY: `page` is mapped readable (present, it just faulted on a write) and
    // `new_va` is a fresh allocator page reached at its runtime address; both are 4 KiB
    // and distinct.
    unsafe { core::ptr::copy_nonoverlapping(page as *const u8, new_va as *mut u8, PAGE as usize) };
    if entry.compare_exchange(old, new_pa | flags, Ordering::AcqRel, Ordering::Acquire).is_err() {
        // Someone else resolved it first.
        let _ = libdune::page::put(new_pa);
        return;
    }
    rvm::flush_tlb_one(va);
    if pooled {
        let _ = libdune::page::put(old_pa);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_cover_whole_pages() {
        assert_eq!(page_span(0x1234, 0x10), Some((0x1000, 0x1000)));
        assert_eq!(page_span(0x1000, 0x2000), Some((0x1000, 0x2000)));
        assert_eq!(page_span(0x1fff, 2), Some((0x1000, 0x2000)));
        assert_eq!(page_span(0x1000, 0), Some((0x1000, 0)));
        assert_eq!(page_span(u64::MAX - 10, 100), None);
    }

    #[test]
    fn levels_have_their_shifts() {
        assert_eq!(shift_of(PageSize::Size4K), 12);
        assert_eq!(shift_of(PageSize::Size2M), 21);
        assert_eq!(shift_of(PageSize::Size1G), 30);
    }

    #[test]
    fn roots_are_unknown_before_init() {
        assert!(root_of(0x1000 as *mut u64).is_none());
        assert_eq!(dune_va_to_pa(0x1000 as *mut c_void), 0);
    }
}
