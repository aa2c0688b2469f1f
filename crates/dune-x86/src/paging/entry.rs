//! Paging-structure entry bits and the [`Pte`] value type.
//!
//! Bit positions are from SDM Vol. 3A §4.5, the tables "Format of a PML4 Entry
//! (PML4E) that References a Page-Directory-Pointer Table" through "Format of a
//! Page-Table Entry that Maps a 4-KByte Page", which agree for every bit
//! defined here except bit 7: PS in a PDPTE/PDE, PAT in a 4 KiB PTE.

use crate::paging::addr::PageSize;

/// Present.
pub const PTE_P: u64 = 1 << 0;
/// Writable (R/W); read-only when clear.
pub const PTE_W: u64 = 1 << 1;
/// User-accessible (U/S); supervisor-only when clear.
pub const PTE_U: u64 = 1 << 2;
/// Page-level write-through.
pub const PTE_PWT: u64 = 1 << 3;
/// Page-level cache disable.
pub const PTE_PCD: u64 = 1 << 4;
/// Accessed; set by the processor (SDM Vol. 3A §4.8, "Accessed and Dirty Flags").
pub const PTE_A: u64 = 1 << 5;
/// Dirty; set by the processor on write to a leaf (SDM Vol. 3A §4.8).
pub const PTE_D: u64 = 1 << 6;
/// Page size: in a PDPTE or PDE, the entry maps a 1 GiB or 2 MiB page.
pub const PTE_PS: u64 = 1 << 7;
/// PAT index bit of a 4 KiB PTE (same position as [`PTE_PS`]).
pub const PTE_PAT_4K: u64 = 1 << 7;
/// Global: not flushed on CR3 load when CR4.PGE = 1 (leaves only).
pub const PTE_G: u64 = 1 << 8;
/// PAT index bit of a 2 MiB or 1 GiB leaf.
pub const PTE_PAT_HUGE: u64 = 1 << 12;
/// Execute-disable; honoured when EFER.NXE = 1 (SDM Vol. 3A §4.6).
pub const PTE_NX: u64 = 1 << 63;
/// Bits ignored by the processor and free for software: 11:9 and 58:52.
pub const PTE_AVL_MASK: u64 = (0b111 << 9) | (0x7f << 52);
/// Protection key of a leaf, bits 62:59, used when CR4.PKE = 1 (SDM Vol. 3A §4.6.2).
pub const PTE_PK_MASK: u64 = 0xf << 59;

/// Physical-address bits 51:12 of an entry. Bits above the processor's
/// MAXPHYADDR are reserved ([`crate::cpuid::max_phys_addr`]).
pub const ADDR_MASK: u64 = 0x000f_ffff_ffff_f000;

/// Flags of an entry that references a lower table.
///
/// Permissions are the intersection of all levels (SDM Vol. 3A §4.6.1), so
/// intermediate entries grant everything and leaves decide; NX is left clear for
/// the same reason.
pub const TABLE_FLAGS: u64 = PTE_P | PTE_W | PTE_U;

/// Flags the mapper accepts for a leaf: everything except the address, PS and
/// the PAT bits (whose position depends on the page size).
pub const LEAF_FLAGS_MASK: u64 = PTE_P
    | PTE_W
    | PTE_U
    | PTE_PWT
    | PTE_PCD
    | PTE_A
    | PTE_D
    | PTE_G
    | PTE_NX
    | PTE_AVL_MASK
    | PTE_PK_MASK;

/// The value of one paging-structure entry.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[repr(transparent)]
pub struct Pte(pub u64);

impl Pte {
    /// The all-zero, non-present entry.
    pub const EMPTY: Pte = Pte(0);

    /// The raw 64-bit value.
    pub const fn raw(self) -> u64 {
        self.0
    }

    /// Whether P is set.
    pub const fn is_present(self) -> bool {
        self.0 & PTE_P != 0
    }

    /// Whether PS is set. Meaningful only in a PDPTE or PDE; in a 4 KiB PTE the
    /// same bit is PAT.
    pub const fn is_huge(self) -> bool {
        self.0 & PTE_PS != 0
    }

    /// Whether every bit of `bits` is set.
    pub const fn contains(self, bits: u64) -> bool {
        self.0 & bits == bits
    }

    /// Bits 51:12: the referenced table, or the frame of a 4 KiB leaf.
    pub const fn addr(self) -> u64 {
        self.0 & ADDR_MASK
    }

    /// The frame of a leaf of `size` (PAT and reserved bits masked off).
    pub const fn frame(self, size: PageSize) -> u64 {
        self.0 & size.frame_mask()
    }

    /// Everything but the frame of a leaf of `size`.
    pub const fn flags(self, size: PageSize) -> u64 {
        self.0 & !size.frame_mask()
    }
}

impl From<Pte> for u64 {
    fn from(pte: Pte) -> u64 {
        pte.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bit_positions() {
        assert_eq!(PTE_P | PTE_W | PTE_U, 0x7);
        assert_eq!(PTE_PWT | PTE_PCD | PTE_A | PTE_D, 0x78);
        assert_eq!(PTE_PS, 0x80);
        assert_eq!(PTE_G, 0x100);
        assert_eq!(PTE_NX, 0x8000_0000_0000_0000);
        assert_eq!(PTE_AVL_MASK, 0x07f0_0000_0000_0e00);
        assert_eq!(PTE_PK_MASK, 0x7800_0000_0000_0000);
        assert_eq!(LEAF_FLAGS_MASK & (ADDR_MASK | PTE_PS), 0);
        assert_eq!(LEAF_FLAGS_MASK | ADDR_MASK | PTE_PS, u64::MAX);
    }

    #[test]
    fn accessors() {
        let e = Pte(0x8000_0000_4020_1083 | PTE_PAT_HUGE);
        assert!(e.is_present() && e.is_huge());
        assert!(e.contains(PTE_P | PTE_W));
        assert!(!e.contains(PTE_U));
        assert_eq!(e.frame(PageSize::Size2M), 0x4020_0000);
        assert_eq!(e.flags(PageSize::Size2M), 0x8000_0000_0000_1083);
        assert_eq!(e.addr(), 0x4020_1000);
        assert_eq!(u64::from(Pte::EMPTY), 0);
    }
}
