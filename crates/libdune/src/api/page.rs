//! Guest-physical pages for the application (libdune's `page.c`): allocated from the
//! runtime's memory, reference counted, reachable at a host (= guest virtual) address
//! and mappable anywhere with [`crate::vm::map_phys`].
//!
//! These take the runtime lock: call them from ordinary code, not from a trap handler
//! that may have interrupted the runtime.

use crate::error::{Error, Result};
use crate::host::memory::arena_gpa_to_hva;
use crate::host::state as runtime;

/// A zeroed page, reference count 1. Returns its guest-physical address.
pub fn alloc() -> Result<u64> {
    runtime::with_state(|st| st.mem.page_alloc(&st.vm))
}

/// Adds a reference.
pub fn get(pa: u64) -> Result<()> {
    runtime::with_state(|st| if st.mem.page_get(pa) { Ok(()) } else { Err(not_allocated()) })
}

/// Drops a reference; the page is freed when none are left. Returns how many remain.
pub fn put(pa: u64) -> Result<u32> {
    runtime::with_state(|st| st.mem.page_put(pa).ok_or_else(not_allocated))
}

/// Frees a page whatever its count (libdune's `dune_page_free`).
pub fn free(pa: u64) -> Result<()> {
    runtime::with_state(|st| {
        loop {
            match st.mem.page_put(pa) {
                Some(0) => return Ok(()),
                Some(_) => {}
                None => return Err(not_allocated()),
            }
        }
    })
}

/// The reference count of an allocated page (`None` if `pa` is not one).
pub fn refcount(pa: u64) -> Option<u32> {
    runtime::with_state(|st| Ok(st.mem.page_refcount(pa))).ok().flatten()
}

/// The allocator's counts: `(allocated, free, total)` pages, where `allocated` are
/// pages from [`alloc`] with references left, `free` can be had without growing the
/// runtime's memory, and `total` is all of it (page tables share it).
pub fn stats() -> Result<(u64, u64, u64)> {
    runtime::with_state(|st| Ok(st.mem.page_stats()))
}

/// Whether `pa` is a page from [`alloc`] with references left.
pub fn is_allocated(pa: u64) -> bool {
    runtime::with_state(|st| Ok(st.mem.page_is_allocated(pa))).unwrap_or(false)
}

/// The address at which ring 0 reaches page `pa` directly.
pub fn pa_to_va(pa: u64) -> Option<*mut u8> {
    arena_gpa_to_hva(pa).map(|a| a as *mut u8)
}

fn not_allocated() -> Error {
    Error::InvalidOption { name: "pa", why: "not a page from page::alloc" }
}
