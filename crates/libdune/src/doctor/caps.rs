//! KVM capabilities: the in-kernel irqchip (checked by creating one), the
//! memslot and vCPU limits, and the `KVM_CAP_*` the runtime relies on.

use kvm_ioctls::Kvm;

use super::types::{Check, Probe, Status};

/// `KVM_CAP_IRQCHIP`, then creates a VM and an in-kernel irqchip on it and
/// drops both. No memslots, no vCPUs.
pub(super) fn irqchip_check(kvm: &Kvm, cap: bool) -> Check {
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

pub(super) fn count_check(probe: Probe, value: i32, what: &str) -> Check {
    if value > 0 {
        Check::new(probe, Status::Ok, format!("{value} {what}"))
    } else {
        Check::new(probe, Status::Fail, format!("KVM reports {value} {what}"))
    }
}

pub(super) fn cap_check(probe: Probe, value: i32, missing: Status, why: &str) -> Check {
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

/// How `vmcall`/`vmmcall` used as system calls (the original libdune's ABI) reach the
/// runtime: the other vendor's instruction through #UD when
/// `KVM_X86_QUIRK_FIX_HYPERCALL_INSN` can be disabled (`quirks`, the value of
/// `KVM_CAP_DISABLE_QUIRKS2`), the CPU's own through `KVM_EXIT_XEN` when Xen
/// hypercall interception is offered (`xen`, the value of `KVM_CAP_XEN_HVM`).
pub(super) fn hypercall_check(quirks: i32, xen: i32, vendor: Option<&str>) -> Check {
    let foreign_ud = quirks > 0 && quirks as u32 & kvm_bindings::KVM_X86_QUIRK_FIX_HYPERCALL_INSN != 0;
    let native_exit = xen > 0 && xen as u32 & kvm_bindings::KVM_XEN_HVM_CONFIG_INTERCEPT_HCALL != 0;
    let amd = vendor == Some("AuthenticAMD");
    let (native, foreign) = if amd { ("vmmcall", "vmcall") } else { ("vmcall", "vmmcall") };
    let f = if foreign_ud {
        format!("{foreign}: #UD to the runtime (KVM_X86_QUIRK_FIX_HYPERCALL_INSN disabled)")
    } else {
        format!("{foreign}: rewritten by KVM in the guest's text (no KVM_CAP_DISABLE_QUIRKS2 for it; Linux 6.0+), which faults on read-only code")
    };
    let n = if native_exit {
        format!("{native}: KVM_EXIT_XEN to the runtime (Xen hypercall interception)")
    } else {
        format!("{native}: answered by KVM itself with -KVM_ENOSYS (no Xen hypercall interception: a kernel with CONFIG_KVM_XEN offers it)")
    };
    // The original libdune's programs use vmcall.
    let vmcall_ok = if amd { foreign_ud } else { native_exit };
    let status = if foreign_ud && native_exit { Status::Ok } else { Status::Warn };
    let verdict = if vmcall_ok { "vmcall as a system call works" } else { "vmcall as a system call does not work here" };
    Check::new(Probe::Hypercalls, status, format!("{verdict}; {f}; {n}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const QUIRK: i32 = kvm_bindings::KVM_X86_QUIRK_FIX_HYPERCALL_INSN as i32;
    const XEN: i32 = kvm_bindings::KVM_XEN_HVM_CONFIG_INTERCEPT_HCALL as i32;

    #[test]
    fn hypercall_mechanisms_per_vendor() {
        // The QEMU lane: AMD, Debian 6.1 (quirk yes, Xen no): vmcall works.
        let c = hypercall_check(127, 0, Some("AuthenticAMD"));
        assert_eq!(c.status, Status::Warn);
        assert!(c.detail.starts_with("vmcall as a system call works; vmcall: #UD"), "{}", c.detail);
        assert!(c.detail.contains("vmmcall: answered by KVM itself"));
        // Intel without Xen interception: the original ABI's vmcall is KVM's own.
        let c = hypercall_check(QUIRK, 0, Some("GenuineIntel"));
        assert!(c.detail.starts_with("vmcall as a system call does not work here"), "{}", c.detail);
        // Both mechanisms: ok on either vendor.
        for v in ["GenuineIntel", "AuthenticAMD"] {
            let c = hypercall_check(QUIRK, XEN | 1, Some(v));
            assert_eq!(c.status, Status::Ok, "{v}: {}", c.detail);
            assert!(c.detail.starts_with("vmcall as a system call works"));
        }
        // An old kernel: neither.
        let c = hypercall_check(0, 0, Some("AuthenticAMD"));
        assert!(c.detail.contains("rewritten by KVM"));
        assert_eq!(c.status, Status::Warn);
    }
}
