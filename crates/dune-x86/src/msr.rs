//! Model-specific register numbers (SDM Vol. 4, Table 2-2, "IA-32
//! Architectural MSRs"; APM Vol. 2 Appendix A).

/// Time-stamp counter.
pub const TSC: u32 = 0x10;
/// Local APIC base address and enable.
pub const APIC_BASE: u32 = 0x1b;
/// SYSENTER target CS.
pub const SYSENTER_CS: u32 = 0x174;
/// SYSENTER target RSP.
pub const SYSENTER_ESP: u32 = 0x175;
/// SYSENTER target RIP.
pub const SYSENTER_EIP: u32 = 0x176;
/// MTRR capabilities ([`mtrr`]).
pub const MTRRCAP: u32 = 0xfe;
/// Miscellaneous feature enables.
pub const MISC_ENABLE: u32 = 0x1a0;
/// Debug control: last-branch recording and friends.
pub const DEBUGCTL: u32 = 0x1d9;
/// `DEBUGCTL` bit 0: record the last branch.
pub const DEBUGCTL_LBR: u64 = 1 << 0;
/// Last branch from-IP (P6 family layout; newer CPUs keep a stack of these
/// elsewhere).
pub const LASTBRANCH_FROM_IP: u32 = 0x1db;
/// Last branch to-IP (P6 family layout).
pub const LASTBRANCH_TO_IP: u32 = 0x1dc;
/// Last exception from-IP (P6 family layout).
pub const LASTINT_FROM_IP: u32 = 0x1dd;
/// Last exception to-IP (P6 family layout).
pub const LASTINT_TO_IP: u32 = 0x1de;
/// Page-attribute table (SDM Vol. 3A §11.12, "Page Attribute Table").
pub const PAT: u32 = 0x277;
/// Supervisor state components enabled for `xsaves`.
pub const XSS: u32 = 0xda0;
/// Extended feature enables ([`crate::regs::efer`]).
pub const EFER: u32 = 0xc000_0080;
/// SYSCALL/SYSRET segment selectors ([`crate::gdt::STAR`]).
pub const STAR: u32 = 0xc000_0081;
/// 64-bit SYSCALL target RIP.
pub const LSTAR: u32 = 0xc000_0082;
/// Compatibility-mode SYSCALL target RIP (AMD; unused on Intel).
pub const CSTAR: u32 = 0xc000_0083;
/// RFLAGS bits SYSCALL clears ([`crate::regs::rflags::SYSCALL_MASK`]); Intel
/// calls it `IA32_FMASK`.
pub const SFMASK: u32 = 0xc000_0084;
/// FS base.
pub const FS_BASE: u32 = 0xc000_0100;
/// GS base.
pub const GS_BASE: u32 = 0xc000_0101;
/// The GS base `swapgs` exchanges with [`GS_BASE`].
pub const KERNEL_GS_BASE: u32 = 0xc000_0102;
/// Auxiliary TSC value returned by `rdtscp` and `rdpid`.
pub const TSC_AUX: u32 = 0xc000_0103;

/// x2APIC registers, each an MSR at `0x800 + (xAPIC offset >> 4)` (SDM Vol.
/// 3A §11.12.1.2, "x2APIC Register Address Space", Table 11-6).
pub mod x2apic {
    /// Local APIC ID (read only in x2APIC mode; KVM makes it the vCPU id).
    pub const ID: u32 = 0x802;
    /// End of interrupt: write 0.
    pub const EOI: u32 = 0x80b;
    /// Interrupt command register (64 bits: destination in 63:32).
    pub const ICR: u32 = 0x830;
    /// ICR delivery mode fixed (bits 10:8 = 000).
    pub const ICR_FIXED: u64 = 0b000 << 8;
    /// ICR delivery mode NMI (bits 10:8 = 100); the vector is ignored.
    pub const ICR_NMI: u64 = 0b100 << 8;
    /// ICR destination mode physical (bit 11 = 0).
    pub const ICR_PHYSICAL: u64 = 0;
    /// Position of the destination (an x2APIC ID) in the ICR.
    pub const ICR_DEST_SHIFT: u32 = 32;
}

/// Memory-type range registers (SDM Vol. 3A §11.11, "Memory Type Range
/// Registers", Figures 11-5 and 11-7).
pub mod mtrr {
    /// `MTRRCAP` bits 7:0: number of variable-range pairs.
    pub const CAP_VCNT_MASK: u64 = 0xff;
    /// `MTRRCAP` bit 8: fixed-range registers supported.
    pub const CAP_FIX: u64 = 1 << 8;
    /// `MTRRCAP` bit 10: write-combining supported.
    pub const CAP_WC: u64 = 1 << 10;
    /// `IA32_MTRR_PHYSBASEn`.
    pub const fn physbase(n: u32) -> u32 {
        0x200 + 2 * n
    }
    /// `IA32_MTRR_PHYSMASKn`.
    pub const fn physmask(n: u32) -> u32 {
        0x201 + 2 * n
    }
    /// Memory type uncacheable.
    pub const TYPE_UC: u64 = 0x00;
    /// Memory type write-combining.
    pub const TYPE_WC: u64 = 0x01;
    /// Memory type write-through.
    pub const TYPE_WT: u64 = 0x04;
    /// Memory type write-protected.
    pub const TYPE_WP: u64 = 0x05;
    /// Memory type write-back.
    pub const TYPE_WB: u64 = 0x06;
    /// `IA32_MTRR_PHYSMASKn` bit 11: the pair is valid.
    pub const PHYSMASK_VALID: u64 = 1 << 11;
}

/// Power-up value of `IA32_PAT`: WB, WT, UC-, UC, repeated (SDM Vol. 3A
/// §11.12.4, "Programming the PAT", Table 11-12).
pub const PAT_DEFAULT: u64 = 0x0007_0406_0007_0406;
