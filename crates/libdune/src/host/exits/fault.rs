//! Exceptions that reach the host.
//!
//! Every IDT stub exits to the host with the vector, the error code and the CPU's
//! exception frame on the vCPU's IST stack. A page fault on memory the process has
//! mapped (mapped behind the runtime's back, or a main-thread stack that grows) is
//! fixed by registering the mapping, and the guest resumes at the faulting
//! instruction. Anything else ends the process as Linux would: a signal whose user
//! handler runs in Dune mode if one is installed, otherwise a one-screen report on
//! stderr and death by the signal's default action (SIGSEGV: status 139). Faults
//! from ring 3 are fixed the same way only on user memory (`user::add_user_range`).
//!
//! Runs on exit paths: no heap allocation (see `state`).

use dune_x86::exception::{self, PageFaultError};
use kvm_ioctls::SyncReg;

use crate::guest::DuneTf;
use crate::host::memory::PAGE;
use crate::host::procmap::{self, Vma};
use crate::host::report::{self, die_fatal, die_runtime_error_value, Fault};
use crate::host::state::{with_state, ThreadCtx, COUNTERS};
use crate::host::sys;

use super::hypercall;
use super::signal;
use super::thread::ThreadEntry;

/// Handles a trap the guest's dispatcher passed on (`guest::dispatch::to_host`).
/// `thread_start` is for the system calls a hypercall may make (`hypercall::from_ud`).
pub fn handle(ctx: &mut ThreadCtx, thread_start: ThreadEntry) {
    let regs = ctx.vcpu.fd.sync_regs().regs;
    let (tf_addr, vector, cr2) = (regs.rdi, regs.rsi, regs.rdx);
    let tf_len = core::mem::size_of::<DuneTf>() as u64;
    if !ctx.vcpu.area_contains(tf_addr, tf_len) || vector > 255 {
        die_fatal(&ctx.vcpu.fd, "trap exit with a frame outside the vCPU's trap stack");
    }
    // SAFETY: the frame lies inside this vCPU's area (checked above), runtime memory
    // that only this thread uses while its guest side waits in the `out`.
    let mut tf = unsafe { core::ptr::read(tf_addr as *const DuneTf) };
    if vector == exception::UD as u64 {
        if let Some(flush) = hypercall::from_ud(ctx, &mut tf, thread_start) {
            // SAFETY: as above; the guest resumes from the updated frame.
            unsafe { core::ptr::write(tf_addr as *mut DuneTf, tf) };
            // The dispatcher reloads CR3 when rax is 1: the page table changed.
            ctx.vcpu.fd.sync_regs_mut().regs.rax = flush as u64;
            ctx.vcpu.fd.set_sync_dirty_reg(SyncReg::Register);
            return;
        }
    }
    COUNTERS.traps.fetch_add(1, core::sync::atomic::Ordering::Relaxed);
    let fault = Fault { tf, tf_addr, vector: vector as u8, addr: if vector == exception::PF as u64 { cr2 } else { 0 } };
    if fault.vector == exception::PF && ctx.vcpu.is_guard_page(fault.addr) {
        // A handler (or a chain of nested faults) ran off its trap stack: nothing on
        // this vCPU's trap path can run safely any more.
        let regs = tf.to_regs();
        let sregs = ctx.vcpu.fd.get_sregs().ok();
        report::report("trap stack overflow: a trap handler used more than its stack (about 12 KiB per nesting level)", Some(&fault), &regs, sregs.as_ref());
        report::die_by_signal(libc::SIGSEGV);
    }
    let user_ok = |a: u64| with_state(|st| Ok(st.mem.is_user(a & !(PAGE - 1), (a & !(PAGE - 1)) + PAGE))).unwrap_or(false);
    if fault.vector == exception::PF && (!tf.from_user() || user_ok(fault.addr)) && lazy_map(ctx, &fault) {
        // The dispatcher reloads CR3 when rax is 1: the page table changed.
        ctx.vcpu.fd.sync_regs_mut().regs.rax = 1;
        ctx.vcpu.fd.set_sync_dirty_reg(SyncReg::Register);
        return;
    }
    ctx.last_fault = (0, 0);
    signal::deliver_fault(ctx, &fault)
}

/// A page fault on memory the process has: register it and retry. Returns false when
/// the access is not allowed, or when the same fault repeats right after a fix.
fn lazy_map(ctx: &mut ThreadCtx, f: &Fault) -> bool {
    let key = (f.addr & !(PAGE - 1), f.tf.rip);
    if ctx.last_fault == key {
        return false;
    }
    // Runtime memory is mapped once and for all: a fault there is never lazy.
    if with_state(|st| Ok(st.mem.is_runtime(f.addr))).unwrap_or(true) {
        return false;
    }
    let Ok(found) = procmap::find_checked(f.addr) else { return false };
    let vma = match found {
        // Beyond the end of a mapped file: SIGBUS, never a mapping.
        Some((_, true)) => return false,
        Some((v, false)) => v,
        None => match grow_stack(f.addr) {
            Some(v) => v,
            None => return false,
        },
    };
    let err = f.tf.err;
    let write = err & PageFaultError::W != 0;
    let fetch = err & PageFaultError::ID != 0;
    if (write && !vma.write) || (fetch && !vma.exec) || !vma.accessible() {
        return false;
    }
    if with_state(|st| st.mem.sync(&st.vm, vma.start, vma.end)).is_err() {
        return false;
    }
    ctx.last_fault = key;
    true
}

/// A fault just below the main thread's stack: let the kernel grow the stack by
/// touching the address on the host, as the faulting access would have.
fn grow_stack(addr: u64) -> Option<Vma> {
    let mut below: Option<Vma> = None;
    let mut stack: Option<Vma> = None;
    procmap::for_each(|v| {
        if v.end <= addr {
            below = Some(*v);
            true
        } else {
            stack = v.stack.then_some(*v);
            false
        }
    })
    .ok()?;
    let stack = stack?;
    let mut lim = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit writes one struct rlimit.
    unsafe { sys::syscall(libc::SYS_getrlimit, libc::RLIMIT_STACK as u64, &mut lim as *mut _ as u64, 0) };
    let limit = if lim.rlim_cur == libc::RLIM_INFINITY { 1 << 30 } else { lim.rlim_cur };
    // Linux keeps a guard gap of 256 pages between the stack and the mapping below.
    let gap = 256 * PAGE;
    if addr < stack.end.saturating_sub(limit) || below.is_some_and(|b| addr < b.end + gap) {
        return None;
    }
    // SAFETY: the address lies below the [stack] mapping, within RLIMIT_STACK and above
    // the guard gap: the kernel extends the stack on this access instead of faulting.
    unsafe { core::ptr::read_volatile((addr & !(PAGE - 1)) as *const u8) };
    procmap::find(addr).ok().flatten()
}

/// `KVM_RUN` failed with `EFAULT`, or the guest touched a guest-physical address with no
/// memslot: a mapping went away or moved behind the runtime's back. Re-read the whole
/// map. If nothing changes, the guest may have touched a file mapping beyond the end of
/// its file (truncated, or mapped longer than it is), which KVM cannot fault in and
/// does not name: those pages leave the guest page table, so the retry takes a guest
/// page fault with the address, and the program gets SIGBUS as in Linux. Otherwise the
/// guest is stuck on a bad address.
pub fn stale_mapping(ctx: &mut ThreadCtx) {
    ctx.stale_streak += 1;
    // Ring 3 stuck on the same access after the map was read again: the page is one
    // the host never backs; that session ends, not the process.
    if ctx.stale_streak > 2 && fault_ring3(ctx) {
        ctx.stale_streak = 0;
        return;
    }
    if ctx.stale_streak > 3 {
        // Still stuck after the pages past a file's end were taken out: that is such
        // a page, which Linux answers with SIGBUS (the runtime cannot resume the
        // access, so it ends the process the way Linux's default action would).
        if unmap_beyond_eof() {
            report::die_fatal_by(&ctx.vcpu.fd, "guest access to memory that is no longer mapped, with a mapped file cut short (SIGBUS, as Linux)", libc::SIGBUS);
        }
        die_fatal(&ctx.vcpu.fd, "guest access to memory that is no longer mapped");
    }
    // Something changed behind the runtime's back: anywhere, as far as it knows.
    crate::host::mapchanges::changed(0, u64::MAX);
    let res = with_state(|st| {
        let before = st.mem.stats();
        st.mem.resync_all(&st.vm)?;
        Ok(before != st.mem.stats())
    });
    // Re-reading the map maps such pages again: take them out after every re-read.
    let tails = res.is_ok() && unmap_beyond_eof();
    match res {
        Ok(changed) if changed || tails => {}
        Ok(_) if fault_ring3(ctx) => ctx.stale_streak = 0,
        Ok(_) => die_fatal(&ctx.vcpu.fd, "guest access to memory that is no longer mapped"),
        Err(e) => die_runtime_error_value("re-reading /proc/self/maps", &e),
    }
}

/// The access KVM cannot back came from ring 3 (an untrusted program or an sthread
/// touching a page the host never backs, such as an unused `[vvar]` page): that
/// session ends with a general-protection fault, which its ring-0 handler sees as an
/// exception of ring 3's, not the process. KVM does not name the address on every
/// kernel, so no page fault is made up. False when the vCPU is in ring 0.
fn fault_ring3(ctx: &mut ThreadCtx) -> bool {
    let Ok(sregs) = ctx.vcpu.fd.get_sregs() else { return false };
    if sregs.cs.selector & 3 != 3 {
        return false;
    }
    let Ok(mut ev) = ctx.vcpu.fd.get_vcpu_events() else { return false };
    if ev.exception.injected != 0 || ev.exception.pending != 0 || ev.nmi.injected != 0 {
        return false;
    }
    // An interrupt on its way in (the signal vector) is delivered first by the CPU;
    // the access is retried after it and faults again.
    ev.exception.injected = 1;
    ev.exception.nr = 13;
    ev.exception.has_error_code = 1;
    ev.exception.error_code = 0;
    ev.flags = 0;
    COUNTERS.traps.fetch_add(1, core::sync::atomic::Ordering::Relaxed);
    ctx.vcpu.fd.set_vcpu_events(&ev).is_ok()
}


/// Removes from the guest page table every page of a file mapping that lies beyond the
/// end of its file. Returns whether there was one.
fn unmap_beyond_eof() -> bool {
    let mut tails = [(0u64, 0u64); 64];
    let mut n = 0;
    let _ = procmap::for_each_full(|v, file| {
        if let Some(eof) = procmap::beyond_eof(v, file) {
            if n < tails.len() {
                tails[n] = (eof, v.end);
                n += 1;
            }
        }
        true
    });
    if n == 0 {
        return false;
    }
    with_state(|st| {
        for &(s, e) in &tails[..n] {
            st.mem.unmap(&st.vm, s, e)?;
        }
        Ok(())
    })
    .is_ok()
}
