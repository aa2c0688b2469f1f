//! 4-level x86-64 paging (SDM Vol. 3A §4.5, "4-Level Paging and 5-Level Paging").
//!
//! - [`addr`]: page sizes, table levels, index extraction, canonical addresses.
//! - [`entry`]: entry bits and the [`Pte`] value type.
//! - [`table`]: the in-memory [`PageTable`], atomic entry handles ([`PteRef`]) and
//!   the [`FrameSource`] trait through which the mapper reaches table memory.
//! - [`Mapper`]: map, unmap, protect, translate, lookup, range operations, walks,
//!   cloning and freeing of a table tree, like libdune's `vm.c`.
//!
//! The mapper never allocates from the heap and never panics on bad input: a
//! corrupt entry that points to memory the [`FrameSource`] does not know about
//! is reported as [`Error::InvalidTable`]. It does not flush TLBs; after
//! changing a live address space the caller invalidates (SDM Vol. 3A §4.10.4,
//! "Invalidation of TLBs and Paging-Structure Caches").
//!
//! ```
//! use dune_x86::paging::{Mapper, PageSize, PTE_W, PTE_NX};
//! # use dune_x86::paging::{FrameSource, PageTable};
//! # struct Frames(std::vec::Vec<Box<PageTable>>);
//! # impl FrameSource for Frames {
//! #     fn alloc_table(&mut self) -> Option<u64> {
//! #         self.0.push(Box::new(PageTable::new()));
//! #         Some(self.0.len() as u64 * 4096)
//! #     }
//! #     fn free_table(&mut self, _pa: u64) {}
//! #     fn table(&self, pa: u64) -> Option<&PageTable> {
//! #         self.0.get((pa / 4096).checked_sub(1)? as usize).map(|t| &**t)
//! #     }
//! # }
//! let mut mapper = Mapper::new(Frames(Vec::new()));
//! let root = mapper.new_root()?;
//! mapper.map(root, 0x40_0000, 0x20_0000, PageSize::Size2M, PTE_W | PTE_NX)?;
//! let t = mapper.translate(root, 0x41_2345)?;
//! assert_eq!(t.pa, 0x21_2345);
//! assert_eq!(t.size, PageSize::Size2M);
//! # Ok::<(), dune_x86::paging::Error>(())
//! ```

pub mod addr;
mod descend;
pub mod entry;
mod error;
mod lifecycle;
mod mapper;
mod range;
pub mod table;
mod walk;

#[cfg(test)]
mod testing;

pub use addr::{
    canonicalize, index, is_canonical, pd_index, pdpt_index, pml4_index, pt_index, Level, PageSize,
    ENTRIES_PER_TABLE, PAGE_SIZE,
};
pub use entry::{
    Pte, ADDR_MASK, LEAF_FLAGS_MASK, PTE_A, PTE_AVL_MASK, PTE_D, PTE_G, PTE_NX, PTE_P, PTE_PAT_4K,
    PTE_PAT_HUGE, PTE_PCD, PTE_PK_MASK, PTE_PS, PTE_PWT, PTE_U, PTE_W, TABLE_FLAGS,
};
pub use error::Error;
pub use mapper::{Create, FlagUpdate, Mapper, Translation};
pub use table::{FrameSource, PageTable, PteRef};
pub use walk::WalkMode;
