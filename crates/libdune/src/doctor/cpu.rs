//! The CPU: the host's (`/proc/cpuinfo`, `cpuid`, `xgetbv`) and the one KVM
//! offers a guest (`KVM_GET_SUPPORTED_CPUID`), decoded into [`Features`] and
//! compared: XSAVE/AVX, XCR0, MAXPHYADDR and 1 GiB pages.

use kvm_bindings::KVM_CPUID_FLAG_SIGNIFCANT_INDEX;

use super::types::{Check, Probe, Status, MIN_MAXPHYADDR};

/// The parts of `/proc/cpuinfo` the doctor reads (first processor only).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(super) struct CpuInfo {
    pub(super) vendor: Option<String>,
    pub(super) model: Option<String>,
    pub(super) flags: Vec<String>,
    pub(super) phys_bits: Option<u8>,
    pub(super) virt_bits: Option<u8>,
}

impl CpuInfo {
    pub(super) fn parse(text: &str) -> Self {
        let mut info = CpuInfo::default();
        for line in text.lines() {
            if line.trim().is_empty() {
                if info.vendor.is_some() || !info.flags.is_empty() {
                    break; // end of the first processor's block
                }
                continue;
            }
            let Some((key, value)) = line.split_once(':') else {
                continue;
            };
            let value = value.trim();
            match key.trim() {
                "vendor_id" => info.vendor = Some(value.to_string()),
                "model name" => info.model = Some(value.to_string()),
                "flags" => info.flags = value.split_whitespace().map(str::to_string).collect(),
                "address sizes" => {
                    let (phys, virt) = parse_address_sizes(value);
                    info.phys_bits = phys;
                    info.virt_bits = virt;
                }
                _ => {}
            }
        }
        info
    }

    fn has_flag(&self, flag: &str) -> bool {
        self.flags.iter().any(|f| f == flag)
    }

    pub(super) fn has_virt_flag(&self) -> bool {
        self.has_flag("vmx") || self.has_flag("svm")
    }
}

/// `"48 bits physical, 48 bits virtual"` -> `(Some(48), Some(48))`.
fn parse_address_sizes(value: &str) -> (Option<u8>, Option<u8>) {
    let mut phys = None;
    let mut virt = None;
    for part in value.split(',') {
        let mut words = part.split_whitespace();
        let bits = words.next().and_then(|n| n.parse().ok());
        if words.next() != Some("bits") {
            continue;
        }
        match words.next() {
            Some("physical") => phys = bits,
            Some("virtual") => virt = bits,
            _ => {}
        }
    }
    (phys, virt)
}

pub(super) fn host_cpu_check(cpuinfo: Option<&CpuInfo>, vendor: Option<&str>) -> Check {
    let vendor = vendor.unwrap_or("unknown vendor");
    let Some(info) = cpuinfo else {
        return Check::new(
            Probe::HostCpu,
            Status::Warn,
            format!("{vendor}; cannot read /proc/cpuinfo"),
        );
    };
    let model = info
        .model
        .as_deref()
        .map(|m| format!(" ({m})"))
        .unwrap_or_default();
    let virt: Vec<&str> = ["vmx", "svm"]
        .into_iter()
        .filter(|f| info.has_flag(f))
        .collect();
    let under = if info.has_flag("hypervisor") {
        ", itself running under a hypervisor"
    } else {
        ""
    };
    if virt.is_empty() {
        Check::new(
            Probe::HostCpu,
            Status::Warn,
            format!(
                "{vendor}{model}{under}; no vmx/svm flag: this kernel has no hardware \
                 virtualization (enable it in the BIOS, or nested virtualization in the hypervisor)"
            ),
        )
    } else {
        Check::new(
            Probe::HostCpu,
            Status::Ok,
            format!("{vendor}{model}{under}; {}", virt.join(" ")),
        )
    }
}

/// One CPUID leaf's output registers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) struct Regs {
    pub(super) eax: u32,
    pub(super) ebx: u32,
    pub(super) ecx: u32,
    pub(super) edx: u32,
}

/// One entry of `KVM_GET_SUPPORTED_CPUID`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct CpuidEntry {
    pub(super) function: u32,
    pub(super) index: u32,
    pub(super) flags: u32,
    pub(super) regs: Regs,
}

/// Finds leaf `function`, sub-leaf `index` (which matters only for entries
/// flagged `KVM_CPUID_FLAG_SIGNIFCANT_INDEX`).
pub(super) fn lookup(entries: &[CpuidEntry], function: u32, index: u32) -> Option<Regs> {
    entries
        .iter()
        .find(|e| {
            e.function == function
                && (e.flags & KVM_CPUID_FLAG_SIGNIFCANT_INDEX == 0 || e.index == index)
        })
        .map(|e| e.regs)
}

/// CPU features the doctor compares between host and guest.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) struct Features {
    /// CPUID.1:ECX\[26\].
    pub(super) xsave: bool,
    /// CPUID.1:ECX\[27\]: the OS set CR4.OSXSAVE (meaningful on the host only).
    pub(super) osxsave: bool,
    /// CPUID.1:ECX\[28\].
    pub(super) avx: bool,
    /// CPUID.(7,0):EBX\[5\].
    pub(super) avx2: bool,
    /// CPUID.(7,0):EBX\[16\].
    pub(super) avx512f: bool,
    /// CPUID.8000_0001:EDX\[26\] (Page1GB).
    pub(super) gib_pages: bool,
    /// CPUID.8000_0008:EAX\[7:0\].
    pub(super) maxphyaddr: Option<u8>,
    /// CPUID.(0xD,0) EDX:EAX: XCR0 bits that may be set (usable only if
    /// `xsave`).
    pub(super) xcr0: Option<u64>,
}

/// Decodes [`Features`] from a CPUID source (`None` for absent leaves).
/// Bit positions: Intel SDM Vol. 2A, CPUID, Tables 3-8 to 3-10; AMD APM Vol. 3, E.4.
pub(super) fn decode_features(cpuid: impl Fn(u32, u32) -> Option<Regs>) -> Features {
    let bit = |word: u32, n: u32| word & (1 << n) != 0;
    let mut f = Features::default();
    if let Some(r) = cpuid(1, 0) {
        f.xsave = bit(r.ecx, 26);
        f.osxsave = bit(r.ecx, 27);
        f.avx = bit(r.ecx, 28);
    }
    if let Some(r) = cpuid(7, 0) {
        f.avx2 = bit(r.ebx, 5);
        f.avx512f = bit(r.ebx, 16);
    }
    if let Some(r) = cpuid(0x8000_0001, 0) {
        f.gib_pages = bit(r.edx, 26);
    }
    if let Some(r) = cpuid(0x8000_0008, 0) {
        f.maxphyaddr = Some((r.eax & 0xff) as u8);
    }
    if let Some(r) = cpuid(0xd, 0) {
        f.xcr0 = Some(u64::from(r.edx) << 32 | u64::from(r.eax));
    }
    f
}

/// XCR0 state components (Intel SDM Vol. 1, 13.1 "XSAVE-supported features
/// and state-component bitmaps").
const XCR0_COMPONENTS: [(u32, &str); 12] = [
    (0, "x87"),
    (1, "sse"),
    (2, "avx"),
    (3, "bndregs"),
    (4, "bndcsr"),
    (5, "opmask"),
    (6, "zmm_hi256"),
    (7, "hi16_zmm"),
    (9, "pkru"),
    (17, "xtilecfg"),
    (18, "xtiledata"),
    (19, "apx"),
];
/// XCR0 bits SSE and AVX: both must be set for AVX to be usable.
const XCR0_AVX: u64 = 0b110;
/// XCR0 bits opmask, ZMM_Hi256, Hi16_ZMM: all set for AVX-512 to be usable.
const XCR0_AVX512: u64 = 0b1110_0000;
/// XCR0 components ordinary code relies on without asking: x87, SSE, AVX,
/// AVX-512 (glibc's string functions pick AVX2/AVX-512 variants from CPUID
/// and XCR0 at startup) and APX. The rest (MPX, PKRU, AMX) fault only in
/// code that uses them directly; MPX is obsolete (removed from Linux 5.6 and
/// GCC 9) and KVM no longer offers it to guests.
const XCR0_ESSENTIAL: u64 = 0b1110_0111 | 1 << 19;

/// `0x207 (x87 sse avx pkru)`.
fn describe_xcr0(xcr0: u64) -> String {
    let mut names: Vec<String> = Vec::new();
    let mut known = 0u64;
    for (bit, name) in XCR0_COMPONENTS {
        known |= 1 << bit;
        if xcr0 & (1 << bit) != 0 {
            names.push(name.to_string());
        }
    }
    if xcr0 & !known != 0 {
        names.push(format!("other {:#x}", xcr0 & !known));
    }
    format!("{xcr0:#x} ({})", names.join(" "))
}

/// What glibc will use on the host: AVX needs CPUID.AVX, OSXSAVE and XCR0
/// SSE|AVX (glibc's `CPU_FEATURE_USABLE` rules).
fn host_usable(host: &Features, xcr0: Option<u64>) -> (bool, bool, bool) {
    let xcr0 = if host.osxsave { xcr0.unwrap_or(0) } else { 0 };
    let avx = host.avx && xcr0 & XCR0_AVX == XCR0_AVX;
    let avx2 = avx && host.avx2;
    let avx512 = avx && host.avx512f && xcr0 & XCR0_AVX512 == XCR0_AVX512;
    (avx, avx2, avx512)
}

pub(super) fn avx_check(
    guest: &Features,
    host: &Features,
    host_xcr0: Option<u64>,
    pvm: bool,
) -> Check {
    let (avx, avx2, avx512) = host_usable(host, host_xcr0);
    let guest_xcr0 = guest.xcr0.unwrap_or(0);
    let g_avx = guest.xsave && guest.avx && guest_xcr0 & XCR0_AVX == XCR0_AVX;
    let g_avx2 = g_avx && guest.avx2;
    let g_avx512 = g_avx && guest.avx512f && guest_xcr0 & XCR0_AVX512 == XCR0_AVX512;
    let list = |xsave: bool, a: bool, a2: bool, a512: bool| {
        let v: Vec<&str> = [
            (xsave, "xsave"),
            (a, "avx"),
            (a2, "avx2"),
            (a512, "avx512f"),
        ]
        .into_iter()
        .filter_map(|(on, name)| on.then_some(name))
        .collect();
        if v.is_empty() {
            "none".to_string()
        } else {
            v.join(" ")
        }
    };
    let summary = format!(
        "host uses {}; guest offered {}",
        list(host.xsave && host.osxsave, avx, avx2, avx512),
        list(guest.xsave, g_avx, g_avx2, g_avx512)
    );
    let missing: Vec<&str> = [
        (avx && !g_avx, "avx"),
        (avx2 && !g_avx2, "avx2"),
        (avx512 && !g_avx512, "avx512f"),
    ]
    .into_iter()
    .filter_map(|(gap, name)| gap.then_some(name))
    .collect();
    if !missing.is_empty() {
        Check::new(
            Probe::GuestAvx,
            Status::Fail,
            format!(
                "{summary}: guest lacks {}, so glibc's AVX memcpy would fault in Dune mode",
                missing.join(" ")
            ),
        )
    } else if pvm && avx {
        Check::new(
            Probe::GuestAvx,
            Status::Fail,
            format!("{summary}, but kvm_pvm's ring-0 emulator rejects AVX: glibc's AVX memcpy would fault"),
        )
    } else {
        Check::new(Probe::GuestAvx, Status::Ok, summary)
    }
}

/// Host XCR0 versus the XCR0 bits the guest may set (`guest_xcr0` is `None`
/// when KVM does not offer XSAVE to the guest at all).
pub(super) fn xcr0_check(
    host_xcr0: Option<u64>,
    guest_xcr0: Option<u64>,
    xcrs: bool,
    pvm: bool,
) -> Check {
    let Some(host) = host_xcr0 else {
        return Check::new(
            Probe::Xcr0,
            Status::Ok,
            "host OS does not enable XSAVE (no OSXSAVE): nothing to mirror",
        );
    };
    let Some(guest) = guest_xcr0 else {
        return Check::new(
            Probe::Xcr0,
            Status::Fail,
            format!(
                "host {}; KVM does not offer XSAVE to the guest (supported CPUID 1 ECX[26] clear)",
                describe_xcr0(host)
            ),
        );
    };
    let summary = format!(
        "host {}; guest may set {}",
        describe_xcr0(host),
        describe_xcr0(guest)
    );
    let uncovered = host & !guest;
    if uncovered & XCR0_ESSENTIAL != 0 {
        Check::new(
            Probe::Xcr0,
            Status::Fail,
            format!(
                "{summary}: guest cannot enable {}",
                describe_xcr0(uncovered)
            ),
        )
    } else if !xcrs {
        Check::new(
            Probe::Xcr0,
            Status::Fail,
            format!("{summary}, but KVM_CAP_XCRS is missing: guest XCR0 cannot be set"),
        )
    } else if pvm {
        Check::new(
            Probe::Xcr0,
            Status::Fail,
            format!("{summary}, but kvm_pvm's ring-0 emulator rejects xgetbv and xsavec (glibc's lazy-binding trampoline)"),
        )
    } else if uncovered != 0 {
        Check::new(
            Probe::Xcr0,
            Status::Warn,
            format!(
                "{summary}: guest cannot enable {}; only code using those directly \
                 would fault (glibc's string functions do not)",
                describe_xcr0(uncovered)
            ),
        )
    } else {
        Check::new(Probe::Xcr0, Status::Ok, format!("{summary}: covered"))
    }
}

pub(super) fn maxphyaddr_check(guest: Option<u8>, host: Option<u8>) -> Check {
    let host = host
        .map(|h| format!("host {h} bits"))
        .unwrap_or_else(|| "host unknown".into());
    match guest {
        None => Check::new(
            Probe::MaxPhyAddr,
            Status::Fail,
            format!("KVM offers no CPUID leaf 0x80000008; {host}"),
        ),
        Some(g) if g < MIN_MAXPHYADDR => Check::new(
            Probe::MaxPhyAddr,
            Status::Fail,
            format!("guest {g} bits, {host}: Dune needs >= {MIN_MAXPHYADDR}"),
        ),
        Some(g) => Check::new(
            Probe::MaxPhyAddr,
            Status::Ok,
            format!(
                "guest {g} bits, {host} (Dune needs >= {MIN_MAXPHYADDR}; guest-physical \
                 addresses are allocated below 2^{g})"
            ),
        ),
    }
}

pub(super) fn giant_pages_check(offered: bool, pvm: bool) -> Check {
    match (offered, pvm) {
        (true, false) => Check::new(
            Probe::GiantPages,
            Status::Ok,
            "offered to the guest (CPUID 0x80000001 EDX[26])",
        ),
        (true, true) => Check::new(
            Probe::GiantPages,
            Status::Warn,
            "offered, but unusable: 1 GiB pages triple-fault under kvm_pvm; use 2 MiB pages",
        ),
        (false, false) => Check::new(
            Probe::GiantPages,
            Status::Warn,
            "not offered to the guest: map with 2 MiB pages",
        ),
        (false, true) => Check::new(
            Probe::GiantPages,
            Status::Warn,
            "not offered to the guest (and they triple-fault under kvm_pvm): map with 2 MiB pages",
        ),
    }
}

/// The host CPU, read with `cpuid` and `xgetbv` (what glibc sees).
pub(super) mod host {
    use super::Regs;

    /// Raw `cpuid`, without checking the maximum leaf.
    // `__cpuid_count` is a safe function from Rust 1.87 on; the workspace's
    // MSRV (1.85) still needs the `unsafe` block.
    #[allow(unused_unsafe)]
    fn raw(leaf: u32, subleaf: u32) -> Regs {
        // SAFETY: `cpuid` exists on every x86-64 CPU, reads no memory and
        // has no side effects.
        let r = unsafe { core::arch::x86_64::__cpuid_count(leaf, subleaf) };
        Regs {
            eax: r.eax,
            ebx: r.ebx,
            ecx: r.ecx,
            edx: r.edx,
        }
    }

    /// `cpuid` for `leaf`, or `None` if the CPU's maximum (basic or
    /// extended) leaf is below it.
    pub(in crate::doctor) fn cpuid(leaf: u32, subleaf: u32) -> Option<Regs> {
        let base = leaf & 0x8000_0000;
        (raw(base, 0).eax >= leaf).then(|| raw(leaf, subleaf))
    }

    /// The CPU vendor string from leaf 0 (EBX, EDX, ECX).
    pub(in crate::doctor) fn vendor() -> Option<String> {
        let r = cpuid(0, 0)?;
        let bytes: Vec<u8> = [r.ebx, r.edx, r.ecx]
            .iter()
            .flat_map(|w| w.to_le_bytes())
            .collect();
        String::from_utf8(bytes).ok()
    }

    /// Host XCR0, or `None` when the OS has not set CR4.OSXSAVE
    /// (CPUID.1:ECX\[27\]), in which case `xgetbv` would raise `#UD`.
    pub(in crate::doctor) fn xcr0() -> Option<u64> {
        let osxsave = cpuid(1, 0)?.ecx & (1 << 27) != 0;
        if !osxsave {
            return None;
        }
        let (lo, hi): (u32, u32);
        // SAFETY: OSXSAVE is set, so `xgetbv` is enabled at CPL 3; with ECX = 0
        // it reads XCR0 into EDX:EAX and touches nothing else.
        unsafe {
            core::arch::asm!(
                "xgetbv",
                in("ecx") 0u32,
                out("eax") lo,
                out("edx") hi,
                options(nomem, nostack, preserves_flags),
            );
        }
        Some(u64::from(hi) << 32 | u64::from(lo))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CPUINFO_PVM: &str = "\
processor\t: 0
vendor_id\t: AuthenticAMD
cpu family\t: 25
model name\t: AMD EPYC 9B14
flags\t\t: fpu vme de pse tsc msr pae sse sse2 ht syscall nx pdpe1gb lm xsave avx hypervisor avx2
address sizes\t: 48 bits physical, 48 bits virtual
power management:

processor\t: 1
vendor_id\t: GenuineIntel
flags\t\t: fpu vmx
";

    const CPUINFO_INTEL: &str = "\
processor\t: 0
vendor_id\t: GenuineIntel
model name\t: Intel(R) Xeon(R) CPU E5-2680 v4 @ 2.40GHz
flags\t\t: fpu vme vmx est tm2 avx avx2
address sizes\t: 46 bits physical, 48 bits virtual
";

    #[test]
    fn cpuinfo_first_processor_only() {
        let info = CpuInfo::parse(CPUINFO_PVM);
        assert_eq!(info.vendor.as_deref(), Some("AuthenticAMD"));
        assert_eq!(info.model.as_deref(), Some("AMD EPYC 9B14"));
        assert!(info.has_flag("avx2"));
        assert!(info.has_flag("hypervisor"));
        assert!(!info.has_flag("vmx"), "vmx belongs to the second processor");
        assert!(!info.has_virt_flag());
        assert_eq!((info.phys_bits, info.virt_bits), (Some(48), Some(48)));
    }

    #[test]
    fn cpuinfo_intel_with_vmx() {
        let info = CpuInfo::parse(CPUINFO_INTEL);
        assert!(info.has_virt_flag());
        assert_eq!(info.phys_bits, Some(46));
        assert_eq!(
            host_cpu_check(Some(&info), info.vendor.as_deref()).status,
            Status::Ok
        );
        let pvm = CpuInfo::parse(CPUINFO_PVM);
        let c = host_cpu_check(Some(&pvm), pvm.vendor.as_deref());
        assert_eq!(c.status, Status::Warn);
        assert!(c.detail.contains("no vmx/svm"), "{}", c.detail);
    }

    #[test]
    fn address_sizes() {
        assert_eq!(
            parse_address_sizes("39 bits physical, 48 bits virtual"),
            (Some(39), Some(48))
        );
        assert_eq!(
            parse_address_sizes("52 bits physical, 57 bits virtual"),
            (Some(52), Some(57))
        );
        assert_eq!(parse_address_sizes("garbage"), (None, None));
        assert_eq!(CpuInfo::parse("").phys_bits, None);
    }

    fn entry(function: u32, index: u32, flags: u32, regs: Regs) -> CpuidEntry {
        CpuidEntry {
            function,
            index,
            flags,
            regs,
        }
    }

    /// A guest CPUID as KVM on a modern AMD host reports it.
    fn amd_guest() -> Vec<CpuidEntry> {
        vec![
            entry(
                1,
                0,
                0,
                Regs {
                    ecx: 1 << 26 | 1 << 28,
                    ..Regs::default()
                },
            ),
            entry(
                7,
                0,
                KVM_CPUID_FLAG_SIGNIFCANT_INDEX,
                Regs {
                    ebx: 1 << 5,
                    ..Regs::default()
                },
            ),
            entry(7, 1, KVM_CPUID_FLAG_SIGNIFCANT_INDEX, Regs::default()),
            entry(
                0xd,
                1,
                KVM_CPUID_FLAG_SIGNIFCANT_INDEX,
                Regs {
                    eax: 0xf,
                    ..Regs::default()
                },
            ),
            entry(
                0xd,
                0,
                KVM_CPUID_FLAG_SIGNIFCANT_INDEX,
                Regs {
                    eax: 0x207,
                    ..Regs::default()
                },
            ),
            entry(
                0x8000_0001,
                0,
                0,
                Regs {
                    edx: 1 << 26,
                    ..Regs::default()
                },
            ),
            entry(
                0x8000_0008,
                0,
                0,
                Regs {
                    eax: 0x3030,
                    ..Regs::default()
                },
            ),
        ]
    }

    #[test]
    fn decode_guest_cpuid() {
        let entries = amd_guest();
        let f = decode_features(|l, s| lookup(&entries, l, s));
        assert!(f.xsave && f.avx && f.avx2 && !f.avx512f && f.gib_pages);
        assert_eq!(f.maxphyaddr, Some(0x30));
        assert_eq!(f.xcr0, Some(0x207), "sub-leaf 0 of 0xD, not sub-leaf 1");
        // Sub-leaf ignored for leaves without the significant-index flag.
        assert!(lookup(&entries, 0x8000_0008, 5).is_some());
        assert!(lookup(&entries, 7, 2).is_none());
        assert_eq!(decode_features(|_, _| None), Features::default());
    }

    fn host_amd() -> Features {
        Features {
            xsave: true,
            osxsave: true,
            avx: true,
            avx2: true,
            avx512f: false,
            gib_pages: true,
            maxphyaddr: Some(48),
            xcr0: Some(0x207),
        }
    }

    #[test]
    fn avx_host_vs_guest() {
        let entries = amd_guest();
        let guest = decode_features(|l, s| lookup(&entries, l, s));
        let host = host_amd();
        assert_eq!(
            avx_check(&guest, &host, Some(0x207), false).status,
            Status::Ok
        );
        // Host OS did not enable YMM state: glibc will not use AVX.
        assert_eq!(
            avx_check(&Features::default(), &host, Some(0x3), false).status,
            Status::Ok
        );
        // Host uses AVX, guest is offered none.
        let bare = Features {
            xsave: true,
            xcr0: Some(0x3),
            ..Features::default()
        };
        let c = avx_check(&bare, &host, Some(0x207), false);
        assert_eq!(c.status, Status::Fail);
        assert!(c.detail.contains("lacks avx avx2"), "{}", c.detail);
        // Advertised, but kvm_pvm cannot run it in ring 0.
        assert_eq!(
            avx_check(&guest, &host, Some(0x207), true).status,
            Status::Fail
        );
        // AVX-512 on the host but not in the guest.
        let host512 = Features {
            avx512f: true,
            ..host
        };
        let c = avx_check(&guest, &host512, Some(0xe7), false);
        assert_eq!(c.status, Status::Fail);
        assert!(c.detail.contains("lacks avx512f"), "{}", c.detail);
    }

    #[test]
    fn xcr0_coverage() {
        assert_eq!(
            xcr0_check(Some(0x207), Some(0x2e7), true, false).status,
            Status::Ok
        );
        let c = xcr0_check(Some(0x2e7), Some(0x207), true, false);
        assert_eq!(c.status, Status::Fail);
        assert!(
            c.detail.contains("0xe0 (opmask zmm_hi256 hi16_zmm)"),
            "{}",
            c.detail
        );
        // MPX in the host (QEMU's `-cpu max`), not offered by KVM: harmless.
        let c = xcr0_check(Some(0x21f), Some(0x207), true, false);
        assert_eq!(c.status, Status::Warn, "{}", c.detail);
        assert!(c.detail.contains("0x18 (bndregs bndcsr)"), "{}", c.detail);
        // ... but a missing AVX bit still fails when MPX is missing too.
        assert_eq!(
            xcr0_check(Some(0x21f), Some(0x3), true, false).status,
            Status::Fail
        );
        assert_eq!(
            xcr0_check(Some(0x7), Some(0x7), false, false).status,
            Status::Fail
        );
        assert_eq!(
            xcr0_check(Some(0x7), Some(0x7), true, true).status,
            Status::Fail
        );
        assert_eq!(xcr0_check(None, None, false, false).status, Status::Ok);
        assert_eq!(
            xcr0_check(Some(0x7), None, true, false).status,
            Status::Fail
        );
        assert_eq!(
            describe_xcr0(0x1_0000_0003),
            "0x100000003 (x87 sse other 0x100000000)"
        );
    }

    #[test]
    fn maxphyaddr_limits() {
        assert_eq!(maxphyaddr_check(Some(48), Some(48)).status, Status::Ok);
        assert_eq!(maxphyaddr_check(Some(36), None).status, Status::Ok);
        assert_eq!(maxphyaddr_check(Some(35), Some(48)).status, Status::Fail);
        assert_eq!(maxphyaddr_check(None, Some(48)).status, Status::Fail);
    }

    #[test]
    fn giant_pages() {
        assert_eq!(giant_pages_check(true, false).status, Status::Ok);
        assert_eq!(giant_pages_check(true, true).status, Status::Warn);
        assert_eq!(giant_pages_check(false, false).status, Status::Warn);
    }

    #[test]
    fn host_cpuid_is_sane() {
        assert!(host::vendor().is_some_and(|v| v.len() == 12));
        let host = decode_features(host::cpuid);
        if let Some(bits) = host.maxphyaddr {
            assert!((32..=52).contains(&bits), "{bits}");
        }
        if host::xcr0().is_some() {
            assert!(host.osxsave);
            assert_eq!(
                host::xcr0().unwrap_or(0) & 0b11,
                0b11,
                "x87 and SSE are always on"
            );
        }
    }
}
