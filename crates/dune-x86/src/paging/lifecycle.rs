//! Whole-tree operations: [`Mapper::clone_table`], [`Mapper::free_tables`],
//! and the subtree helpers [`Mapper::map`] uses to replace an empty table by a
//! large page.

use crate::paging::addr::{Level, ENTRIES_PER_TABLE};
use crate::paging::descend::{kind, Kind};
use crate::paging::entry::{Pte, ADDR_MASK};
use crate::paging::error::Error;
use crate::paging::mapper::Mapper;
use crate::paging::table::FrameSource;

impl<F: FrameSource> Mapper<F> {
    /// Deep-copies the table tree at `root` and returns the new root: every
    /// table is duplicated, leaves point to the same frames with the same
    /// flags, and changes to either tree's tables do not affect the other.
    /// Non-present entries are copied verbatim. On error every table of the
    /// partial copy is freed.
    pub fn clone_table(&mut self, root: u64) -> Result<u64, Error> {
        self.clone_subtree(root, Level::Pml4)
    }

    /// Frees the root and every table under it, but not the leaf frames. Keeps
    /// going past tables the source cannot reach and then reports the first
    /// one as [`Error::InvalidTable`].
    pub fn free_tables(&mut self, root: u64) -> Result<(), Error> {
        self.free_subtree(root, Level::Pml4)
    }

    /// Copies the table at `src` (at `level`) and everything under it.
    fn clone_subtree(&mut self, src: u64, level: Level) -> Result<u64, Error> {
        // Reach the source before allocating, so a bad `src` costs nothing.
        self.table(src)?;
        let dst = self.alloc_table()?;
        match self.fill_clone(src, dst, level) {
            Ok(()) => Ok(dst),
            Err(e) => {
                // `dst` only references fully built copies, so this frees all of them.
                let _ = self.free_subtree(dst, level);
                Err(e)
            }
        }
    }

    /// Fills `dst` with copies of the entries of `src`.
    fn fill_clone(&mut self, src: u64, dst: u64, level: Level) -> Result<(), Error> {
        for i in 0..ENTRIES_PER_TABLE {
            let pte = self.table(src)?.slot(i).get();
            let copy = match (kind(pte, level), level.lower()) {
                (Kind::Table(child), Some(lower)) => {
                    let new = self.clone_subtree(child, lower)?;
                    Pte(new | (pte.0 & !ADDR_MASK))
                }
                _ => pte,
            };
            self.table(dst)?.slot(i).set(copy);
        }
        Ok(())
    }

    /// Frees the table at `pa` (at `level`) and every table under it.
    pub(crate) fn free_subtree(&mut self, pa: u64, level: Level) -> Result<(), Error> {
        self.table(pa)?;
        let mut first_error = None;
        if let Some(lower) = level.lower() {
            for i in 0..ENTRIES_PER_TABLE {
                if let Kind::Table(child) = kind(self.table(pa)?.slot(i).get(), level) {
                    if let Err(e) = self.free_subtree(child, lower) {
                        first_error.get_or_insert(e);
                    }
                }
            }
        }
        self.free_table(pa);
        first_error.map_or(Ok(()), Err)
    }

    /// Whether any present leaf lies under the table at `pa` (at `level`).
    pub(crate) fn has_leaves(&self, pa: u64, level: Level) -> Result<bool, Error> {
        for i in 0..ENTRIES_PER_TABLE {
            let pte = self.table(pa)?.slot(i).get();
            match (kind(pte, level), level.lower()) {
                (Kind::Empty, _) => {}
                (Kind::Leaf(_), _) => return Ok(true),
                (Kind::Table(child), Some(lower)) => {
                    if self.has_leaves(child, lower)? {
                        return Ok(true);
                    }
                }
                (Kind::Table(child), None) => return Err(Error::InvalidTable(child)),
            }
        }
        Ok(false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::paging::addr::PageSize;
    use crate::paging::entry::{PTE_P, PTE_W};
    use crate::paging::testing::{mapper, TestFrames};

    #[test]
    fn clone_is_independent() {
        let (mut m, root) = mapper();
        m.map(root, 0x1000, 0xa000, PageSize::Size4K, PTE_W)
            .expect("map");
        m.map(root, 0x4000_0000, 0x4000_0000, PageSize::Size1G, 0)
            .expect("map");
        let live = m.frames().live();
        let copy = m.clone_table(root).expect("clone");
        assert_eq!(m.frames().live(), 2 * live);
        for va in [0x1000, 0x4123_4567] {
            assert_eq!(m.translate(root, va), m.translate(copy, va), "same frames");
        }
        // Changes to the copy's tables stay in the copy, and vice versa.
        m.map(copy, 0x2000, 0xb000, PageSize::Size4K, 0)
            .expect("map");
        m.protect(copy, 0x1000, crate::paging::FlagUpdate::clear(PTE_W))
            .expect("protect");
        assert_eq!(m.translate(root, 0x2000), Err(Error::NotMapped(0x2000)));
        assert_eq!(
            m.translate(root, 0x1000).map(|t| t.flags),
            Ok(PTE_P | PTE_W)
        );
        m.unmap(root, 0x4000_0000).expect("unmap");
        assert!(m.translate(copy, 0x4000_0000).is_ok());
    }

    #[test]
    fn free_tables_returns_every_table() {
        let (mut m, root) = mapper();
        m.map_range(root, 0x1000, 0x1000, 0x60_0000, 0, PageSize::Size2M)
            .expect("map");
        m.map(root, 0xffff_8000_0000_0000, 0, PageSize::Size1G, 0)
            .expect("map");
        m.map(root, 0x7fff_ffff_f000, 0, PageSize::Size4K, 0)
            .expect("map");
        let copy = m.clone_table(root).expect("clone");
        assert_eq!(m.free_tables(root), Ok(()));
        assert!(m.translate(copy, 0x1000).is_ok(), "copy survives");
        assert_eq!(m.free_tables(copy), Ok(()));
        let frames = m.into_inner();
        assert_eq!(frames.live(), 0);
        assert_eq!(frames.allocs, frames.frees);
    }

    #[test]
    fn clone_out_of_tables_leaks_nothing() {
        let (mut m, root) = mapper();
        m.map(root, 0x1000, 0, PageSize::Size4K, 0).expect("map");
        m.map(root, 0x80_0000_0000, 0, PageSize::Size4K, 0)
            .expect("map");
        let live = m.frames().live();
        assert_eq!(live, 7);
        for extra in 0..live {
            m.frames_mut().limit = Some(m.frames().allocs + extra);
            assert_eq!(m.clone_table(root), Err(Error::OutOfTables));
            assert_eq!(m.frames().live(), live, "limit {extra}");
        }
        m.frames_mut().limit = None;
        assert!(m.clone_table(root).is_ok());
    }

    #[test]
    fn free_tables_skips_unreachable_tables() {
        let mut m = Mapper::new(TestFrames::default());
        let root = m.new_root().expect("root");
        m.map(root, 0x1000, 0, PageSize::Size4K, 0).expect("map");
        m.table(root)
            .expect("root")
            .slot(3)
            .set(Pte(0x5000 | PTE_P));
        assert_eq!(m.free_tables(root), Err(Error::InvalidTable(0x5000)));
        assert_eq!(m.frames().live(), 0);
    }
}
