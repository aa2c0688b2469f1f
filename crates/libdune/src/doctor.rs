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
//! verdict) is pure and unit-tested below; only [`run`] touches the machine.

use std::fmt;
use std::fs;
use std::io;
use std::os::fd::{FromRawFd, IntoRawFd};
use std::path::Path;

use kvm_bindings::{
    KVM_API_VERSION, KVM_CAP_BINARY_STATS_FD, KVM_CAP_VCPU_ATTRIBUTES,
    KVM_CPUID_FLAG_SIGNIFCANT_INDEX, KVM_MAX_CPUID_ENTRIES,
};
use kvm_ioctls::{Cap, Kvm};

/// Path of the KVM device.
const KVM_DEVICE: &str = "/dev/kvm";
/// Present when the `kvm_pvm` module (guest ring 0 emulated) is loaded.
const PVM_MODULE: &str = "/sys/module/kvm_pvm";
/// Present when Intel VT-x KVM is loaded (also when built in: it has parameters).
const INTEL_MODULE: &str = "/sys/module/kvm_intel";
/// Present when AMD SVM KVM is loaded (also when built in: it has parameters).
const AMD_MODULE: &str = "/sys/module/kvm_amd";
/// Present when the generic `kvm` module is loaded.
const KVM_MODULE: &str = "/sys/module/kvm";

/// What `kvm_pvm` does to guest ring 0, as measured on the development
/// machines (`shared/platform.md` §1).
pub const PVM_REASON: &str = "KVM guest ring 0 is emulated (kvm_pvm): every ring-0 instruction \
     runs in KVM's instruction emulator, ~2,000x slower; AVX, int3, xgetbv, xsavec unsupported; \
     1 GiB pages triple-fault";

/// Smallest guest MAXPHYADDR Dune works with: the library packs the
/// guest-physical addresses it allocates below `2^MAXPHYADDR`, and 36 bits
/// (64 GiB) is the smallest width x86-64 CPUs with long mode report.
pub const MIN_MAXPHYADDR: u8 = 36;

/// Oldest kernel with every capability the runtime uses
/// (`KVM_CAP_VCPU_ATTRIBUTES` / `KVM_VCPU_TSC_OFFSET` arrived in 5.16).
const MIN_KERNEL: (u32, u32) = (5, 16);

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
    fn new(probe: Probe, status: Status, detail: impl Into<String>) -> Self {
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

/// Which hypervisor serves `/dev/kvm`, judged from `/sys/module`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Hypervisor {
    /// `kvm_intel`: Intel VT-x, guest ring 0 in hardware.
    IntelVtx {
        /// The module's `nested` parameter, if readable.
        nested: Option<String>,
    },
    /// `kvm_amd`: AMD SVM, guest ring 0 in hardware.
    AmdSvm {
        /// The module's `nested` parameter, if readable.
        nested: Option<String>,
    },
    /// `kvm_pvm`: guest ring 0 runs in KVM's instruction emulator.
    Pvm,
    /// KVM is present but none of the known vendor modules is.
    Unknown,
    /// No KVM module is loaded at all.
    Absent,
}

impl Hypervisor {
    /// Looks at `/sys/module`. `kvm_pvm` wins over the hardware modules: if it
    /// is loaded at all, assume it may be the one serving `/dev/kvm`.
    pub fn detect() -> Self {
        let nested = |module: &str| {
            fs::read_to_string(Path::new(module).join("parameters/nested"))
                .ok()
                .map(|s| s.trim().to_string())
        };
        if Path::new(PVM_MODULE).exists() {
            Hypervisor::Pvm
        } else if Path::new(INTEL_MODULE).exists() {
            Hypervisor::IntelVtx {
                nested: nested(INTEL_MODULE),
            }
        } else if Path::new(AMD_MODULE).exists() {
            Hypervisor::AmdSvm {
                nested: nested(AMD_MODULE),
            }
        } else if Path::new(KVM_MODULE).exists() || Path::new(KVM_DEVICE).exists() {
            Hypervisor::Unknown
        } else {
            Hypervisor::Absent
        }
    }

    /// Module name (`kvm_intel`, `kvm_amd`, `kvm_pvm`) or `unknown` / `none`.
    pub fn module(&self) -> &'static str {
        match self {
            Hypervisor::IntelVtx { .. } => "kvm_intel",
            Hypervisor::AmdSvm { .. } => "kvm_amd",
            Hypervisor::Pvm => "kvm_pvm",
            Hypervisor::Unknown => "unknown",
            Hypervisor::Absent => "none",
        }
    }

    /// True when guest ring 0 runs on hardware virtualization.
    pub fn is_hardware(&self) -> bool {
        matches!(
            self,
            Hypervisor::IntelVtx { .. } | Hypervisor::AmdSvm { .. }
        )
    }

    fn check(&self) -> Check {
        let hw = |what: &str, module: &str, nested: &Option<String>| {
            let nested = match nested {
                Some(n) => format!(", nested={n}"),
                None => String::new(),
            };
            Check::new(
                Probe::Hypervisor,
                Status::Ok,
                format!("hardware virtualization: {what} ({module}{nested})"),
            )
        };
        match self {
            Hypervisor::IntelVtx { nested } => hw("Intel VT-x", "kvm_intel", nested),
            Hypervisor::AmdSvm { nested } => hw("AMD SVM", "kvm_amd", nested),
            Hypervisor::Pvm => Check::new(Probe::Hypervisor, Status::Fail, PVM_REASON),
            Hypervisor::Unknown => Check::new(
                Probe::Hypervisor,
                Status::Fail,
                "KVM is present but none of kvm_intel, kvm_amd, kvm_pvm is loaded: \
                 cannot tell whether guest ring 0 runs in hardware",
            ),
            Hypervisor::Absent => Check::new(
                Probe::Hypervisor,
                Status::Fail,
                "no KVM module loaded: load kvm_intel or kvm_amd",
            ),
        }
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

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Verdict::Ready => write!(f, "Dune mode: ready (hardware virtualization)"),
            Verdict::Emulated { reason } => write!(
                f,
                "Dune mode: NOT at hardware speed here — {reason}; \
                 run the tests in the QEMU lane (scripts/vm-run)"
            ),
            Verdict::Unusable { reason } => write!(f, "Dune mode: unusable here — {reason}"),
        }
    }
}

/// Everything [`run`] found.
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

impl Report {
    /// Derives the verdict from the checks and the hypervisor.
    ///
    /// A `/dev/kvm` that does not open (or speaks another API) makes the
    /// machine unusable whatever else holds; otherwise `kvm_pvm` means
    /// [`Verdict::Emulated`] (its own limitations, such as AVX, are part of
    /// that); otherwise any failed check makes it unusable; otherwise it is
    /// ready if the hypervisor is known to be hardware virtualization.
    pub fn verdict(&self) -> Verdict {
        let unusable = |c: &Check| Verdict::Unusable {
            reason: format!("{}: {}", c.name(), c.detail),
        };
        let fatal = [Probe::KvmDevice, Probe::ApiVersion];
        if let Some(c) = self
            .checks
            .iter()
            .find(|c| c.status == Status::Fail && fatal.contains(&c.probe))
        {
            return unusable(c);
        }
        if self.hypervisor == Hypervisor::Pvm {
            return Verdict::Emulated {
                reason: "guest ring 0 is emulated by kvm_pvm (~2,000x slower, no AVX)".into(),
            };
        }
        if let Some(c) = self.checks.iter().find(|c| c.status == Status::Fail) {
            return unusable(c);
        }
        if !self.checks.iter().any(|c| c.probe == Probe::KvmDevice) {
            return Verdict::Unusable {
                reason: "/dev/kvm was not probed".into(),
            };
        }
        if self.hypervisor.is_hardware() {
            Verdict::Ready
        } else {
            Verdict::Unusable {
                reason: format!(
                    "hypervisor {}: hardware virtualization not confirmed",
                    self.hypervisor.module()
                ),
            }
        }
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let width = self
            .checks
            .iter()
            .map(|c| c.name().len())
            .max()
            .unwrap_or(0);
        for c in &self.checks {
            writeln!(
                f,
                "{:<4}  {:<width$}  {}",
                c.status.label(),
                c.name(),
                c.detail
            )?;
        }
        write!(f, "{}", self.verdict())
    }
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

    Report {
        checks,
        hypervisor,
        facts,
    }
}

/// Opens `/dev/kvm` read-write and pushes the `kvm-device` check.
fn probe_device(checks: &mut Vec<Check>) -> Option<Kvm> {
    match fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(KVM_DEVICE)
    {
        Ok(file) => {
            checks.push(Check::new(
                Probe::KvmDevice,
                Status::Ok,
                "/dev/kvm opens read-write",
            ));
            // SAFETY: `into_raw_fd` hands over ownership of a descriptor we
            // just opened on /dev/kvm; `Kvm` becomes its only owner and closes it.
            Some(unsafe { Kvm::from_raw_fd(file.into_raw_fd()) })
        }
        Err(e) => {
            checks.push(Check::new(
                Probe::KvmDevice,
                Status::Fail,
                device_error_detail(&e),
            ));
            None
        }
    }
}

/// What to tell the user when `/dev/kvm` does not open.
fn device_error_detail(e: &io::Error) -> String {
    match e.raw_os_error() {
        Some(libc::ENOENT) => {
            "no /dev/kvm: load kvm_intel/kvm_amd or enable virtualization in the BIOS/hypervisor"
                .into()
        }
        Some(libc::EACCES) | Some(libc::EPERM) => {
            "permission denied: add your user to the kvm group or check the /dev/kvm ACL".into()
        }
        Some(libc::ENXIO) | Some(libc::ENODEV) => {
            format!("/dev/kvm exists but no KVM module serves it ({e}): load kvm_intel/kvm_amd")
        }
        _ => format!("cannot open /dev/kvm read-write: {e}"),
    }
}

fn api_version_check(version: i32) -> Check {
    let expected = i64::from(KVM_API_VERSION);
    if i64::from(version) == expected {
        Check::new(Probe::ApiVersion, Status::Ok, format!("{version}"))
    } else {
        Check::new(
            Probe::ApiVersion,
            Status::Fail,
            format!("KVM API version {version}, expected {expected}"),
        )
    }
}

/// `uname -r`.
fn kernel_release() -> Option<String> {
    // SAFETY: `utsname` is plain old data (arrays of `c_char`); all zeros is a
    // valid value.
    let mut uts: libc::utsname = unsafe { std::mem::zeroed() };
    // SAFETY: `uts` is a valid, writable `utsname` that outlives the call.
    if unsafe { libc::uname(&mut uts) } != 0 {
        return None;
    }
    let bytes: Vec<u8> = uts
        .release
        .iter()
        .take_while(|&&c| c != 0)
        .map(|&c| c as u8)
        .collect();
    String::from_utf8(bytes).ok()
}

/// `(major, minor)` from a release such as `6.18.44-fc-v657`.
fn parse_kernel_version(release: &str) -> Option<(u32, u32)> {
    let mut parts = release.split(|c: char| !c.is_ascii_digit());
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next()?.parse().ok()?;
    Some((major, minor))
}

fn kernel_check(release: Option<&str>) -> Check {
    let Some(release) = release else {
        return Check::new(Probe::Kernel, Status::Warn, "uname failed");
    };
    match parse_kernel_version(release) {
        Some(v) if v >= MIN_KERNEL => Check::new(Probe::Kernel, Status::Ok, release),
        Some(_) => Check::new(
            Probe::Kernel,
            Status::Warn,
            format!(
                "{release}: older than {}.{}, some capabilities below will be missing",
                MIN_KERNEL.0, MIN_KERNEL.1
            ),
        ),
        None => Check::new(
            Probe::Kernel,
            Status::Warn,
            format!("{release}: cannot parse the version"),
        ),
    }
}

/// The parts of `/proc/cpuinfo` the doctor reads (first processor only).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct CpuInfo {
    vendor: Option<String>,
    model: Option<String>,
    flags: Vec<String>,
    phys_bits: Option<u8>,
    virt_bits: Option<u8>,
}

impl CpuInfo {
    fn parse(text: &str) -> Self {
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

    fn has_virt_flag(&self) -> bool {
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

fn host_cpu_check(cpuinfo: Option<&CpuInfo>, vendor: Option<&str>) -> Check {
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
struct Regs {
    eax: u32,
    ebx: u32,
    ecx: u32,
    edx: u32,
}

/// One entry of `KVM_GET_SUPPORTED_CPUID`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct CpuidEntry {
    function: u32,
    index: u32,
    flags: u32,
    regs: Regs,
}

/// Finds leaf `function`, sub-leaf `index` (which matters only for entries
/// flagged `KVM_CPUID_FLAG_SIGNIFCANT_INDEX`).
fn lookup(entries: &[CpuidEntry], function: u32, index: u32) -> Option<Regs> {
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
struct Features {
    /// CPUID.1:ECX\[26\].
    xsave: bool,
    /// CPUID.1:ECX\[27\]: the OS set CR4.OSXSAVE (meaningful on the host only).
    osxsave: bool,
    /// CPUID.1:ECX\[28\].
    avx: bool,
    /// CPUID.(7,0):EBX\[5\].
    avx2: bool,
    /// CPUID.(7,0):EBX\[16\].
    avx512f: bool,
    /// CPUID.8000_0001:EDX\[26\] (Page1GB).
    gib_pages: bool,
    /// CPUID.8000_0008:EAX\[7:0\].
    maxphyaddr: Option<u8>,
    /// CPUID.(0xD,0) EDX:EAX: XCR0 bits that may be set (usable only if
    /// `xsave`).
    xcr0: Option<u64>,
}

/// Decodes [`Features`] from a CPUID source (`None` for absent leaves).
/// Bit positions: Intel SDM Vol. 2A, CPUID, Tables 3-8 to 3-10; AMD APM Vol. 3, E.4.
fn decode_features(cpuid: impl Fn(u32, u32) -> Option<Regs>) -> Features {
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

fn avx_check(guest: &Features, host: &Features, host_xcr0: Option<u64>, pvm: bool) -> Check {
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
fn xcr0_check(host_xcr0: Option<u64>, guest_xcr0: Option<u64>, xcrs: bool, pvm: bool) -> Check {
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

fn maxphyaddr_check(guest: Option<u8>, host: Option<u8>) -> Check {
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

fn giant_pages_check(offered: bool, pvm: bool) -> Check {
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

/// `KVM_CAP_IRQCHIP`, then creates a VM and an in-kernel irqchip on it and
/// drops both. No memslots, no vCPUs.
fn irqchip_check(kvm: &Kvm, cap: bool) -> Check {
    if !cap {
        return Check::new(Probe::Irqchip, Status::Fail, "KVM_CAP_IRQCHIP missing");
    }
    let vm = match kvm.create_vm() {
        Ok(vm) => vm,
        Err(e) => {
            let hint = if e.errno() == libc::EBUSY {
                " (another hypervisor, such as VirtualBox or VMware, may hold VT-x/SVM)"
            } else {
                ""
            };
            return Check::new(
                Probe::Irqchip,
                Status::Fail,
                format!("KVM_CREATE_VM failed: {e}{hint}"),
            );
        }
    };
    match vm.create_irq_chip() {
        Ok(()) => Check::new(
            Probe::Irqchip,
            Status::Ok,
            "KVM_CAP_IRQCHIP; KVM_CREATE_IRQCHIP works on a fresh VM",
        ),
        Err(e) => Check::new(
            Probe::Irqchip,
            Status::Fail,
            format!("KVM_CREATE_IRQCHIP failed: {e}"),
        ),
    }
}

fn count_check(probe: Probe, value: i32, what: &str) -> Check {
    if value > 0 {
        Check::new(probe, Status::Ok, format!("{value} {what}"))
    } else {
        Check::new(probe, Status::Fail, format!("KVM reports {value} {what}"))
    }
}

fn cap_check(probe: Probe, value: i32, missing: Status, why: &str) -> Check {
    if value > 0 {
        let detail = if value == 1 {
            "supported".to_string()
        } else {
            format!("supported ({value:#x})")
        };
        Check::new(probe, Status::Ok, detail)
    } else {
        Check::new(probe, missing, why)
    }
}

/// The host CPU, read with `cpuid` and `xgetbv` (what glibc sees).
mod host {
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
    pub(super) fn cpuid(leaf: u32, subleaf: u32) -> Option<Regs> {
        let base = leaf & 0x8000_0000;
        (raw(base, 0).eax >= leaf).then(|| raw(leaf, subleaf))
    }

    /// The CPU vendor string from leaf 0 (EBX, EDX, ECX).
    pub(super) fn vendor() -> Option<String> {
        let r = cpuid(0, 0)?;
        let bytes: Vec<u8> = [r.ebx, r.edx, r.ecx]
            .iter()
            .flat_map(|w| w.to_le_bytes())
            .collect();
        String::from_utf8(bytes).ok()
    }

    /// Host XCR0, or `None` when the OS has not set CR4.OSXSAVE
    /// (CPUID.1:ECX\[27\]), in which case `xgetbv` would raise `#UD`.
    pub(super) fn xcr0() -> Option<u64> {
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

    #[test]
    fn kernel_versions() {
        assert_eq!(parse_kernel_version("6.18.44-fc-v657"), Some((6, 18)));
        assert_eq!(parse_kernel_version("5.4.0-150-generic"), Some((5, 4)));
        assert_eq!(parse_kernel_version("6.1"), Some((6, 1)));
        assert_eq!(parse_kernel_version("linux"), None);
        assert_eq!(kernel_check(Some("5.4.0")).status, Status::Warn);
        assert_eq!(kernel_check(Some("5.16.0")).status, Status::Ok);
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
    fn device_errors_say_what_to_do() {
        let enoent = device_error_detail(&io::Error::from_raw_os_error(libc::ENOENT));
        assert!(
            enoent.starts_with("no /dev/kvm: load kvm_intel/kvm_amd"),
            "{enoent}"
        );
        let eacces = device_error_detail(&io::Error::from_raw_os_error(libc::EACCES));
        assert!(eacces.contains("kvm group"), "{eacces}");
    }

    fn report(hypervisor: Hypervisor, checks: &[(Probe, Status)]) -> Report {
        Report {
            checks: checks
                .iter()
                .map(|&(p, s)| Check::new(p, s, format!("{} detail", p.name())))
                .collect(),
            hypervisor,
            facts: Facts::default(),
        }
    }

    fn amd() -> Hypervisor {
        Hypervisor::AmdSvm {
            nested: Some("1".into()),
        }
    }

    #[test]
    fn verdicts() {
        use Probe::*;
        use Status::*;
        let all_ok = [
            (KvmDevice, Ok),
            (ApiVersion, Ok),
            (Hypervisor, Ok),
            (GiantPages, Warn),
        ];
        assert_eq!(report(amd(), &all_ok).verdict(), Verdict::Ready);

        let pvm = [
            (KvmDevice, Ok),
            (ApiVersion, Ok),
            (Hypervisor, Fail),
            (GuestAvx, Fail),
        ];
        assert!(matches!(
            report(super::Hypervisor::Pvm, &pvm).verdict(),
            Verdict::Emulated { .. }
        ));

        // No /dev/kvm beats everything, kvm_pvm included.
        let no_dev = [(KvmDevice, Fail), (Hypervisor, Fail)];
        assert_eq!(
            report(super::Hypervisor::Pvm, &no_dev).verdict(),
            Verdict::Unusable {
                reason: "kvm-device: kvm-device detail".into()
            }
        );

        // Hardware virtualization with a missing required capability.
        let no_tsc = [(KvmDevice, Ok), (ApiVersion, Ok), (VcpuAttributes, Fail)];
        assert_eq!(
            report(amd(), &no_tsc).verdict(),
            Verdict::Unusable {
                reason: "vcpu-attributes: vcpu-attributes detail".into()
            }
        );

        // An unrecognised hypervisor is never reported ready.
        assert!(matches!(
            report(super::Hypervisor::Unknown, &[(KvmDevice, Ok)]).verdict(),
            Verdict::Unusable { .. }
        ));
        assert!(matches!(
            report(amd(), &[]).verdict(),
            Verdict::Unusable { .. }
        ));
    }

    #[test]
    fn display_is_aligned_and_ends_with_the_verdict() {
        let r = report(
            super::Hypervisor::Pvm,
            &[
                (Probe::KvmDevice, Status::Ok),
                (Probe::Hypervisor, Status::Fail),
            ],
        );
        let text = r.to_string();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "ok    kvm-device  kvm-device detail");
        assert_eq!(lines[1], "FAIL  hypervisor  hypervisor detail");
        assert!(
            lines[2].starts_with("Dune mode: NOT at hardware speed here"),
            "{}",
            lines[2]
        );
        assert!(lines[2].contains("scripts/vm-run"));
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
