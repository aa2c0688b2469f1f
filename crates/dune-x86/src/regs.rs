//! Bits of the control registers, DR7, EFER, RFLAGS and XCR0.

/// CR0 bits (SDM Vol. 3A §2.5, "Control Registers", Figure 2-7).
pub mod cr0 {
    /// Protection enable.
    pub const PE: u64 = 1 << 0;
    /// Monitor coprocessor: `wait`/`fwait` honour TS.
    pub const MP: u64 = 1 << 1;
    /// Emulation: x87 instructions raise #NM.
    pub const EM: u64 = 1 << 2;
    /// Task switched: the next x87/SSE instruction raises #NM.
    pub const TS: u64 = 1 << 3;
    /// Extension type (reads as 1).
    pub const ET: u64 = 1 << 4;
    /// Numeric error: native x87 error reporting (#MF).
    pub const NE: u64 = 1 << 5;
    /// Write protect: ring 0 honours read-only pages.
    pub const WP: u64 = 1 << 16;
    /// Alignment mask: enables #AC together with RFLAGS.AC at CPL 3.
    pub const AM: u64 = 1 << 18;
    /// Not write-through.
    pub const NW: u64 = 1 << 29;
    /// Cache disable.
    pub const CD: u64 = 1 << 30;
    /// Paging.
    pub const PG: u64 = 1 << 31;
}

/// CR3 bits (SDM Vol. 3A §4.5, "4-Level Paging", Table 4-12, and §4.10.4.1,
/// "Operations that Invalidate TLBs and Paging-Structure Caches").
pub mod cr3 {
    /// Page-level write-through of the root table (when CR4.PCIDE = 0).
    pub const PWT: u64 = 1 << 3;
    /// Page-level cache disable of the root table (when CR4.PCIDE = 0).
    pub const PCD: u64 = 1 << 4;
    /// The process-context identifier (when CR4.PCIDE = 1).
    pub const PCID_MASK: u64 = 0xfff;
    /// On a write with CR4.PCIDE = 1: keep the translations cached for the new
    /// PCID. Not part of the register; with CR4.PCIDE = 0 it must be clear.
    pub const NOFLUSH: u64 = 1 << 63;
}

/// CR4 bits (SDM Vol. 3A §2.5, Figure 2-7).
pub mod cr4 {
    /// Virtual-8086 mode extensions.
    pub const VME: u64 = 1 << 0;
    /// Protected-mode virtual interrupts.
    pub const PVI: u64 = 1 << 1;
    /// Time stamp disable: `rdtsc` privileged.
    pub const TSD: u64 = 1 << 2;
    /// Debugging extensions.
    pub const DE: u64 = 1 << 3;
    /// Page size extensions (ignored with PAE).
    pub const PSE: u64 = 1 << 4;
    /// Physical address extension; required for 4-level paging.
    pub const PAE: u64 = 1 << 5;
    /// Machine-check enable.
    pub const MCE: u64 = 1 << 6;
    /// Page global enable: honour the G bit of leaves.
    pub const PGE: u64 = 1 << 7;
    /// Performance-monitoring counter enable: `rdpmc` at any CPL.
    pub const PCE: u64 = 1 << 8;
    /// OS supports `fxsave`/`fxrstor`; enables SSE.
    pub const OSFXSR: u64 = 1 << 9;
    /// OS handles unmasked SIMD floating-point exceptions (#XM).
    pub const OSXMMEXCPT: u64 = 1 << 10;
    /// User-mode instruction prevention (`sgdt`, `sidt`, ... at CPL 3 fault).
    pub const UMIP: u64 = 1 << 11;
    /// 57-bit linear addresses (5-level paging).
    pub const LA57: u64 = 1 << 12;
    /// VMX enable.
    pub const VMXE: u64 = 1 << 13;
    /// SMX enable.
    pub const SMXE: u64 = 1 << 14;
    /// `rdfsbase`/`wrfsbase`/`rdgsbase`/`wrgsbase` enable.
    pub const FSGSBASE: u64 = 1 << 16;
    /// Process-context identifiers.
    pub const PCIDE: u64 = 1 << 17;
    /// `xsave` and extended states enable.
    pub const OSXSAVE: u64 = 1 << 18;
    /// Key-locker enable.
    pub const KL: u64 = 1 << 19;
    /// Supervisor-mode execution prevention.
    pub const SMEP: u64 = 1 << 20;
    /// Supervisor-mode access prevention.
    pub const SMAP: u64 = 1 << 21;
    /// Protection keys for user-mode pages.
    pub const PKE: u64 = 1 << 22;
    /// Control-flow enforcement technology.
    pub const CET: u64 = 1 << 23;
    /// Protection keys for supervisor-mode pages.
    pub const PKS: u64 = 1 << 24;
}

/// DR7 fields (SDM Vol. 3B §17.2.4, "Debug Control Register (DR7)", Figure 17-1).
pub mod dr7 {
    /// Local enable of breakpoint `n` (0..=3).
    pub const fn l(n: u32) -> u64 {
        1 << (2 * n)
    }
    /// Global enable of breakpoint `n` (0..=3).
    pub const fn g(n: u32) -> u64 {
        1 << (2 * n + 1)
    }
    /// Local exact breakpoint enable.
    pub const LE: u64 = 1 << 8;
    /// Global exact breakpoint enable.
    pub const GE: u64 = 1 << 9;
    /// General-detect enable: a `mov` to a debug register raises #DB.
    pub const GD: u64 = 1 << 13;
    /// Position of the two R/W bits of breakpoint `n`.
    pub const fn rw_shift(n: u32) -> u32 {
        16 + 4 * n
    }
    /// Position of the two LEN bits of breakpoint `n`.
    pub const fn len_shift(n: u32) -> u32 {
        18 + 4 * n
    }
    /// R/W: break on instruction execution.
    pub const RW_EXEC: u64 = 0b00;
    /// R/W: break on data writes.
    pub const RW_WRITE: u64 = 0b01;
    /// R/W: break on I/O (with CR4.DE).
    pub const RW_IO: u64 = 0b10;
    /// R/W: break on data reads or writes.
    pub const RW_RW: u64 = 0b11;
    /// LEN: one byte.
    pub const LEN_1: u64 = 0b00;
    /// LEN: two bytes.
    pub const LEN_2: u64 = 0b01;
    /// LEN: eight bytes.
    pub const LEN_8: u64 = 0b10;
    /// LEN: four bytes.
    pub const LEN_4: u64 = 0b11;
}

/// `IA32_EFER` bits (SDM Vol. 3A §2.2.1, "Extended Feature Enable Register";
/// APM Vol. 2 §3.1.7).
pub mod efer {
    /// SYSCALL/SYSRET enable.
    pub const SCE: u64 = 1 << 0;
    /// Long mode enable.
    pub const LME: u64 = 1 << 8;
    /// Long mode active (read-only, set by the processor).
    pub const LMA: u64 = 1 << 10;
    /// No-execute enable: honour the NX bit of paging entries.
    pub const NXE: u64 = 1 << 11;
    /// Secure virtual machine enable (AMD).
    pub const SVME: u64 = 1 << 12;
    /// Long mode segment limit enable (AMD).
    pub const LMSLE: u64 = 1 << 13;
    /// Fast `fxsave`/`fxrstor` (AMD).
    pub const FFXSR: u64 = 1 << 14;
    /// Translation cache extension (AMD).
    pub const TCE: u64 = 1 << 15;
}

/// RFLAGS bits (SDM Vol. 1 §3.4.3, "EFLAGS Register", Figure 3-8).
pub mod rflags {
    /// Carry.
    pub const CF: u64 = 1 << 0;
    /// Bit 1, reserved: always reads as 1 and must be written as 1.
    pub const FIXED: u64 = 1 << 1;
    /// Parity.
    pub const PF: u64 = 1 << 2;
    /// Auxiliary carry.
    pub const AF: u64 = 1 << 4;
    /// Zero.
    pub const ZF: u64 = 1 << 6;
    /// Sign.
    pub const SF: u64 = 1 << 7;
    /// Trap: single-step.
    pub const TF: u64 = 1 << 8;
    /// Interrupt enable.
    pub const IF: u64 = 1 << 9;
    /// Direction.
    pub const DF: u64 = 1 << 10;
    /// Overflow.
    pub const OF: u64 = 1 << 11;
    /// I/O privilege level (two bits).
    pub const IOPL: u64 = 0b11 << 12;
    /// Position of the IOPL field.
    pub const IOPL_SHIFT: u32 = 12;
    /// Nested task.
    pub const NT: u64 = 1 << 14;
    /// Resume: suppress instruction breakpoints for one instruction.
    pub const RF: u64 = 1 << 16;
    /// Virtual-8086 mode.
    pub const VM: u64 = 1 << 17;
    /// Alignment check / SMAP access control.
    pub const AC: u64 = 1 << 18;
    /// Virtual interrupt flag.
    pub const VIF: u64 = 1 << 19;
    /// Virtual interrupt pending.
    pub const VIP: u64 = 1 << 20;
    /// CPUID available (toggleable).
    pub const ID: u64 = 1 << 21;

    /// Flags SYSCALL should clear on entry (the `IA32_FMASK` value): traps,
    /// interrupts, direction, I/O privilege, nested task and alignment check,
    /// as Linux does.
    pub const SYSCALL_MASK: u64 = TF | IF | DF | IOPL | NT | AC;
}

/// XCR0 state-component bits (SDM Vol. 1 §13.3, "Enabling the XSAVE Feature
/// Set and XSAVE-Enabled Features").
pub mod xcr0 {
    /// x87 state (must be 1).
    pub const X87: u64 = 1 << 0;
    /// SSE state (XMM registers, MXCSR).
    pub const SSE: u64 = 1 << 1;
    /// AVX state (upper halves of YMM); needs SSE.
    pub const AVX: u64 = 1 << 2;
    /// MPX bound registers.
    pub const BNDREG: u64 = 1 << 3;
    /// MPX bound configuration and status.
    pub const BNDCSR: u64 = 1 << 4;
    /// AVX-512 opmask registers.
    pub const OPMASK: u64 = 1 << 5;
    /// AVX-512 upper halves of ZMM0–15.
    pub const ZMM_HI256: u64 = 1 << 6;
    /// AVX-512 ZMM16–31.
    pub const HI16_ZMM: u64 = 1 << 7;
    /// PKRU register.
    pub const PKRU: u64 = 1 << 9;
    /// AMX tile configuration.
    pub const TILECFG: u64 = 1 << 17;
    /// AMX tile data.
    pub const TILEDATA: u64 = 1 << 18;
    /// The three AVX-512 components, which must be enabled together.
    pub const AVX512: u64 = OPMASK | ZMM_HI256 | HI16_ZMM;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typical_long_mode_values() {
        // The values KVM selftests and Firecracker load for a 64-bit guest.
        assert_eq!(cr0::PE | cr0::ET | cr0::NE | cr0::WP | cr0::PG, 0x8001_0031);
        assert_eq!(cr4::PAE | cr4::OSFXSR | cr4::OSXMMEXCPT, 0x620);
        assert_eq!(efer::LME | efer::LMA | efer::SCE | efer::NXE, 0xd01);
        assert_eq!(rflags::FIXED, 0x2);
        assert_eq!(rflags::SYSCALL_MASK, 0x4_7700);
        assert_eq!(rflags::IOPL >> rflags::IOPL_SHIFT, 3);
        assert_eq!(cr4::SMEP | cr4::SMAP | cr4::PKE, 0x70_0000);
        assert_eq!(xcr0::X87 | xcr0::SSE | xcr0::AVX | xcr0::AVX512, 0xe7);
    }

    #[test]
    fn debug_and_cr3_fields() {
        // DR7 enabling breakpoint 1 locally and 3 globally, with general detect.
        assert_eq!(dr7::l(1) | dr7::g(3) | dr7::GD, 0x2084);
        // Breakpoint 2: write watch of 4 bytes.
        assert_eq!((dr7::RW_WRITE << dr7::rw_shift(2)) | (dr7::LEN_4 << dr7::len_shift(2)), 0x0d00_0000);
        assert_eq!(cr3::NOFLUSH | cr3::PCID_MASK, 0x8000_0000_0000_0fff);
        assert_eq!(cr3::PWT | cr3::PCD, 0x18);
    }
}
