//! The doctor's types and constants: what a probe found ([`Status`], [`Probe`],
//! [`Check`]), the raw values ([`Facts`]) and the outcome ([`Verdict`], [`Report`]).
//! Every probe file uses these; none of them uses the probes.

use super::hypervisor::Hypervisor;

/// Path of the KVM device.
pub(super) const KVM_DEVICE: &str = "/dev/kvm";
/// Present when the `kvm_pvm` module (guest ring 0 emulated) is loaded.
pub(super) const PVM_MODULE: &str = "/sys/module/kvm_pvm";

/// What `kvm_pvm` does to guest ring 0, as measured on the development
/// machines (`shared/platform.md` §1).
pub const PVM_REASON: &str = "KVM guest ring 0 is emulated (kvm_pvm): every ring-0 instruction \
     runs in KVM's instruction emulator, ~2,000x slower; AVX, int3, xgetbv, xsavec unsupported; \
     1 GiB pages triple-fault";

/// Smallest guest MAXPHYADDR Dune works with: the library packs the
/// guest-physical addresses it allocates below `2^MAXPHYADDR`, and 36 bits
/// (64 GiB) is the smallest width x86-64 CPUs with long mode report.
pub const MIN_MAXPHYADDR: u8 = 36;

/// Outcome of one probe.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    /// The probe found what Dune needs.
    Ok,
    /// Dune mode works, but something is missing, slower or worth knowing.
    Warn,
    /// Dune mode cannot work correctly here because of this.
    Fail,
}

impl Status {
    /// Lower-case identifier for machine-readable output: `ok`, `warn`, `fail`.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Warn => "warn",
            Status::Fail => "fail",
        }
    }

    /// Label for the human listing: `ok`, `warn`, `FAIL`.
    pub fn label(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Warn => "warn",
            Status::Fail => "FAIL",
        }
    }
}

/// Which probe a [`Check`] reports on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Probe {
    /// `/dev/kvm` exists and opens read-write.
    KvmDevice,
    /// `KVM_GET_API_VERSION` is 12.
    ApiVersion,
    /// Kernel release (`uname -r`).
    Kernel,
    /// Host CPU vendor and `vmx`/`svm` flags.
    HostCpu,
    /// Which module serves `/dev/kvm`: hardware virtualization or emulated ring 0.
    Hypervisor,
    /// Guest and host MAXPHYADDR.
    MaxPhyAddr,
    /// XSAVE/AVX/AVX2/AVX-512 offered to the guest versus used by the host.
    GuestAvx,
    /// Host XCR0 versus the XCR0 bits KVM lets the guest enable.
    Xcr0,
    /// 1 GiB pages in the guest page tables.
    GiantPages,
    /// In-kernel irqchip (`KVM_CAP_IRQCHIP`, `KVM_CREATE_IRQCHIP`).
    Irqchip,
    /// `KVM_CAP_NR_MEMSLOTS`.
    NrMemslots,
    /// `KVM_CAP_MAX_VCPUS`.
    MaxVcpus,
    /// `KVM_CAP_SYNC_REGS`.
    SyncRegs,
    /// `KVM_CAP_IMMEDIATE_EXIT`.
    ImmediateExit,
    /// `KVM_CAP_XSAVE`.
    Xsave,
    /// `KVM_CAP_XCRS`.
    Xcrs,
    /// `KVM_CAP_BINARY_STATS_FD`.
    BinaryStats,
    /// `KVM_CAP_VCPU_ATTRIBUTES` (for `KVM_VCPU_TSC_OFFSET`).
    VcpuAttributes,
    /// `KVM_CAP_TSC_CONTROL`.
    TscControl,
    /// How `vmcall`/`vmmcall` reach the runtime as system calls
    /// (`KVM_CAP_DISABLE_QUIRKS2`, `KVM_CAP_XEN_HVM`).
    Hypercalls,
}

impl Probe {
    /// Short stable name, used in both the listing and the JSON form.
    pub fn name(self) -> &'static str {
        match self {
            Probe::KvmDevice => "kvm-device",
            Probe::ApiVersion => "api-version",
            Probe::Kernel => "kernel",
            Probe::HostCpu => "host-cpu",
            Probe::Hypervisor => "hypervisor",
            Probe::MaxPhyAddr => "maxphyaddr",
            Probe::GuestAvx => "guest-avx",
            Probe::Xcr0 => "xcr0",
            Probe::GiantPages => "1g-pages",
            Probe::Irqchip => "irqchip",
            Probe::NrMemslots => "nr-memslots",
            Probe::MaxVcpus => "max-vcpus",
            Probe::SyncRegs => "sync-regs",
            Probe::ImmediateExit => "immediate-exit",
            Probe::Xsave => "xsave",
            Probe::Xcrs => "xcrs",
            Probe::BinaryStats => "binary-stats",
            Probe::VcpuAttributes => "vcpu-attributes",
            Probe::TscControl => "tsc-control",
            Probe::Hypercalls => "hypercalls",
        }
    }
}

/// Result of one probe.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Check {
    /// What was probed.
    pub probe: Probe,
    /// What was found.
    pub status: Status,
    /// One line for a human: the value found, and what to do if it is wrong.
    pub detail: String,
}

impl Check {
    pub(super) fn new(probe: Probe, status: Status, detail: impl Into<String>) -> Self {
        Check {
            probe,
            status,
            detail: detail.into(),
        }
    }

    /// The probe's short name (see [`Probe::name`]).
    pub fn name(&self) -> &'static str {
        self.probe.name()
    }
}

/// Raw values the probes read, for machine-readable output. `None` when the
/// probe could not read the value.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Facts {
    /// Kernel release, as `uname -r` prints it.
    pub kernel_release: Option<String>,
    /// `KVM_GET_API_VERSION`.
    pub api_version: Option<i32>,
    /// Host CPU vendor string (`AuthenticAMD`, `GenuineIntel`).
    pub cpu_vendor: Option<String>,
    /// Host CPU model name.
    pub cpu_model: Option<String>,
    /// Host CPU flags show `vmx` or `svm`.
    pub cpu_virt_flag: Option<bool>,
    /// MAXPHYADDR the guest sees (supported CPUID 0x8000_0008 EAX\[7:0\]).
    pub guest_maxphyaddr: Option<u8>,
    /// MAXPHYADDR of the host (`/proc/cpuinfo` "address sizes", else CPUID).
    pub host_maxphyaddr: Option<u8>,
    /// Host XCR0 (`xgetbv` with ECX = 0), when the host OS enables XSAVE.
    pub host_xcr0: Option<u64>,
    /// XCR0 bits KVM lets a guest enable (supported CPUID 0xD.0 EDX:EAX;
    /// usable only if the supported CPUID also sets XSAVE, leaf 1 ECX\[26\]).
    pub guest_xcr0: Option<u64>,
    /// Supported CPUID offers XSAVE to the guest (leaf 1 ECX\[26\]).
    pub guest_xsave: Option<bool>,
    /// `KVM_CAP_NR_MEMSLOTS`.
    pub nr_memslots: Option<i32>,
    /// `KVM_CAP_MAX_VCPUS`.
    pub max_vcpus: Option<i32>,
}

/// Whether Dune mode can run here.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Hardware virtualization and every required piece is present.
    Ready,
    /// Dune mode would run only with guest ring 0 emulated (`kvm_pvm`):
    /// thousands of times slower, and common instructions (AVX) rejected.
    Emulated {
        /// Why, in one line.
        reason: String,
    },
    /// Dune mode cannot run here.
    Unusable {
        /// The first failing check, in one line.
        reason: String,
    },
}

/// Everything [`run`](super::run) found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Report {
    /// One entry per probe, in the order they ran. Probes that need a working
    /// `/dev/kvm` are left out when it does not open.
    pub checks: Vec<Check>,
    /// Which hypervisor serves `/dev/kvm`.
    pub hypervisor: Hypervisor,
    /// Raw values behind the checks.
    pub facts: Facts,
}

