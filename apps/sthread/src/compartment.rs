//! A compartment: a page table over the process's, private copies of the image's
//! writable pages, a stack, and the tags its policy grants. An sthread runs in one;
//! when it ends, the compartment is reset through its dirty bits and kept for the
//! next sthread with the same memory grants.

use libdune::{page, vm};

use crate::error::{Error, Result};
use crate::image::{self, Image, Shared};
use crate::policy::MemProt;
use crate::pt::{self, Table, A, D, PAGE};
use crate::tag::{TagId, Tags};

/// Bytes of stack an sthread may use (mapped on first touch); the rest of its 2 MiB
/// slot below is a guard that is never mapped.
pub const STACK: u64 = 1 << 20;
/// Bytes of the window each compartment's stack slot takes.
pub(crate) const STACK_SLOT: u64 = 2 << 20;

/// A compartment.
pub(crate) struct Compartment {
    pub id: u64,
    pub key: Vec<(TagId, MemProt)>,
    table: Table,
    /// The image's writable pages this compartment holds: (VA, its page). Pages the
    /// snapshot has data in are copied when it is built; pages that were zero (most of
    /// `.bss`) are made on first touch.
    private: Vec<(u64, u64)>,
    pub slot: usize,
    pub stack_top: u64,
    stack: Vec<(u64, u64)>,
    /// Private copies of copy-on-write tag pages: (VA, page).
    cow: Vec<(u64, u64)>,
    /// Bumped whenever a present entry changes: a PCID tagged with an older value
    /// must be flushed before this table runs again.
    pub tlb_gen: u64,
    runtime_gen: u64,
    /// Which set of read-only ranges its shared leaves came from (`State::image_gen`).
    image_gen: u64,
    /// The context the last sthread ran in, kept so starting the next one allocates
    /// nothing (an allocation may reach the host).
    pub ctx: Option<libdune::user::UserContext>,
}

fn alias(pa: u64) -> Result<*mut u8> {
    page::pa_to_va(pa).ok_or(Error::Internal("page without an alias"))
}

/// Guest-physical address of `va` in the process's own table, mapping it first if
/// the runtime has not yet (a read from ring 0 does).
fn pgroot_pa(va: u64) -> Option<u64> {
    if let Some(pa) = vm::va_to_pa(va) {
        return Some(pa);
    }
    // SAFETY: callers pass addresses of the process's own readable mappings (image
    // pages, tag chunks); reading one byte maps it in the guest.
    unsafe { (va as *const u8).read_volatile() };
    vm::va_to_pa(va)
}

impl Compartment {
    /// A fresh compartment for memory grants `key`, with stack slot `slot` at `stack_top`.
    pub(crate) fn build(id: u64, key: Vec<(TagId, MemProt)>, slot: usize, stack_top: u64, image: &Image, tags: &Tags, image_gen: u64) -> Result<Compartment> {
        let mut c = Compartment { id, key, table: Table::new()?, private: Vec::new(), slot, stack_top, stack: Vec::new(), cow: Vec::new(), tlb_gen: 0, runtime_gen: libdune::runtime::memory_generation(), image_gen, ctx: None };
        let r = c.populate(image, tags, true);
        if let Err(e) = r {
            c.destroy();
            return Err(e);
        }
        Ok(c)
    }

    /// Installs every leaf the compartment owns (allocating them when `fresh`).
    fn populate(&mut self, image: &Image, tags: &Tags, fresh: bool) -> Result<()> {
        if fresh {
            for (&va, &snap) in &image.private {
                let Some(snap) = snap else { continue };
                let pa = page::alloc()?;
                self.private.push((va, pa));
                // SAFETY: both aliases are whole pages of the page allocator.
                unsafe { core::ptr::copy_nonoverlapping(alias(snap)?, alias(pa)?, PAGE as usize) };
            }
            let top = page::alloc()?;
            self.stack.push((self.stack_top - PAGE, top));
        }
        for &(va, pa) in self.private.iter().chain(&self.stack).chain(&self.cow) {
            let s = self.table.leaf(va)?;
            pt::set(s, pt::leaf_entry(pa, true, false));
        }
        for &(tag, prot) in &self.key.clone() {
            let t = tags.get(tag)?;
            for va in (t.base..t.base + t.mapped).step_by(PAGE as usize) {
                if self.cow.iter().any(|&(v, _)| v == va) {
                    continue;
                }
                let pa = pgroot_pa(va).ok_or(Error::Internal("a tag page the process does not map"))?;
                let s = self.table.leaf(va)?;
                pt::set(s, pt::leaf_entry(pa, prot == MemProt::Write, false));
            }
        }
        Ok(())
    }

    /// CR3 for this compartment's root (without PCID bits).
    pub(crate) fn root(&self) -> u64 {
        self.table.root()
    }

    /// Whether the table must be rebuilt: the runtime's own memory changed since it was
    /// built, or the read-only ranges did (`image_gen`).
    pub(crate) fn needs_sync(&self, image_gen: u64) -> bool {
        libdune::runtime::memory_generation() != self.runtime_gen || image_gen != self.image_gen
    }

    /// Rebuilds the table if the runtime's own memory changed since (new vCPU areas or
    /// stacks must be mapped for the entry code) or the read-only ranges did (shared
    /// leaves are dropped and come back on first use, if still shared). Pages written
    /// under the old table stay dirty under the new one, so the reset still restores
    /// them.
    pub(crate) fn sync(&mut self, image: &Image, tags: &Tags, image_gen: u64) -> Result<()> {
        let g = libdune::runtime::memory_generation();
        if g == self.runtime_gen && image_gen == self.image_gen {
            return Ok(());
        }
        let dirty: Vec<u64> = self.private.iter().chain(&self.stack).chain(&self.cow).map(|&(va, _)| va).filter(|&va| self.table.own_leaf(va).is_some_and(|s| pt::get(s) & D != 0)).collect();
        let mut old = core::mem::replace(&mut self.table, Table::new()?);
        old.free();
        self.runtime_gen = g;
        self.image_gen = image_gen;
        self.tlb_gen += 1;
        self.populate(image, tags, false)?;
        for va in dirty {
            if let Some(s) = self.table.own_leaf(va) {
                pt::set(s, pt::get(s) | D);
            }
        }
        Ok(())
    }

    /// Handles a ring-3 page fault at `va` (error code `err`) that the policy allows:
    /// a stack page touched first, image code or rodata used first, a tag grown since
    /// the build, or the first write to a copy-on-write tag page. False: a violation.
    pub(crate) fn fault(&mut self, va: u64, err: u64, image: &Image, shared: &[Shared], tags: &Tags) -> Result<bool> {
        let page_va = va & !(PAGE - 1);
        // The fault's "present" bit says nothing here: the copied tables hold the
        // process's own (supervisor) leaves. What counts is whether ring 3 already
        // reaches the page through a leaf of this compartment.
        let write = err & 2 != 0;
        let present = self.table.translate(page_va, false).is_some();
        if page_va >= self.stack_top - STACK && page_va < self.stack_top {
            if present {
                return Ok(false);
            }
            let pa = page::alloc()?;
            self.stack.push((page_va, pa));
            pt::set(self.table.leaf(page_va)?, pt::leaf_entry(pa, true, false));
            return Ok(true);
        }
        if image.private.get(&page_va) == Some(&None) {
            // A writable page of the image that was zero in the snapshot: made now.
            if present {
                return Ok(false);
            }
            let pa = page::alloc()?;
            // SAFETY: the alias of a whole page of the page allocator.
            unsafe { core::ptr::write_bytes(alias(pa)?, 0, PAGE as usize) };
            self.private.push((page_va, pa));
            pt::set(self.table.leaf(page_va)?, pt::leaf_entry(pa, true, false));
            return Ok(true);
        }
        if let Some(r) = image::shared_in(shared, va).filter(|_| !image.private.contains_key(&page_va)) {
            if present || write {
                return Ok(false);
            }
            // Still mapped (the ranges can be a moment old): reading it from ring 0
            // must not fault the master. A special page (`[vvar]`) is never read here:
            // only one the process itself has used.
            if !still_mapped(page_va) || (!r.special && image.past_eof(page_va)) {
                return Ok(false);
            }
            // The file's page (its alias), not the master's mapping of it.
            let pa = if r.special { vm::va_to_pa(page_va) } else { pgroot_pa(image::alias_of(page_va)) };
            let Some(pa) = pa else { return Ok(false) };
            pt::set(self.table.leaf(page_va)?, pt::leaf_entry(pa, false, r.exec));
            return Ok(true);
        }
        let Some(t) = tags.at(va) else { return Ok(false) };
        let Some(&(_, prot)) = self.key.iter().find(|(id, _)| *id == t.id) else { return Ok(false) };
        if va >= t.base + t.mapped {
            return Ok(false);
        }
        if !present {
            if write && prot == MemProt::Read {
                return Ok(false);
            }
            let Some(pa) = pgroot_pa(page_va) else { return Ok(false) };
            if !(write && prot == MemProt::CopyOnWrite) {
                pt::set(self.table.leaf(page_va)?, pt::leaf_entry(pa, prot == MemProt::Write, false));
                return Ok(true);
            }
        }
        if write && prot == MemProt::CopyOnWrite && !self.cow.iter().any(|&(v, _)| v == page_va) {
            let pa = page::alloc()?;
            // SAFETY: the tag page is the process's, mapped read-write; the alias is
            // the fresh page's.
            unsafe { core::ptr::copy_nonoverlapping(page_va as *const u8, alias(pa)?, PAGE as usize) };
            self.cow.push((page_va, pa));
            pt::set(self.table.leaf(page_va)?, pt::leaf_entry(pa, true, false));
            self.tlb_gen += 1;
            return Ok(true);
        }
        Ok(false)
    }

    /// Ring 3's view of `[va, va+len)`, page by page: calls `f(offset, host pointer,
    /// bytes, leaf slot)` for each piece. None if any page is not reachable (with
    /// write access when `write`).
    fn pieces(&self, va: u64, len: usize, write: bool, mut f: impl FnMut(usize, *mut u8, usize, *mut u64)) -> bool {
        let mut done = 0usize;
        while done < len {
            let at = va.wrapping_add(done as u64);
            let n = ((PAGE - (at & (PAGE - 1))) as usize).min(len - done);
            let Some((pa, slot)) = self.table.translate(at, write) else { return false };
            let page_pa = pa & !(PAGE - 1);
            let host = match page::pa_to_va(page_pa) {
                Some(p) => p as u64,
                // Not a private page: a shared one, the file's page behind `at` (its
                // alias, checked), or a tag's, at the same address as in the process's
                // own table (checked).
                None if vm::va_to_pa(image::alias_of(at & !(PAGE - 1))) == Some(page_pa) => image::alias_of(at & !(PAGE - 1)),
                None if vm::va_to_pa(at & !(PAGE - 1)) == Some(page_pa) => at & !(PAGE - 1),
                None => return false,
            };
            f(done, (host + (pa & (PAGE - 1))) as *mut u8, n, slot);
            done += n;
        }
        true
    }

    /// Whether ring 3 reaches all of `[va, va+len)` (writably when `write`).
    pub(crate) fn pieces_ok(&self, va: u64, len: usize, write: bool) -> bool {
        self.pieces(va, len, write, |_, _, _, _| {})
    }

    /// Copies ring 3's bytes at `va` into `out`; false if any byte is unreachable.
    pub(crate) fn copy_in(&self, va: u64, out: &mut [u8]) -> bool {
        let p = out.as_mut_ptr();
        self.pieces(va, out.len(), false, |off, host, n, _| {
            // SAFETY: `host` is a mapped page of this compartment, `n` bytes within
            // it; `out` has room for them at `off`.
            unsafe { core::ptr::copy_nonoverlapping(host, p.add(off), n) }
        })
    }

    /// Copies `data` to ring 3's `va` (which must be writable for ring 3), setting
    /// the dirty bits the kernel's or the copy's writes would not.
    pub(crate) fn copy_out(&self, va: u64, data: &[u8]) -> bool {
        // Check the whole range first: nothing is written unless all of it may be.
        if !self.pieces_ok(va, data.len(), true) {
            return false;
        }
        self.pieces(va, data.len(), true, |off, host, n, slot| {
            // SAFETY: as in copy_in, with the page writable for ring 3.
            unsafe { core::ptr::copy_nonoverlapping(data.as_ptr().add(off), host, n) };
            pt::set(slot, pt::get(slot) | A | D);
        })
    }

    /// Maps, as a first touch from ring 3 would, whatever of `[va, va+len)` the
    /// policy allows but is not mapped yet (code and rodata used first, stack pages,
    /// grown tags). False if any page stays out of reach.
    pub(crate) fn ensure(&mut self, va: u64, len: usize, write: bool, image: &Image, shared: &[Shared], tags: &Tags) -> bool {
        if len == 0 {
            return true;
        }
        let Some(end) = va.checked_add(len as u64) else { return false };
        let mut p = va & !(PAGE - 1);
        while p < end {
            // Reachable already, or mapped now as a first touch would and reachable then.
            let reachable = self.table.translate(p, write).is_some()
                || (matches!(self.fault(p, if write { 2 } else { 0 }, image, shared, tags), Ok(true)) && self.table.translate(p, write).is_some());
            if !reachable {
                return false;
            }
            p += PAGE;
        }
        true
    }

    /// Writes the exit sentinel as the return address at the top of the stack.
    pub(crate) fn prime_stack(&self, sentinel: u64) -> Result<()> {
        let top = self.stack.first().ok_or(Error::Internal("stack"))?.1;
        // SAFETY: the alias of the stack's top page; the slot is its last 8 bytes.
        unsafe { (alias(top)?.add(PAGE as usize - 8) as *mut u64).write_unaligned(sentinel) };
        Ok(())
    }

    /// Back to the pristine state: dirty image pages restored from the snapshot, dirty
    /// stack pages zeroed, copy-on-write copies dropped. Returns the pages restored.
    pub(crate) fn reset(&mut self, image: &Image) -> Result<usize> {
        let mut n = 0;
        for &(va, pa) in &self.private {
            let Some(slot) = self.table.own_leaf(va) else { continue };
            let e = pt::get(slot);
            if e & D != 0 {
                match *image.private.get(&va).ok_or(Error::Internal("snapshot page"))? {
                    // SAFETY: aliases of two whole pages of the page allocator.
                    Some(snap) => unsafe { core::ptr::copy_nonoverlapping(alias(snap)?, alias(pa)?, PAGE as usize) },
                    // SAFETY: the alias of a whole page of the page allocator.
                    None => unsafe { core::ptr::write_bytes(alias(pa)?, 0, PAGE as usize) },
                }
                pt::set(slot, e & !(D | A));
                n += 1;
            }
        }
        for &(va, pa) in &self.stack {
            let Some(slot) = self.table.own_leaf(va) else { continue };
            let e = pt::get(slot);
            if e & D != 0 {
                // SAFETY: the alias of a whole page of the page allocator.
                unsafe { core::ptr::write_bytes(alias(pa)?, 0, PAGE as usize) };
                pt::set(slot, e & !(D | A));
                n += 1;
            }
        }
        for (va, pa) in self.cow.drain(..) {
            if let Some(slot) = self.table.own_leaf(va) {
                pt::set(slot, match vm::va_to_pa(va) {
                    Some(shared) => pt::leaf_entry(shared, false, false),
                    None => 0,
                });
            }
            let _ = page::free(pa);
            n += 1;
        }
        // A TLB entry cached with D set lets later writes skip setting D: nothing
        // tagged with this table may survive into the next use.
        self.tlb_gen += 1;
        Ok(n)
    }

    /// Frees everything.
    pub(crate) fn destroy(&mut self) {
        for (_, pa) in self.private.drain(..).chain(self.stack.drain(..)).chain(self.cow.drain(..)) {
            let _ = page::free(pa);
        }
        self.table.free();
    }
}


/// Pages of the shared ranges seen mapped, with the memory-map generation they were
/// seen in: until the map changes, a page seen mapped is mapped (one host call per page
/// and map generation, not per page and compartment).
static SEEN_MAPPED: std::sync::Mutex<(u64, Vec<u64>)> = std::sync::Mutex::new((u64::MAX, Vec::new()));

/// At most this many pages are remembered per generation (then each is asked again).
const SEEN_MAX: usize = 4096;

/// Whether page `page_va` is mapped in the process now.
fn still_mapped(page_va: u64) -> bool {
    let generation = libdune::runtime::map_generation();
    {
        let seen = SEEN_MAPPED.lock().unwrap_or_else(|e| e.into_inner());
        if seen.0 == generation && seen.1.binary_search(&page_va).is_ok() {
            return true;
        }
    }
    let mut v = [0u8; 1];
    // SAFETY: mincore only reports whether the page is mapped (ENOMEM if not).
    if unsafe { libc::mincore(page_va as *mut libc::c_void, PAGE as usize, v.as_mut_ptr()) } != 0 {
        return false;
    }
    let mut seen = SEEN_MAPPED.lock().unwrap_or_else(|e| e.into_inner());
    if seen.0 != generation {
        *seen = (generation, Vec::new());
    }
    if let Err(i) = seen.1.binary_search(&page_va) {
        if seen.1.len() < SEEN_MAX {
            seen.1.insert(i, page_va);
        }
    }
    true
}
