//! Threads and processes created in Dune mode, and thread exit.
//!
//! - `clone` with `CLONE_THREAD`: the child gets a vCPU of its own (from the pool) and
//!   a host stack; the host performs the real `clone` so the kernel sees an ordinary
//!   thread (tids, `CLONE_SETTLS`, `CLONE_CHILD_CLEARTID` all unchanged), and the
//!   child's host side runs the loop while its guest side continues after the call.
//! - `fork`, `vfork`, `clone` without `CLONE_VM`: KVM refuses a VM to any process but
//!   its creator, so the child builds a VM of its own over the same (copied) memory
//!   and page tables, and continues in Dune mode.
//! - `clone` with `CLONE_VM` but not `CLONE_THREAD` (`posix_spawn`'s vfork-style
//!   child): it shares the parent's VM memory but is another process, so it cannot
//!   use the VM; it runs natively, outside Dune mode, until its `execve`.
//! - `exit`: the vCPU returns to the pool, the host stack is unmapped, the thread ends.

use kvm_bindings::kvm_regs;

use crate::guest::{entry, NativeFrame};
use crate::host::report::{die_fatal, die_runtime_error, die_runtime_error_value, warn_runtime_error};
use crate::host::state::{lock, new_host_stack, stack_top, with_state, Resume, ThreadCtx};
use crate::host::{reserved, sys};

/// Where a new thread's host side starts: the host loop (`run::thread_start`), passed
/// in by the caller so this file does not depend on the loop that calls it.
pub type ThreadEntry = extern "C" fn(*mut u8) -> !;

const CLONE_VM: u64 = libc::CLONE_VM as u64;
const CLONE_THREAD: u64 = libc::CLONE_THREAD as u64;
const CLONE_SETTLS: u64 = libc::CLONE_SETTLS as u64;

/// `clone(flags, newsp, ptid, ctid, tls)` made in Dune mode.
#[allow(clippy::too_many_arguments)]
pub fn clone(ctx: &mut ThreadCtx, regs: &kvm_regs, start: ThreadEntry, flags: u64, newsp: u64, ptid: u64, ctid: u64, tls: u64) -> (i64, Resume) {
    if flags & CLONE_THREAD != 0 {
        (clone_thread(ctx, regs, start, flags, newsp, ptid, ctid, tls), Resume::Normal)
    } else if flags & CLONE_VM != 0 {
        (clone_native(regs, flags, newsp, ptid, ctid, tls), Resume::Normal)
    } else {
        fork(ctx, regs, flags, newsp, ptid, ctid, tls)
    }
}

#[allow(clippy::too_many_arguments)]
fn clone_thread(ctx: &mut ThreadCtx, regs: &kvm_regs, start: ThreadEntry, flags: u64, newsp: u64, ptid: u64, ctid: u64, tls: u64) -> i64 {
    let prepared = with_state(|st| {
        let mut sregs = ctx.vcpu.fd.get_sregs().map_err(crate::Error::kvm("KVM_GET_SREGS"))?;
        let mut v = st.take_vcpu()?;
        // The child's own GDT/TSS; everything else as the parent's.
        let own = v.sregs(&st.template, sregs.fs.base);
        sregs.gdt = own.gdt;
        sregs.tr = own.tr;
        sregs.gs = own.gs;
        sregs.apic_base = own.apic_base;
        // SAFETY: both Percpu blocks are runtime memory; the child's is not in use yet.
        unsafe { (*v.percpu()).saved_gs = (*ctx.vcpu.percpu()).saved_gs };
        if flags & CLONE_SETTLS != 0 {
            sregs.fs.base = tls;
        }
        let mut child = *regs;
        child.rax = 0;
        child.rip = regs.rcx;
        child.rflags = regs.r11;
        if newsp != 0 {
            child.rsp = newsp;
        }
        let loaded = ctx.vcpu.fpu_state().and_then(|fpu| v.load(&sregs, &child, &fpu));
        if let Err(e) = loaded {
            st.put_vcpu(v);
            return Err(e);
        }
        new_host_stack(v).map_err(|(v, e)| {
            st.put_vcpu(v);
            e
        })
    });
    let child = match prepared {
        Ok(c) => c,
        Err(crate::Error::TooManyVcpus(_)) => return -(libc::EAGAIN as i64),
        Err(e) => {
            warn_runtime_error("creating a thread in Dune mode", &e);
            return -(libc::EAGAIN as i64);
        }
    };
    // SAFETY: the host child starts on its own fresh host stack and calls thread_start
    // with the context prepared for it; flags, tids and tls are the guest's own, so the
    // kernel creates exactly the thread the guest asked for.
    let ret = unsafe { entry::dune_raw_clone(flags, stack_top(child), ptid, ctid, tls, start, child.cast()) };
    if ret < 0 {
        // SAFETY: the child does not exist; its context and stack are ours to release.
        let (v, (base, len)) = unsafe { (core::ptr::read(&(*child).vcpu), (*child).stack) };
        with_state(|st| {
            st.put_vcpu(v);
            Ok(())
        })
        .ok();
        // SAFETY: nothing refers to the stack any more.
        unsafe { reserved::unmap(base as *mut u8, len as usize) };
    }
    ret
}

fn clone_native(regs: &kvm_regs, flags: u64, newsp: u64, ptid: u64, ctid: u64, tls: u64) -> i64 {
    let frame = NativeFrame::from_regs(regs);
    let sp = if newsp != 0 { newsp } else { regs.rsp };
    // SAFETY: the child shares this memory (CLONE_VM) and resumes the guest's registers
    // natively at the return address, on the stack the guest chose; the parent's frame
    // stays alive until the call returns, and with CLONE_VFORK the parent is suspended
    // until the child execs or exits.
    unsafe { entry::dune_raw_clone_native(flags, sp, ptid, ctid, tls, &frame) }
}

fn fork(ctx: &mut ThreadCtx, regs: &kvm_regs, flags: u64, newsp: u64, ptid: u64, ctid: u64, tls: u64) -> (i64, Resume) {
    if newsp != 0 {
        // A new stack without CLONE_VM is legal but unused in practice; supporting it
        // would need the child's rsp rewritten after the raw clone.
        return (-(libc::EINVAL as i64), Resume::Normal);
    }
    let sregs = match ctx.vcpu.fd.get_sregs() {
        Ok(s) => s,
        Err(e) => die_runtime_error("KVM_GET_SREGS", &e),
    };
    let fpu = match ctx.vcpu.fpu_state() {
        Ok(f) => f,
        Err(e) => die_runtime_error_value("KVM_GET_XSAVE", &e),
    };
    // Held across the fork so the child's copy of the tables is consistent.
    let mut guard = lock();
    // SAFETY: a plain fork-style clone on the host stack: the child continues here with a
    // copy of the address space (no CLONE_VM), exactly as after fork(2).
    let ret = unsafe { sys::syscall6(libc::SYS_clone as u64, [flags, 0, ptid, ctid, tls, 0]) };
    if ret != 0 {
        return (ret, Resume::Normal);
    }
    // Child: a VM of its own, this thread's vCPU in it with the parent's state, rax = 0.
    crate::host::reserved::after_fork();
    let Some(st) = guard.as_mut() else { die_fatal(&ctx.vcpu.fd, "fork: runtime state missing") };
    if let Err(e) = st.rebuild_after_fork(&mut ctx.vcpu) {
        drop(guard);
        die_runtime_error_value("rebuilding the VM in a forked child", &e);
    }
    // After the rebuild, which gave back the parent's pooled vCPUs' numbers (until now
    // the map is read at a low number, with no other thread in this process): the
    // child's own descriptor of its map at the runtime's numbers, or no child at all
    // (a fallback at the program's numbers once its threads run would show the map).
    if !crate::host::procmap::after_fork() {
        drop(guard);
        die_runtime_error_value("opening the map's descriptor in a forked child", &crate::Error::ProcMaps("no descriptor at the runtime's numbers"));
    }
    ctx.sig.run = ctx.vcpu.fd.get_kvm_run();
    let mut child = *regs;
    child.rax = 0;
    child.rip = regs.rcx;
    child.rflags = regs.r11;
    if let Err(e) = ctx.vcpu.load(&sregs, &child, &fpu) {
        drop(guard);
        die_runtime_error_value("loading the forked child's vCPU", &e);
    }
    drop(guard);
    // The registers are loaded; the sync-regs copy must not overwrite them.
    ctx.vcpu.fd.sync_regs_mut().regs = child;
    (0, Resume::Normal)
}

/// `exit(status)` of one thread.
pub fn exit(ctx: &mut ThreadCtx, status: u64) -> ! {
    let (base, len) = ctx.stack;
    // SAFETY: the context is abandoned right after: the vCPU moves to the pool, and the
    // stack holding the context is unmapped by dune_exit_thread.
    let v = unsafe { core::ptr::read(&ctx.vcpu) };
    let _ = with_state(|st| {
        st.put_vcpu(v);
        Ok(())
    });
    reserved::forget(base);
    // SAFETY: this thread's host stack is not used after the call; the kernel clears
    // and wakes the guest's CLONE_CHILD_CLEARTID word as for any exiting thread.
    unsafe { entry::dune_exit_thread(base, len, status) }
}
