//! A compartment's page table, built over the process's own (`pgroot`).
//!
//! The root is private. Its entries first point at `pgroot`'s own lower tables with
//! the user bit cleared, so ring 0 sees the runtime's memory exactly as in `pgroot`
//! (the entry code runs on this table for a few instructions) and ring 3 sees
//! nothing of it. A path is *unshared* (copied table by table, again with U cleared)
//! only where the compartment installs a leaf of its own; only those leaves carry
//! U. `pgroot` never frees a table page while the process lives, so the shared
//! pointers cannot dangle.

use std::collections::HashSet;

use libdune::{page, vm};

use crate::error::{Error, Result};

pub(crate) const P: u64 = 1;
pub(crate) const W: u64 = 1 << 1;
pub(crate) const U: u64 = 1 << 2;
pub(crate) const A: u64 = 1 << 5;
pub(crate) const D: u64 = 1 << 6;
const PS: u64 = 1 << 7;
const PAT_4K: u64 = 1 << 7;
const PAT_HUGE: u64 = 1 << 12;
pub(crate) const NX: u64 = 1 << 63;
const ADDR: u64 = 0x000f_ffff_ffff_f000;
pub(crate) const PAGE: u64 = 4096;

/// The 512 entries of the table page at guest-physical `pa`, through its ring-0 alias.
fn slots(pa: u64) -> Result<*mut u64> {
    page::pa_to_va(pa).map(|p| p as *mut u64).ok_or(Error::Internal("a page table outside the page allocator"))
}

fn read(slot: *mut u64) -> u64 {
    // SAFETY: slots point into table pages of the runtime's arena (always mapped);
    // entries are 8-byte aligned words, read atomically by a volatile load.
    unsafe { slot.read_volatile() }
}

fn write(slot: *mut u64, v: u64) {
    // SAFETY: as in `read`; only this compartment's own table pages are written.
    unsafe { slot.write_volatile(v) }
}

/// A compartment's table: its root and the table pages it owns.
pub(crate) struct Table {
    root: u64,
    owned: HashSet<u64>,
}

impl Table {
    /// A root sharing everything of `pgroot`, with nothing reachable from ring 3.
    pub(crate) fn new() -> Result<Table> {
        let base = vm::pgroot()?.0;
        let mut t = Table { root: 0, owned: HashSet::new() };
        t.root = t.copy_of(base)?;
        Ok(t)
    }

    /// Guest-physical address of the root (CR3 without PCID bits).
    pub(crate) fn root(&self) -> u64 {
        self.root
    }

    /// A new table page holding `src`'s entries with U cleared.
    fn copy_of(&mut self, src: u64) -> Result<u64> {
        let new = page::alloc()?;
        self.owned.insert(new);
        let (from, to) = (slots(src)?, slots(new)?);
        for i in 0..512 {
            // SAFETY: both are 512-entry table pages and i < 512.
            let (f, t) = unsafe { (from.add(i), to.add(i)) };
            let e = read(f);
            write(t, if e & P != 0 { e & !U } else { 0 });
        }
        Ok(new)
    }

    /// A new table page of 512 smaller leaves covering the large leaf `e` at `level`
    /// (3: 1 GiB into 2 MiB leaves; 2: 2 MiB into 4 KiB leaves), U cleared.
    fn split(&mut self, e: u64, level: u32) -> Result<u64> {
        let new = page::alloc()?;
        self.owned.insert(new);
        let to = slots(new)?;
        let step = if level == 3 { 1u64 << 21 } else { PAGE };
        let base = e & ADDR & !((step << 9) - 1);
        // Bits 0-11 and 52-63 are flags; PAT of a large leaf is bit 12, of a 4 KiB one bit 7.
        let flags = e & !ADDR & !U;
        let flags = if level == 3 {
            flags | (e & PAT_HUGE)
        } else {
            (flags & !PS) | if e & PAT_HUGE != 0 { PAT_4K } else { 0 }
        };
        for i in 0..512u64 {
            // SAFETY: a 512-entry table page.
            write(unsafe { to.add(i as usize) }, (base + i * step) | flags);
        }
        Ok(new)
    }

    /// The 4 KiB leaf slot for `va`, unsharing (or building) the tables on its path.
    pub(crate) fn leaf(&mut self, va: u64) -> Result<*mut u64> {
        let mut table = self.root;
        for level in [4u32, 3, 2] {
            let idx = ((va >> (12 + 9 * (level - 1))) & 511) as usize;
            // SAFETY: idx < 512.
            let slot = unsafe { slots(table)?.add(idx) };
            let e = read(slot);
            let next = if e & P == 0 {
                let n = page::alloc()?;
                self.owned.insert(n);
                n
            } else if level < 4 && e & PS != 0 {
                self.split(e, level)?
            } else if self.owned.contains(&(e & ADDR)) {
                e & ADDR
            } else {
                self.copy_of(e & ADDR)?
            };
            write(slot, next | P | W | U | A);
            table = next;
        }
        // SAFETY: the index is below 512.
        Ok(unsafe { slots(table)?.add(((va >> 12) & 511) as usize) })
    }

    /// The slot of `va`'s 4 KiB leaf if this table owns it (no tables are built).
    pub(crate) fn own_leaf(&self, va: u64) -> Option<*mut u64> {
        let mut table = self.root;
        for level in [4u32, 3, 2] {
            let idx = ((va >> (12 + 9 * (level - 1))) & 511) as usize;
            // SAFETY: idx < 512.
            let e = read(unsafe { slots(table).ok()?.add(idx) });
            if e & P == 0 || e & PS != 0 || !self.owned.contains(&(e & ADDR)) {
                return None;
            }
            table = e & ADDR;
        }
        // SAFETY: the index is below 512.
        Some(unsafe { slots(table).ok()?.add(((va >> 12) & 511) as usize) })
    }

    /// What ring 3 reaches at `va`: the guest-physical address and the leaf's slot,
    /// if every level is present and user, and writable when `write`.
    pub(crate) fn translate(&self, va: u64, write: bool) -> Option<(u64, *mut u64)> {
        let need = P | U | if write { W } else { 0 };
        let mut table = self.root;
        for level in [4u32, 3, 2, 1] {
            let idx = ((va >> (12 + 9 * (level - 1))) & 511) as usize;
            // SAFETY: idx < 512.
            let slot = unsafe { slots(table).ok()?.add(idx) };
            let e = read(slot);
            if e & need != need {
                return None;
            }
            if level == 1 || e & PS != 0 {
                let size = 1u64 << (12 + 9 * (level - 1));
                return Some(((e & ADDR & !(size - 1)) | (va & (size - 1)), slot));
            }
            table = e & ADDR;
        }
        None
    }

    /// Returns every table page.
    pub(crate) fn free(&mut self) {
        for pa in self.owned.drain() {
            let _ = page::free(pa);
        }
        self.root = 0;
    }
}

/// Reads an entry.
pub(crate) fn get(slot: *mut u64) -> u64 {
    read(slot)
}

/// Writes an entry.
pub(crate) fn set(slot: *mut u64, v: u64) {
    write(slot, v)
}

/// A 4 KiB leaf for guest-physical page `pa`.
pub(crate) fn leaf_entry(pa: u64, write: bool, exec: bool) -> u64 {
    (pa & ADDR) | P | U | A | if write { W } else { 0 } | if exec { 0 } else { NX }
}
