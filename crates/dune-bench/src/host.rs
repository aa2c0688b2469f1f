//! Where the numbers were measured, and whether they can say anything about hardware.

use libdune::doctor::{self, Hypervisor, Verdict};

use crate::json::Value;

/// The machine, as `dune doctor` and `/proc/cpuinfo` see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Host {
    /// CPU model name.
    pub cpu: String,
    /// Kernel release.
    pub kernel: String,
    /// The module serving `/dev/kvm` (`kvm_intel`, `kvm_amd`, `kvm_pvm`, ...).
    pub hypervisor: String,
    /// Guest ring 0 runs on hardware virtualization.
    pub hardware_virt: bool,
    /// `dune doctor`'s verdict, in one line.
    pub verdict: String,
    /// `ready`, `emulated` or `unusable`.
    pub verdict_kind: &'static str,
    /// This machine is itself a VM (`hypervisor` flag in `/proc/cpuinfo`).
    pub in_vm: bool,
    /// The CPU is QEMU's software emulation (TCG).
    pub emulated_cpu: bool,
    /// Why the numbers are not those of hardware, one line each.
    pub warnings: Vec<String>,
}

impl Host {
    /// Probes this machine (`libdune::doctor::run`, well under a second).
    pub fn probe() -> Self {
        let report = doctor::run();
        let verdict = report.verdict();
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let (in_vm, model) = parse_cpuinfo(&cpuinfo);
        let cpu = report.facts.cpu_model.clone().or(model).unwrap_or_else(|| "unknown CPU".into());
        let emulated_cpu = cpu.contains("QEMU TCG") || cpu.contains("QEMU Virtual CPU");
        let verdict_kind = match verdict {
            Verdict::Ready => "ready",
            Verdict::Emulated { .. } => "emulated",
            Verdict::Unusable { .. } => "unusable",
        };
        let mut warnings = Vec::new();
        if report.hypervisor == Hypervisor::Pvm {
            warnings.push(
                "guest ring 0 is emulated here (kvm_pvm): Dune-mode code runs in KVM's instruction emulator, \
                 so Dune-way numbers (if run at all, with DUNE_ALLOW_EMULATED=1) are thousands of times off hardware"
                    .into(),
            );
        }
        if emulated_cpu {
            warnings.push(
                "the CPU is QEMU's software emulation (TCG): times are virtual and say nothing about hardware; \
                 only the exit counts are meaningful"
                    .into(),
            );
        } else if in_vm {
            warnings.push(
                "this machine is a virtual machine (cpuinfo 'hypervisor' flag): the TSC and all timings are a VM's, \
                 not representative of hardware"
                    .into(),
            );
        }
        Host {
            cpu,
            kernel: report.facts.kernel_release.clone().unwrap_or_else(|| "unknown".into()),
            hypervisor: describe(&report.hypervisor),
            hardware_virt: report.hypervisor.is_hardware(),
            verdict: verdict.to_string(),
            verdict_kind,
            in_vm,
            emulated_cpu,
            warnings,
        }
    }

    /// The JSON form.
    pub fn to_json(&self) -> Value {
        Value::Object(vec![
            ("cpu", Value::from(self.cpu.as_str())),
            ("kernel", Value::from(self.kernel.as_str())),
            ("hypervisor", Value::from(self.hypervisor.as_str())),
            ("hardware_virtualization", Value::from(self.hardware_virt)),
            ("verdict", Value::from(self.verdict_kind)),
            ("verdict_text", Value::from(self.verdict.as_str())),
            ("in_vm", Value::from(self.in_vm)),
            ("emulated_cpu", Value::from(self.emulated_cpu)),
            ("warnings", Value::Array(self.warnings.iter().map(|w| Value::from(w.as_str())).collect())),
        ])
    }
}

fn describe(h: &Hypervisor) -> String {
    let nested = |n: &Option<String>| n.as_deref().map(|n| format!(", nested={n}")).unwrap_or_default();
    match h {
        Hypervisor::IntelVtx { nested: n } => format!("kvm_intel (Intel VT-x{})", nested(n)),
        Hypervisor::AmdSvm { nested: n } => format!("kvm_amd (AMD SVM{})", nested(n)),
        Hypervisor::Pvm => "kvm_pvm (guest ring 0 emulated)".into(),
        other => other.module().into(),
    }
}

/// (`hypervisor` flag present, first `model name`) of `/proc/cpuinfo` text.
fn parse_cpuinfo(text: &str) -> (bool, Option<String>) {
    let field = |line: &str, name: &str| {
        let (k, v) = line.split_once(':')?;
        (k.trim() == name).then(|| v.trim().to_string())
    };
    let flags = text.lines().find_map(|l| field(l, "flags")).unwrap_or_default();
    let model = text.lines().find_map(|l| field(l, "model name"));
    (flags.split_whitespace().any(|f| f == "hypervisor"), model)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpuinfo_flags_and_model() {
        let text = "processor\t: 0\nmodel name\t: AMD EPYC 7B13\nflags\t\t: fpu vme hypervisor svm\n\nprocessor\t: 1\n";
        assert_eq!(parse_cpuinfo(text), (true, Some("AMD EPYC 7B13".into())));
        assert_eq!(parse_cpuinfo("flags : fpu hypervisorx\n"), (false, None));
    }
}
