//! 64-bit IDT gate descriptors (SDM Vol. 3A §6.14.1, "64-Bit Mode IDT",
//! Figure 6-8, "64-Bit IDT Gate Descriptors").

use core::mem::size_of;

use crate::gdt::PrivilegeLevel;
use crate::tss::Ist;

/// Number of IDT vectors.
pub const IDT_ENTRIES: usize = 256;

/// `lidt` limit of a full 256-entry IDT.
pub const IDT_LIMIT: u16 = (IDT_ENTRIES * size_of::<IdtEntry>() - 1) as u16;

/// Gate type (SDM Vol. 3A §3.5, Table 3-2, 64-bit column).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum GateType {
    /// 64-bit interrupt gate: clears RFLAGS.IF on entry.
    Interrupt = 0xe,
    /// 64-bit trap gate: leaves RFLAGS.IF unchanged.
    Trap = 0xf,
}

/// One 16-byte IDT gate, in the processor's layout.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[repr(C)]
pub struct IdtEntry {
    offset_low: u16,
    selector: u16,
    ist: u8,
    type_attr: u8,
    offset_mid: u16,
    offset_high: u32,
    reserved: u32,
}

const _: () = assert!(size_of::<IdtEntry>() == 16);

/// Present bit of the type/attribute byte.
const GATE_P: u8 = 0x80;
/// Position of the DPL bits in the type/attribute byte.
const GATE_DPL_SHIFT: u32 = 5;

impl IdtEntry {
    /// A non-present gate: using its vector raises #GP (or #DF).
    pub const MISSING: IdtEntry = IdtEntry {
        offset_low: 0,
        selector: 0,
        ist: 0,
        type_attr: 0,
        offset_mid: 0,
        offset_high: 0,
        reserved: 0,
    };

    /// A present gate to `handler` in code segment `selector`.
    ///
    /// `dpl` is the most privileged CPL that may reach the gate with `int n`
    /// (ring 3 for breakpoints and system-call vectors); hardware interrupts
    /// and exceptions ignore it. `ist` selects an interrupt-stack-table stack,
    /// `None` to stay on the current stack (or RSP0 on a ring change).
    pub const fn new(
        handler: u64,
        selector: u16,
        kind: GateType,
        dpl: PrivilegeLevel,
        ist: Option<Ist>,
    ) -> Self {
        IdtEntry {
            offset_low: handler as u16,
            selector,
            ist: match ist {
                Some(ist) => ist.index(),
                None => 0,
            },
            type_attr: GATE_P | ((dpl as u8) << GATE_DPL_SHIFT) | kind as u8,
            offset_mid: (handler >> 16) as u16,
            offset_high: (handler >> 32) as u32,
            reserved: 0,
        }
    }

    /// The handler address.
    pub const fn offset(&self) -> u64 {
        self.offset_low as u64
            | ((self.offset_mid as u64) << 16)
            | ((self.offset_high as u64) << 32)
    }

    /// The code-segment selector.
    pub const fn selector(&self) -> u16 {
        self.selector
    }

    /// The IST index (0 = none).
    pub const fn ist_index(&self) -> u8 {
        self.ist & 0x7
    }

    /// The gate type, or `None` if the type field is neither 0xE nor 0xF.
    pub const fn gate_type(&self) -> Option<GateType> {
        match self.type_attr & 0xf {
            0xe => Some(GateType::Interrupt),
            0xf => Some(GateType::Trap),
            _ => None,
        }
    }

    /// The descriptor privilege level.
    pub const fn dpl(&self) -> u8 {
        (self.type_attr >> GATE_DPL_SHIFT) & 3
    }

    /// Whether the gate is present.
    pub const fn is_present(&self) -> bool {
        self.type_attr & GATE_P != 0
    }

    /// The gate as two quadwords, low first, as stored in memory.
    pub const fn to_words(&self) -> [u64; 2] {
        let low = self.offset_low as u64
            | ((self.selector as u64) << 16)
            | ((self.ist as u64) << 32)
            | ((self.type_attr as u64) << 40)
            | ((self.offset_mid as u64) << 48);
        [
            low,
            self.offset_high as u64 | ((self.reserved as u64) << 32),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gate_bit_layout() {
        let g = IdtEntry::new(
            0x1234_5678_9abc_def0,
            0x08,
            GateType::Interrupt,
            PrivilegeLevel::Ring0,
            Some(Ist::Ist1),
        );
        // offset 15:0 | selector | IST | P,DPL0,type E | offset 31:16; offset 63:32.
        assert_eq!(g.to_words(), [0x9abc_8e01_0008_def0, 0x1234_5678]);
        assert_eq!(g.offset(), 0x1234_5678_9abc_def0);
        assert_eq!((g.selector(), g.ist_index(), g.dpl()), (0x08, 1, 0));
        assert_eq!(g.gate_type(), Some(GateType::Interrupt));
        assert!(g.is_present());

        let t = IdtEntry::new(
            0xffff_8000_0000_1000,
            0x08,
            GateType::Trap,
            PrivilegeLevel::Ring3,
            None,
        );
        assert_eq!(t.to_words(), [0x0000_ef00_0008_1000, 0xffff_8000]);
        assert_eq!(
            (t.dpl(), t.ist_index(), t.gate_type()),
            (3, 0, Some(GateType::Trap))
        );
    }

    #[test]
    fn missing_and_limit() {
        assert_eq!(IdtEntry::MISSING.to_words(), [0, 0]);
        assert!(!IdtEntry::default().is_present());
        assert_eq!(IdtEntry::MISSING.gate_type(), None);
        assert_eq!(IDT_LIMIT, 4095);
    }
}
