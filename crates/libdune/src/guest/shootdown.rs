//! TLB shootdown across the vCPUs of the process, with inter-processor interrupts.
//!
//! Each vCPU's local APIC (KVM's in-kernel irqchip) runs in x2APIC mode, where the
//! ICR and EOI registers are MSRs that KVM handles in the kernel: neither sending nor
//! receiving an IPI exits to user space. The initiator flushes its own TLB, sends
//! `VECTOR` to every other vCPU, and waits until each vCPU that is running guest code
//! has acknowledged the new sequence number. A vCPU whose host side is handling an
//! exit (or that is pooled) is not waited for: the IPI stays pending in its APIC and
//! is taken as soon as it runs guest code with interrupts on.
//!
//! Guest code runs with interrupts on (IF=1) in ring 0 and ring 3; the trap path and
//! system-call entry run with them off. Call [`shootdown`] from ordinary code, not
//! from a trap handler (interrupts are off there, so two initiators would wait for
//! each other).

use core::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use super::{this_percpu, wrmsr, Percpu};

/// The IPI vector.
pub const VECTOR: u8 = 0xf1;
/// x2APIC ICR and EOI MSRs (Intel SDM vol. 3A, 11.12.1).
const MSR_X2APIC_ICR: u32 = 0x830;
const MSR_X2APIC_EOI: u32 = 0x80b;
/// ICR: fixed delivery, destination shorthand "all excluding self" (bits 19:18 = 11).
const ICR_ALL_BUT_SELF: u64 = 0b11 << 18;

/// Upper bound on vCPUs tracked (KVM's usual maximum).
pub const MAX_VCPUS: usize = 4096;
static PERCPUS: [AtomicU64; MAX_VCPUS] = [const { AtomicU64::new(0) }; MAX_VCPUS];
static COUNT: AtomicUsize = AtomicUsize::new(0);
static SEQ: AtomicU64 = AtomicU64::new(0);

/// Records a vCPU's Percpu (host side, when the vCPU is made).
pub fn register(id: u64, percpu: *mut Percpu) {
    if let Some(slot) = PERCPUS.get(id as usize) {
        slot.store(percpu as u64, Ordering::Release);
        COUNT.fetch_max(id as usize + 1, Ordering::AcqRel);
    }
}

/// In a forked child: every vCPU but the child's own belongs to the parent.
pub fn mark_gone_except(me: *mut Percpu) {
    for slot in &PERCPUS[..COUNT.load(Ordering::Acquire)] {
        let p = slot.load(Ordering::Acquire);
        if p != 0 && p != me as u64 {
            // SAFETY: Percpu blocks are runtime memory (copied into the child by fork).
            unsafe { (*(core::ptr::addr_of!((*(p as *const Percpu)).in_host) as *const AtomicU64)).store(1, Ordering::Release) };
        }
    }
}


/// The IPI handler (from the trap dispatcher): flush, acknowledge, end of interrupt.
pub fn on_ipi() {
    // All PCIDs: the interrupted code may run under any table.
    super::dispatch::flush_tlb_all_pcids();
    let seq = SEQ.load(Ordering::Acquire);
    // SAFETY: this vCPU's own Percpu; tlb_ack is read by other vCPUs atomically.
    unsafe { (*(core::ptr::addr_of_mut!((*this_percpu()).tlb_ack) as *const AtomicU64)).fetch_max(seq, Ordering::AcqRel) };
    wrmsr(MSR_X2APIC_EOI, 0);
}

/// Flushes the TLB of every vCPU of the process; returns when no vCPU running guest
/// code can still use a translation from before the call.
pub fn shootdown() {
    let seq = SEQ.fetch_add(1, Ordering::AcqRel) + 1;
    super::dispatch::flush_tlb();
    let me = this_percpu() as u64;
    wrmsr(MSR_X2APIC_ICR, ICR_ALL_BUT_SELF | VECTOR as u64);
    wait_for_acks(seq, me);
}

/// A shootdown sent from the host side of an exit (`send` delivers [`VECTOR`] to
/// every vCPU, true when it did): returns when no vCPU running guest code can still
/// use a translation from before the call. The calling thread's own vCPU is in its
/// host side, so it is not waited for (it takes the interrupt when it resumes).
pub fn from_host(send: impl FnOnce() -> bool) {
    let seq = SEQ.fetch_add(1, Ordering::AcqRel) + 1;
    if send() {
        wait_for_acks(seq, 0);
    }
}

/// Waits until every vCPU but `me` running guest code acknowledged sequence `seq`.
fn wait_for_acks(seq: u64, me: u64) {
    let n = COUNT.load(Ordering::Acquire);
    for slot in &PERCPUS[..n] {
        let p = slot.load(Ordering::Acquire);
        if p == 0 || p == me {
            continue;
        }
        let pc = p as *const Percpu;
        // SAFETY: Percpu blocks are runtime memory, never freed; both fields are read
        // as atomics because their vCPUs and hosts write them concurrently.
        let (ack, in_host) = unsafe {
            (&*(core::ptr::addr_of!((*pc).tlb_ack) as *const AtomicU64), &*(core::ptr::addr_of!((*pc).in_host) as *const AtomicU64))
        };
        while ack.load(Ordering::Acquire) < seq && in_host.load(Ordering::Acquire) == 0 {
            core::hint::spin_loop();
        }
    }
}
