//! Tags: memory the master shares with the sthreads it grants them to (Wedge's
//! `tag_new`/`smalloc`). Each tag owns a 16 MiB slot of a reserved window and maps
//! chunks into it as it grows, at the same address for the master, the kernel and
//! every sthread. The allocator's bookkeeping lives in the master's heap, out of
//! every sthread's reach, so a compartment cannot corrupt it.

use std::collections::{BTreeMap, HashMap};

use crate::error::{Error, Result};
use crate::pt::PAGE;

/// A tag's handle: slot in the low 10 bits, a generation above (stale ids fail).
pub type TagId = i32;

/// Bytes a tag may grow to.
pub const TAG_MAX: u64 = 16 << 20;
/// Tags alive at once.
pub const TAGS: usize = 1024;
/// First chunk.
const FIRST_CHUNK: u64 = 64 << 10;
const ALIGN: u64 = 16;

/// One tag.
pub(crate) struct Tag {
    pub id: TagId,
    pub base: u64,
    /// Bytes mapped from `base`.
    pub mapped: u64,
    free: BTreeMap<u64, u64>,
    used: HashMap<u64, u64>,
}

/// All tags.
pub(crate) struct Tags {
    window: u64,
    slots: Vec<Option<Tag>>,
    gens: Vec<u32>,
}

impl Tags {
    /// Tags in `[window, window + TAGS * TAG_MAX)`, reserved by the caller.
    pub(crate) fn new(window: u64) -> Tags {
        Tags { window, slots: (0..TAGS).map(|_| None).collect(), gens: vec![0; TAGS] }
    }

    pub(crate) fn create(&mut self) -> Result<TagId> {
        let i = self.slots.iter().position(Option::is_none).ok_or(Error::NoMemory("every tag slot is in use"))?;
        self.gens[i] = (self.gens[i] + 1) & 0xf_ffff;
        let id = ((self.gens[i] as i32) << 10) | i as i32;
        self.slots[i] = Some(Tag { id, base: self.window + i as u64 * TAG_MAX, mapped: 0, free: BTreeMap::new(), used: HashMap::new() });
        Ok(id)
    }

    pub(crate) fn get(&self, id: TagId) -> Result<&Tag> {
        let i = (id & 0x3ff) as usize;
        self.slots.get(i).and_then(Option::as_ref).filter(|t| t.id == id && id >= 0).ok_or(Error::NoSuchTag)
    }

    fn get_mut(&mut self, id: TagId) -> Result<&mut Tag> {
        let i = (id & 0x3ff) as usize;
        self.slots.get_mut(i).and_then(Option::as_mut).filter(|t| t.id == id && id >= 0).ok_or(Error::NoSuchTag)
    }

    /// The tag whose slot holds `addr`.
    pub(crate) fn at(&self, addr: u64) -> Option<&Tag> {
        let off = addr.checked_sub(self.window)?;
        let i = (off / TAG_MAX) as usize;
        self.slots.get(i)?.as_ref()
    }

    /// `size` bytes from tag `id`, 16-byte aligned.
    pub(crate) fn alloc(&mut self, id: TagId, size: u64) -> Result<u64> {
        let size = size.max(1).checked_add(ALIGN - 1).ok_or(Error::NoMemory("size"))? & !(ALIGN - 1);
        let t = self.get_mut(id)?;
        loop {
            if let Some((&off, &len)) = t.free.iter().find(|(_, &l)| l >= size) {
                t.free.remove(&off);
                if len > size {
                    t.free.insert(off + size, len - size);
                }
                t.used.insert(off, size);
                return Ok(t.base + off);
            }
            t.grow(size)?;
        }
    }

    /// Returns a block to its tag.
    pub(crate) fn free(&mut self, addr: u64) -> Result<()> {
        let id = self.at(addr).map(|t| t.id).ok_or(Error::Invalid("not an smalloc'ed pointer"))?;
        let t = self.get_mut(id)?;
        let off = addr - t.base;
        let mut len = t.used.remove(&off).ok_or(Error::Invalid("not an smalloc'ed pointer"))?;
        let mut start = off;
        if let Some(&next) = t.free.get(&(off + len)) {
            t.free.remove(&(off + len));
            len += next;
        }
        if let Some((&p, &plen)) = t.free.range(..off).next_back() {
            if p + plen == off {
                t.free.remove(&p);
                start = p;
                len += plen;
            }
        }
        t.free.insert(start, len);
        Ok(())
    }

    /// Size of the block at `addr`.
    pub(crate) fn size_of(&self, addr: u64) -> Option<u64> {
        let t = self.at(addr)?;
        t.used.get(&(addr - t.base)).copied()
    }

    /// Unmaps a tag (its slot becomes a reservation again).
    pub(crate) fn delete(&mut self, id: TagId) -> Result<()> {
        let t = self.get(id)?;
        let (base, mapped) = (t.base, t.mapped);
        if mapped > 0 {
            // SAFETY: replaces the tag's own chunks inside the reserved window with an
            // inaccessible reservation; nothing else lives there.
            let r = unsafe { libc::mmap(base as *mut _, mapped as usize, libc::PROT_NONE, libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_FIXED | libc::MAP_NORESERVE, -1, 0) };
            if r == libc::MAP_FAILED {
                return Err(Error::NoMemory("unmapping a tag"));
            }
        }
        self.slots[(id & 0x3ff) as usize] = None;
        Ok(())
    }
}

impl Tag {
    /// Maps another chunk: twice the tag's size, at least `need` more.
    fn grow(&mut self, need: u64) -> Result<()> {
        let add = (self.mapped.max(FIRST_CHUNK)).max(need.next_multiple_of(PAGE));
        if self.mapped + add > TAG_MAX {
            return Err(Error::NoMemory("a tag grows to 16 MiB at most"));
        }
        let at = self.base + self.mapped;
        // SAFETY: maps fresh memory over the tag's own reserved slot.
        let r = unsafe { libc::mmap(at as *mut _, add as usize, libc::PROT_READ | libc::PROT_WRITE, libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_FIXED | libc::MAP_POPULATE, -1, 0) };
        if r == libc::MAP_FAILED {
            return Err(Error::NoMemory("mapping a tag chunk"));
        }
        // Touch every page so the process's page table maps it now: compartments
        // then take the same physical pages from it.
        for p in (at..at + add).step_by(PAGE as usize) {
            // SAFETY: the chunk was just mapped read-write.
            unsafe { (p as *mut u8).write_volatile(0) };
        }
        let off = self.mapped;
        self.mapped += add;
        // Merge with a free block ending at the old end.
        match self.free.range(..off).next_back().map(|(&p, &l)| (p, l)) {
            Some((p, l)) if p + l == off => {
                self.free.insert(p, l + add);
            }
            _ => {
                self.free.insert(off, add);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn window() -> u64 {
        // SAFETY: a fresh inaccessible reservation for four tag slots.
        let p = unsafe { libc::mmap(core::ptr::null_mut(), (4 * TAG_MAX) as usize, libc::PROT_NONE, libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE, -1, 0) };
        assert_ne!(p, libc::MAP_FAILED);
        p as u64
    }

    #[test]
    fn blocks_are_aligned_reused_coalesced_and_grow() {
        let mut t = Tags::new(window());
        let id = t.create().unwrap();
        let a = t.alloc(id, 10).unwrap();
        let b = t.alloc(id, 100).unwrap();
        assert_eq!(a % 16, 0);
        assert_eq!(b, a + 16);
        assert_eq!(t.size_of(b), Some(112));
        t.free(a).unwrap();
        t.free(b).unwrap();
        assert!(t.free(b).is_err(), "double free");
        // Coalesced: one block the size of both comes back at a.
        assert_eq!(t.alloc(id, 128).unwrap(), a);
        // Growth past the first chunk, contiguous in the slot.
        let big = t.alloc(id, 1 << 20).unwrap();
        // SAFETY: the block is mapped read-write.
        unsafe { ((big + (1 << 20) - 1) as *mut u8).write(1) };
        assert!(t.alloc(id, TAG_MAX).is_err(), "beyond 16 MiB");
        // Stale and foreign ids.
        t.delete(id).unwrap();
        assert!(t.alloc(id, 8).is_err() && t.get(id).is_err());
        let id2 = t.create().unwrap();
        assert_ne!(id, id2, "a recreated slot has a new generation");
        assert!(t.free(a).is_err());
    }
}
