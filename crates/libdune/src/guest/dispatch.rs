//! Trap dispatch in guest ring 0.
//!
//! `dune_trap_common` calls `dune_trap_dispatch` on the vCPU's IST1 stack with the FPU
//! state saved, FS base set to ring 0's, and TSS.ist1 lowered so a fault inside a
//! handler nests safely. Registered handlers run here, with no exit to the host;
//! everything else goes to the host with one `out` (lazy mappings, signals, reports).
//!
//! What runs here must not take a lock the interrupted code may hold (the runtime's
//! state lock, the allocator's), and must fit in `TRAP_LEVEL_STACK` of stack.

use core::sync::atomic::{AtomicUsize, Ordering};

use super::entry::{PORT_PASSTHROUGH, PORT_TRAP};
use super::{DuneTf, SYSCALL_VECTOR};
use super::session::{self, UserExit};

/// A handler for one interrupt or exception vector.
pub type IntrHandler = fn(&mut DuneTf);
/// A page-fault handler: faulting address, error code, frame. Returns whether it
/// handled the fault; `false` lets the runtime handle it (lazy mappings, SIGSEGV).
pub type PgfltHandler = fn(u64, u64, &mut DuneTf) -> bool;
/// A handler for system calls made in ring 3.
pub type SyscallHandler = fn(&mut DuneTf);

static INTR: [AtomicUsize; 256] = [const { AtomicUsize::new(0) }; 256];
static PGFLT: AtomicUsize = AtomicUsize::new(0);
static SYSCALL: AtomicUsize = AtomicUsize::new(0);

/// Page-fault vector.
const PF: u64 = 14;

/// Installs (or with `None` removes) the handler of `vector`.
pub fn set_intr_handler(vector: u8, h: Option<IntrHandler>) {
    INTR[vector as usize].store(h.map_or(0, |f| f as usize), Ordering::Release);
}

/// Installs (or removes) the page-fault handler.
pub fn set_pgflt_handler(h: Option<PgfltHandler>) {
    PGFLT.store(h.map_or(0, |f| f as usize), Ordering::Release);
}

/// Installs (or removes) the ring-3 system-call handler.
pub fn set_syscall_handler(h: Option<SyscallHandler>) {
    SYSCALL.store(h.map_or(0, |f| f as usize), Ordering::Release);
}

/// Called by `dune_trap_common` for every trap.
///
/// # Safety
/// Only the entry code calls this, with `tf` pointing at the frame it built.
#[no_mangle]
pub unsafe extern "C" fn dune_trap_dispatch(tf: *mut DuneTf, vector: u64, cr2: u64) {
    // SAFETY: the entry code passes its own frame, valid and unaliased for this call.
    let tf = unsafe { &mut *tf };
    if vector == super::timer::VECTOR as u64 {
        // A time slice ran out: acknowledged at once; it matters only to a session
        // (below), and in ring 0 it is ignored.
        super::timer::on_interrupt();
        if !tf.from_user() {
            return;
        }
    }
    if tf.from_user() {
        // A TLB shootdown is acknowledged at once (the sender waits for it), and then
        // the session learns of it too: a component that keeps a page table of its own
        // for ring 3 (a compartment) must drop what the memory-map change made stale
        // before ring 3 runs on.
        if vector == super::shootdown::VECTOR as u64 {
            super::shootdown::on_ipi();
        }
        // A run_user session gets every ring-3 event back in ordinary ring-0 code
        // (returns only when no session is running).
        let exit = match vector {
            SYSCALL_VECTOR => UserExit::Syscall,
            v if v < 32 => UserExit::Exception { vector: v as u8, err: tf.err, addr: if v == PF { cr2 } else { 0 } },
            v => UserExit::Interrupt { vector: v as u8 },
        };
        session::leave(tf, exit);
        if vector == super::shootdown::VECTOR as u64 {
            return;
        }
    }
    if vector == session::SIGNAL_VECTOR as u64 {
        // Raised by the host for a pending signal; without a session only a
        // registered handler cares.
        if let Some(h) = INTR.get(vector as usize).map(|s| s.load(Ordering::Acquire)).filter(|&f| f != 0) {
            // SAFETY: only IntrHandler values are stored in INTR.
            let h = unsafe { core::mem::transmute::<usize, IntrHandler>(h) };
            h(tf);
        }
        return;
    }
    if vector == SYSCALL_VECTOR {
        match SYSCALL.load(Ordering::Acquire) {
            0 => passthrough(tf),
            f => {
                // SAFETY: only SyscallHandler values are stored in SYSCALL.
                let h = unsafe { core::mem::transmute::<usize, SyscallHandler>(f) };
                h(tf)
            }
        }
        return;
    }
    if vector == super::shootdown::VECTOR as u64 {
        super::shootdown::on_ipi();
        return;
    }
    if vector == PF {
        let f = PGFLT.load(Ordering::Acquire);
        if f != 0 {
            // SAFETY: only PgfltHandler values are stored in PGFLT.
            let h = unsafe { core::mem::transmute::<usize, PgfltHandler>(f) };
            if h(cr2, tf.err, tf) {
                return;
            }
        }
    } else if let Some(slot) = INTR.get(vector as usize) {
        let f = slot.load(Ordering::Acquire);
        if f != 0 {
            // SAFETY: only IntrHandler values are stored in INTR.
            let h = unsafe { core::mem::transmute::<usize, IntrHandler>(f) };
            h(tf);
            return;
        }
    }
    to_host(tf, vector, cr2);
}

/// Hands a trap to the host. The host may edit `tf` (to deliver a signal) and asks for
/// a TLB flush in rax when it changed the page table (a lazy mapping).
pub fn to_host(tf: &mut DuneTf, vector: u64, cr2: u64) {
    let flush: u64;
    // SAFETY: `out` exits to the host, which reads the frame at rdi and returns with rax
    // set; the frame stays valid (it is this call's argument).
    unsafe {
        core::arch::asm!("out {p}, al", p = const PORT_TRAP, in("rdi") tf as *mut DuneTf, in("rsi") vector, in("rdx") cr2, inlateout("rax") 0u64 => flush, options(nostack));
    }
    if flush & 1 != 0 {
        flush_tlb();
    }
}

/// Performs the system call described by `tf` (a call made in ring 3) in Linux, with
/// the result in `tf.rax`, as libdune's `dune_passthrough_syscall`.
pub fn passthrough(tf: &mut DuneTf) {
    let flush: u64;
    // SAFETY: as in to_host; the host performs the call with tf's registers.
    unsafe {
        core::arch::asm!("out {p}, al", p = const PORT_PASSTHROUGH, in("rdi") tf as *mut DuneTf, inlateout("rax") 0u64 => flush, options(nostack));
    }
    if flush & 1 != 0 {
        flush_tlb();
    }
}

/// Asks the host for runtime service `which` (`entry::SERVICE_*`) with `arg`: work
/// that must run natively on the host side, such as opening descriptors above the
/// program's limit. Returns the service's result (`-errno` on failure).
pub fn service(which: u64, arg: u64) -> i64 {
    let ret: i64;
    // SAFETY: `out` exits to the host, which reads rdi and rsi and returns with rax
    // set; no memory is passed.
    unsafe {
        core::arch::asm!("out {p}, al", p = const super::entry::PORT_SERVICE, in("rdi") which, in("rsi") arg, inlateout("rax") 0i64 => ret, options(nostack, nomem));
    }
    ret
}

/// Drops every translation of this vCPU, for all PCIDs (toggling CR4.PGE; Intel SDM
/// vol. 3A, 4.10.4.1).
pub fn flush_tlb_all_pcids() {
    // SAFETY: writing CR4 with PGE flipped and back changes nothing but the TLB.
    unsafe {
        core::arch::asm!("mov {t}, cr4", "xor {t}, {pge}", "mov cr4, {t}", "xor {t}, {pge}", "mov cr4, {t}", t = out(reg) _, pge = const 1u64 << 7, options(nostack, preserves_flags));
    }
}

/// Drops every non-global translation of this vCPU (a CR3 reload).
pub fn flush_tlb() {
    // SAFETY: reloading CR3 with its own value only invalidates translations.
    unsafe { core::arch::asm!("mov {t}, cr3", "mov cr3, {t}", t = out(reg) _, options(nostack, preserves_flags)) };
}
