//! The [`Mapper`] and its single-address operations: map, unmap, protect,
//! translate, lookup, split.

use crate::paging::addr::{index, is_canonical, Level, PageSize};
use crate::paging::descend::{kind, Kind};
use crate::paging::entry::{Pte, ADDR_MASK, LEAF_FLAGS_MASK, PTE_NX, PTE_P, PTE_PS, PTE_U, PTE_W};
use crate::paging::error::Error;
use crate::paging::table::{FrameSource, PteRef};

/// Edits page tables through a [`FrameSource`].
///
/// Every operation takes the physical address of the root (PML4) table, so one
/// mapper serves any number of address spaces. Intermediate tables are created
/// with [`TABLE_FLAGS`](crate::paging::TABLE_FLAGS); leaves carry the caller's flags. Methods that change
/// structure take `&mut self`; the mapper keeps no state besides the source.
#[derive(Debug)]
pub struct Mapper<F> {
    pub(crate) frames: F,
}

/// How far [`Mapper::lookup`] may build missing tables, like the `create`
/// argument of libdune's `dune_vm_lookup`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Create {
    /// Build nothing; fail with [`Error::NotMapped`] at a missing table.
    None,
    /// Build down to the page table and return the 4 KiB slot.
    Normal,
    /// Build down to the page directory and return the 2 MiB slot.
    Big,
    /// Build down to the page-directory-pointer table and return the 1 GiB slot.
    Big1G,
}

/// A change to the flags of existing leaves: `new = (old & !clear) | set`.
///
/// P, PS, PAT and address bits cannot be changed this way (use
/// [`Mapper::unmap`] / [`Mapper::map`]); A and D may be.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FlagUpdate {
    /// Bits to set.
    pub set: u64,
    /// Bits to clear (applied before `set`).
    pub clear: u64,
}

impl FlagUpdate {
    /// The permission bits [`FlagUpdate::permissions`] replaces.
    pub const PERMISSION_BITS: u64 = PTE_W | PTE_U | PTE_NX;

    /// Sets `bits`, leaves the rest.
    pub const fn set(bits: u64) -> Self {
        FlagUpdate {
            set: bits,
            clear: 0,
        }
    }

    /// Clears `bits`, leaves the rest.
    pub const fn clear(bits: u64) -> Self {
        FlagUpdate {
            set: 0,
            clear: bits,
        }
    }

    /// Replaces W, U and NX by those bits of `perms`, like an `mprotect`.
    pub const fn permissions(perms: u64) -> Self {
        FlagUpdate {
            set: perms & Self::PERMISSION_BITS,
            clear: Self::PERMISSION_BITS,
        }
    }

    /// The entry after the update.
    pub const fn apply(self, pte: Pte) -> Pte {
        Pte((pte.0 & !self.clear) | self.set)
    }

    pub(crate) fn validate(self) -> Result<Self, Error> {
        let bad = (self.set | self.clear) & !(LEAF_FLAGS_MASK & !PTE_P);
        if bad == 0 {
            Ok(self)
        } else {
            Err(Error::InvalidFlags(bad))
        }
    }
}

/// Result of [`Mapper::translate`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Translation {
    /// The physical address `va` translates to (frame plus offset).
    pub pa: u64,
    /// The leaf's bits outside its frame (includes P, and PS for large pages).
    pub flags: u64,
    /// Size of the page that maps `va`.
    pub size: PageSize,
    /// The whole leaf entry.
    pub pte: Pte,
}

/// The entry that maps `pa` as a leaf of `size` with `flags` (already validated).
fn leaf_entry(pa: u64, size: PageSize, flags: u64) -> Pte {
    let ps = if size == PageSize::Size4K { 0 } else { PTE_PS };
    Pte(pa | flags | ps | PTE_P)
}

/// Checks that `va` is canonical and `va`, `pa` are aligned to `size`.
pub(crate) fn check_leaf_args(va: u64, pa: u64, size: PageSize) -> Result<(), Error> {
    if !is_canonical(va) {
        return Err(Error::NonCanonical(va));
    }
    for addr in [va, pa] {
        if !size.is_aligned(addr) {
            return Err(Error::Misaligned {
                addr,
                align: size.bytes(),
            });
        }
    }
    if pa & !ADDR_MASK != 0 {
        return Err(Error::PhysAddrTooLarge(pa));
    }
    Ok(())
}

/// Checks that `flags` may be given to [`Mapper::map`].
pub(crate) fn check_flags(flags: u64) -> Result<(), Error> {
    match flags & !LEAF_FLAGS_MASK {
        0 => Ok(()),
        bad => Err(Error::InvalidFlags(bad)),
    }
}

impl<F: FrameSource> Mapper<F> {
    /// A mapper over `frames` (pass `&mut source` to keep ownership).
    pub const fn new(frames: F) -> Self {
        Mapper { frames }
    }

    /// The frame source.
    pub fn frames(&self) -> &F {
        &self.frames
    }

    /// The frame source, mutably.
    pub fn frames_mut(&mut self) -> &mut F {
        &mut self.frames
    }

    /// Gives the frame source back.
    pub fn into_inner(self) -> F {
        self.frames
    }

    /// Allocates an empty root (PML4) table and returns its physical address.
    pub fn new_root(&mut self) -> Result<u64, Error> {
        self.alloc_table()
    }

    /// Maps the page of `size` at `va` to the frame at `pa` with `flags`
    /// (subset of [`LEAF_FLAGS_MASK`]; P and, for large pages, PS are added).
    ///
    /// Builds missing tables. Replaces an existing leaf of the same size and
    /// returns it if it was present. Fails with [`Error::SizeConflict`] if a
    /// larger page covers `va`, or if a lower-level table under the slot still
    /// maps something (an empty one is freed and replaced).
    pub fn map(
        &mut self,
        root: u64,
        va: u64,
        pa: u64,
        size: PageSize,
        flags: u64,
    ) -> Result<Option<Pte>, Error> {
        check_leaf_args(va, pa, size)?;
        check_flags(flags)?;
        let stop = self.descend_create(root, va, size.level())?;
        if stop.level != size.level() {
            return Err(Error::SizeConflict(va));
        }
        let slot = self.table(stop.table)?.slot(index(va, stop.level));
        let new = leaf_entry(pa, size, flags);
        if let Kind::Table(child) = kind(slot.get(), stop.level) {
            let lower = stop.level.lower().ok_or(Error::InvalidTable(child))?;
            if self.has_leaves(child, lower)? {
                return Err(Error::SizeConflict(va));
            }
            slot.set(new);
            self.free_subtree(child, lower)?;
            return Ok(None);
        }
        // Swap rather than store so the returned entry has every A/D bit the
        // processor set up to the moment of replacement.
        let old = slot.swap(new);
        Ok(old.is_present().then_some(old))
    }

    /// Removes the leaf that maps `va`, whatever its size, and returns it with
    /// its size; `Ok(None)` if nothing was mapped. Tables are not freed.
    pub fn unmap(&mut self, root: u64, va: u64) -> Result<Option<(Pte, PageSize)>, Error> {
        match self.leaf(root, va)? {
            Some((slot, size)) => Ok(Some((slot.swap(Pte::EMPTY), size))),
            None => Ok(None),
        }
    }

    /// Applies `update` to the leaf that maps `va` and returns the old entry.
    pub fn protect(&mut self, root: u64, va: u64, update: FlagUpdate) -> Result<Pte, Error> {
        let update = update.validate()?;
        let (slot, _) = self.leaf(root, va)?.ok_or(Error::NotMapped(va))?;
        Ok(slot.update(|old| update.apply(old)))
    }

    /// Translates `va` through the tables at `root`.
    pub fn translate(&self, root: u64, va: u64) -> Result<Translation, Error> {
        let (slot, size) = self.leaf(root, va)?.ok_or(Error::NotMapped(va))?;
        let pte = slot.get();
        Ok(Translation {
            pa: pte.frame(size) | (va & size.offset_mask()),
            flags: pte.flags(size),
            size,
            pte,
        })
    }

    /// The entry for `va`, like libdune's `dune_vm_lookup`.
    ///
    /// Descends towards the level `create` names ([`Create::None`] and
    /// [`Create::Normal`]: the page table), building missing tables unless
    /// `create` is [`Create::None`]. Stops early at a large page and returns its
    /// entry; otherwise returns the slot at the target level, which may be empty.
    /// The returned size is that of the slot's level. Fails with
    /// [`Error::NotMapped`] at a missing table under [`Create::None`] and with
    /// [`Error::SizeConflict`] if a [`Create::Big`]/[`Create::Big1G`] slot holds a
    /// table.
    pub fn lookup(
        &mut self,
        root: u64,
        va: u64,
        create: Create,
    ) -> Result<(PteRef<'_>, PageSize), Error> {
        let target = match create {
            Create::None | Create::Normal => Level::Pt,
            Create::Big => Level::Pd,
            Create::Big1G => Level::Pdpt,
        };
        let stop = if create == Create::None {
            self.descend(root, va, target)?
        } else {
            self.descend_create(root, va, target)?
        };
        let slot = self.table(stop.table)?.slot(index(va, stop.level));
        match kind(slot.get(), stop.level) {
            Kind::Empty if stop.level != target => Err(Error::NotMapped(va)),
            Kind::Table(_) => Err(Error::SizeConflict(va)),
            _ => {
                let size = stop.level.page_size().ok_or(Error::NotMapped(va))?;
                Ok((slot, size))
            }
        }
    }

    /// Splits the large page that maps `va` into 512 pages of the next smaller
    /// size with the same frames and flags. Returns `false` if `va` is mapped by
    /// a 4 KiB page, `NotMapped` if it is not mapped.
    pub fn split(&mut self, root: u64, va: u64) -> Result<bool, Error> {
        let stop = self.descend(root, va, Level::Pt)?;
        match kind(self.entry(stop.table, va, stop.level)?, stop.level) {
            Kind::Leaf(PageSize::Size4K) => Ok(false),
            Kind::Leaf(_) => {
                self.split_at(stop.table, stop.level, index(va, stop.level))?;
                Ok(true)
            }
            _ => Err(Error::NotMapped(va)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::paging::entry::{PTE_A, PTE_D, PTE_G, PTE_PAT_4K, PTE_PAT_HUGE, TABLE_FLAGS};
    use crate::paging::testing::{mapper, TestFrames};

    const HI: u64 = 0xffff_8000_0000_0000;

    #[test]
    fn map_translate_all_sizes() {
        let (mut m, root) = mapper();
        let cases = [
            (0x40_1000, 0x7000, PageSize::Size4K),
            (0x60_0000, 0x20_0000, PageSize::Size2M),
            (0x80_0000_0000, 0x4000_0000, PageSize::Size1G),
            (HI + 0x1000, 0x3000, PageSize::Size4K),
        ];
        for (va, pa, size) in cases {
            assert_eq!(m.map(root, va, pa, size, PTE_W | PTE_NX), Ok(None));
        }
        for (va, pa, size) in cases {
            let off = size.bytes() - 8;
            let t = m.translate(root, va + off).expect("mapped");
            assert_eq!(t.pa, pa + off);
            assert_eq!(t.size, size);
            let ps = if size == PageSize::Size4K { 0 } else { PTE_PS };
            assert_eq!(t.flags, PTE_P | PTE_W | PTE_NX | ps);
        }
        assert_eq!(
            m.translate(root, 0x40_2000),
            Err(Error::NotMapped(0x40_2000))
        );
    }

    #[test]
    fn intermediate_entries_grant_everything() {
        let (mut m, root) = mapper();
        m.map(root, 0x1000, 0x5000, PageSize::Size4K, PTE_NX)
            .expect("map");
        let pml4e = m.table(root).expect("root").slot(0).get();
        assert_eq!(pml4e.flags(PageSize::Size4K), TABLE_FLAGS);
        let pdpte = m.table(pml4e.addr()).expect("pdpt").slot(0).get();
        assert_eq!(pdpte.flags(PageSize::Size4K), TABLE_FLAGS);
        assert_eq!(m.frames().live(), 4);
    }

    #[test]
    fn map_replaces_same_size_and_rejects_other_sizes() {
        let (mut m, root) = mapper();
        m.map(root, 0x20_0000, 0x40_0000, PageSize::Size2M, PTE_W)
            .expect("map");
        let old = m.map(root, 0x20_0000, 0x60_0000, PageSize::Size2M, 0);
        assert_eq!(old, Ok(Some(Pte(0x40_0000 | PTE_PS | PTE_W | PTE_P))));
        assert_eq!(
            m.map(root, 0x20_1000, 0x1000, PageSize::Size4K, 0),
            Err(Error::SizeConflict(0x20_1000))
        );
        m.map(root, 0x40_1000, 0x1000, PageSize::Size4K, 0)
            .expect("map");
        assert_eq!(
            m.map(root, 0x40_0000, 0, PageSize::Size2M, 0),
            Err(Error::SizeConflict(0x40_0000))
        );
    }

    #[test]
    fn large_page_replaces_empty_table() {
        let (mut m, root) = mapper();
        m.map(root, 0x40_1000, 0x1000, PageSize::Size4K, 0)
            .expect("map");
        m.unmap(root, 0x40_1000).expect("unmap");
        let live = m.frames().live();
        m.map(root, 0x40_0000, 0, PageSize::Size2M, 0)
            .expect("empty PT replaced");
        assert_eq!(m.frames().live(), live - 1);
        assert_eq!(
            m.translate(root, 0x40_1000).map(|t| t.size),
            Ok(PageSize::Size2M)
        );
    }

    #[test]
    fn argument_checks() {
        let (mut m, root) = mapper();
        let bad = 0x0000_8000_0000_0000;
        assert_eq!(
            m.map(root, bad, 0, PageSize::Size4K, 0),
            Err(Error::NonCanonical(bad))
        );
        assert_eq!(m.translate(root, bad), Err(Error::NonCanonical(bad)));
        assert_eq!(
            m.map(root, 0x1000, 0, PageSize::Size2M, 0),
            Err(Error::Misaligned {
                addr: 0x1000,
                align: 0x20_0000
            })
        );
        assert_eq!(
            m.map(root, 0x20_0000, 0x1000, PageSize::Size2M, 0),
            Err(Error::Misaligned {
                addr: 0x1000,
                align: 0x20_0000
            })
        );
        assert_eq!(
            m.map(root, 0, 1 << 52, PageSize::Size4K, 0),
            Err(Error::PhysAddrTooLarge(1 << 52))
        );
        assert_eq!(
            m.map(root, 0, 0, PageSize::Size4K, PTE_PS),
            Err(Error::InvalidFlags(PTE_PS))
        );
        assert_eq!(
            m.map(root, 0, 0, PageSize::Size4K, 0x1000),
            Err(Error::InvalidFlags(0x1000))
        );
        assert_eq!(m.frames().live(), 1, "failed checks build no tables");
    }

    #[test]
    fn unmap_returns_old_entry() {
        let (mut m, root) = mapper();
        m.map(root, 0x4000_0000, 0, PageSize::Size1G, PTE_G)
            .expect("map");
        let old = m.unmap(root, 0x4000_0000 + 0x1234_5000).expect("unmap");
        assert_eq!(old, Some((Pte(PTE_P | PTE_PS | PTE_G), PageSize::Size1G)));
        assert_eq!(m.unmap(root, 0x4000_0000), Ok(None));
        assert_eq!(m.unmap(root, 0x1234_5678_9000), Ok(None));
        assert!(m.translate(root, 0x4000_0000).is_err());
    }

    #[test]
    fn protect_single_page() {
        let (mut m, root) = mapper();
        m.map(
            root,
            0x3000,
            0x9000,
            PageSize::Size4K,
            PTE_W | PTE_A | PTE_D,
        )
        .expect("map");
        let old = m.protect(root, 0x3000, FlagUpdate::permissions(PTE_NX | PTE_U));
        assert_eq!(old.map(|p| p.0), Ok(0x9000 | PTE_P | PTE_W | PTE_A | PTE_D));
        let t = m.translate(root, 0x3000).expect("mapped");
        assert_eq!(t.flags, PTE_P | PTE_U | PTE_NX | PTE_A | PTE_D);
        assert_eq!(
            m.protect(root, 0x3000, FlagUpdate::clear(PTE_P)),
            Err(Error::InvalidFlags(PTE_P))
        );
        assert_eq!(
            m.protect(root, 0x5000, FlagUpdate::set(PTE_W)),
            Err(Error::NotMapped(0x5000))
        );
    }

    #[test]
    fn lookup_like_dune_vm_lookup() {
        let (mut m, root) = mapper();
        assert_eq!(
            m.lookup(root, 0x5000, Create::None).err(),
            Some(Error::NotMapped(0x5000))
        );
        let (slot, size) = m.lookup(root, 0x5000, Create::Normal).expect("created");
        assert_eq!((slot.get(), size), (Pte::EMPTY, PageSize::Size4K));
        slot.set(Pte(0xa000 | PTE_P));
        assert_eq!(m.translate(root, 0x5010).map(|t| t.pa), Ok(0xa010));
        let (slot, size) = m.lookup(root, 0x6000, Create::None).expect("table exists");
        assert_eq!((slot.get(), size), (Pte::EMPTY, PageSize::Size4K));
        // The 2 MiB slot at 0 holds the page table just built.
        assert_eq!(
            m.lookup(root, 0, Create::Big).err(),
            Some(Error::SizeConflict(0))
        );
        let (slot, size) = m.lookup(root, 0x4000_0000, Create::Big).expect("created");
        assert_eq!(size, PageSize::Size2M);
        slot.set(Pte(0x20_0000 | PTE_P | PTE_PS));
        // Normal stops at the large page, like dune_vm_lookup.
        let (slot, size) = m
            .lookup(root, 0x4000_1000, Create::Normal)
            .expect("large page");
        assert_eq!(
            (slot.get().0, size),
            (0x20_0000 | PTE_P | PTE_PS, PageSize::Size2M)
        );
        let (_, size) = m
            .lookup(root, 0x80_0000_0000, Create::Big1G)
            .expect("created");
        assert_eq!(size, PageSize::Size1G);
    }

    #[test]
    fn split_keeps_translation_flags_and_pat() {
        let (mut m, root) = mapper();
        let flags = PTE_W | PTE_A | PTE_D | PTE_NX;
        m.map(root, 0x4000_0000, 0x8000_0000, PageSize::Size1G, flags)
            .expect("map");
        assert_eq!(m.split(root, 0x4000_0000 + 0x30_0000), Ok(true));
        let t = m.translate(root, 0x4020_1234).expect("mapped");
        assert_eq!((t.pa, t.size), (0x8020_1234, PageSize::Size2M));
        assert_eq!(t.flags, flags | PTE_P | PTE_PS);
        // Set PAT on one 2 MiB piece, then split it into 4 KiB pages.
        m.lookup(root, 0x4020_0000, Create::None)
            .expect("2M")
            .0
            .set_bits(PTE_PAT_HUGE);
        assert_eq!(m.split(root, 0x4020_0000), Ok(true));
        let t = m.translate(root, 0x403f_f008).expect("mapped");
        assert_eq!((t.pa, t.size), (0x803f_f008, PageSize::Size4K));
        assert_eq!(t.flags, flags | PTE_P | PTE_PAT_4K);
        assert_eq!(m.split(root, 0x4020_0000), Ok(false));
        assert_eq!(m.split(root, 0), Err(Error::NotMapped(0)));
    }

    #[test]
    fn out_of_tables() {
        let mut m = Mapper::new(TestFrames::with_limit(3));
        let root = m.new_root().expect("root");
        assert_eq!(
            m.map(root, 0x1000, 0, PageSize::Size4K, 0),
            Err(Error::OutOfTables)
        );
        assert_eq!(
            m.map(root, 0, 0, PageSize::Size2M, 0),
            Ok(None),
            "PD level fits"
        );
        m.map(root, 0x20_0000, 0, PageSize::Size2M, 0)
            .expect("same PD");
        assert_eq!(m.split(root, 0), Err(Error::OutOfTables));
        assert_eq!(
            m.translate(root, 0x1000).map(|t| t.size),
            Ok(PageSize::Size2M)
        );
        assert_eq!(m.frames().live(), 3);
    }

    #[test]
    fn corrupt_entries_are_errors() {
        let (mut m, root) = mapper();
        m.table(root)
            .expect("root")
            .slot(0)
            .set(Pte(0xdead_0000 | PTE_P));
        assert_eq!(
            m.translate(root, 0x1000),
            Err(Error::InvalidTable(0xdead_0000))
        );
        assert_eq!(
            m.map(root, 0x1000, 0, PageSize::Size4K, 0),
            Err(Error::InvalidTable(0xdead_0000))
        );
        assert_eq!(m.translate(0x42, 0), Err(Error::InvalidTable(0x42)));
    }
}
