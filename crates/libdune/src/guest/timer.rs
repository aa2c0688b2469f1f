//! A one-shot time slice for ring 3, from this vCPU's local APIC timer.
//!
//! A component that runs untrusted ring-3 code on a thread it needs back (sthreads on
//! the master's thread) arms the timer before `run_user`; if ring 3 still runs when it
//! fires, the session ends with `UserExit::Interrupt { vector: VECTOR }`. The timer is
//! KVM's in-kernel local APIC (x2APIC mode): arming it is one MSR write, and neither
//! arming nor firing exits to user space. Firing in ring 0 (a slice that ended on its
//! own) is acknowledged and ignored.

/// The timer's vector (one above the TLB-shootdown IPI's, in the same priority class:
/// the interrupt is acknowledged at once, so it never holds a shootdown back).
pub const VECTOR: u8 = 0xf2;
/// x2APIC initial count and EOI MSRs (Intel SDM vol. 3A, 11.12.1 and 11.5.4). The
/// timer's LVT entry (one-shot, [`VECTOR`], not masked) and its divide configuration
/// (by 1) are set when the vCPU is made (`host::vcpu`), so a slice is one write.
const MSR_INITIAL_COUNT: u32 = 0x838;
const MSR_EOI: u32 = 0x80b;

fn wrmsr(msr: u32, v: u64) {
    // SAFETY: x2APIC MSR writes in ring 0 (Dune mode); KVM emulates them in the kernel
    // and they change nothing but this vCPU's local APIC.
    unsafe { core::arch::asm!("wrmsr", in("ecx") msr, in("eax") v as u32, in("edx") (v >> 32) as u32, options(nostack, preserves_flags)) };
}

/// Arms this vCPU's timer to fire once after about `ns` nanoseconds of guest time
/// (KVM's APIC timer counts in nanoseconds of bus clock), replacing a slice still
/// armed; 0 disarms it. Dune mode, ring 0. One MSR write: an exit KVM handles in the
/// kernel.
pub fn arm(ns: u64) {
    wrmsr(MSR_INITIAL_COUNT, ns.min(u32::MAX as u64));
}

/// The interrupt's acknowledgement (from the trap dispatcher).
pub fn on_interrupt() {
    wrmsr(MSR_EOI, 0);
}
