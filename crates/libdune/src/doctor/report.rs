//! How the [`Verdict`] is derived from a [`Report`]'s checks, and how both
//! print.

use std::fmt;

use super::hypervisor::Hypervisor;
use super::types::{Check, Probe, Report, Status, Verdict};

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::doctor::Facts;

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
}
