//! [`Mapper::walk`]: visiting the entries of a range, like libdune's
//! `dune_vm_page_walk`.

use core::ops::{ControlFlow, RangeBounds};

use crate::paging::addr::{canonicalize, Level, PageSize};
use crate::paging::descend::{kind, Kind};
use crate::paging::error::Error;
use crate::paging::mapper::Mapper;
use crate::paging::range::Span;
use crate::paging::table::{FrameSource, PteRef};

/// Which entries [`Mapper::walk`] visits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WalkMode {
    /// Present leaves only.
    Present,
    /// Present leaves, and also non-present slots of every existing PDPT, PD
    /// and PT (reported with the page size of their level). Empty PML4 slots
    /// are skipped: they would cover 512 GiB, which is not a page size.
    IncludeEmpty,
}

impl<F: FrameSource> Mapper<F> {
    /// Calls `visit(va, entry, size)` for each entry under `root` that overlaps
    /// `range` (e.g. `start..end`, `..` for everything), in address order. `va`
    /// is the (canonical) first address the entry covers, which may lie before
    /// the range start for a large page.
    ///
    /// `entry` is an atomic handle: the visitor may read or change the entry,
    /// e.g. `entry.clear_bits(PTE_D)` while scanning for dirty pages; it must not
    /// turn a non-present slot into a table reference. The walk stops early and
    /// returns `Ok(ControlFlow::Break(b))` when the visitor breaks. Builds and
    /// splits nothing.
    pub fn walk<B>(
        &self,
        root: u64,
        range: impl RangeBounds<u64>,
        mode: WalkMode,
        mut visit: impl FnMut(u64, PteRef<'_>, PageSize) -> ControlFlow<B>,
    ) -> Result<ControlFlow<B>, Error> {
        let span = Span::new(&range)?;
        self.walk_table(root, Level::Pml4, 0, span, mode, &mut visit)
    }

    /// Walks the table at `pa` (at `level`, first entry at linear `base`).
    fn walk_table<B>(
        &self,
        pa: u64,
        level: Level,
        base: u64,
        span: Span,
        mode: WalkMode,
        visit: &mut impl FnMut(u64, PteRef<'_>, PageSize) -> ControlFlow<B>,
    ) -> Result<ControlFlow<B>, Error> {
        for i in span.slots(base, level) {
            let lo = base + i as u64 * level.entry_span();
            let slot = self.table(pa)?.slot(i);
            let flow = match (kind(slot.get(), level), level.lower(), level.page_size()) {
                (Kind::Leaf(size), _, _) => visit(canonicalize(lo), slot, size),
                (Kind::Empty, _, Some(size)) if mode == WalkMode::IncludeEmpty => {
                    visit(canonicalize(lo), slot, size)
                }
                (Kind::Empty, _, _) => ControlFlow::Continue(()),
                (Kind::Table(child), Some(lower), _) => {
                    self.walk_table(child, lower, lo, span, mode, visit)?
                }
                (Kind::Table(child), None, _) => return Err(Error::InvalidTable(child)),
            };
            if flow.is_break() {
                return Ok(flow);
            }
        }
        Ok(ControlFlow::Continue(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::paging::entry::{Pte, PTE_D, PTE_P, PTE_W};
    use crate::paging::testing::mapper;
    use std::vec::Vec;

    const HI: u64 = 0xffff_8000_0000_0000;

    fn collect<F: FrameSource>(
        m: &Mapper<F>,
        root: u64,
        range: impl RangeBounds<u64>,
        mode: WalkMode,
    ) -> Vec<(u64, Pte, PageSize)> {
        let mut out = Vec::new();
        let flow = m.walk(root, range, mode, |va, e, size| {
            out.push((va, e.get(), size));
            ControlFlow::<()>::Continue(())
        });
        assert_eq!(flow, Ok(ControlFlow::Continue(())));
        out
    }

    #[test]
    fn visits_present_leaves_in_order() {
        let (mut m, root) = mapper();
        m.map(root, HI, 0x1000, PageSize::Size4K, 0).expect("map");
        m.map(root, 0x20_0000, 0, PageSize::Size2M, 0).expect("map");
        m.map(root, 0x5000, 0x2000, PageSize::Size4K, 0)
            .expect("map");
        let got: Vec<_> = collect(&m, root, .., WalkMode::Present)
            .into_iter()
            .map(|(va, _, size)| (va, size))
            .collect();
        assert_eq!(
            got,
            [
                (0x5000, PageSize::Size4K),
                (0x20_0000, PageSize::Size2M),
                (HI, PageSize::Size4K)
            ]
        );
        // A range inside the large page reports it with its own start.
        let got = collect(&m, root, 0x30_0000..0x30_1000, WalkMode::Present);
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].0, 0x20_0000);
        assert!(collect(&m, root, 0x6000..0x20_0000, WalkMode::Present).is_empty());
        assert_eq!(collect(&m, root, HI.., WalkMode::Present).len(), 1);
    }

    #[test]
    fn clears_dirty_bits() {
        let (mut m, root) = mapper();
        m.map_range(root, 0, 0, 0x8000, PTE_W | PTE_D, PageSize::Size4K)
            .expect("map");
        let mut dirty = 0;
        let flow = m.walk(root, 0x2000..0x6000, WalkMode::Present, |_, e, _| {
            if e.clear_bits(PTE_D).contains(PTE_D) {
                dirty += 1;
            }
            ControlFlow::<()>::Continue(())
        });
        assert_eq!(flow, Ok(ControlFlow::Continue(())));
        assert_eq!(dirty, 4);
        let flags: Vec<_> = collect(&m, root, .., WalkMode::Present)
            .into_iter()
            .map(|(_, e, _)| e.flags(PageSize::Size4K))
            .collect();
        let d = PTE_P | PTE_W | PTE_D;
        let c = PTE_P | PTE_W;
        assert_eq!(flags, [d, d, c, c, c, c, d, d]);
    }

    #[test]
    fn include_empty_visits_slots_of_existing_tables() {
        let (mut m, root) = mapper();
        m.map(root, 0x1000, 0x1000, PageSize::Size4K, 0)
            .expect("map");
        let got = collect(&m, root, 0..0x20_0000, WalkMode::IncludeEmpty);
        assert_eq!(got.len(), 512);
        assert_eq!(got.iter().filter(|(_, e, _)| e.is_present()).count(), 1);
        assert_eq!(got[5], (0x5000, Pte::EMPTY, PageSize::Size4K));
        // Up to 4 GiB: 512 PT slots, 511 empty PD slots, 3 empty PDPT slots.
        let got = collect(&m, root, 0..0x1_0000_0000, WalkMode::IncludeEmpty);
        let count = |s| got.iter().filter(|(_, _, size)| *size == s).count();
        assert_eq!(count(PageSize::Size4K), 512);
        assert_eq!(count(PageSize::Size2M), 511);
        assert_eq!(count(PageSize::Size1G), 3);
        // A slot can be filled during the walk.
        let flow = m.walk(root, 0x2000..0x3000, WalkMode::IncludeEmpty, |_, e, _| {
            e.set(Pte(0x9000 | PTE_P));
            ControlFlow::<()>::Continue(())
        });
        assert!(flow.is_ok());
        assert_eq!(m.translate(root, 0x2000).map(|t| t.pa), Ok(0x9000));
    }

    #[test]
    fn break_stops_the_walk() {
        let (mut m, root) = mapper();
        m.map_range(root, 0, 0, 0x10000, 0, PageSize::Size4K)
            .expect("map");
        let mut seen = 0;
        let flow = m.walk(root, .., WalkMode::Present, |va, _, _| {
            seen += 1;
            if va == 0x3000 {
                ControlFlow::Break(va)
            } else {
                ControlFlow::Continue(())
            }
        });
        assert_eq!(flow, Ok(ControlFlow::Break(0x3000)));
        assert_eq!(seen, 4);
    }

    #[test]
    fn errors() {
        let (m, root) = mapper();
        m.table(root)
            .expect("root")
            .slot(1)
            .set(Pte(0x7000 | PTE_P));
        let flow = m.walk(root, .., WalkMode::Present, |_, _, _| {
            ControlFlow::<()>::Continue(())
        });
        assert_eq!(flow, Err(Error::InvalidTable(0x7000)));
        let (start, end) = (5, 1);
        let flow = m.walk(root, start..end, WalkMode::Present, |_, _, _| {
            ControlFlow::<()>::Continue(())
        });
        assert!(matches!(flow, Err(Error::InvalidRange { .. })));
    }
}
