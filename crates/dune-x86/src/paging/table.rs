//! Paging-structure memory: [`PageTable`], atomic entry handles ([`PteRef`])
//! and the [`FrameSource`] through which the mapper reaches tables by physical
//! address.
//!
//! # Why atomics
//!
//! Page tables are shared with agents Rust cannot see: the processor's page
//! walker sets accessed and dirty bits with locked read-modify-writes at any
//! time (SDM Vol. 3A §4.8), other vCPUs may walk the same tables, and on the
//! host the memory is guest memory that the guest also writes. A `&mut [u64;
//! 512]` would promise exclusive access that nobody can give, so a table is an
//! array of [`AtomicU64`] reached through a shared reference: any number of
//! references may coexist, every access is a single 8-byte atomic access
//! (naturally aligned 8-byte accesses are what the walker uses, SDM Vol. 3A
//! §8.1.1, "Guaranteed Atomic Operations"), and flag edits use `fetch_and` /
//! `fetch_or` / compare-exchange so a concurrent A/D update is never lost. On
//! x86-64 these compile to plain `mov`s and `lock`-prefixed instructions.

use core::sync::atomic::{AtomicU64, Ordering};

use crate::paging::addr::ENTRIES_PER_TABLE;
use crate::paging::entry::Pte;

/// One 4 KiB paging structure (PML4, PDPT, PD or PT).
#[repr(C, align(4096))]
pub struct PageTable {
    entries: [AtomicU64; ENTRIES_PER_TABLE],
}

const _: () = assert!(core::mem::size_of::<PageTable>() == 4096);
const _: () = assert!(core::mem::align_of::<PageTable>() == 4096);

impl PageTable {
    /// A table of non-present entries.
    pub const fn new() -> Self {
        PageTable {
            entries: [const { AtomicU64::new(0) }; ENTRIES_PER_TABLE],
        }
    }

    /// The entry at `index`, or `None` if `index >= 512`.
    pub fn entry(&self, index: usize) -> Option<PteRef<'_>> {
        self.entries.get(index).map(PteRef)
    }

    /// All 512 entries in index order.
    pub fn entries(&self) -> impl ExactSizeIterator<Item = PteRef<'_>> {
        self.entries.iter().map(PteRef)
    }

    /// Sets every entry to [`Pte::EMPTY`].
    pub fn clear(&self) {
        for e in &self.entries {
            e.store(0, Ordering::Relaxed);
        }
    }

    /// The entry at an index the caller derived from an address (`0..512`).
    pub(crate) fn slot(&self, index: usize) -> PteRef<'_> {
        PteRef(&self.entries[index % ENTRIES_PER_TABLE])
    }
}

impl Default for PageTable {
    fn default() -> Self {
        Self::new()
    }
}

impl core::fmt::Debug for PageTable {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let present = self.entries().filter(|e| e.get().is_present()).count();
        write!(f, "PageTable {{ {present} present entries }}")
    }
}

/// A handle to one entry inside a [`PageTable`].
///
/// Reads and writes are single atomic accesses; read-modify-write helpers are
/// atomic with respect to the processor setting accessed and dirty bits.
/// Changing a live entry does not invalidate TLBs.
#[derive(Clone, Copy)]
pub struct PteRef<'a>(&'a AtomicU64);

impl PteRef<'_> {
    /// The entry's address, for interfaces that hand out entry pointers (libdune's
    /// `dune_vm_lookup`). Writes through it must be single aligned 8-byte stores.
    pub fn as_ptr(self) -> *mut u64 {
        self.0.as_ptr()
    }

    /// The current value.
    pub fn get(self) -> Pte {
        Pte(self.0.load(Ordering::Acquire))
    }

    /// Stores `pte`.
    pub fn set(self, pte: Pte) {
        self.0.store(pte.0, Ordering::Release);
    }

    /// Stores `pte` and returns the previous value.
    pub fn swap(self, pte: Pte) -> Pte {
        Pte(self.0.swap(pte.0, Ordering::AcqRel))
    }

    /// Atomically sets `bits`; returns the previous value.
    pub fn set_bits(self, bits: u64) -> Pte {
        Pte(self.0.fetch_or(bits, Ordering::AcqRel))
    }

    /// Atomically clears `bits` (e.g. [`crate::paging::PTE_D`] when scanning
    /// for dirty pages); returns the previous value.
    pub fn clear_bits(self, bits: u64) -> Pte {
        Pte(self.0.fetch_and(!bits, Ordering::AcqRel))
    }

    /// Stores `new` if the entry still holds `current`; returns the value found.
    pub fn compare_exchange(self, current: Pte, new: Pte) -> Result<Pte, Pte> {
        self.0
            .compare_exchange(current.0, new.0, Ordering::AcqRel, Ordering::Acquire)
            .map(Pte)
            .map_err(Pte)
    }

    /// Atomically replaces the value `v` by `f(v)`, retrying if the entry changed
    /// meanwhile; returns the previous value.
    pub fn update(self, mut f: impl FnMut(Pte) -> Pte) -> Pte {
        let mut old = self.get();
        loop {
            match self.compare_exchange(old, f(old)) {
                Ok(prev) => return prev,
                Err(now) => old = now,
            }
        }
    }
}

impl core::fmt::Debug for PteRef<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "PteRef({:#x})", self.get().0)
    }
}

/// Access to the memory that holds page tables, by physical address.
///
/// The host implementation translates guest-physical addresses to host
/// pointers into guest memory; the guest implementation adds the fixed offset
/// at which ring 0 maps physical memory. Either way the implementation does the
/// one unsafe step, turning an address into a `&PageTable`, and must uphold
/// what that reference promises:
///
/// - the 4 KiB at the pointer are valid, 4096-byte aligned and stay mapped for
///   as long as the returned borrow of `self` lasts;
/// - nothing accesses that memory through a `&mut` or through non-atomic Rust
///   references while the borrow lasts (raw-pointer, volatile, atomic and
///   hardware accesses are fine: everything here is atomic).
///
/// Given that, the trait is safe to implement and to call: the mapper holds no
/// pointers, only `&PageTable`s, so a buggy implementation (say, two addresses
/// mapping to the same memory) corrupts page tables but cannot cause undefined
/// behaviour in the mapper.
///
/// Code that runs in a trap path (a ring-0 page-fault handler) must supply an
/// implementation whose methods neither allocate from a heap nor take a lock the
/// interrupted code may hold.
///
/// A guest-side implementation over a direct map of physical memory:
///
/// ```no_run
/// use dune_x86::paging::{FrameSource, PageTable};
///
/// /// Physical memory `0..limit` is mapped at virtual `offset`; tables come
/// /// from a bump region `next..end`.
/// struct DirectMap {
///     offset: u64,
///     limit: u64,
///     next: u64,
///     end: u64,
/// }
///
/// impl FrameSource for DirectMap {
///     fn alloc_table(&mut self) -> Option<u64> {
///         let pa = self.next;
///         (pa < self.end).then(|| {
///             self.next += 4096;
///             pa
///         })
///     }
///
///     fn free_table(&mut self, _pa: u64) {
///         // A real implementation returns the frame to its allocator.
///     }
///
///     fn table(&self, pa: u64) -> Option<&PageTable> {
///         if pa % 4096 != 0 || pa >= self.limit {
///             return None;
///         }
///         let ptr = (self.offset + pa) as *const PageTable;
///         // SAFETY: `offset..offset + limit` maps all of physical memory, is
///         // 4 KiB-aligned and stays mapped while `self` lives; Rust code
///         // touches page-table frames only through `PageTable`'s atomics.
///         Some(unsafe { &*ptr })
///     }
/// }
/// ```
pub trait FrameSource {
    /// Allocates a 4 KiB frame for a paging structure and returns its physical
    /// address (4 KiB-aligned), or `None` when out of memory. The contents need
    /// not be zero: the mapper clears new tables itself.
    fn alloc_table(&mut self) -> Option<u64>;

    /// Returns a frame obtained from [`FrameSource::alloc_table`]. The mapper
    /// calls this only for tables it no longer references.
    fn free_table(&mut self, pa: u64);

    /// The table at physical address `pa`, or `None` if `pa` is not table memory
    /// this source can reach (for example a corrupt entry pointing outside guest
    /// memory). The mapper reports `None` as
    /// [`Error::InvalidTable`](crate::paging::Error::InvalidTable).
    fn table(&self, pa: u64) -> Option<&PageTable>;
}

impl<T: FrameSource + ?Sized> FrameSource for &mut T {
    fn alloc_table(&mut self) -> Option<u64> {
        (**self).alloc_table()
    }

    fn free_table(&mut self, pa: u64) {
        (**self).free_table(pa)
    }

    fn table(&self, pa: u64) -> Option<&PageTable> {
        (**self).table(pa)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::paging::entry::{PTE_A, PTE_D, PTE_P, PTE_W};

    #[test]
    fn entry_handles() {
        let t = PageTable::new();
        assert!(t.entry(512).is_none());
        let e = t.entry(3).expect("index 3 exists");
        e.set(Pte(0x1000 | PTE_P | PTE_W | PTE_A | PTE_D));
        assert_eq!(e.clear_bits(PTE_D).0, 0x1000 | 0x63);
        assert_eq!(e.get().0, 0x1000 | 0x23);
        assert_eq!(e.set_bits(PTE_D).0, 0x1023);
        assert_eq!(e.swap(Pte::EMPTY).0, 0x1063);
        assert_eq!(e.compare_exchange(Pte(1), Pte(2)), Err(Pte::EMPTY));
        assert_eq!(e.compare_exchange(Pte::EMPTY, Pte(2)), Ok(Pte::EMPTY));
        assert_eq!(e.update(|p| Pte(p.0 + 1)), Pte(2));
        assert_eq!(t.entries().filter(|e| e.get().0 != 0).count(), 1);
        t.clear();
        assert_eq!(t.slot(3).get(), Pte::EMPTY);
    }
}
