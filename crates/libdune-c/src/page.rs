//! The page allocator (libdune's `page.c`) and `struct page`.
//!
//! In libdune a `struct page *` pointed into a descriptor array indexed by
//! `(pa - PAGEBASE) >> 12`, pages being identity-mapped. Here guest-physical addresses
//! of the runtime's pages are not dense and not virtual addresses, so a `struct page`
//! is an opaque handle: a slot of `PAGES`, an insert-only, lock-free hash table
//! keyed by the page's guest-physical address. A page keeps its slot for the life of
//! the process (`dune_pa2page(dune_page2pa(pg)) == pg`); slots are claimed on first
//! use by [`dune_page_alloc`] or [`dune_pa2page`]. Lookups take no lock, so
//! [`dune_pa2page`] and [`dune_page2pa`] may be used in trap handlers; the reference
//! counts themselves live in the runtime, which takes its lock.
//!
//! The runtime's memory holds at most 2^20 pages (256 chunks of 16 MiB), the size of
//! the original's descriptor array; the table has as many slots.

use std::ffi::{c_int, c_void};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::guard;

/// One `struct page`: the guest-physical address it names (0: free slot).
#[derive(Debug)]
pub struct Page {
    pa: AtomicU64,
}

const SLOTS: usize = 1 << 20;

/// The handles (8 MiB of zero-initialised memory; untouched pages cost nothing).
static PAGES: [Page; SLOTS] = [const { Page { pa: AtomicU64::new(0) } }; SLOTS];

const PAGE_SIZE: u64 = 4096;

fn home(pa: u64) -> usize {
    // Fibonacci hashing of the page number.
    ((pa >> 12).wrapping_mul(0x9e37_79b9_7f4a_7c15) >> (64 - SLOTS.trailing_zeros())) as usize
}

/// The slot of `pa`, claiming a free one if `insert`.
fn slot(pa: u64, insert: bool) -> Option<&'static Page> {
    let mut i = home(pa);
    for _ in 0..SLOTS {
        let s = &PAGES[i];
        match s.pa.load(Ordering::Acquire) {
            v if v == pa => return Some(s),
            0 if !insert => return None,
            0 => match s.pa.compare_exchange(0, pa, Ordering::AcqRel, Ordering::Acquire) {
                Ok(_) => return Some(s),
                Err(v) if v == pa => return Some(s),
                Err(_) => {}
            },
            _ => {}
        }
        i = (i + 1) % SLOTS;
    }
    None
}

/// The address a handle names, if it is one of ours.
pub(crate) fn pa_of(pg: *const Page) -> Option<u64> {
    let base = PAGES.as_ptr() as usize;
    let off = (pg as usize).checked_sub(base)?;
    if off % size_of::<Page>() != 0 {
        return None;
    }
    match PAGES.get(off / size_of::<Page>())?.pa.load(Ordering::Acquire) {
        0 => None,
        pa => Some(pa),
    }
}

/// The handle of allocator page `pa`.
pub(crate) fn handle(pa: u64) -> *mut Page {
    if pa == 0 || !pa.is_multiple_of(PAGE_SIZE) || libdune::vm::pa_to_va(pa).is_none() {
        return core::ptr::null_mut();
    }
    slot(pa, true).map_or(core::ptr::null_mut(), |s| s as *const Page as *mut Page)
}

/// `struct page *dune_page_alloc(void)`: a zeroed page, reference count 1; NULL when
/// out of memory.
#[no_mangle]
pub extern "C" fn dune_page_alloc() -> *mut Page {
    guard(core::ptr::null_mut(), || match libdune::page::alloc() {
        Ok(pa) => {
            let pg = handle(pa);
            if pg.is_null() {
                let _ = libdune::page::put(pa);
            }
            pg
        }
        Err(_) => core::ptr::null_mut(),
    })
}

/// `void dune_page_free(struct page *pg)`: frees the page whatever its count.
#[no_mangle]
pub extern "C" fn dune_page_free(pg: *mut Page) {
    guard((), || {
        if let Some(pa) = pa_of(pg) {
            let _ = libdune::page::free(pa);
        }
    })
}

/// `struct page *dune_page_get(struct page *pg)`: adds a reference; returns `pg`, or
/// NULL if it is not an allocated page.
#[no_mangle]
pub extern "C" fn dune_page_get(pg: *mut Page) -> *mut Page {
    guard(core::ptr::null_mut(), || match pa_of(pg).map(libdune::page::get) {
        Some(Ok(())) => pg,
        _ => core::ptr::null_mut(),
    })
}

/// `void dune_page_put(struct page *pg)`: drops a reference; the page is freed when
/// none are left.
#[no_mangle]
pub extern "C" fn dune_page_put(pg: *mut Page) {
    guard((), || {
        if let Some(pa) = pa_of(pg) {
            let _ = libdune::page::put(pa);
        }
    })
}

/// `int dune_page_refcount(struct page *pg)` (an addition): the count, 0 when free.
#[no_mangle]
pub extern "C" fn dune_page_refcount(pg: *mut Page) -> c_int {
    guard(0, || {
        // The runtime reports the count left after a put: add one, drop one.
        let Some(pa) = pa_of(pg) else { return 0 };
        if libdune::page::get(pa).is_err() {
            return 0;
        }
        libdune::page::put(pa).map_or(0, |left| c_int::try_from(left).unwrap_or(c_int::MAX))
    })
}

/// `void dune_page_stats(void)`: prints the allocator's counts on stdout, as libdune
/// did ("DUNE Page Allocator: Alloc A, Free F, Total T"). Here the total is all of
/// the runtime's memory, which page tables and per-vCPU areas share with the
/// allocator's pages, and it grows on demand.
#[no_mangle]
pub extern "C" fn dune_page_stats() {
    guard((), || {
        if let Ok((alloc, free, total)) = libdune::page::stats() {
            crate::util::print(&format!("DUNE Page Allocator: Alloc {alloc}, Free {free}, Total {total}\n"));
        }
    })
}

/// `struct page *dune_pa2page(physaddr_t pa)`: NULL if `pa` is not a page of the
/// runtime's memory.
#[no_mangle]
pub extern "C" fn dune_pa2page(pa: u64) -> *mut Page {
    handle(pa)
}

/// `physaddr_t dune_page2pa(struct page *pg)`: 0 for a pointer that is not a handle.
#[no_mangle]
pub extern "C" fn dune_page2pa(pg: *mut Page) -> u64 {
    pa_of(pg).unwrap_or(0)
}

/// `bool dune_page_isfrompool(physaddr_t pa)`: whether `pa` is an allocated page of
/// the allocator (from `dune_page_alloc` or `dune_vm_map_pages`).
#[no_mangle]
pub extern "C" fn dune_page_isfrompool(pa: u64) -> bool {
    guard(false, || libdune::page::is_allocated(pa))
}

/// `void *dune_pa2va(physaddr_t pa)` (an addition): where ring 0 reaches page `pa`,
/// NULL if it is not runtime memory.
#[no_mangle]
pub extern "C" fn dune_pa2va(pa: u64) -> *mut c_void {
    libdune::page::pa_to_va(pa).map_or(core::ptr::null_mut(), |p| p.cast())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_stable_and_distinct() {
        let a = slot(0x1_0000_0000, true).map(|s| s as *const Page);
        let b = slot(0x1_0000_1000, true).map(|s| s as *const Page);
        assert!(a.is_some() && b.is_some() && a != b);
        assert_eq!(slot(0x1_0000_0000, false).map(|s| s as *const Page), a);
        assert_eq!(a.and_then(pa_of), Some(0x1_0000_0000));
        assert_eq!(slot(0x7_0000_0000, false).map(|s| s as *const Page), None);
    }

    #[test]
    fn foreign_pointers_are_not_handles() {
        assert_eq!(dune_page2pa(core::ptr::null_mut()), 0);
        let x = 5u64;
        assert_eq!(dune_page2pa(&x as *const u64 as *mut Page), 0);
        assert_eq!(dune_page2pa((PAGES.as_ptr() as usize + 3) as *mut Page), 0);
    }

    #[test]
    fn colliding_addresses_probe_onwards() {
        // Addresses whose hashes collide take consecutive slots and stay findable.
        let base = 0x2_0000_0000u64;
        let h = home(base);
        let mut same = vec![base];
        let mut pa = base;
        while same.len() < 3 {
            pa += PAGE_SIZE;
            if home(pa) == h {
                same.push(pa);
            }
        }
        let slots: Vec<_> = same.iter().map(|&p| slot(p, true).map(|s| s as *const Page)).collect();
        for (p, s) in same.iter().zip(&slots) {
            assert_eq!(slot(*p, false).map(|s| s as *const Page), *s);
        }
    }
}
