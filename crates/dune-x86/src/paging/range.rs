//! Range operations: [`Mapper::map_range`], [`Mapper::unmap_range`],
//! [`Mapper::protect_range`], and the conversion of address ranges to the
//! contiguous 48-bit index space.

use core::ops::{Bound, RangeBounds};

use crate::paging::addr::{canonicalize, is_canonical, linear, Level, PageSize, LINEAR_SPAN};
use crate::paging::descend::{kind, Kind};
use crate::paging::entry::{Pte, ADDR_MASK};
use crate::paging::error::Error;
use crate::paging::mapper::{check_flags, FlagUpdate, Mapper};
use crate::paging::table::{FrameSource, PteRef};

/// A range of the 48-bit index space (`lo..hi`, `hi <= 2^48`), in which the
/// upper canonical half directly follows the lower one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Span {
    pub(crate) lo: u64,
    pub(crate) hi: u64,
}

impl Span {
    /// Converts canonical range bounds. An exclusive end may be one past a
    /// canonical address (`..0x8000_0000_0000` ends the lower half); `..`
    /// covers both halves.
    pub(crate) fn new(range: &impl RangeBounds<u64>) -> Result<Span, Error> {
        let start = match range.start_bound() {
            Bound::Included(&s) => Some(s),
            Bound::Excluded(&s) => s.checked_add(1),
            Bound::Unbounded => Some(0),
        };
        let (end, hi) = match range.end_bound() {
            Bound::Included(&e) => (e.wrapping_add(1), is_canonical(e).then(|| linear(e) + 1)),
            Bound::Excluded(&e) => (e, exclusive_end(e)),
            Bound::Unbounded => (0, Some(LINEAR_SPAN)),
        };
        let invalid = Error::InvalidRange {
            start: start.unwrap_or(u64::MAX),
            end,
        };
        match (start, hi) {
            (Some(start), Some(hi)) if is_canonical(start) && linear(start) <= hi => Ok(Span {
                lo: linear(start),
                hi,
            }),
            _ => Err(invalid),
        }
    }

    /// Checks that both ends are 4 KiB-aligned.
    pub(crate) fn check_aligned(self) -> Result<Span, Error> {
        for addr in [self.lo, self.hi] {
            if !PageSize::Size4K.is_aligned(addr) {
                return Err(Error::Misaligned {
                    addr: canonicalize(addr),
                    align: PageSize::Size4K.bytes(),
                });
            }
        }
        Ok(self)
    }

    /// Indices of the entries of a table at `level`, whose first entry starts
    /// at `base`, that overlap this span.
    pub(crate) fn slots(self, base: u64, level: Level) -> core::ops::Range<usize> {
        let step = level.entry_span();
        let top = base + 512 * step;
        let (lo, hi) = (self.lo.max(base), self.hi.min(top));
        if lo >= hi {
            return 0..0;
        }
        ((lo - base) / step) as usize..((hi - base).div_ceil(step)) as usize
    }

    /// Whether `lo..lo + len` lies inside this span.
    pub(crate) fn covers(self, lo: u64, len: u64) -> bool {
        self.lo <= lo && lo + len <= self.hi
    }
}

/// The linear position of an exclusive end `e`: `e` itself if canonical, or one
/// past the canonical address `e - 1` (the end of the lower half).
fn exclusive_end(e: u64) -> Option<u64> {
    if is_canonical(e) {
        Some(linear(e))
    } else {
        let last = e.checked_sub(1)?;
        is_canonical(last).then(|| linear(last) + 1)
    }
}

/// An edit applied to every present leaf of a range; leaves only partly in
/// the range are split first if the edit would change them.
trait LeafEdit {
    /// Whether applying the edit to `pte` changes it.
    fn changes(&self, pte: Pte) -> bool;
    /// Applies the edit to the leaf at `va`.
    fn apply(&mut self, va: u64, slot: PteRef<'_>, size: PageSize);
}

/// Clears leaves, reporting each old entry.
struct Unmap<F>(F);

impl<F: FnMut(u64, Pte, PageSize)> LeafEdit for Unmap<F> {
    fn changes(&self, _: Pte) -> bool {
        true
    }

    fn apply(&mut self, va: u64, slot: PteRef<'_>, size: PageSize) {
        (self.0)(va, slot.swap(Pte::EMPTY), size);
    }
}

/// Applies a [`FlagUpdate`].
struct Protect(FlagUpdate);

impl LeafEdit for Protect {
    fn changes(&self, pte: Pte) -> bool {
        self.0.apply(pte) != pte
    }

    fn apply(&mut self, _: u64, slot: PteRef<'_>, _: PageSize) {
        slot.update(|old| self.0.apply(old));
    }
}

impl<F: FrameSource> Mapper<F> {
    /// Maps `len` bytes at `va` to `pa` with `flags`, using the largest page
    /// size up to `max_size` for which the current `va` and `pa` are both
    /// aligned and the rest of the range covers the whole page.
    ///
    /// `va`, `pa` and `len` must be 4 KiB-aligned and the range must not cross
    /// the non-canonical hole. Each page is mapped as by [`Mapper::map`]: a
    /// same-size leaf is replaced, a different-size mapping is a
    /// [`Error::SizeConflict`] (call [`Mapper::unmap_range`] first to replace
    /// mappings). On error, a prefix of the range may be mapped.
    pub fn map_range(
        &mut self,
        root: u64,
        va: u64,
        pa: u64,
        len: u64,
        flags: u64,
        max_size: PageSize,
    ) -> Result<(), Error> {
        check_flags(flags)?;
        if !is_canonical(va) {
            return Err(Error::NonCanonical(va));
        }
        for addr in [va, pa, len] {
            if !PageSize::Size4K.is_aligned(addr) {
                return Err(Error::Misaligned {
                    addr,
                    align: PageSize::Size4K.bytes(),
                });
            }
        }
        if len == 0 {
            return Ok(());
        }
        let invalid = Error::InvalidRange {
            start: va,
            end: va.wrapping_add(len),
        };
        let last_va = va.checked_add(len - 1).ok_or(invalid)?;
        if !is_canonical(last_va) || linear(last_va) - linear(va) != len - 1 {
            return Err(invalid);
        }
        let last_pa = pa.checked_add(len - 1).ok_or(Error::PhysAddrTooLarge(pa))?;
        if last_pa & !(ADDR_MASK | PageSize::Size4K.offset_mask()) != 0 {
            return Err(Error::PhysAddrTooLarge(last_pa));
        }
        let mut done = 0;
        while done < len {
            let (v, p, rest) = (va + done, pa + done, len - done);
            let size = [PageSize::Size1G, PageSize::Size2M, PageSize::Size4K]
                .into_iter()
                .find(|&s| s <= max_size && s.is_aligned(v) && s.is_aligned(p) && rest >= s.bytes())
                .unwrap_or(PageSize::Size4K);
            self.map(root, v, p, size, flags)?;
            done += size.bytes();
        }
        Ok(())
    }

    /// Unmaps every page in `range` (4 KiB-aligned bounds, e.g. `start..end`),
    /// splitting large pages that are only partly inside. Holes are skipped;
    /// tables are not freed.
    pub fn unmap_range(&mut self, root: u64, range: impl RangeBounds<u64>) -> Result<(), Error> {
        self.unmap_range_with(root, range, |_, _, _| {})
    }

    /// [`Mapper::unmap_range`], calling `on_unmap(va, old_entry, size)` for every
    /// leaf removed (after splits, so sizes are those of the removed pieces) —
    /// for example to release the frames. On error (out of tables for a split),
    /// the leaves already reported stay unmapped.
    pub fn unmap_range_with(
        &mut self,
        root: u64,
        range: impl RangeBounds<u64>,
        on_unmap: impl FnMut(u64, Pte, PageSize),
    ) -> Result<(), Error> {
        let span = Span::new(&range)?.check_aligned()?;
        self.edit_leaves(root, Level::Pml4, 0, span, &mut Unmap(on_unmap))
    }

    /// Applies `update` to every present leaf in `range` (4 KiB-aligned bounds),
    /// splitting a large page that is only partly inside (the part outside
    /// keeps its mapping and flags). Holes are skipped. On error (out of tables
    /// for a split), a prefix of the range may be updated.
    pub fn protect_range(
        &mut self,
        root: u64,
        range: impl RangeBounds<u64>,
        update: FlagUpdate,
    ) -> Result<(), Error> {
        let update = update.validate()?;
        let span = Span::new(&range)?.check_aligned()?;
        self.edit_leaves(root, Level::Pml4, 0, span, &mut Protect(update))
    }

    /// Applies `edit` to the leaves under the table at `pa` (at `level`, first
    /// entry at linear address `base`) that lie in `span`.
    fn edit_leaves(
        &mut self,
        pa: u64,
        level: Level,
        base: u64,
        span: Span,
        edit: &mut impl LeafEdit,
    ) -> Result<(), Error> {
        for i in span.slots(base, level) {
            let lo = base + i as u64 * level.entry_span();
            loop {
                let slot = self.table(pa)?.slot(i);
                let pte = slot.get();
                match (kind(pte, level), level.lower()) {
                    (Kind::Empty, _) => {}
                    (Kind::Leaf(size), _) if span.covers(lo, size.bytes()) => {
                        edit.apply(canonicalize(lo), slot, size);
                    }
                    (Kind::Leaf(_), _) if !edit.changes(pte) => {}
                    (Kind::Leaf(_), _) => {
                        self.split_at(pa, level, i)?;
                        continue;
                    }
                    (Kind::Table(child), Some(lower)) => {
                        self.edit_leaves(child, lower, lo, span, edit)?;
                    }
                    (Kind::Table(child), None) => return Err(Error::InvalidTable(child)),
                }
                break;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::paging::entry::{PTE_A, PTE_NX, PTE_P, PTE_PS, PTE_W};
    use crate::paging::testing::{mapper, TestFrames};
    use std::vec::Vec;

    const MB2: u64 = 0x20_0000;
    const GB1: u64 = 0x4000_0000;

    /// `(va, size)` of every present leaf.
    fn leaves<F: FrameSource>(m: &Mapper<F>, root: u64) -> Vec<(u64, PageSize)> {
        let mut out = Vec::new();
        let flow = m.walk(root, .., crate::paging::WalkMode::Present, |va, _, size| {
            out.push((va, size));
            core::ops::ControlFlow::<()>::Continue(())
        });
        assert_eq!(flow, Ok(core::ops::ControlFlow::Continue(())));
        out
    }

    #[test]
    fn map_range_uses_large_pages_only_when_aligned() {
        let (mut m, root) = mapper();
        // va and pa equally aligned: 4K head up to 2M, one 2M page, 4K tail.
        m.map_range(
            root,
            MB2 - 0x2000,
            0x80_0000 - 0x2000,
            MB2 + 0x3000,
            PTE_W,
            PageSize::Size2M,
        )
        .expect("map_range");
        let got = leaves(&m, root);
        assert_eq!(got.len(), 2 + 1 + 1);
        assert_eq!(got[2], (MB2, PageSize::Size2M));
        assert_eq!(
            m.translate(root, 2 * MB2 + 0x10).map(|t| t.pa),
            Ok(0xa0_0010)
        );

        // va and pa aligned differently: 4K pages only.
        let (mut m, root) = mapper();
        m.map_range(root, MB2, 0x1000, 2 * MB2, 0, PageSize::Size1G)
            .expect("map_range");
        assert!(leaves(&m, root).iter().all(|&(_, s)| s == PageSize::Size4K));
        assert_eq!(leaves(&m, root).len(), 1024);

        // 1 GiB only when allowed.
        let (mut m, root) = mapper();
        m.map_range(root, GB1, GB1, GB1 + MB2, 0, PageSize::Size1G)
            .expect("map_range");
        assert_eq!(
            leaves(&m, root),
            [(GB1, PageSize::Size1G), (2 * GB1, PageSize::Size2M)]
        );
        let (mut m, root) = mapper();
        m.map_range(root, GB1, GB1, GB1, 0, PageSize::Size2M)
            .expect("map_range");
        assert_eq!(leaves(&m, root).len(), 512);
    }

    #[test]
    fn map_range_checks() {
        let (mut m, root) = mapper();
        assert_eq!(m.map_range(root, 0, 0, 0, 0, PageSize::Size4K), Ok(()));
        assert!(matches!(
            m.map_range(root, 0x1000, 0, 0x800, 0, PageSize::Size4K),
            Err(Error::Misaligned { addr: 0x800, .. })
        ));
        // Crosses from the lower half into the hole.
        let top = 0x7fff_ffff_f000;
        assert!(matches!(
            m.map_range(root, top, 0, 0x2000, 0, PageSize::Size4K),
            Err(Error::InvalidRange { .. })
        ));
        assert_eq!(
            m.map_range(root, 0, (1 << 52) - 0x1000, 0x2000, 0, PageSize::Size4K),
            Err(Error::PhysAddrTooLarge((1 << 52) + 0xfff))
        );
        assert_eq!(leaves(&m, root), []);
    }

    #[test]
    fn protect_range_splits_partly_covered_large_page() {
        let (mut m, root) = mapper();
        m.map(root, MB2, 0x60_0000, PageSize::Size2M, PTE_W | PTE_A)
            .expect("map");
        m.protect_range(root, MB2 + 0x1000..MB2 + 0x3000, FlagUpdate::clear(PTE_W))
            .expect("protect");
        let got = leaves(&m, root);
        assert_eq!(got.len(), 512);
        for (i, (va, size)) in got.into_iter().enumerate() {
            assert_eq!((va, size), (MB2 + i as u64 * 0x1000, PageSize::Size4K));
            let t = m.translate(root, va).expect("still mapped");
            assert_eq!(t.pa, 0x60_0000 + i as u64 * 0x1000);
            let w = if i == 1 || i == 2 { 0 } else { PTE_W };
            assert_eq!(t.flags, PTE_P | PTE_A | w, "page {i}");
        }
    }

    #[test]
    fn protect_range_does_not_split_when_nothing_changes() {
        let (mut m, root) = mapper();
        m.map(root, MB2, 0, PageSize::Size2M, PTE_NX).expect("map");
        let live = m.frames().live();
        m.protect_range(root, MB2..MB2 + 0x1000, FlagUpdate::set(PTE_NX))
            .expect("protect");
        assert_eq!(m.frames().live(), live);
        assert_eq!(leaves(&m, root), [(MB2, PageSize::Size2M)]);
        assert_eq!(
            m.protect_range(root, .., FlagUpdate::set(PTE_PS)),
            Err(Error::InvalidFlags(PTE_PS))
        );
    }

    #[test]
    fn unmap_range_partial() {
        let (mut m, root) = mapper();
        m.map_range(root, 0, 0, 2 * MB2, PTE_W, PageSize::Size2M)
            .expect("map");
        m.map(root, MB2 * 4, 0x1000, PageSize::Size4K, 0)
            .expect("map");
        let mut removed = Vec::new();
        m.unmap_range_with(root, MB2 - 0x1000..MB2 + 0x2000, |va, pte, size| {
            removed.push((va, pte.frame(size), size))
        })
        .expect("unmap");
        assert_eq!(
            removed,
            [
                (MB2 - 0x1000, MB2 - 0x1000, PageSize::Size4K),
                (MB2, MB2, PageSize::Size4K),
                (MB2 + 0x1000, MB2 + 0x1000, PageSize::Size4K),
            ]
        );
        assert_eq!(leaves(&m, root).len(), 511 + 510 + 1);
        assert!(m.translate(root, MB2 - 0x1000).is_err());
        assert_eq!(
            m.translate(root, MB2 - 0x2000).map(|t| t.pa),
            Ok(MB2 - 0x2000)
        );
        assert_eq!(
            m.translate(root, MB2 + 0x2000).map(|t| t.pa),
            Ok(MB2 + 0x2000)
        );
        // Whole large pages go without splitting; the rest of the space is holes.
        m.unmap_range(root, ..).expect("unmap all");
        assert_eq!(leaves(&m, root), []);
        assert!(m.unmap_range(root, 0x1000..0x1800).is_err());
    }

    #[test]
    fn unmap_range_out_of_tables_for_split() {
        let mut m = Mapper::new(TestFrames::with_limit(3));
        let root = m.new_root().expect("root");
        m.map(root, 0, 0, PageSize::Size2M, 0).expect("map");
        assert_eq!(m.unmap_range(root, 0..0x1000), Err(Error::OutOfTables));
        assert_eq!(leaves(&m, root), [(0, PageSize::Size2M)]);
    }

    #[test]
    fn spans() {
        let s = Span::new(&(0x1000..0x3000)).expect("valid");
        assert_eq!(
            s,
            Span {
                lo: 0x1000,
                hi: 0x3000
            }
        );
        let all = Span::new(&(..)).expect("valid");
        assert_eq!(
            all,
            Span {
                lo: 0,
                hi: LINEAR_SPAN
            }
        );
        let lower = Span::new(&(..0x8000_0000_0000)).expect("valid");
        assert_eq!(lower.hi, 1 << 47);
        let upper = Span::new(&(0xffff_8000_0000_0000..)).expect("valid");
        assert_eq!(
            upper,
            Span {
                lo: 1 << 47,
                hi: LINEAR_SPAN
            }
        );
        let incl = Span::new(&(0x1000..=0x1fff)).expect("valid");
        assert_eq!(
            incl,
            Span {
                lo: 0x1000,
                hi: 0x2000
            }
        );
        assert_eq!(
            Span::new(&(0x1000..0x1000))
                .expect("empty")
                .slots(0, Level::Pt),
            0..0
        );
        let (start, end) = (0x3000, 0x1000);
        assert!(Span::new(&(start..end)).is_err());
        assert!(Span::new(&(0x8000_0000_0000..0x8000_0000_1000)).is_err());
        assert!(Span::new(&(0x1001..0x2000))
            .expect("valid")
            .check_aligned()
            .is_err());
    }

    #[test]
    fn slot_ranges() {
        let s = Span {
            lo: 0x1000,
            hi: 0x20_1000,
        };
        assert_eq!(s.slots(0, Level::Pt), 1..512);
        assert_eq!(s.slots(0, Level::Pd), 0..2);
        assert_eq!(s.slots(0x20_0000, Level::Pt), 0..1);
        assert_eq!(s.slots(0x40_0000, Level::Pt), 0..0);
        assert!(s.covers(0x1000, 0x1000));
        assert!(!s.covers(0, 0x20_0000));
    }
}
