//! Exception vectors, their names, which push an error code, and the
//! page-fault error code (SDM Vol. 3A §6.3.1, Table 6-1, "Protected-Mode
//! Exceptions and Interrupts"; §6.15, "Exception and Interrupt Reference";
//! §4.7, "Page-Fault Exceptions"; AMD vectors from APM Vol. 2 §8.2).

use core::fmt;

/// #DE, divide error.
pub const DE: u8 = 0;
/// #DB, debug exception.
pub const DB: u8 = 1;
/// NMI, non-maskable interrupt.
pub const NMI: u8 = 2;
/// #BP, breakpoint (`int3`).
pub const BP: u8 = 3;
/// #OF, overflow (`into`, invalid in 64-bit mode).
pub const OF: u8 = 4;
/// #BR, BOUND range exceeded.
pub const BR: u8 = 5;
/// #UD, invalid opcode.
pub const UD: u8 = 6;
/// #NM, device not available (x87/SSE use with CR0.TS set).
pub const NM: u8 = 7;
/// #DF, double fault (error code zero).
pub const DF: u8 = 8;
/// #TS, invalid TSS.
pub const TS: u8 = 10;
/// #NP, segment not present.
pub const NP: u8 = 11;
/// #SS, stack-segment fault.
pub const SS: u8 = 12;
/// #GP, general protection.
pub const GP: u8 = 13;
/// #PF, page fault; CR2 holds the faulting address.
pub const PF: u8 = 14;
/// #MF, x87 floating-point error.
pub const MF: u8 = 16;
/// #AC, alignment check (error code zero).
pub const AC: u8 = 17;
/// #MC, machine check.
pub const MC: u8 = 18;
/// #XM, SIMD floating-point exception.
pub const XM: u8 = 19;
/// #VE, virtualization exception (EPT violations delivered to the guest).
pub const VE: u8 = 20;
/// #CP, control-protection exception (CET).
pub const CP: u8 = 21;
/// #HV, hypervisor injection exception (AMD SEV-SNP).
pub const HV: u8 = 28;
/// #VC, VMM communication exception (AMD SEV-ES).
pub const VC: u8 = 29;
/// #SX, security exception (AMD).
pub const SX: u8 = 30;
/// First vector not reserved for exceptions.
pub const FIRST_EXTERNAL: u8 = 32;

/// Whether the processor pushes an error code for exception `vector`.
/// External interrupts and `int n` never push one.
pub const fn has_error_code(vector: u8) -> bool {
    matches!(vector, DF | TS | NP | SS | GP | PF | AC | CP | VC | SX)
}

/// The mnemonic of `vector`: `"#PF"`, `"NMI"`, `"reserved"` or `"interrupt"`.
pub const fn exception_mnemonic(vector: u8) -> &'static str {
    match vector {
        DE => "#DE",
        DB => "#DB",
        NMI => "NMI",
        BP => "#BP",
        OF => "#OF",
        BR => "#BR",
        UD => "#UD",
        NM => "#NM",
        DF => "#DF",
        TS => "#TS",
        NP => "#NP",
        SS => "#SS",
        GP => "#GP",
        PF => "#PF",
        MF => "#MF",
        AC => "#AC",
        MC => "#MC",
        XM => "#XM",
        VE => "#VE",
        CP => "#CP",
        HV => "#HV",
        VC => "#VC",
        SX => "#SX",
        _ if vector < FIRST_EXTERNAL => "reserved",
        _ => "interrupt",
    }
}

/// The name of `vector`, e.g. `"page fault"`.
pub const fn exception_name(vector: u8) -> &'static str {
    match vector {
        DE => "divide error",
        DB => "debug",
        NMI => "non-maskable interrupt",
        BP => "breakpoint",
        OF => "overflow",
        BR => "BOUND range exceeded",
        UD => "invalid opcode",
        NM => "device not available",
        DF => "double fault",
        9 => "coprocessor segment overrun",
        TS => "invalid TSS",
        NP => "segment not present",
        SS => "stack-segment fault",
        GP => "general protection",
        PF => "page fault",
        MF => "x87 floating-point error",
        AC => "alignment check",
        MC => "machine check",
        XM => "SIMD floating-point exception",
        VE => "virtualization exception",
        CP => "control protection",
        HV => "hypervisor injection",
        VC => "VMM communication",
        SX => "security exception",
        _ if vector < FIRST_EXTERNAL => "reserved",
        _ => "external interrupt",
    }
}

/// A page-fault error code (SDM Vol. 3A §4.7, Figure 4-12). `Display` decodes
/// it, e.g. "write to present page from ring 0".
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct PageFaultError(pub u64);

impl PageFaultError {
    /// P: the page was present (a protection violation); clear: not present.
    pub const P: u64 = 1 << 0;
    /// W/R: the access was a write.
    pub const W: u64 = 1 << 1;
    /// U/S: the access was a user-mode (CPL 3) access.
    pub const U: u64 = 1 << 2;
    /// RSVD: a reserved bit was set in some paging-structure entry.
    pub const RSVD: u64 = 1 << 3;
    /// I/D: the access was an instruction fetch.
    pub const ID: u64 = 1 << 4;
    /// PK: protection-key violation.
    pub const PK: u64 = 1 << 5;
    /// SS: shadow-stack access.
    pub const SS: u64 = 1 << 6;
    /// SGX: violation of SGX-specific access-control requirements.
    pub const SGX: u64 = 1 << 15;

    /// Whether all of `bits` are set.
    pub const fn contains(self, bits: u64) -> bool {
        self.0 & bits == bits
    }
}

impl fmt::Display for PageFaultError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let access = if self.contains(Self::ID) {
            "instruction fetch from"
        } else if self.contains(Self::W) {
            "write to"
        } else {
            "read from"
        };
        let page = if self.contains(Self::P) {
            "present"
        } else {
            "non-present"
        };
        let ring = if self.contains(Self::U) { 3 } else { 0 };
        write!(f, "{access} {page} page from ring {ring}")?;
        for (bit, what) in [
            (Self::RSVD, "reserved bit set"),
            (Self::PK, "protection key"),
            (Self::SS, "shadow stack"),
            (Self::SGX, "SGX"),
        ] {
            if self.contains(bit) {
                write!(f, ", {what}")?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::string::ToString;

    #[test]
    fn vectors() {
        assert_eq!(
            (DE, NMI, DF, GP, PF, MC, XM, VE, CP),
            (0, 2, 8, 13, 14, 18, 19, 20, 21)
        );
        let with_code: std::vec::Vec<u8> = (0..=255).filter(|&v| has_error_code(v)).collect();
        assert_eq!(with_code, [8, 10, 11, 12, 13, 14, 17, 21, 29, 30]);
    }

    #[test]
    fn names() {
        assert_eq!(exception_name(PF), "page fault");
        assert_eq!(exception_mnemonic(PF), "#PF");
        assert_eq!(exception_name(15), "reserved");
        assert_eq!(exception_mnemonic(31), "reserved");
        assert_eq!(exception_name(32), "external interrupt");
        assert_eq!(exception_mnemonic(255), "interrupt");
    }

    #[test]
    fn page_fault_decoding() {
        let e = |bits| PageFaultError(bits).to_string();
        assert_eq!(
            e(PageFaultError::P | PageFaultError::W),
            "write to present page from ring 0"
        );
        assert_eq!(
            e(PageFaultError::U),
            "read from non-present page from ring 3"
        );
        assert_eq!(
            e(PageFaultError::ID | PageFaultError::P | PageFaultError::RSVD | PageFaultError::PK),
            "instruction fetch from present page from ring 0, reserved bit set, protection key"
        );
    }
}
