//! Virtual-address arithmetic for 4-level paging: page sizes, table levels,
//! per-level indices and canonical form.

use crate::paging::entry::ADDR_MASK;

/// Size of a base page and of every paging structure, in bytes.
pub const PAGE_SIZE: u64 = 4096;

/// Entries in every paging structure (SDM Vol. 3A §4.5: 9 address bits per level).
pub const ENTRIES_PER_TABLE: usize = 512;

/// Bits of linear address translated by 4-level paging (SDM Vol. 3A §4.5).
pub(crate) const LINEAR_BITS: u32 = 48;

/// Size of the linear address space seen as one contiguous range of table
/// indices: the lower canonical half followed by the upper one.
pub(crate) const LINEAR_SPAN: u64 = 1 << LINEAR_BITS;

/// A page size supported by 4-level paging.
///
/// 2 MiB pages are mapped by a page-directory entry with PS set, 1 GiB pages by a
/// page-directory-pointer-table entry with PS set (SDM Vol. 3A §4.5,
/// "4-Level Paging"). 1 GiB pages need CPUID.80000001H:EDX.Page1GB
/// ([`crate::cpuid::has_1g_pages`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum PageSize {
    /// 4 KiB, mapped by a page-table entry.
    Size4K,
    /// 2 MiB, mapped by a page-directory entry.
    Size2M,
    /// 1 GiB, mapped by a page-directory-pointer-table entry.
    Size1G,
}

impl PageSize {
    /// The size in bytes.
    pub const fn bytes(self) -> u64 {
        match self {
            PageSize::Size4K => 1 << 12,
            PageSize::Size2M => 1 << 21,
            PageSize::Size1G => 1 << 30,
        }
    }

    /// Mask of the offset-within-page bits of an address.
    pub const fn offset_mask(self) -> u64 {
        self.bytes() - 1
    }

    /// Mask of the frame-address bits of a leaf entry of this size.
    ///
    /// For 2 MiB and 1 GiB leaves the low address bits hold PAT (bit 12) and
    /// reserved bits, so the frame is `entry & frame_mask()`, not `entry & ADDR_MASK`.
    pub const fn frame_mask(self) -> u64 {
        ADDR_MASK & !self.offset_mask()
    }

    /// Whether `addr` is a multiple of this size.
    pub const fn is_aligned(self, addr: u64) -> bool {
        addr & self.offset_mask() == 0
    }

    /// The table level whose entries map pages of this size.
    pub const fn level(self) -> Level {
        match self {
            PageSize::Size4K => Level::Pt,
            PageSize::Size2M => Level::Pd,
            PageSize::Size1G => Level::Pdpt,
        }
    }
}

/// A level of the 4-level paging hierarchy; `Pml4` is the root.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Level {
    /// Page table: entries map 4 KiB pages.
    Pt = 1,
    /// Page directory: entries map 2 MiB pages or reference page tables.
    Pd = 2,
    /// Page-directory-pointer table: entries map 1 GiB pages or reference page directories.
    Pdpt = 3,
    /// PML4, the root: entries reference page-directory-pointer tables.
    Pml4 = 4,
}

impl Level {
    /// Bit position of the lowest linear-address bit that indexes this level:
    /// 12, 21, 30, 39 (SDM Vol. 3A §4.5, "Linear-Address Translation to a 4-KByte Page").
    pub const fn shift(self) -> u32 {
        12 + 9 * (self as u32 - 1)
    }

    /// Bytes of linear address space covered by one entry of this level.
    pub const fn entry_span(self) -> u64 {
        1 << self.shift()
    }

    /// The next level towards the leaves, or `None` for [`Level::Pt`].
    pub const fn lower(self) -> Option<Level> {
        match self {
            Level::Pml4 => Some(Level::Pdpt),
            Level::Pdpt => Some(Level::Pd),
            Level::Pd => Some(Level::Pt),
            Level::Pt => None,
        }
    }

    /// The page size an entry at this level maps when it is a leaf, or `None`
    /// for [`Level::Pml4`] (whose PS bit is reserved).
    pub const fn page_size(self) -> Option<PageSize> {
        match self {
            Level::Pt => Some(PageSize::Size4K),
            Level::Pd => Some(PageSize::Size2M),
            Level::Pdpt => Some(PageSize::Size1G),
            Level::Pml4 => None,
        }
    }
}

/// Index into the paging structure at `level` selected by `va`.
pub const fn index(va: u64, level: Level) -> usize {
    ((va >> level.shift()) & 0x1ff) as usize
}

/// PML4 index: bits 47:39 of `va`.
pub const fn pml4_index(va: u64) -> usize {
    index(va, Level::Pml4)
}

/// Page-directory-pointer-table index: bits 38:30 of `va`.
pub const fn pdpt_index(va: u64) -> usize {
    index(va, Level::Pdpt)
}

/// Page-directory index: bits 29:21 of `va`.
pub const fn pd_index(va: u64) -> usize {
    index(va, Level::Pd)
}

/// Page-table index: bits 20:12 of `va`.
pub const fn pt_index(va: u64) -> usize {
    index(va, Level::Pt)
}

/// Whether `va` is canonical for 48-bit linear addresses: bits 63:47 all equal
/// (SDM Vol. 1 §3.3.7.1, "Canonical Addressing").
pub const fn is_canonical(va: u64) -> bool {
    canonicalize(va) == va
}

/// Sign-extends bit 47 of `va` into bits 63:48.
pub const fn canonicalize(va: u64) -> u64 {
    (((va << (64 - LINEAR_BITS)) as i64) >> (64 - LINEAR_BITS)) as u64
}

/// Position of a canonical address in the 48-bit index space, where the upper
/// half directly follows the lower one.
pub(crate) const fn linear(va: u64) -> u64 {
    va & (LINEAR_SPAN - 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_masks() {
        assert_eq!(PageSize::Size4K.bytes(), 4096);
        assert_eq!(PageSize::Size2M.bytes(), 2 * 1024 * 1024);
        assert_eq!(PageSize::Size1G.bytes(), 1024 * 1024 * 1024);
        assert_eq!(PageSize::Size4K.frame_mask(), 0x000f_ffff_ffff_f000);
        assert_eq!(PageSize::Size2M.frame_mask(), 0x000f_ffff_ffe0_0000);
        assert_eq!(PageSize::Size1G.frame_mask(), 0x000f_ffff_c000_0000);
        assert!(PageSize::Size2M.is_aligned(0x60_0000));
        assert!(!PageSize::Size2M.is_aligned(0x60_1000));
        for size in [PageSize::Size4K, PageSize::Size2M, PageSize::Size1G] {
            assert_eq!(size.level().page_size(), Some(size));
            assert_eq!(size.level().entry_span(), size.bytes());
        }
    }

    #[test]
    fn levels() {
        assert_eq!(Level::Pml4.shift(), 39);
        assert_eq!(Level::Pml4.entry_span(), 512 << 30);
        assert_eq!(Level::Pml4.lower(), Some(Level::Pdpt));
        assert_eq!(Level::Pt.lower(), None);
        assert_eq!(Level::Pml4.page_size(), None);
    }

    #[test]
    fn indices() {
        // 0xffff_8000_4020_3000: PML4 256, PDPT 1, PD 1, PT 3.
        let va = 0xffff_8000_4020_3000;
        assert_eq!(pml4_index(va), 256);
        assert_eq!(pdpt_index(va), 1);
        assert_eq!(pd_index(va), 1);
        assert_eq!(pt_index(va), 3);
        assert_eq!(index(va, Level::Pt), 3);
        assert_eq!(pml4_index(0x0000_7fff_ffff_ffff), 255);
        assert_eq!(pml4_index(u64::MAX), 511);
    }

    #[test]
    fn canonical() {
        assert!(is_canonical(0));
        assert!(is_canonical(0x0000_7fff_ffff_ffff));
        assert!(is_canonical(0xffff_8000_0000_0000));
        assert!(is_canonical(u64::MAX));
        assert!(!is_canonical(0x0000_8000_0000_0000));
        assert!(!is_canonical(0xffff_7fff_ffff_ffff));
        assert!(!is_canonical(0x0001_0000_0000_0000));
        assert_eq!(canonicalize(0x0000_8000_0000_0000), 0xffff_8000_0000_0000);
        assert_eq!(linear(0xffff_8000_0000_0000), 1 << 47);
    }
}
