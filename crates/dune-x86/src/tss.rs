//! The 64-bit task-state segment (SDM Vol. 3A §7.7, "Task Management in 64-bit
//! Mode", Figure 7-11) and interrupt stack table indices (§6.14.5, "Interrupt
//! Stack Table").
//!
//! In 64-bit mode the TSS holds no task state, only the stacks the processor
//! switches to: `RSP0` on an interrupt or exception from ring 3, and `IST1`–`IST7`
//! for IDT gates that name one (double fault, NMI and machine check should,
//! since they can arrive on a bad stack).

use core::mem::{offset_of, size_of};

/// An interrupt stack table slot, `IST1`..`IST7`; IDT gates select one by
/// index, 0 meaning "no stack switch".
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Ist {
    /// IST1.
    Ist1 = 1,
    /// IST2.
    Ist2 = 2,
    /// IST3.
    Ist3 = 3,
    /// IST4.
    Ist4 = 4,
    /// IST5.
    Ist5 = 5,
    /// IST6.
    Ist6 = 6,
    /// IST7.
    Ist7 = 7,
}

impl Ist {
    /// The slot with number `n` (1..=7), or `None`.
    pub const fn from_index(n: u8) -> Option<Ist> {
        match n {
            1 => Some(Ist::Ist1),
            2 => Some(Ist::Ist2),
            3 => Some(Ist::Ist3),
            4 => Some(Ist::Ist4),
            5 => Some(Ist::Ist5),
            6 => Some(Ist::Ist6),
            7 => Some(Ist::Ist7),
            _ => None,
        }
    }

    /// The slot number, 1..=7, as written into an IDT gate.
    pub const fn index(self) -> u8 {
        self as u8
    }
}

/// The 64-bit TSS, exactly as the processor reads it (104 bytes, no I/O
/// permission bitmap).
///
/// The struct is packed, as the hardware layout is (`RSP0` sits at offset 4),
/// so fields are reached through the accessors, never by reference.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(C, packed)]
pub struct Tss64 {
    reserved0: u32,
    rsp: [u64; 3],
    reserved1: u64,
    ist: [u64; 7],
    reserved2: u64,
    reserved3: u16,
    iomap_base: u16,
}

/// Size of [`Tss64`]; the TSS descriptor's limit is this minus one.
pub const TSS_SIZE: usize = size_of::<Tss64>();
/// Offset of `RSP0` within the TSS, for assembly.
pub const TSS_RSP0_OFFSET: usize = offset_of!(Tss64, rsp);
/// Offset of `IST1` within the TSS, for assembly (`ISTn` is at `+ 8 * (n - 1)`).
pub const TSS_IST1_OFFSET: usize = offset_of!(Tss64, ist);
/// Offset of the I/O map base field.
pub const TSS_IOMAP_BASE_OFFSET: usize = offset_of!(Tss64, iomap_base);

const _: () = assert!(TSS_SIZE == 104);
const _: () = assert!(TSS_RSP0_OFFSET == 0x04);
const _: () = assert!(TSS_IST1_OFFSET == 0x24);
const _: () = assert!(TSS_IOMAP_BASE_OFFSET == 0x66);

impl Tss64 {
    /// A TSS with all stacks zero and no I/O permission bitmap: the map base
    /// points past the limit, so every port access from ring 3 faults (SDM
    /// Vol. 1 §18.5.2, "I/O Permission Bit Map").
    pub const fn new() -> Self {
        Tss64 {
            reserved0: 0,
            rsp: [0; 3],
            reserved1: 0,
            ist: [0; 7],
            reserved2: 0,
            reserved3: 0,
            iomap_base: TSS_SIZE as u16,
        }
    }

    /// The stack pointer loaded on a privilege change to ring 0.
    pub const fn rsp0(&self) -> u64 {
        self.rsp[0]
    }

    /// Sets the ring-0 stack pointer (top of the stack: it grows down).
    pub fn set_rsp0(&mut self, sp: u64) {
        let mut rsp = self.rsp;
        rsp[0] = sp;
        self.rsp = rsp;
    }

    /// The stack pointer of interrupt stack table slot `ist`.
    pub const fn ist(&self, ist: Ist) -> u64 {
        let table = self.ist;
        table[ist as usize - 1]
    }

    /// Sets the stack pointer of interrupt stack table slot `ist`.
    pub fn set_ist(&mut self, ist: Ist, sp: u64) {
        let mut table = self.ist;
        table[ist as usize - 1] = sp;
        self.ist = table;
    }

    /// The I/O map base field.
    pub const fn iomap_base(&self) -> u16 {
        self.iomap_base
    }

    /// The 104-byte in-memory image, for the host to copy into guest memory.
    pub fn to_bytes(&self) -> [u8; TSS_SIZE] {
        let mut out = [0u8; TSS_SIZE];
        let rsp = self.rsp;
        let ist = self.ist;
        for (i, v) in rsp.iter().enumerate() {
            let at = TSS_RSP0_OFFSET + 8 * i;
            out[at..at + 8].copy_from_slice(&v.to_le_bytes());
        }
        for (i, v) in ist.iter().enumerate() {
            let at = TSS_IST1_OFFSET + 8 * i;
            out[at..at + 8].copy_from_slice(&v.to_le_bytes());
        }
        let iomap = self.iomap_base;
        out[TSS_IOMAP_BASE_OFFSET..].copy_from_slice(&iomap.to_le_bytes());
        out
    }
}

impl Default for Tss64 {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_and_accessors() {
        let mut tss = Tss64::new();
        assert_eq!(tss.iomap_base(), 104);
        tss.set_rsp0(0x1111);
        tss.set_ist(Ist::Ist1, 0x2222);
        tss.set_ist(Ist::Ist7, 0x7777);
        assert_eq!(
            (tss.rsp0(), tss.ist(Ist::Ist1), tss.ist(Ist::Ist7)),
            (0x1111, 0x2222, 0x7777)
        );
        let b = tss.to_bytes();
        assert_eq!(b[4..12], 0x1111u64.to_le_bytes());
        assert_eq!(b[0x24..0x2c], 0x2222u64.to_le_bytes());
        assert_eq!(b[0x54..0x5c], 0x7777u64.to_le_bytes());
        assert_eq!(b[102..], [104, 0]);
        assert_eq!(
            b.iter().map(|&x| x as u32).sum::<u32>(),
            0x11 * 2 + 0x22 * 2 + 0x77 * 2 + 104
        );
    }

    #[test]
    fn ist_indices() {
        assert_eq!(Ist::from_index(0), None);
        assert_eq!(Ist::from_index(8), None);
        for n in 1..=7 {
            assert_eq!(Ist::from_index(n).map(Ist::index), Some(n));
        }
    }
}
