//! `dune doctor`: can this machine run Dune mode, and if not, why not.
//!
//! [`run`] probes `/dev/kvm`, the KVM capabilities the runtime uses, the CPUID
//! KVM offers a guest, the host CPU and the module that serves `/dev/kvm`, and
//! returns a [`Report`]: one [`Check`] per probe plus the raw [`Facts`], from
//! which [`Report::verdict`] derives a [`Verdict`]. Probes never panic: a probe
//! that cannot read what it needs says so in its check.
//!
//! [`emulated_ring0`] is the cheap test the runtime's `enter()` uses to refuse
//! to run on a hypervisor that emulates guest ring 0 (`kvm_pvm`).
//!
//! The doctor creates one VM (for `KVM_CREATE_IRQCHIP`) and drops it again; it
//! registers no memslots and creates no vCPU.
//!
//! Everything that parses or decodes (`/proc/cpuinfo`, CPUID words, the
//! verdict) is pure and unit-tested next to its code; only [`run`] touches the
//! machine.
//!
//! The files are split by what they check. This one holds the public types
//! ([`Status`], [`Probe`], [`Check`], [`Facts`], [`Verdict`], [`Report`]), the
//! public constants, [`emulated_ring0`] and [`run`], which calls the others in
//! order. `device.rs`: `/dev/kvm`, the KVM API version and the kernel version.
//! `cpu.rs`: the host CPU (`/proc/cpuinfo`, `cpuid`, `xgetbv`) and the CPUID
//! KVM offers a guest, decoded and compared (XSAVE/AVX, XCR0, MAXPHYADDR, 1 GiB
//! pages). `hypervisor.rs`: [`Hypervisor`], which module serves `/dev/kvm`.
//! `caps.rs`: the KVM capabilities (irqchip, memslot and vCPU counts,
//! `KVM_CAP_*`). `report.rs`: how [`Report::verdict`] derives the verdict and
//! how a report prints.
//!
//! The doctor stands alone: it uses kvm-ioctls, kvm-bindings, libc and std,
//! and nothing else of libdune.

use std::fs;
use std::path::Path;

use kvm_bindings::{KVM_CAP_BINARY_STATS_FD, KVM_CAP_VCPU_ATTRIBUTES, KVM_MAX_CPUID_ENTRIES};
use kvm_ioctls::Cap;

mod caps;
mod cpu;
mod device;
mod hypervisor;
mod report;
mod types;

use caps::{cap_check, count_check, hypercall_check, irqchip_check};
use cpu::{
    avx_check, decode_features, giant_pages_check, host, host_cpu_check, lookup, maxphyaddr_check,
    xcr0_check, CpuInfo, CpuidEntry, Regs,
};
use device::{api_version_check, kernel_check, kernel_release, probe_device};

pub use hypervisor::Hypervisor;
pub use types::{Check, Facts, Probe, Report, Status, Verdict, MIN_MAXPHYADDR, PVM_REASON};
use types::PVM_MODULE;

/// Returns the reason Dune mode must not be entered when guest ring 0 is
/// emulated on this machine (the `kvm_pvm` module is loaded), `None` otherwise.
///
/// Cheap (one `stat`); the runtime's `enter()` calls it to refuse instead of
/// running at a 2,000x slowdown or crashing on the first AVX `memcpy`.
pub fn emulated_ring0() -> Option<String> {
    Path::new(PVM_MODULE)
        .exists()
        .then(|| PVM_REASON.to_string())
}

/// Probes this machine. Never panics; takes well under a second (it creates
/// and drops one VM with an in-kernel irqchip, and nothing else).
pub fn run() -> Report {
    let mut checks = Vec::new();
    let mut facts = Facts::default();
    let hypervisor = Hypervisor::detect();
    let pvm = hypervisor == Hypervisor::Pvm;

    let kvm = probe_device(&mut checks);

    if let Some(kvm) = &kvm {
        let version = kvm.get_api_version();
        facts.api_version = Some(version);
        checks.push(api_version_check(version));
    }

    let release = kernel_release();
    checks.push(kernel_check(release.as_deref()));
    facts.kernel_release = release;

    let cpuinfo = fs::read_to_string("/proc/cpuinfo")
        .ok()
        .map(|text| CpuInfo::parse(&text));
    let host = decode_features(host::cpuid);
    let host_xcr0 = host::xcr0();
    facts.cpu_vendor = cpuinfo
        .as_ref()
        .and_then(|c| c.vendor.clone())
        .or_else(host::vendor);
    facts.cpu_model = cpuinfo.as_ref().and_then(|c| c.model.clone());
    facts.cpu_virt_flag = cpuinfo.as_ref().map(CpuInfo::has_virt_flag);
    facts.host_maxphyaddr = cpuinfo
        .as_ref()
        .and_then(|c| c.phys_bits)
        .or(host.maxphyaddr);
    facts.host_xcr0 = host_xcr0;
    checks.push(host_cpu_check(
        cpuinfo.as_ref(),
        facts.cpu_vendor.as_deref(),
    ));
    checks.push(hypervisor.check());

    let Some(kvm) = kvm else {
        return Report {
            checks,
            hypervisor,
            facts,
        };
    };

    let cap = |c: Cap| kvm.check_extension_int(c);
    let cap_raw = |c: u32| kvm.check_extension_raw(libc::c_ulong::from(c));

    match kvm.get_supported_cpuid(KVM_MAX_CPUID_ENTRIES) {
        Ok(cpuid) => {
            let entries: Vec<CpuidEntry> = cpuid
                .as_slice()
                .iter()
                .map(|e| CpuidEntry {
                    function: e.function,
                    index: e.index,
                    flags: e.flags,
                    regs: Regs {
                        eax: e.eax,
                        ebx: e.ebx,
                        ecx: e.ecx,
                        edx: e.edx,
                    },
                })
                .collect();
            let guest = decode_features(|leaf, sub| lookup(&entries, leaf, sub));
            facts.guest_maxphyaddr = guest.maxphyaddr;
            facts.guest_xcr0 = guest.xcr0;
            facts.guest_xsave = Some(guest.xsave);
            checks.push(maxphyaddr_check(guest.maxphyaddr, facts.host_maxphyaddr));
            checks.push(avx_check(&guest, &host, host_xcr0, pvm));
            let guest_xcr0 = guest.xsave.then_some(guest.xcr0).flatten();
            checks.push(xcr0_check(host_xcr0, guest_xcr0, cap(Cap::Xcrs) > 0, pvm));
            checks.push(giant_pages_check(guest.gib_pages, pvm));
        }
        Err(e) => checks.push(Check::new(
            Probe::MaxPhyAddr,
            Status::Fail,
            format!("KVM_GET_SUPPORTED_CPUID failed: {e}"),
        )),
    }

    checks.push(irqchip_check(&kvm, cap(Cap::Irqchip) > 0));

    let memslots = cap(Cap::NrMemslots);
    facts.nr_memslots = Some(memslots);
    checks.push(count_check(Probe::NrMemslots, memslots, "memslots"));
    let vcpus = cap(Cap::MaxVcpus);
    facts.max_vcpus = Some(vcpus);
    checks.push(count_check(Probe::MaxVcpus, vcpus, "vCPUs per VM"));

    let caps: [(Probe, i32, Status, &str); 7] = [
        (
            Probe::SyncRegs,
            cap(Cap::SyncRegs),
            Status::Warn,
            "KVM_CAP_SYNC_REGS missing: registers cost extra ioctls per exit",
        ),
        (
            Probe::ImmediateExit,
            cap(Cap::ImmediateExit),
            Status::Fail,
            "KVM_CAP_IMMEDIATE_EXIT missing (Linux 4.11+): signals cannot interrupt Dune mode reliably",
        ),
        (
            Probe::Xsave,
            cap(Cap::Xsave),
            Status::Fail,
            "KVM_CAP_XSAVE missing: guest FPU/SSE/AVX state cannot be loaded from the host's",
        ),
        (
            Probe::Xcrs,
            cap(Cap::Xcrs),
            Status::Fail,
            "KVM_CAP_XCRS missing: guest XCR0 cannot be set to the host's",
        ),
        (
            Probe::BinaryStats,
            cap_raw(KVM_CAP_BINARY_STATS_FD),
            Status::Warn,
            "KVM_CAP_BINARY_STATS_FD missing (Linux 5.14+): no per-reason exit counters",
        ),
        (
            Probe::VcpuAttributes,
            cap_raw(KVM_CAP_VCPU_ATTRIBUTES),
            Status::Fail,
            "KVM_CAP_VCPU_ATTRIBUTES missing (Linux 5.16+): no KVM_VCPU_TSC_OFFSET, so the guest \
             TSC differs from the host's and clock_gettime in Dune mode returns wrong times",
        ),
        (
            Probe::TscControl,
            cap(Cap::TscControl),
            Status::Warn,
            "KVM_CAP_TSC_CONTROL missing: guest TSC frequency cannot be set (it defaults to the host's)",
        ),
    ];
    for (probe, value, missing, why) in caps {
        checks.push(cap_check(probe, value, missing, why));
    }
    checks.push(hypercall_check(
        cap_raw(kvm_bindings::KVM_CAP_DISABLE_QUIRKS2 as _),
        cap_raw(kvm_bindings::KVM_CAP_XEN_HVM as _),
        facts.cpu_vendor.as_deref(),
    ));

    Report {
        checks,
        hypervisor,
        facts,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use super::types::KVM_DEVICE;
    use hypervisor::AMD_MODULE;

    /// Runs every probe on this machine and checks the verdict against the
    /// facts read independently here, so it means something on any machine:
    /// the local kvm_pvm machines, the QEMU nested-SVM lane, real hardware.
    #[test]
    fn run_on_this_machine() {
        let r = run();
        let text = r.to_string();
        eprintln!("{text}");
        let verdict = r.verdict();
        let device = fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(KVM_DEVICE);
        if device.is_err() {
            assert!(matches!(verdict, Verdict::Unusable { .. }), "{verdict:?}");
            return;
        }
        assert_eq!(r.facts.api_version, Some(12));
        if Path::new(PVM_MODULE).exists() {
            assert_eq!(r.hypervisor, Hypervisor::Pvm);
            assert!(matches!(verdict, Verdict::Emulated { .. }), "{verdict:?}");
            assert!(emulated_ring0().is_some());
            assert!(text.contains("NOT at hardware speed"));
        } else {
            assert!(emulated_ring0().is_none());
        }
        if Path::new(AMD_MODULE).exists() && !Path::new(PVM_MODULE).exists() {
            assert!(r.hypervisor.is_hardware());
            // The QEMU lane (kvm_amd on TCG, Linux 6.1) must be fully ready.
            assert_eq!(verdict, Verdict::Ready, "\n{text}");
        }
        let irq = r.checks.iter().find(|c| c.probe == Probe::Irqchip);
        assert_eq!(irq.map(|c| c.status), Some(Status::Ok), "\n{text}");
    }
}
