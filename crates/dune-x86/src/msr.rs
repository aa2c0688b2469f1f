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
/// Miscellaneous feature enables.
pub const MISC_ENABLE: u32 = 0x1a0;
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

/// Power-up value of `IA32_PAT`: WB, WT, UC-, UC, repeated (SDM Vol. 3A
/// §11.12.4, "Programming the PAT", Table 11-12).
pub const PAT_DEFAULT: u64 = 0x0007_0406_0007_0406;
