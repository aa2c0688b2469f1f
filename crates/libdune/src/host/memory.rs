//! Guest-physical memory: which host ranges are registered with KVM, at which
//! guest-physical addresses, and the guest page table that maps them back to their
//! host virtual addresses (guest virtual == host virtual).
//!
//! Guest-physical addresses are allocated independently of host addresses, below the
//! guest's MAXPHYADDR, so a 47-bit user address space works on a CPU with 39 physical
//! bits. Each registered host range is one memslot. Memslots cost kernel memory in
//! proportion to their size whether touched or not (about 2.5 MB per GiB under
//! shadow paging), so only accessible mappings are registered and the total is bounded
//! by a budget.
//!
//! Nothing here calls `malloc` after `Memory::new`: see `fixed`.

use core::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use kvm_bindings::kvm_userspace_memory_region;
use kvm_ioctls::VmFd;

use crate::error::{Error, Result};
use super::fixed::FixedVec;
use super::pagetable::{Perms, PageTable};
use super::procmap::{self, Vma};
use super::{reserved, sys};

/// 4 KiB.
pub const PAGE: u64 = 4096;
/// 2 MiB: guest-physical ranges of at least this size keep the host's 2 MiB phase so
/// both the guest page table and KVM's nested table can use large pages.
pub const HUGE: u64 = 2 << 20;
/// Guest-physical addresses start above the 32-bit MMIO hole (APIC, IOAPIC, TSS).
pub const GPA_BASE: u64 = 1 << 32;
/// Highest user address + 1 (47-bit user space).
pub const USER_END: u64 = 1 << 47;
/// Size of one chunk of runtime memory (page tables, IDT, per-vCPU areas).
pub const ARENA_CHUNK: u64 = 16 << 20;

const MAX_REGIONS: usize = 32 * 1024;
const MAX_FREE_RANGES: usize = 64 * 1024;
const MAX_ARENA_CHUNKS: usize = 256;
const MAX_FREE_PAGES: usize = 1 << 20;
/// Separate ranges of user memory (`user::add_user_range`).
const MAX_USER_RANGES: usize = 64 * 1024;
const PAGES_PER_CHUNK: usize = (ARENA_CHUNK / PAGE) as usize;

/// The arena chunks as `(hva, gpa)`, readable without the runtime lock: page-table
/// walks in ring-0 trap handlers translate table addresses through it. Entries are
/// written once, before the count that publishes them.
static ARENA_VIEW: [(AtomicU64, AtomicU64); MAX_ARENA_CHUNKS] = [const { (AtomicU64::new(0), AtomicU64::new(0)) }; MAX_ARENA_CHUNKS];
static ARENA_COUNT: AtomicUsize = AtomicUsize::new(0);

/// Host (= guest virtual) address of runtime page `gpa`, without taking any lock.
pub fn arena_gpa_to_hva(gpa: u64) -> Option<u64> {
    let n = ARENA_COUNT.load(Ordering::Acquire);
    ARENA_VIEW[..n].iter().find_map(|(h, g)| {
        let (h, g) = (h.load(Ordering::Relaxed), g.load(Ordering::Relaxed));
        (g..g + ARENA_CHUNK).contains(&gpa).then(|| h + (gpa - g))
    })
}

/// A host range registered as one memslot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Region {
    /// Host (and guest) virtual start.
    pub hva: u64,
    /// Length in bytes, a multiple of 4 KiB.
    pub len: u64,
    /// Guest-physical start.
    pub gpa: u64,
    /// KVM memslot number.
    pub slot: u32,
    /// Memory the runtime allocated for itself.
    pub runtime: bool,
    /// Scratch mark of `reclaim`: some mapping still covers the region.
    pub live: bool,
}

impl Region {
    fn end(&self) -> u64 {
        self.hva + self.len
    }
}

/// What is registered, for tests and `dune doctor`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MemStats {
    /// Number of memslots in use.
    pub memslots: usize,
    /// Bytes covered by memslots.
    pub memslot_bytes: u64,
    /// The bound on `memslot_bytes`.
    pub memslot_budget: u64,
    /// Pages of runtime memory in use (page tables, IDT, vCPU areas).
    pub runtime_pages: u64,
    /// Highest guest-physical address handed out + 1.
    pub gpa_high_water: u64,
    /// The guest's MAXPHYADDR.
    pub maxphyaddr: u8,
}

/// Free guest-physical ranges, first fit, coalesced on free.
struct GpaAllocator {
    free: FixedVec<(u64, u64)>,
    /// Next-fit: search from here, so a freed range is not handed out again at once
    /// (translations of it may linger in caches until the flush its removal caused).
    cursor: u64,
    high_water: u64,
    limit: u64,
    maxphy: u8,
}

impl GpaAllocator {
    fn new(maxphy: u8) -> Result<Self> {
        let limit = 1u64 << maxphy;
        if limit <= GPA_BASE {
            return Err(Error::GuestPhysExhausted(maxphy));
        }
        let mut free = FixedVec::with_capacity(MAX_FREE_RANGES).map_err(|e| Error::os_errno("mmap gpa table", e))?;
        let _ = free.push((GPA_BASE, limit));
        Ok(GpaAllocator { free, cursor: GPA_BASE, high_water: GPA_BASE, limit, maxphy })
    }

    /// A range of `len` bytes; when `len >= HUGE`, congruent to `phase` modulo 2 MiB.
    fn alloc(&mut self, len: u64, phase: u64) -> Result<u64> {
        let phase = if len >= HUGE { phase % HUGE } else { 0 };
        let n = self.free.len();
        let first = self.free.as_slice().partition_point(|&(_, e)| e <= self.cursor);
        for i in (first..n).chain(0..first) {
            let (s, e) = self.free.as_slice()[i];
            let s = if i == first { s.max(self.cursor) } else { s };
            let mut start = (s & !(HUGE - 1)) + phase;
            if len < HUGE {
                start = s;
            } else if start < s {
                start += HUGE;
            }
            if start.checked_add(len).is_some_and(|end| end <= e) {
                self.take(i, start, start + len)?;
                self.high_water = self.high_water.max(start + len);
                self.cursor = start + len;
                return Ok(start);
            }
        }
        Err(Error::GuestPhysExhausted(self.maxphy))
    }

    fn take(&mut self, i: usize, start: u64, end: u64) -> Result<()> {
        let (s, e) = self.free.remove(i);
        if end < e {
            self.free.insert(i, (end, e)).map_err(|_| Error::TableFull("free gpa ranges"))?;
        }
        if s < start {
            self.free.insert(i, (s, start)).map_err(|_| Error::TableFull("free gpa ranges"))?;
        }
        Ok(())
    }

    fn free(&mut self, start: u64, len: u64) {
        let end = start + len;
        debug_assert!(end <= self.limit);
        let ranges = self.free.as_mut_slice();
        let i = ranges.partition_point(|&(s, _)| s < start);
        let merge_prev = i > 0 && ranges[i - 1].1 == start;
        let merge_next = i < ranges.len() && ranges[i].0 == end;
        match (merge_prev, merge_next) {
            (true, true) => {
                ranges[i - 1].1 = ranges[i].1;
                self.free.remove(i);
            }
            (true, false) => ranges[i - 1].1 = end,
            (false, true) => ranges[i].0 = start,
            // A full table leaks the range: address space, not memory.
            (false, false) => {
                let _ = self.free.insert(i, (start, end));
            }
        }
    }
}

/// Runtime memory: page-table pages, the IDT, per-vCPU GDT/TSS/IST stacks.
struct Arena {
    /// (hva, gpa) of each chunk.
    chunks: FixedVec<(u64, u64)>,
    /// Next unused byte in the last chunk.
    bump: u64,
    free_pages: FixedVec<u64>,
    used_pages: u64,
    /// Reference counts of pages handed out by `page_alloc` (0 for the runtime's own).
    refs: FixedVec<u32>,
}

/// All guest-physical state of the VM.
pub struct Memory {
    regions: FixedVec<Region>,
    free_slots: FixedVec<u32>,
    next_slot: u32,
    max_slots: u32,
    gpa: GpaAllocator,
    arena: Arena,
    slot_bytes: u64,
    budget: u64,
    pt: PageTable,
    /// User memory: ranges ring 3 may reach (sorted, disjoint, never runtime memory).
    user: FixedVec<(u64, u64)>,
}

impl Memory {
    /// Creates the tables and the guest page table root, registering its first arena chunk.
    pub fn new(vm: &VmFd, maxphy: u8, max_slots: usize, budget: u64) -> Result<Self> {
        let table = |what| move |e| Error::os_errno(what, e);
        let mut m = Memory {
            regions: FixedVec::with_capacity(MAX_REGIONS).map_err(table("mmap region table"))?,
            free_slots: FixedVec::with_capacity(1024).map_err(table("mmap slot table"))?,
            next_slot: 0,
            max_slots: max_slots.min(u16::MAX as usize) as u32,
            gpa: GpaAllocator::new(maxphy)?,
            arena: Arena {
                chunks: FixedVec::with_capacity(MAX_ARENA_CHUNKS).map_err(table("mmap arena table"))?,
                bump: ARENA_CHUNK,
                free_pages: FixedVec::with_capacity(MAX_FREE_PAGES).map_err(table("mmap page table"))?,
                used_pages: 0,
                refs: FixedVec::with_capacity(MAX_ARENA_CHUNKS * PAGES_PER_CHUNK).map_err(table("mmap page refcounts"))?,
            },
            slot_bytes: 0,
            budget,
            pt: PageTable::EMPTY,
            user: FixedVec::with_capacity(MAX_USER_RANGES).map_err(table("mmap user-range table"))?,
        };
        m.grow_arena(vm)?;
        let root = m.alloc_page(vm)?;
        m.pt = PageTable::new(root);
        // The first chunk was registered before a page table existed: map it now.
        let (hva, gpa) = m.arena.chunks.as_slice()[0];
        let pt = m.pt;
        pt.map(&mut m, vm, hva, gpa, ARENA_CHUNK, Perms::RW)?;
        Ok(m)
    }

    /// Guest-physical address of the page-table root (CR3).
    pub fn root(&self) -> u64 {
        self.pt.root()
    }

    /// Current statistics.
    pub fn stats(&self) -> MemStats {
        MemStats {
            memslots: self.regions.len(),
            memslot_bytes: self.slot_bytes,
            memslot_budget: self.budget,
            runtime_pages: self.arena.used_pages,
            gpa_high_water: self.gpa.high_water,
            maxphyaddr: self.gpa.maxphy,
        }
    }

    /// Whether `hva` is runtime memory (page tables, IDT, vCPU areas).
    pub fn is_runtime(&self, hva: u64) -> bool {
        let rs = self.regions.as_slice();
        let i = rs.partition_point(|r| r.end() <= hva);
        rs.get(i).is_some_and(|r| r.hva <= hva && r.runtime)
    }

    /// Host address of guest-physical `gpa`, if registered.
    pub fn gpa_to_hva(&self, gpa: u64) -> Option<u64> {
        for &(hva, cgpa) in self.arena.chunks.as_slice() {
            if (cgpa..cgpa + ARENA_CHUNK).contains(&gpa) {
                return Some(hva + (gpa - cgpa));
            }
        }
        self.regions.as_slice().iter().find(|r| (r.gpa..r.gpa + r.len).contains(&gpa)).map(|r| r.hva + (gpa - r.gpa))
    }

    // ---- runtime pages -------------------------------------------------------------

    fn grow_arena(&mut self, vm: &VmFd) -> Result<()> {
        let hva = reserved::map(ARENA_CHUNK as usize, libc::MAP_NORESERVE).map_err(|e| Error::os_errno("mmap runtime arena", e))? as u64;
        let gpa = self.register(vm, hva, ARENA_CHUNK, true)?;
        let idx = self.arena.chunks.len();
        if self.arena.chunks.push((hva, gpa)).is_err() {
            return Err(Error::TableFull("runtime arena chunks"));
        }
        ARENA_VIEW[idx].0.store(hva, Ordering::Relaxed);
        ARENA_VIEW[idx].1.store(gpa, Ordering::Relaxed);
        ARENA_COUNT.store(idx + 1, Ordering::Release);
        for _ in 0..PAGES_PER_CHUNK {
            let _ = self.arena.refs.push(0);
        }
        self.arena.bump = 0;
        if !self.pt.is_empty() {
            let pt = self.pt;
            pt.map(self, vm, hva, gpa, ARENA_CHUNK, Perms::RW)?;
        }
        Ok(())
    }

    /// A zeroed runtime page; returns its guest-physical address.
    pub fn alloc_page(&mut self, vm: &VmFd) -> Result<u64> {
        let gpa = match self.arena.free_pages.pop() {
            Some(gpa) => gpa,
            None => self.alloc_contiguous(vm, 1)?,
        };
        let hva = self.gpa_to_hva(gpa).ok_or(Error::TableFull("arena page lookup"))?;
        // SAFETY: the page belongs to the arena and was free: nothing else refers to it.
        unsafe { core::ptr::write_bytes(hva as *mut u8, 0, PAGE as usize) };
        self.arena.used_pages += 1;
        Ok(gpa)
    }

    /// Makes sure `n` pages can be had without growing the arena.
    pub fn reserve_pages(&mut self, vm: &VmFd, n: u64) -> Result<()> {
        let left = (ARENA_CHUNK - self.arena.bump) / PAGE + self.arena.free_pages.len() as u64;
        if left < n {
            self.grow_arena(vm)?;
        }
        Ok(())
    }

    /// A page from what `reserve_pages` guaranteed (not zeroed), without growing.
    pub fn alloc_reserved_page(&mut self) -> Option<u64> {
        let gpa = match self.arena.free_pages.pop() {
            Some(gpa) => gpa,
            None if self.arena.bump < ARENA_CHUNK => {
                let (_, base) = *self.arena.chunks.as_slice().last()?;
                self.arena.bump += PAGE;
                base + self.arena.bump - PAGE
            }
            None => return None,
        };
        self.arena.used_pages += 1;
        Some(gpa)
    }

    fn ref_index(&self, gpa: u64) -> Option<usize> {
        self.arena.chunks.as_slice().iter().position(|&(_, g)| (g..g + ARENA_CHUNK).contains(&gpa)).map(|c| c * PAGES_PER_CHUNK + ((gpa % ARENA_CHUNK) / PAGE) as usize)
    }

    /// A zeroed page for the application (`dune_page_alloc`), reference count 1.
    pub fn page_alloc(&mut self, vm: &VmFd) -> Result<u64> {
        let gpa = self.alloc_page(vm)?;
        if let Some(i) = self.ref_index(gpa) {
            self.arena.refs.as_mut_slice()[i] = 1;
        }
        Ok(gpa)
    }

    /// The page allocator's counts (`dune_page_stats`): pages handed out by
    /// `page_alloc` and still referenced, pages free without growing, and the pages
    /// of runtime memory (which page tables and per-vCPU areas share).
    pub fn page_stats(&self) -> (u64, u64, u64) {
        let app = self.arena.refs.as_slice().iter().filter(|&&r| r > 0).count() as u64;
        let free = (ARENA_CHUNK - self.arena.bump) / PAGE + self.arena.free_pages.len() as u64;
        (app, free, (self.arena.chunks.len() * PAGES_PER_CHUNK) as u64)
    }

    /// Whether `gpa` is a page handed out by `page_alloc` and still referenced.
    pub fn page_is_allocated(&self, gpa: u64) -> bool {
        self.ref_index(gpa).is_some_and(|i| self.arena.refs.as_slice()[i] > 0)
    }

    /// The reference count of an allocated page.
    pub fn page_refcount(&self, gpa: u64) -> Option<u32> {
        self.ref_index(gpa).map(|i| self.arena.refs.as_slice()[i]).filter(|&r| r > 0)
    }

    /// Adds a reference to an allocated page.
    pub fn page_get(&mut self, gpa: u64) -> bool {
        match self.ref_index(gpa) {
            Some(i) if self.arena.refs.as_slice()[i] > 0 => {
                self.arena.refs.as_mut_slice()[i] += 1;
                true
            }
            _ => false,
        }
    }

    /// Drops a reference; the page is freed at zero. Returns the count left.
    pub fn page_put(&mut self, gpa: u64) -> Option<u32> {
        let i = self.ref_index(gpa)?;
        let r = &mut self.arena.refs.as_mut_slice()[i];
        if *r == 0 {
            return None;
        }
        *r -= 1;
        let left = *r;
        if left == 0 {
            self.free_page(gpa & !(PAGE - 1));
        }
        Some(left)
    }

    /// Removes one page of runtime memory from the guest page table (a guard page).
    pub fn unmap_runtime_page(&mut self, hva: u64) {
        let pt = self.pt;
        pt.unmap(self, hva, hva + PAGE);
    }

    /// Returns a page from `alloc_page`.
    pub fn free_page(&mut self, gpa: u64) {
        if self.arena.free_pages.push(gpa).is_ok() {
            self.arena.used_pages -= 1;
        }
    }

    /// `n` contiguous runtime pages (never freed: used for pooled per-vCPU areas).
    pub fn alloc_contiguous(&mut self, vm: &VmFd, n: u64) -> Result<u64> {
        let bytes = n * PAGE;
        if bytes > ARENA_CHUNK {
            return Err(Error::TableFull("runtime allocation larger than a chunk"));
        }
        if self.arena.bump + bytes > ARENA_CHUNK {
            self.grow_arena(vm)?;
        }
        let (_, gpa) = *self.arena.chunks.as_slice().last().ok_or(Error::TableFull("no arena"))?;
        let at = gpa + self.arena.bump;
        self.arena.bump += bytes;
        if n > 1 {
            self.arena.used_pages += n;
        }
        Ok(at)
    }

    // ---- memslots ------------------------------------------------------------------

    fn take_slot(&mut self) -> Result<u32> {
        if let Some(s) = self.free_slots.pop() {
            return Ok(s);
        }
        if self.next_slot >= self.max_slots {
            return Err(Error::TableFull("KVM memslots"));
        }
        self.next_slot += 1;
        Ok(self.next_slot - 1)
    }

    fn set_slot(vm: &VmFd, slot: u32, gpa: u64, hva: u64, len: u64) -> Result<()> {
        let region = kvm_userspace_memory_region { slot, flags: 0, guest_phys_addr: gpa, memory_size: len, userspace_addr: hva };
        // SAFETY: the host range [hva, hva+len) is a mapping of this process (or len is 0,
        // deleting the slot). KVM accesses it through the process's own page tables, so a
        // later munmap cannot make KVM touch freed memory (MMU notifiers zap the slot's
        // mappings), and the runtime drops the slot when the range goes away.
        unsafe { vm.set_user_memory_region(region) }.map_err(Error::kvm("KVM_SET_USER_MEMORY_REGION"))
    }

    /// Registers `[hva, hva+len)` as a new memslot at a fresh guest-physical range.
    fn register(&mut self, vm: &VmFd, hva: u64, len: u64, runtime: bool) -> Result<u64> {
        if self.slot_bytes + len > self.budget || self.regions.len() + 2 >= MAX_REGIONS || self.next_slot + 2 >= self.max_slots && self.free_slots.len() == 0 {
            self.reclaim(vm)?;
        }
        if self.slot_bytes + len > self.budget {
            return Err(Error::MemslotBudget { requested: len, budget: self.budget });
        }
        let gpa = self.gpa.alloc(len, hva)?;
        let slot = match self.take_slot() {
            Ok(s) => s,
            Err(e) => {
                self.gpa.free(gpa, len);
                return Err(e);
            }
        };
        if let Err(e) = Self::set_slot(vm, slot, gpa, hva, len) {
            self.gpa.free(gpa, len);
            let _ = self.free_slots.push(slot);
            return Err(e);
        }
        let r = Region { hva, len, gpa, slot, runtime, live: true };
        let i = self.regions.as_slice().partition_point(|x| x.hva < hva);
        if self.regions.insert(i, r).is_err() {
            let _ = Self::set_slot(vm, slot, gpa, hva, 0);
            self.gpa.free(gpa, len);
            let _ = self.free_slots.push(slot);
            return Err(Error::TableFull("memory regions"));
        }
        self.slot_bytes += len;
        Ok(gpa)
    }

    /// Registers the parts of `[start, end)` that no region covers yet.
    fn cover(&mut self, vm: &VmFd, start: u64, end: u64) -> Result<()> {
        let mut at = start;
        while at < end {
            let rs = self.regions.as_slice();
            let i = rs.partition_point(|r| r.end() <= at);
            match rs.get(i) {
                Some(r) if r.hva <= at => at = r.end(),
                next => {
                    let stop = next.map_or(end, |r| r.hva.min(end));
                    self.register(vm, at, stop - at, false)?;
                    at = stop;
                }
            }
        }
        Ok(())
    }

    /// Drops memslot coverage of `[start, end)`, keeping the guest-physical addresses of
    /// the parts of split regions that remain (so their page-table entries stay valid).
    /// The caller excludes runtime regions (see `unmap`).
    fn uncover(&mut self, vm: &VmFd, start: u64, end: u64) -> Result<()> {
        loop {
            let rs = self.regions.as_slice();
            let i = rs.partition_point(|r| r.end() <= start);
            let Some(&r) = rs.get(i).filter(|r| r.hva < end) else {
                return Ok(());
            };
            Self::set_slot(vm, r.slot, r.gpa, r.hva, 0)?;
            self.regions.remove(i);
            self.slot_bytes -= r.len;
            let _ = self.free_slots.push(r.slot);
            let cut_start = start.max(r.hva);
            let cut_end = end.min(r.end());
            self.gpa.free(r.gpa + (cut_start - r.hva), cut_end - cut_start);
            if r.hva < cut_start {
                self.keep(vm, &r, r.hva, cut_start - r.hva)?;
            }
            if cut_end < r.end() {
                self.keep(vm, &r, cut_end, r.end() - cut_end)?;
            }
        }
    }

    /// Drops the memslots of regions no mapping of the process covers any more (they
    /// outlive `munmap`, see `unmap`). Their page-table entries are already gone. One
    /// pass over `/proc/self/maps` marks the live regions (both lists are sorted).
    pub fn reclaim(&mut self, vm: &VmFd) -> Result<()> {
        for r in self.regions.as_mut_slice() {
            r.live = r.runtime;
        }
        let regions = self.regions.as_mut_slice();
        let mut i = 0;
        procmap::for_each(|v| {
            while i < regions.len() && regions[i].end() <= v.start {
                i += 1;
            }
            let mut k = i;
            while k < regions.len() && regions[k].hva < v.end {
                regions[k].live = true;
                k += 1;
            }
            i < regions.len()
        })
        .map_err(Error::ProcMaps)?;
        let mut n = 0;
        while n < self.regions.len() {
            let r = self.regions.as_slice()[n];
            if r.live {
                n += 1;
            } else {
                // Its entries are normally gone already (munmap cleared them); after a
                // mapping vanished behind the runtime's back they are not.
                self.unmap_ptes(r.hva, r.end());
                self.uncover(vm, r.hva, r.end())?;
            }
        }
        Ok(())
    }

    /// Registers the part `[hva, hva+len)` of removed region `r` at its old guest-physical place.
    fn keep(&mut self, vm: &VmFd, r: &Region, hva: u64, len: u64) -> Result<()> {
        let gpa = r.gpa + (hva - r.hva);
        let slot = self.take_slot()?;
        Self::set_slot(vm, slot, gpa, hva, len)?;
        let at = self.regions.as_slice().partition_point(|x| x.hva < hva);
        self.regions.insert(at, Region { hva, len, gpa, slot, runtime: false, live: true }).map_err(|_| Error::TableFull("memory regions"))?;
        self.slot_bytes += len;
        Ok(())
    }

    /// The first runtime region ending after `at`, as `(start, end)`.
    fn next_runtime(&self, at: u64) -> Option<(u64, u64)> {
        self.regions.as_slice().iter().find(|r| r.runtime && r.end() > at).map(|r| (r.hva, r.end()))
    }

    // ---- the process's mappings ----------------------------------------------------

    fn map_ptes(&mut self, vm: &VmFd, start: u64, end: u64, perms: Perms) -> Result<()> {
        let mut at = start;
        while at < end {
            let rs = self.regions.as_slice();
            let i = rs.partition_point(|r| r.end() <= at);
            let Some(&r) = rs.get(i).filter(|r| r.hva <= at) else {
                return Err(Error::TableFull("page mapped without a region"));
            };
            let stop = r.end().min(end);
            // Runtime memory is mapped once, when its chunk is made, and never rewritten:
            // other vCPUs use it (page tables, IDT, IST stacks) at any moment.
            if !r.runtime {
                // Split where user memory starts or ends, so no large page spans both.
                let mut s = at;
                while s < stop {
                    let (user, e) = self.user_run(s, stop);
                    let gpa = r.gpa + (s - r.hva);
                    let pt = self.pt;
                    pt.map(self, vm, s, gpa, e - s, Perms { user, ..perms })?;
                    s = e;
                }
            }
            at = stop;
        }
        Ok(())
    }

    /// Whether `at` is user memory, and where that stops being so (before `end`).
    fn user_run(&self, at: u64, end: u64) -> (bool, u64) {
        let us = self.user.as_slice();
        let i = us.partition_point(|&(_, e)| e <= at);
        match us.get(i) {
            Some(&(s, e)) if s <= at => (true, e.min(end)),
            Some(&(s, _)) => (false, s.min(end)),
            None => (false, end),
        }
    }

    /// Whether any of `[start, end)` is user memory.
    pub fn is_user_anywhere(&self, start: u64, end: u64) -> bool {
        let us = self.user.as_slice();
        let i = us.partition_point(|&(_, e)| e <= start);
        us.get(i).is_some_and(|&(s, _)| s < end)
    }

    /// Whether all of `[start, end)` is user memory.
    pub fn is_user(&self, start: u64, end: u64) -> bool {
        start < end && { let (u, e) = self.user_run(start, end); u && e == end }
    }

    /// Declares `[start, end)` user memory (`true`) or ring 0's again (`false`), and
    /// rewrites the U bit of the entries already there. Runtime memory never becomes
    /// user memory. The caller flushes TLBs (a shootdown when taking access away).
    pub fn set_user(&mut self, vm: &VmFd, start: u64, end: u64, user: bool) -> Result<()> {
        let (start, end) = page_range(start, end);
        if start >= end || end > USER_END {
            return Err(Error::InvalidOption { name: "range", why: "empty, or beyond user space" });
        }
        let rs = self.regions.as_slice();
        let i = rs.partition_point(|r| r.end() <= start);
        if rs[i..].iter().take_while(|r| r.hva < end).any(|r| r.runtime) {
            return Err(Error::InvalidOption { name: "range", why: "overlaps the runtime's memory" });
        }
        // New list: everything outside [start, end), plus [start, end) when adding.
        let us = self.user.as_slice();
        let mut out: [(u64, u64); 3] = [(0, 0); 3];
        let mut n = 0;
        let first = us.partition_point(|&(_, e)| e < start);
        let mut last = first;
        while last < us.len() && us[last].0 <= end {
            last += 1;
        }
        let (lo, hi) = if first < last { (us[first].0, us[last - 1].1) } else { (start, start) };
        if user {
            out[0] = (lo.min(start), hi.max(end));
            n = 1;
        } else {
            if lo < start {
                out[n] = (lo, start);
                n += 1;
            }
            if hi > end {
                out[n] = (end, hi);
                n += 1;
            }
        }
        if self.user.len() - (last - first) + n > MAX_USER_RANGES {
            return Err(Error::TableFull("user ranges"));
        }
        for _ in first..last {
            self.user.remove(first);
        }
        for (k, r) in out[..n].iter().enumerate() {
            let _ = self.user.insert(first + k, *r);
        }
        let update = dune_x86::paging::FlagUpdate { set: if user { dune_x86::paging::PTE_U } else { 0 }, clear: if user { 0 } else { dune_x86::paging::PTE_U } };
        // Splitting the large pages at the two ends takes at most a few tables.
        self.reserve_pages(vm, 8)?;
        let root = self.pt.root();
        let mut m = dune_x86::paging::Mapper::new(super::pagetable::Frames::new(self));
        m.protect_range(root, start..end, update).map_err(Error::PageTable)
    }

    /// The host mapped (or changed the protection of) `[start, end)` with `perms`:
    /// registers it and writes the page-table entries.
    pub fn map(&mut self, vm: &VmFd, start: u64, end: u64, perms: Perms) -> Result<()> {
        let (start, end) = page_range(start, end);
        if start >= end || end > USER_END {
            return Ok(());
        }
        if perms.is_none() {
            self.unmap_ptes(start, end);
            return Ok(());
        }
        self.cover(vm, start, end)?;
        self.map_ptes(vm, start, end, perms)
    }

    fn unmap_ptes(&mut self, start: u64, end: u64) {
        let pt = self.pt;
        pt.unmap(self, start, end);
    }

    /// The host unmapped `[start, end)`: clears the page-table entries. The memslots
    /// stay: KVM follows the host address, so a later mapping there reuses them (no
    /// memslot update, no new guest-physical address); unused ones are reclaimed when
    /// the budget or the table runs out (`reclaim`). Runtime memory (page tables, IDT,
    /// vCPU areas) is never unmapped this way, even where the kernel merged it with a
    /// neighbouring mapping: other vCPUs use it.
    pub fn unmap(&mut self, vm: &VmFd, start: u64, end: u64) -> Result<()> {
        let _ = vm;
        let (start, end) = page_range(start, end);
        let end = end.min(USER_END);
        let mut at = start;
        while at < end {
            let (stop, next) = match self.next_runtime(at) {
                Some((rs, re)) if rs < end => (rs.max(at), re),
                _ => (end, end),
            };
            if at < stop {
                self.unmap_ptes(at, stop);
            }
            at = next;
        }
        Ok(())
    }

    /// Makes `[start, end)` match `/proc/self/maps`: for mappings the runtime did not see
    /// being made (another thread, `shmat`, `mremap`) and for lazy faults.
    /// Regions that still lie under a mapping are kept (with their guest-physical
    /// addresses): only the gaps between mappings are unmapped.
    pub fn sync(&mut self, vm: &VmFd, start: u64, end: u64) -> Result<()> {
        let (start, end) = page_range(start, end);
        let mut failed = None;
        let mut at = start;
        procmap::for_each(|v| {
            if v.end <= start {
                return true;
            }
            if v.start >= end {
                return false;
            }
            let (s, e) = (v.start.max(start), v.end.min(end));
            let res = self.unmap(vm, at, s).and_then(|_| self.map(vm, s, e, Perms::of(v)));
            at = e;
            if let Err(err) = res {
                failed = Some(err);
                return false;
            }
            true
        })
        .map_err(Error::ProcMaps)?;
        if let Some(e) = failed {
            return Err(e);
        }
        self.unmap(vm, at, end)
    }

    /// Maps every accessible mapping of the process (at `enter`).
    pub fn map_all(&mut self, vm: &VmFd) -> Result<()> {
        let mut failed = None;
        let mut prev_end = 0;
        procmap::for_each(|v: &Vma| {
            let below = prev_end;
            prev_end = v.end;
            if v.vsyscall || !v.accessible() || v.end > USER_END {
                return true;
            }
            if v.stack {
                // The main stack grows on faults: one memslot for its whole window, so
                // growth only adds page-table entries (best effort: without it, each
                // growth registers its own slot).
                let lo = stack_window_start(v.end, below);
                if lo < v.start {
                    let _ = self.cover(vm, lo, v.start);
                }
            }
            match self.map(vm, v.start, v.end, Perms::of(v)) {
                Ok(()) => true,
                Err(e) => {
                    failed = Some(e);
                    false
                }
            }
        })
        .map_err(Error::ProcMaps)?;
        failed.map_or(Ok(()), Err)
    }

    /// Makes the page table and memslots match `/proc/self/maps` again: recovery when a
    /// mapping changed behind the runtime's back. Only regions no mapping covers lose their entries: guest-only mappings the
    /// application made (`vm::map_pages`) stay.
    pub fn resync_all(&mut self, vm: &VmFd) -> Result<()> {
        self.map_all(vm)?;
        self.reclaim(vm)
    }

    /// Takes user memory away from every gap between the process's mappings: the
    /// kernel unmapped it behind the runtime's back (in a forked child, the ranges
    /// marked `MADV_DONTFORK`), so whatever is mapped there next is not the program's.
    pub fn prune_user(&mut self, vm: &VmFd) -> Result<()> {
        let mut failed = None;
        let mut prev = 0u64;
        let mut gap = |m: &mut Self, s: u64, e: u64| {
            if s < e && m.is_user_anywhere(s, e) {
                if let Err(err) = m.set_user(vm, s, e, false) {
                    failed = Some(err);
                }
            }
        };
        procmap::for_each(|v: &Vma| {
            gap(self, prev, v.start.min(USER_END));
            prev = v.end;
            true
        })
        .map_err(Error::ProcMaps)?;
        gap(self, prev.min(USER_END), USER_END);
        failed.map_or(Ok(()), Err)
    }

    /// Registers every region again in a new VM (a forked child: KVM refuses the parent's).
    pub fn reregister(&mut self, vm: &VmFd) -> Result<()> {
        for r in self.regions.as_slice() {
            Self::set_slot(vm, r.slot, r.gpa, r.hva, r.len)?;
        }
        Ok(())
    }
}

/// Lowest address the main stack (ending at `end`, mapping below ending at `below`)
/// may grow to: RLIMIT_STACK (at most 256 MiB here), above Linux's 256-page guard gap.
fn stack_window_start(end: u64, below: u64) -> u64 {
    let mut lim = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit writes one struct rlimit.
    unsafe { sys::syscall(libc::SYS_getrlimit, libc::RLIMIT_STACK as u64, &mut lim as *mut _ as u64, 0) };
    let limit = lim.rlim_cur.min(256 << 20);
    end.saturating_sub(limit).max(below + 256 * PAGE) & !(PAGE - 1)
}

/// Rounds `[start, end)` out to whole pages.
pub fn page_range(start: u64, end: u64) -> (u64, u64) {
    (start & !(PAGE - 1), end.saturating_add(PAGE - 1) & !(PAGE - 1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gpa_allocation_keeps_large_page_phase_and_stays_below_maxphy() {
        let mut a = GpaAllocator::new(36).unwrap();
        let small = a.alloc(PAGE, 0x7f00_1234_5000).unwrap();
        assert_eq!(small, GPA_BASE);
        let big = a.alloc(4 * HUGE, 0x7f00_0030_0000).unwrap();
        assert_eq!(big % HUGE, 0x0030_0000 % HUGE);
        assert!(big + 4 * HUGE <= 1 << 36);
        // Exhaustion is an error, not a wrap-around.
        assert!(matches!(a.alloc(1 << 36, 0), Err(Error::GuestPhysExhausted(36))));
    }

    #[test]
    fn gpa_free_coalesces() {
        let mut a = GpaAllocator::new(40).unwrap();
        let x = a.alloc(PAGE, 0).unwrap();
        let y = a.alloc(PAGE, 0).unwrap();
        let z = a.alloc(PAGE, 0).unwrap();
        a.free(y, PAGE);
        a.free(x, PAGE);
        a.free(z, PAGE);
        assert_eq!(a.free.as_slice(), &[(GPA_BASE, 1 << 40)]);
    }

    #[test]
    fn maxphy_below_gpa_base_is_refused() {
        assert!(matches!(GpaAllocator::new(32), Err(Error::GuestPhysExhausted(32))));
    }

    #[test]
    fn page_range_rounds_out() {
        assert_eq!(page_range(0x1001, 0x1002), (0x1000, 0x2000));
        assert_eq!(page_range(0x1000, 0x3000), (0x1000, 0x3000));
    }
}
