//! Pure decoders for CPUID results (SDM Vol. 2A, "CPUID—CPU Identification",
//! Table 3-8; APM Vol. 3 Appendix E). Each takes the register values of one
//! leaf, so host code (from `KVM_GET_SUPPORTED_CPUID`) and guest code (from
//! the `cpuid` instruction) share them.

/// Leaf 1: version and feature information.
pub const LEAF_FEATURES: u32 = 0x1;
/// Leaf 7 (subleaf 0): structured extended feature flags.
pub const LEAF_EXTENDED_FEATURES: u32 = 0x7;
/// Leaf 0xd: XSAVE state enumeration.
pub const LEAF_XSAVE: u32 = 0xd;
/// Leaf 0x80000001: extended processor signature and feature bits.
pub const LEAF_EXT_FEATURES: u32 = 0x8000_0001;
/// Leaf 0x80000008: physical and linear address sizes.
pub const LEAF_ADDRESS_SIZES: u32 = 0x8000_0008;

const fn bit(reg: u32, n: u32) -> bool {
    reg & (1 << n) != 0
}

/// MAXPHYADDR, the physical-address width in bits, from leaf 0x80000008 `EAX[7:0]`.
pub const fn max_phys_addr(eax_80000008: u32) -> u8 {
    eax_80000008 as u8
}

/// The linear-address width in bits, from leaf 0x80000008 `EAX[15:8]`.
pub const fn max_lin_addr(eax_80000008: u32) -> u8 {
    (eax_80000008 >> 8) as u8
}

/// Mask of the physical-address bits 51:12 that are below MAXPHYADDR: the
/// frame bits a paging entry may use on this processor (SDM Vol. 3A §4.5).
pub const fn phys_frame_mask(max_phys_addr: u8) -> u64 {
    let bits = if max_phys_addr > 52 {
        52
    } else {
        max_phys_addr
    };
    ((1u64 << bits) - 1) & !0xfff
}

/// VMX, leaf 1 ECX bit 5.
pub const fn has_vmx(ecx_1: u32) -> bool {
    bit(ecx_1, 5)
}

/// PCID, leaf 1 ECX bit 17.
pub const fn has_pcid(ecx_1: u32) -> bool {
    bit(ecx_1, 17)
}

/// XSAVE, leaf 1 ECX bit 26.
pub const fn has_xsave(ecx_1: u32) -> bool {
    bit(ecx_1, 26)
}

/// OSXSAVE (CR4.OSXSAVE is set), leaf 1 ECX bit 27.
pub const fn has_osxsave(ecx_1: u32) -> bool {
    bit(ecx_1, 27)
}

/// AVX, leaf 1 ECX bit 28.
pub const fn has_avx(ecx_1: u32) -> bool {
    bit(ecx_1, 28)
}

/// FSGSBASE instructions, leaf 7 EBX bit 0.
pub const fn has_fsgsbase(ebx_7: u32) -> bool {
    bit(ebx_7, 0)
}

/// SMEP, leaf 7 EBX bit 7.
pub const fn has_smep(ebx_7: u32) -> bool {
    bit(ebx_7, 7)
}

/// INVPCID, leaf 7 EBX bit 10.
pub const fn has_invpcid(ebx_7: u32) -> bool {
    bit(ebx_7, 10)
}

/// SMAP, leaf 7 EBX bit 20.
pub const fn has_smap(ebx_7: u32) -> bool {
    bit(ebx_7, 20)
}

/// Protection keys for user pages, leaf 7 ECX bit 3.
pub const fn has_pku(ecx_7: u32) -> bool {
    bit(ecx_7, 3)
}

/// SYSCALL/SYSRET in 64-bit mode, leaf 0x80000001 EDX bit 11.
pub const fn has_syscall(edx_80000001: u32) -> bool {
    bit(edx_80000001, 11)
}

/// Execute-disable (NX), leaf 0x80000001 EDX bit 20.
pub const fn has_nx(edx_80000001: u32) -> bool {
    bit(edx_80000001, 20)
}

/// 1 GiB pages, leaf 0x80000001 EDX bit 26.
pub const fn has_1g_pages(edx_80000001: u32) -> bool {
    bit(edx_80000001, 26)
}

/// `rdtscp`, leaf 0x80000001 EDX bit 27.
pub const fn has_rdtscp(edx_80000001: u32) -> bool {
    bit(edx_80000001, 27)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn address_sizes() {
        // A typical client part: 39-bit physical, 48-bit linear.
        assert_eq!(max_phys_addr(0x3027), 39);
        assert_eq!(max_lin_addr(0x3027), 48);
        assert_eq!(phys_frame_mask(39), 0x0000_007f_ffff_f000);
        assert_eq!(phys_frame_mask(52), crate::paging::ADDR_MASK);
        assert_eq!(phys_frame_mask(60), crate::paging::ADDR_MASK);
    }

    #[test]
    fn feature_bits() {
        // Leaf 1 ECX of a Skylake: VMX, PCID, XSAVE, OSXSAVE, AVX among others.
        let ecx_1 = 0x7ffa_fbff;
        assert!(has_vmx(ecx_1) && has_pcid(ecx_1) && has_xsave(ecx_1));
        assert!(has_osxsave(ecx_1) && has_avx(ecx_1));
        assert!(!has_pcid(0) && !has_avx(1 << 27));
        let ebx_7 = (1 << 0) | (1 << 7) | (1 << 10) | (1 << 20);
        assert!(has_fsgsbase(ebx_7) && has_smep(ebx_7) && has_invpcid(ebx_7) && has_smap(ebx_7));
        assert!(!has_fsgsbase(1 << 1));
        assert!(has_pku(1 << 3));
        let edx = (1 << 11) | (1 << 20) | (1 << 26) | (1 << 27);
        assert!(has_syscall(edx) && has_nx(edx) && has_1g_pages(edx) && has_rdtscp(edx));
        assert!(!has_1g_pages(1 << 25));
    }
}
