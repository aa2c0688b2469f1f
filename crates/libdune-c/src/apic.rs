//! x2APIC inter-processor interrupts (libdune's `apic.c`): `dune_apic_id`,
//! `dune_apic_id_for_cpu`, `dune_apic_init_rt_entry`, `dune_apic_send_ipi`,
//! `dune_apic_eoi`.
//!
//! Each vCPU's local APIC is KVM's in-kernel one, in x2APIC mode (the runtime sets it
//! up for its TLB shootdown), so its registers are MSRs that KVM handles without an
//! exit to user space: the ID (0x802, the vCPU id), the interrupt command register
//! (0x830) and end of interrupt (0x80b). The original's kernel module posted the
//! interrupts itself; the names, arguments and the routing table by host CPU are the
//! original's.
//!
//! Everything here may run in trap handlers: no allocation, no lock (the CPU count is
//! read once, by `dune_init`, or on first use from ordinary code).

use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};

use dune_x86::exception::NMI;
use dune_x86::msr::x2apic;

/// Host CPUs the routing table covers.
pub const MAX_CPUS: usize = 4096;

/// x2APIC ID recorded for each host CPU (`u32::MAX`: none), as the original's
/// `apic_routing`.
static ROUTING: [AtomicU32; MAX_CPUS] = [const { AtomicU32::new(u32::MAX) }; MAX_CPUS];
/// Entries of [`ROUTING`] in use: the configured CPUs (0 until known).
static NCPUS: AtomicUsize = AtomicUsize::new(0);

/// The number of configured host CPUs, at most [`MAX_CPUS`].
pub(crate) fn init() -> usize {
    match NCPUS.load(Ordering::Acquire) {
        0 => {
            // SAFETY: sysconf has no preconditions. _SC_NPROCESSORS_CONF is what the
            // original's get_nprocs_conf() returns.
            let n = unsafe { libc::sysconf(libc::_SC_NPROCESSORS_CONF) }.clamp(1, MAX_CPUS as libc::c_long) as usize;
            NCPUS.store(n, Ordering::Release);
            n
        }
        n => n,
    }
}

fn rdmsr(msr: u32) -> u64 {
    let (lo, hi): (u32, u32);
    // SAFETY: an x2APIC register read in guest ring 0 (callers check Dune mode); KVM
    // emulates it in the kernel; no side effects.
    unsafe { core::arch::asm!("rdmsr", in("ecx") msr, out("eax") lo, out("edx") hi, options(nomem, nostack, preserves_flags)) };
    ((hi as u64) << 32) | lo as u64
}

fn wrmsr(msr: u32, v: u64) {
    // SAFETY: an x2APIC register write in guest ring 0 (callers check Dune mode);
    // KVM emulates it: it sends an interrupt or ends one, nothing else.
    unsafe { core::arch::asm!("wrmsr", in("ecx") msr, in("eax") v as u32, in("edx") (v >> 32) as u32, options(nostack, preserves_flags)) };
}

/// The ICR value that sends `vector` to x2APIC ID `dest`, or `None` for an
/// exception vector (0-31 but NMI, which goes with NMI delivery).
pub fn icr(vector: u8, dest: u32) -> Option<u64> {
    let mode = match vector {
        NMI => x2apic::ICR_NMI,
        0..32 => return None,
        v => x2apic::ICR_FIXED | v as u64,
    };
    Some(((dest as u64) << x2apic::ICR_DEST_SHIFT) | x2apic::ICR_PHYSICAL | mode)
}

/// `uint32_t dune_apic_id(void)`: this vCPU's x2APIC ID; `(uint32_t)-1` outside Dune mode.
#[no_mangle]
pub extern "C" fn dune_apic_id() -> u32 {
    if !libdune::in_dune_mode() {
        return u32::MAX;
    }
    rdmsr(x2apic::ID) as u32
}

/// `uint32_t dune_apic_id_for_cpu(uint32_t cpu, bool *error)`: the ID recorded for
/// host CPU `cpu`, `(uint32_t)-1` if none; for a CPU number out of range, 0 with
/// `*error` set.
///
/// # Safety
/// `error` must be NULL or valid for a write of a `bool`.
#[no_mangle]
pub unsafe extern "C" fn dune_apic_id_for_cpu(cpu: u32, error: *mut bool) -> u32 {
    if cpu as usize >= init() {
        if !error.is_null() {
            // SAFETY: the caller passes NULL or a writable bool.
            unsafe { error.write(true) };
        }
        return 0;
    }
    ROUTING[cpu as usize].load(Ordering::Acquire)
}

/// `void dune_apic_init_rt_entry(void)`: records this vCPU's ID for the host CPU the
/// thread runs on.
#[no_mangle]
pub extern "C" fn dune_apic_init_rt_entry() {
    if !libdune::in_dune_mode() {
        return;
    }
    // SAFETY: sched_getcpu has no preconditions (a vDSO call or getcpu system call).
    let cpu = unsafe { libc::sched_getcpu() };
    if let Ok(cpu) = usize::try_from(cpu) {
        if cpu < init() {
            ROUTING[cpu].store(dune_apic_id(), Ordering::Release);
        }
    }
}

/// `void dune_apic_send_ipi(uint8_t vector, uint32_t destination_apic_id)`.
#[no_mangle]
pub extern "C" fn dune_apic_send_ipi(vector: u8, destination_apic_id: u32) {
    if !libdune::in_dune_mode() {
        return;
    }
    if let Some(v) = icr(vector, destination_apic_id) {
        wrmsr(x2apic::ICR, v);
    }
}

/// `void dune_apic_eoi(void)`.
#[no_mangle]
pub extern "C" fn dune_apic_eoi() {
    if libdune::in_dune_mode() {
        wrmsr(x2apic::EOI, 0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn icr_values() {
        assert_eq!(icr(0xf2, 3), Some(0x0000_0003_0000_00f2));
        assert_eq!(icr(NMI, 1), Some(0x0000_0001_0000_0400));
        assert_eq!(icr(0, 1), None);
        assert_eq!(icr(14, 1), None);
        assert_eq!(icr(32, 0), Some(32));
    }

    #[test]
    fn outside_dune_mode_nothing_happens() {
        assert_eq!(dune_apic_id(), u32::MAX);
        dune_apic_eoi();
        dune_apic_send_ipi(0xf2, 0);
        dune_apic_init_rt_entry();
        let mut err = false;
        // SAFETY: a valid bool.
        assert_eq!(unsafe { dune_apic_id_for_cpu(u32::MAX, &mut err) }, 0);
        assert!(err);
        let mut err = false;
        // SAFETY: a valid bool.
        assert_eq!(unsafe { dune_apic_id_for_cpu(0, &mut err) }, u32::MAX);
        assert!(!err);
    }
}
