//! KVM capabilities: the in-kernel irqchip (checked by creating one), the
//! memslot and vCPU limits, and the `KVM_CAP_*` the runtime relies on.

use kvm_ioctls::Kvm;

use super::{Check, Probe, Status};

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
