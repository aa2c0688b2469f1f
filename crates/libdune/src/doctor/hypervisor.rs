//! Which hypervisor serves `/dev/kvm`: hardware virtualization (`kvm_intel`,
//! `kvm_amd`) or guest ring 0 emulated (`kvm_pvm`), judged from `/sys/module`.

use std::fs;
use std::path::Path;

use super::types::{Check, Probe, Status, KVM_DEVICE, PVM_MODULE, PVM_REASON};

/// Present when Intel VT-x KVM is loaded (also when built in: it has parameters).
const INTEL_MODULE: &str = "/sys/module/kvm_intel";
/// Present when AMD SVM KVM is loaded (also when built in: it has parameters).
pub(super) const AMD_MODULE: &str = "/sys/module/kvm_amd";
/// Present when the generic `kvm` module is loaded.
const KVM_MODULE: &str = "/sys/module/kvm";

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

    pub(super) fn check(&self) -> Check {
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
