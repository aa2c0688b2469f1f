//! Internals shared by every mapper operation: classifying entries,
//! descending from the root, allocating, and splitting large pages.

use crate::paging::addr::{index, is_canonical, Level, PageSize};
use crate::paging::entry::{Pte, ADDR_MASK, PTE_PAT_4K, PTE_PAT_HUGE, PTE_PS, TABLE_FLAGS};
use crate::paging::error::Error;
use crate::paging::mapper::Mapper;
use crate::paging::table::{FrameSource, PageTable, PteRef};

/// Where a descent from the root stopped: the slot `index(va, level)` of `table`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Stop {
    pub(crate) table: u64,
    pub(crate) level: Level,
}

/// What an entry at a given level is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    /// P clear.
    Empty,
    /// Maps a page of the given size.
    Leaf(PageSize),
    /// References a lower table at this physical address.
    Table(u64),
}

/// Classifies `pte` found at `level` (PS is reserved in a PML4E and ignored).
pub(crate) fn kind(pte: Pte, level: Level) -> Kind {
    if !pte.is_present() {
        return Kind::Empty;
    }
    match (level, level.page_size()) {
        (Level::Pt, Some(size)) => Kind::Leaf(size),
        (_, Some(size)) if pte.is_huge() => Kind::Leaf(size),
        _ => Kind::Table(pte.addr()),
    }
}

impl<F: FrameSource> Mapper<F> {
    /// The table at `pa`.
    pub(crate) fn table(&self, pa: u64) -> Result<&PageTable, Error> {
        self.frames.table(pa).ok_or(Error::InvalidTable(pa))
    }

    /// The value of the slot for `va` in `table` at `level`.
    pub(crate) fn entry(&self, table: u64, va: u64, level: Level) -> Result<Pte, Error> {
        Ok(self.table(table)?.slot(index(va, level)).get())
    }

    /// Allocates and clears a table.
    pub(crate) fn alloc_table(&mut self) -> Result<u64, Error> {
        let pa = self.frames.alloc_table().ok_or(Error::OutOfTables)?;
        let table = match self.frames.table(pa) {
            Some(table) if pa & !ADDR_MASK == 0 => table,
            _ => {
                self.frames.free_table(pa);
                return Err(Error::InvalidTable(pa));
            }
        };
        table.clear();
        Ok(pa)
    }

    /// Returns a table to the source.
    pub(crate) fn free_table(&mut self, pa: u64) {
        self.frames.free_table(pa);
    }

    /// Descends from `root` towards `target` without building anything. Stops at
    /// `target`, at a large page, or at an empty slot above `target`.
    pub(crate) fn descend(&self, root: u64, va: u64, target: Level) -> Result<Stop, Error> {
        if !is_canonical(va) {
            return Err(Error::NonCanonical(va));
        }
        let mut stop = Stop {
            table: root,
            level: Level::Pml4,
        };
        while stop.level > target {
            let (Kind::Table(next), Some(lower)) = (
                kind(self.entry(stop.table, va, stop.level)?, stop.level),
                stop.level.lower(),
            ) else {
                break;
            };
            stop = Stop {
                table: next,
                level: lower,
            };
        }
        Ok(stop)
    }

    /// Like [`Mapper::descend`] but builds missing tables, so it stops only at
    /// `target` or at a large page above it.
    pub(crate) fn descend_create(
        &mut self,
        root: u64,
        va: u64,
        target: Level,
    ) -> Result<Stop, Error> {
        let mut stop = self.descend(root, va, target)?;
        while stop.level > target {
            let slot_index = index(va, stop.level);
            let here = self.table(stop.table)?.slot(slot_index).get();
            if matches!(kind(here, stop.level), Kind::Leaf(_)) {
                break;
            }
            let Some(lower) = stop.level.lower() else {
                break;
            };
            let new = self.alloc_table()?;
            match self.table(stop.table) {
                Ok(t) => t.slot(slot_index).set(Pte(new | TABLE_FLAGS)),
                Err(e) => {
                    self.free_table(new);
                    return Err(e);
                }
            }
            stop = Stop {
                table: new,
                level: lower,
            };
        }
        Ok(stop)
    }

    /// The present leaf that maps `va`, if any.
    pub(crate) fn leaf(&self, root: u64, va: u64) -> Result<Option<(PteRef<'_>, PageSize)>, Error> {
        let stop = self.descend(root, va, Level::Pt)?;
        let slot = self.table(stop.table)?.slot(index(va, stop.level));
        match kind(slot.get(), stop.level) {
            Kind::Leaf(size) => Ok(Some((slot, size))),
            _ => Ok(None),
        }
    }

    /// Replaces the large leaf in slot `i` of `table` (at `level`) by a table
    /// of 512 leaves of the next smaller size covering the same frames with
    /// the same flags, including A and D.
    pub(crate) fn split_at(&mut self, table: u64, level: Level, i: usize) -> Result<(), Error> {
        let (Some(size), Some(lower)) = (level.page_size(), level.lower()) else {
            return Ok(());
        };
        let Some(child_size) = lower.page_size() else {
            return Ok(());
        };
        let new = self.alloc_table()?;
        let result = self.fill_split(table, level, i, new, size, child_size);
        if !matches!(result, Ok(true)) {
            self.free_table(new);
        }
        result.map(|_| ())
    }

    /// Fills `new` from the large leaf in slot `i` and swings the slot to it.
    /// Retries if the processor updated A/D meanwhile. `Ok(false)`: the slot no
    /// longer holds a large leaf and `new` was not installed.
    fn fill_split(
        &self,
        table: u64,
        level: Level,
        i: usize,
        new: u64,
        size: PageSize,
        child_size: PageSize,
    ) -> Result<bool, Error> {
        let slot = self.table(table)?.slot(i);
        let children = self.table(new)?;
        let mut old = slot.get();
        loop {
            if kind(old, level) != Kind::Leaf(size) {
                return Ok(false);
            }
            let frame = old.frame(size);
            let pat = old.0 & PTE_PAT_HUGE != 0;
            // Bits 11:0 and 63:52 carry over; PS and PAT move for 4 KiB leaves
            // (SDM Vol. 3A §4.5: PAT is bit 12 of a large leaf, bit 7 of a PTE).
            let mut flags = old.0 & !ADDR_MASK;
            if child_size == PageSize::Size4K {
                flags &= !PTE_PS;
                if pat {
                    flags |= PTE_PAT_4K;
                }
            } else if pat {
                flags |= PTE_PAT_HUGE;
            }
            for (j, child) in children.entries().enumerate() {
                child.set(Pte((frame + j as u64 * child_size.bytes()) | flags));
            }
            match slot.compare_exchange(old, Pte(new | TABLE_FLAGS)) {
                Ok(_) => return Ok(true),
                Err(now) => old = now,
            }
        }
    }
}
