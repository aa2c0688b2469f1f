//! A one-shot time slice for ring 3, from this vCPU's local APIC timer.
//!
//! A component that runs untrusted ring-3 code on a thread it needs back (sthreads on
//! the master's thread) arms the timer before `run_user`; when it fires, the vCPU
//! notes that the slice ran out ([`expired`]), and if ring 3 was running the session
//! ends with `UserExit::Interrupt { vector: VECTOR }`. If it fires while ring 0 works
//! between sessions, the note is all: the component looks at it before it runs ring 3
//! again. The timer is KVM's in-kernel local APIC (x2APIC mode): arming it is one MSR
//! write, and neither arming nor firing exits to user space.

/// The timer's vector (in the TLB-shootdown IPI's priority class: the interrupt is
/// acknowledged at once, so it never holds a shootdown back). Not 0xf2, which the
/// original's posted-IPI test (and so the C API's users) send with `dune_apic_send_ipi`.
pub const VECTOR: u8 = 0xf3;
/// x2APIC initial count and EOI MSRs (Intel SDM vol. 3A, 11.12.1 and 11.5.4). The
/// timer's LVT entry (one-shot, [`VECTOR`], not masked) and its divide configuration
/// (by 1) are set when the vCPU is made (`host::vcpu`), so a slice is one write.
const MSR_INITIAL_COUNT: u32 = 0x838;
const MSR_EOI: u32 = 0x80b;

use super::{this_percpu, wrmsr};


/// Arms this vCPU's timer to fire once after about `ns` nanoseconds of guest time
/// (KVM's APIC timer counts in nanoseconds of bus clock), replacing a slice still
/// armed; 0 disarms it. Dune mode, ring 0. One MSR write, an exit KVM handles in the
/// kernel; skipped when a slice of the same length armed earlier has not run out and
/// has at least half of it left (by the TSC): the new slice then ends when that one
/// does, never later than `ns` from now, and no earlier than half of it.
pub fn arm(ns: u64) {
    let pc = this_percpu();
    // SAFETY: rdtsc reads a counter (CR4.TSD is clear).
    let now = unsafe { core::arch::x86_64::_rdtsc() };
    // SAFETY: this vCPU's own Percpu; its timer interrupt writes `slice_expired` too,
    // on this vCPU, so the accesses are ordered with it; the other fields are this
    // function's alone.
    unsafe {
        if ns != 0
            && core::ptr::read_volatile(core::ptr::addr_of!((*pc).slice_expired)) == 0
            && (*pc).slice_ns == ns
            && now < (*pc).slice_keep_until
        {
            return;
        }
        core::ptr::write_volatile(core::ptr::addr_of_mut!((*pc).slice_expired), 0);
        (*pc).slice_ns = ns;
        let half = (ns / 2) as u128 * (*pc).tsc_khz as u128 / 1_000_000;
        (*pc).slice_keep_until = if half == 0 { 0 } else { now.saturating_add(half.min(u64::MAX as u128) as u64) };
    }
    wrmsr(MSR_INITIAL_COUNT, ns.min(u32::MAX as u64));
}

/// Whether the slice armed last on this vCPU ran out.
pub fn expired() -> bool {
    // SAFETY: as in `arm`.
    unsafe { core::ptr::read_volatile(core::ptr::addr_of!((*this_percpu()).slice_expired)) != 0 }
}

/// The interrupt (from the trap dispatcher): noted and acknowledged.
pub fn on_interrupt() {
    // SAFETY: as in `arm`.
    unsafe { core::ptr::write_volatile(core::ptr::addr_of_mut!((*this_percpu()).slice_expired), 1) };
    wrmsr(MSR_EOI, 0);
}
