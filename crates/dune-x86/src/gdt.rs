//! Segment descriptors, selectors and the GDT layout Dune uses.
//!
//! Descriptor format: SDM Vol. 3A §3.4.5, "Segment Descriptors" (Figure 3-8)
//! and §5.2.1, "Code-Segment Descriptor in 64-bit Mode". The layout puts the
//! user data segment below the user code segment because SYSRET derives both
//! selectors from one STAR field (SDM Vol. 3A §5.8.8, "Fast System Calls in
//! 64-Bit Mode"; APM Vol. 2 §6.1.1, "SYSCALL and SYSRET"):
//!
//! | index | selector | descriptor                  |
//! |-------|----------|-----------------------------|
//! | 0     | 0x00     | null                        |
//! | 1     | 0x08     | kernel code, 64-bit, DPL 0  |
//! | 2     | 0x10     | kernel data, DPL 0          |
//! | 3     | 0x1b     | user data, DPL 3            |
//! | 4     | 0x23     | user code, 64-bit, DPL 3    |
//! | 5–6   | 0x28     | 64-bit TSS (16 bytes)       |

use crate::tss::Tss64;

/// A privilege level: a descriptor's DPL or a selector's RPL.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum PrivilegeLevel {
    /// Ring 0, the most privileged.
    Ring0 = 0,
    /// Ring 1.
    Ring1 = 1,
    /// Ring 2.
    Ring2 = 2,
    /// Ring 3, user mode.
    Ring3 = 3,
}

/// Accessed (type bit 0). Set in advance so loading a selector never makes the
/// processor write the descriptor (SDM Vol. 3A §3.4.5.1), which would fault if
/// the GDT is mapped read-only.
pub const DESC_ACCESSED: u64 = 1 << 40;
/// Readable (code) / writable (data) (type bit 1).
pub const DESC_RW: u64 = 1 << 41;
/// Expand-down (data) / conforming (code) (type bit 2).
pub const DESC_DC: u64 = 1 << 42;
/// Executable: a code segment (type bit 3).
pub const DESC_CODE: u64 = 1 << 43;
/// S: code or data segment rather than a system segment.
pub const DESC_S: u64 = 1 << 44;
/// Position of the two DPL bits.
pub const DESC_DPL_SHIFT: u32 = 45;
/// Present.
pub const DESC_P: u64 = 1 << 47;
/// Available for software.
pub const DESC_AVL: u64 = 1 << 52;
/// L: 64-bit code segment (SDM Vol. 3A §5.2.1).
pub const DESC_L: u64 = 1 << 53;
/// D/B: default operand size 32 bits (must be clear when L is set).
pub const DESC_DB: u64 = 1 << 54;
/// G: limit counted in 4 KiB units.
pub const DESC_G: u64 = 1 << 55;
/// Limit 0xfffff (bits 15:0 and 51:48) with base 0: a flat 4 GiB segment.
const FLAT: u64 = 0x000f_0000_0000_ffff;
/// System-segment type of an LDT (SDM Vol. 3A §3.5, Table 3-2).
pub const TYPE_LDT: u64 = 0x2;
/// System-segment type of a 64-bit call gate.
pub const TYPE_CALL_GATE64: u64 = 0xc;
/// System-segment type of an available 64-bit TSS (SDM Vol. 3A §3.5, Table 3-2):
/// what the GDT holds before `ltr`.
pub const TYPE_TSS64_AVAILABLE: u64 = 0x9;
/// System-segment type of a busy 64-bit TSS: what `ltr` leaves in TR, and what
/// VM entry requires of the guest TR a host sets directly (SDM Vol. 3C
/// §26.3.1.2, "Checks on Guest Segment Registers").
pub const TYPE_TSS64_BUSY: u64 = 0xb;

/// A 64-bit code-segment descriptor with privilege `dpl`.
///
/// Base and limit are ignored in 64-bit mode, but the descriptor is the flat
/// one Linux and Firecracker use (G = 1, limit 0xfffff) so that the segment
/// state the host gives KVM ([`Segment::from_descriptor`]) and what the guest
/// reloads from this GDT agree. `code64(Ring0)` is `0x00af_9b00_0000_ffff`.
pub const fn code64(dpl: PrivilegeLevel) -> u64 {
    FLAT | DESC_ACCESSED
        | DESC_RW
        | DESC_CODE
        | DESC_S
        | DESC_P
        | DESC_L
        | DESC_G
        | ((dpl as u64) << DESC_DPL_SHIFT)
}

/// A flat writable data-segment descriptor with privilege `dpl`.
/// `data(Ring0)` is `0x00cf_9300_0000_ffff`.
pub const fn data(dpl: PrivilegeLevel) -> u64 {
    FLAT | DESC_ACCESSED
        | DESC_RW
        | DESC_S
        | DESC_P
        | DESC_DB
        | DESC_G
        | ((dpl as u64) << DESC_DPL_SHIFT)
}

/// The 16-byte descriptor of an available 64-bit TSS at `base` with byte
/// limit `limit` (SDM Vol. 3A §7.2.3, "TSS Descriptor in 64-bit mode",
/// Figure 7-4). Element 0 is the low quadword.
pub const fn tss_descriptor(base: u64, limit: u32) -> [u64; 2] {
    let limit = limit as u64;
    let low = (limit & 0xffff)
        | ((base & 0x00ff_ffff) << 16)
        | (TYPE_TSS64_AVAILABLE << 40)
        | DESC_P
        | (((limit >> 16) & 0xf) << 48)
        | (((base >> 24) & 0xff) << 56);
    [low, base >> 32]
}

/// GDT index of the kernel 64-bit code segment.
pub const GDT_KERNEL_CODE: u16 = 1;
/// GDT index of the kernel data segment.
pub const GDT_KERNEL_DATA: u16 = 2;
/// GDT index of the user data segment.
pub const GDT_USER_DATA: u16 = 3;
/// GDT index of the user 64-bit code segment.
pub const GDT_USER_CODE: u16 = 4;
/// GDT index of the first half of the TSS descriptor.
pub const GDT_TSS: u16 = 5;
/// Number of 8-byte GDT slots.
pub const GDT_ENTRIES: usize = 7;

/// A selector for GDT slot `index` with requested privilege `rpl` (TI = 0).
pub const fn selector(index: u16, rpl: PrivilegeLevel) -> u16 {
    (index << 3) | rpl as u16
}

/// Kernel code selector, 0x08.
pub const KERNEL_CS: u16 = selector(GDT_KERNEL_CODE, PrivilegeLevel::Ring0);
/// Kernel data/stack selector, 0x10.
pub const KERNEL_DS: u16 = selector(GDT_KERNEL_DATA, PrivilegeLevel::Ring0);
/// User data/stack selector, 0x1b.
pub const USER_DS: u16 = selector(GDT_USER_DATA, PrivilegeLevel::Ring3);
/// User code selector, 0x23.
pub const USER_CS: u16 = selector(GDT_USER_CODE, PrivilegeLevel::Ring3);
/// TSS selector for `ltr`, 0x28.
pub const TSS_SELECTOR: u16 = selector(GDT_TSS, PrivilegeLevel::Ring0);

/// The `IA32_STAR` value for SYSCALL/SYSRET.
///
/// SYSCALL loads CS = `STAR[47:32]` and SS = `STAR[47:32] + 8`; 64-bit SYSRET
/// loads CS = `STAR[63:48] + 16` and SS = `STAR[63:48] + 8`, both with RPL
/// forced to 3 (SDM Vol. 2B, SYSCALL and SYSRET; APM Vol. 2 §6.1.1).
/// `STAR[31:0]` is the legacy-mode SYSCALL target, unused here.
pub const fn star(syscall_cs: u16, sysret_base: u16) -> u64 {
    ((sysret_base as u64) << 48) | ((syscall_cs as u64) << 32)
}

/// `IA32_STAR` for this layout: SYSCALL enters with 0x08/0x10, SYSRET
/// returns with 0x23/0x1b. Equals `0x0010_0008_0000_0000`.
pub const STAR: u64 = star(KERNEL_CS, KERNEL_DS);

/// The GDT of this layout, with a TSS of type [`Tss64`] at `tss_base`.
pub const fn build_gdt(tss_base: u64) -> [u64; GDT_ENTRIES] {
    let tss = tss_descriptor(tss_base, (core::mem::size_of::<Tss64>() - 1) as u32);
    [
        0,
        code64(PrivilegeLevel::Ring0),
        data(PrivilegeLevel::Ring0),
        data(PrivilegeLevel::Ring3),
        code64(PrivilegeLevel::Ring3),
        tss[0],
        tss[1],
    ]
}

/// The operand of `lgdt` / `lidt`: limit (size in bytes minus one) and linear
/// base (SDM Vol. 3A §3.5.1, Figure 3-11, 64-bit form).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(C, packed)]
pub struct DescriptorTablePointer {
    /// Size of the table in bytes minus one.
    pub limit: u16,
    /// Linear address of the table.
    pub base: u64,
}

const _: () = assert!(core::mem::size_of::<DescriptorTablePointer>() == 10);

impl DescriptorTablePointer {
    /// A pointer to a table at `base` of `entries` entries of `entry_size`
    /// bytes (saturating at the 64 KiB maximum).
    pub const fn new(base: u64, entries: usize, entry_size: usize) -> Self {
        let bytes = entries.saturating_mul(entry_size);
        let limit = if bytes == 0 {
            0
        } else if bytes > 0x1_0000 {
            0xffff
        } else {
            (bytes - 1) as u16
        };
        DescriptorTablePointer { limit, base }
    }

    /// The 10-byte in-memory form.
    pub const fn to_bytes(self) -> [u8; 10] {
        let l = self.limit.to_le_bytes();
        let b = self.base.to_le_bytes();
        [l[0], l[1], b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]
    }
}

/// A decoded code, data or system descriptor, in the shape of KVM's
/// `kvm_segment` (which the host fills so that the vCPU's hidden segment state
/// matches this GDT).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Segment {
    /// Base address (bits 31:0 only; a 16-byte system descriptor's upper half
    /// supplies bits 63:32).
    pub base: u64,
    /// Limit in bytes, scaled by G: `0xffff_ffff` for a flat segment.
    pub limit: u32,
    /// The 4-bit type field.
    pub type_: u8,
    /// S: code/data (true) or system (false).
    pub s: bool,
    /// Descriptor privilege level.
    pub dpl: u8,
    /// Present.
    pub present: bool,
    /// Available-for-software bit.
    pub avl: bool,
    /// L: 64-bit code.
    pub l: bool,
    /// D/B.
    pub db: bool,
    /// G: limit granularity 4 KiB.
    pub g: bool,
}

impl Segment {
    /// Decodes an 8-byte descriptor.
    pub const fn from_descriptor(desc: u64) -> Segment {
        let raw_limit = ((desc & 0xffff) | ((desc >> 32) & 0xf_0000)) as u32;
        let g = desc & DESC_G != 0;
        Segment {
            base: ((desc >> 16) & 0xff_ffff) | ((desc >> 32) & 0xff00_0000),
            limit: if g {
                (raw_limit << 12) | 0xfff
            } else {
                raw_limit
            },
            type_: ((desc >> 40) & 0xf) as u8,
            s: desc & DESC_S != 0,
            dpl: ((desc >> DESC_DPL_SHIFT) & 3) as u8,
            present: desc & DESC_P != 0,
            avl: desc & DESC_AVL != 0,
            l: desc & DESC_L != 0,
            db: desc & DESC_DB != 0,
            g,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn descriptors_match_linux_flat_segments() {
        // Linux GDT_ENTRY_INIT(0xa09b, 0, 0xfffff) and (0xc093, 0, 0xfffff).
        assert_eq!(code64(PrivilegeLevel::Ring0), 0x00af_9b00_0000_ffff);
        assert_eq!(data(PrivilegeLevel::Ring0), 0x00cf_9300_0000_ffff);
        // __USER_CS / __USER_DS: same with DPL 3.
        assert_eq!(code64(PrivilegeLevel::Ring3), 0x00af_fb00_0000_ffff);
        assert_eq!(data(PrivilegeLevel::Ring3), 0x00cf_f300_0000_ffff);
    }

    #[test]
    fn selectors_and_star() {
        assert_eq!(
            (KERNEL_CS, KERNEL_DS, USER_DS, USER_CS),
            (0x08, 0x10, 0x1b, 0x23)
        );
        assert_eq!(TSS_SELECTOR, 0x28);
        assert_eq!(STAR, 0x0010_0008_0000_0000);
        // SYSCALL.
        let syscall_cs = ((STAR >> 32) & 0xffff) as u16;
        assert_eq!((syscall_cs, syscall_cs + 8), (KERNEL_CS, KERNEL_DS));
        // 64-bit SYSRET.
        let base = (STAR >> 48) as u16;
        assert_eq!(((base + 16) | 3, (base + 8) | 3), (USER_CS, USER_DS));
    }

    #[test]
    fn tss_descriptor_layout() {
        let [low, high] = tss_descriptor(0xffff_8000_1234_5678, 103);
        assert_eq!(low, 0x1200_8934_5678_0067);
        assert_eq!(high, 0xffff_8000);
        let s = Segment::from_descriptor(low);
        assert_eq!(
            (s.base | (high << 32), s.limit),
            (0xffff_8000_1234_5678, 103)
        );
        assert_eq!((s.type_, s.s, s.present, s.g), (0x9, false, true, false));
    }

    #[test]
    fn gdt_layout() {
        let gdt = build_gdt(0x5000);
        assert_eq!(gdt[0], 0);
        assert_eq!(
            gdt[(KERNEL_CS >> 3) as usize],
            code64(PrivilegeLevel::Ring0)
        );
        assert_eq!(gdt[(USER_DS >> 3) as usize], data(PrivilegeLevel::Ring3));
        assert_eq!(gdt[5..], tss_descriptor(0x5000, 103));
    }

    #[test]
    fn decode_flat_code() {
        let s = Segment::from_descriptor(code64(PrivilegeLevel::Ring3));
        assert_eq!(
            s,
            Segment {
                base: 0,
                limit: 0xffff_ffff,
                type_: 0xb,
                s: true,
                dpl: 3,
                present: true,
                avl: false,
                l: true,
                db: false,
                g: true,
            }
        );
    }

    #[test]
    fn table_pointer() {
        let p = DescriptorTablePointer::new(0x1122_3344_5566_7788, GDT_ENTRIES, 8);
        assert_eq!({ p.limit }, 55);
        assert_eq!(
            p.to_bytes(),
            [55, 0, 0x88, 0x77, 0x66, 0x55, 0x44, 0x33, 0x22, 0x11]
        );
        assert_eq!({ DescriptorTablePointer::new(0, 256, 16).limit }, 4095);
        assert_eq!({ DescriptorTablePointer::new(0, 0, 16).limit }, 0);
    }
}
