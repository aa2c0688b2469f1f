//! System calls made in Dune mode.
//!
//! The guest's `syscall` lands on `dune_syscall_entry`, which exits to the host with
//! all registers intact. The host thread (the same Linux thread) performs the call with
//! those registers: the guest's pointers are valid host pointers because guest
//! virtual == host virtual. Calls that change the process itself get extra work so
//! the VM follows: memory (page table and memslots), threads (a vCPU each), fork (a
//! VM of its own), thread exit (the vCPU goes back to the pool), FS/GS bases.
//!
//! Runs on exit paths: no heap allocation (see `state`).

use core::sync::atomic::{AtomicBool, Ordering};
use kvm_bindings::kvm_regs;
use kvm_ioctls::SyncReg;

use crate::guest::{entry, DuneTf};
use crate::host::memory::{page_range, PAGE, USER_END};
use crate::host::pagetable::Perms;
use crate::host::report::{die_fatal, die_runtime_error, warn_runtime_error};
use crate::host::state::{map_range, unmap_range, with_state, write_stats, Resume, ThreadCtx, COUNTERS, STATS_AT_EXIT};
use crate::host::{mapchanges, procmap, reserved, sys};

use super::thread::{self, ThreadEntry};
use super::exec;
use super::guard::{self, Verdict};
use super::signal;

/// Handles one system-call exit: performs the call and sets the return registers.
/// `thread_start` is where a new thread's host side begins (the host loop).
pub fn handle(ctx: &mut ThreadCtx, thread_start: ThreadEntry) {
    COUNTERS.syscalls.fetch_add(1, core::sync::atomic::Ordering::Relaxed);
    let regs = ctx.vcpu.fd.sync_regs().regs;
    let nr = regs.rax;
    let args = [regs.rdi, regs.rsi, regs.rdx, regs.r10, regs.r8, regs.r9];
    let (ret, resume) = dispatch(ctx, &regs, thread_start, nr, args);
    signal::after_masked_wait(ctx, nr, ret);
    let restart = ret == -(libc::EINTR as i64) && signal::should_restart(ctx, nr, &args);
    let r = &mut ctx.vcpu.fd.sync_regs_mut().regs;
    match resume {
        Resume::Restored => {}
        _ if restart => {
            // SA_RESTART: the handler runs first, then `syscall` (2 bytes) again.
            r.rax = nr;
            r.rflags = r.r11;
            r.rip = r.rcx - 2;
        }
        Resume::Normal => {
            r.rax = ret as u64;
            r.rflags = r.r11;
            r.rip = r.rcx;
        }
        Resume::FlushTlb => {
            r.rax = ret as u64;
            r.rflags = r.r11;
            r.rip = entry::addr_of(entry::dune_syscall_return_flush);
        }
    }
    ctx.vcpu.fd.set_sync_dirty_reg(SyncReg::Register);
}

/// Performs system call `nr` on the host unchanged.
fn passthrough(nr: u64, args: [u64; 6]) -> i64 {
    // SAFETY: the guest asked for exactly this call with these arguments; the guest's
    // addresses are this process's addresses. Calls that change the process are
    // intercepted in `dispatch` before reaching here.
    unsafe { sys::syscall6(nr, args) }
}

pub(super) fn dispatch(ctx: &mut ThreadCtx, regs: &kvm_regs, thread_start: ThreadEntry, nr: u64, a: [u64; 6]) -> (i64, Resume) {
    // A call that replaces or closes a given number waits until no descriptor is in
    // flight there (`reserved::pin`); in application mode the application does this
    // for the program's calls, and its own must not wait on its own pins.
    let _exclusive = (guard::replaces_descriptors(nr) && !reserved::app_mode()).then(reserved::exclusive);
    match guard::check(nr, &a, std::os::fd::AsRawFd::as_raw_fd(&ctx.vcpu.fd)) {
        Verdict::Answer(ret) => return (ret, Resume::Normal),
        Verdict::Rewrite(b) => return (passthrough(nr, b), Resume::Normal),
        Verdict::Pass => {}
    }
    let n = nr as i64;
    match n {
        libc::SYS_getdents64 => (getdents64(a), Resume::Normal),
        libc::SYS_mmap => {
            let ret = passthrough(nr, a);
            if sys::check(ret).is_err() {
                return (ret, Resume::Normal);
            }
            let (s, e) = page_range(ret as u64, (ret as u64).saturating_add(a[1]));
            if a[3] & (libc::MAP_FIXED | libc::MAP_FIXED_NOREPLACE) as u64 != 0 {
                mapchanges::changed(s, e);
                // What was mapped there is replaced.
                interrupt_sessions();
            }
            if a[3] & libc::MAP_FIXED as u64 == 0 {
                // Address space the kernel just handed out was free: whatever user
                // memory was declared there is gone (`user::add_user_range` again).
                fresh_space(s, e);
            }
            let res = if a[3] & libc::MAP_GROWSDOWN as u64 != 0 {
                mem_sync(s, e)
            } else {
                map_range(s, e, Perms::from_prot(a[2] as i32))
            };
            if res.is_err() {
                // The VM cannot follow (memslot budget, full tables): undo and fail.
                passthrough(libc::SYS_munmap as u64, [s, e - s, 0, 0, 0, 0]);
                let _ = unmap_range(s, e);
                return (-(libc::ENOMEM as i64), Resume::FlushTlb);
            }
            // Even a fresh mapping can replace an emptied page table by a large page,
            // freeing a table the TLB's paging-structure caches may still point to.
            (ret, Resume::FlushTlb)
        }
        // Changes are recorded after the kernel made them: a reader that sees the new
        // generation sees the new map.
        libc::SYS_munmap => {
            let r = after_ok(passthrough(nr, a), || unmap_range(a[0], a[0].saturating_add(a[1])));
            mapchanges::changed(a[0], a[0].saturating_add(a[1]));
            interrupt_sessions();
            r
        }
        libc::SYS_mprotect | libc::SYS_pkey_mprotect => {
            let ret = passthrough(nr, a);
            let r = after_ok(ret, || map_range(a[0], a[0].saturating_add(a[1]), Perms::from_prot(a[2] as i32)));
            mapchanges::changed(a[0], a[0].saturating_add(a[1]));
            // Even a change that adds access: a table of ring 3's own may map the range
            // by what it was (sthreads share the master's read-only pages).
            interrupt_sessions();
            r
        }
        libc::SYS_mremap => {
            let ret = passthrough(nr, a);
            if sys::check(ret).is_err() {
                // A failed MREMAP_FIXED may have unmapped its destination already
                // (Linux unmaps it before checking the source): the guest follows.
                if a[3] & libc::MREMAP_FIXED as u64 != 0 {
                    let (s, e) = page_range(a[4], a[4].saturating_add(a[2]));
                    mapchanges::changed(s, e);
                    interrupt_sessions();
                    if mem_sync(s, e).is_err() {
                        let _ = unmap_range(s, e);
                    }
                    return (ret, Resume::FlushTlb);
                }
                return (ret, Resume::Normal);
            }
            // Old range gone (or shrunk), new range wherever the kernel put it.
            let (old, old_len, new, new_len) = (a[0], a[1], ret as u64, a[2]);
            mapchanges::changed(old, old.saturating_add(old_len));
            mapchanges::changed(new, new.saturating_add(new_len));
            interrupt_sessions();
            if new != old && a[3] & libc::MREMAP_FIXED as u64 == 0 {
                let (s, e) = page_range(new, new.saturating_add(new_len));
                fresh_space(s, e);
            }
            // With MREMAP_DONTUNMAP the old range stays mapped (emptied): the guest
            // drops it all the same and maps it again on first use.
            let res = unmap_range(old, old.saturating_add(old_len)).and_then(|_| mem_sync(new, new.saturating_add(new_len)));
            (if res.is_err() { -(libc::ENOMEM as i64) } else { ret }, Resume::FlushTlb)
        }
        libc::SYS_brk => {
            // SAFETY: brk(0) only queries the current break.
            let old = unsafe { sys::syscall(libc::SYS_brk, 0, 0, 0) } as u64;
            let new = passthrough(nr, a) as u64;
            let (lo, hi) = (old.min(new), old.max(new));
            after_ok(new as i64, || mem_sync(lo & !(PAGE - 1), hi))
        }
        libc::SYS_shmat => {
            let ret = passthrough(nr, a);
            if sys::check(ret).is_ok() {
                if let Ok(Some(v)) = procmap::find(ret as u64) {
                    // SHM_REMAP replaces what was mapped there.
                    mapchanges::changed(v.start, v.end);
                    interrupt_sessions();
                    if mem_sync(v.start, v.end).is_err() {
                        return (-(libc::ENOMEM as i64), Resume::FlushTlb);
                    }
                }
            }
            (ret, Resume::FlushTlb)
        }
        libc::SYS_shmdt => {
            let vma = procmap::find(a[0]).ok().flatten();
            let ret = passthrough(nr, a);
            if let Some(v) = &vma {
                mapchanges::changed(v.start, v.end);
                interrupt_sessions();
            }
            match vma {
                Some(v) => after_ok(ret, || mem_sync(v.start, v.end)),
                None => (ret, Resume::Normal),
            }
        }
        libc::SYS_arch_prctl => arch_prctl(ctx, nr, a),
        libc::SYS_clone => thread::clone(ctx, regs, thread_start, a[0], a[1], a[2], a[3], a[4]),
        // glibc falls back to clone(2) on ENOSYS; clone3's argument block would need
        // copying and rewriting for the host stack, clone's registers do not.
        libc::SYS_clone3 => (-(libc::ENOSYS as i64), Resume::Normal),
        libc::SYS_fork => thread::clone(ctx, regs, thread_start, libc::SIGCHLD as u64, 0, 0, 0, 0),
        libc::SYS_vfork => thread::clone(ctx, regs, thread_start, (libc::CLONE_VFORK | libc::SIGCHLD) as u64, 0, 0, 0, 0),
        libc::SYS_exit => thread::exit(ctx, a[0]),
        libc::SYS_execve | libc::SYS_execveat => (exec::execve(nr, a), Resume::Normal),
        libc::SYS_exit_group => {
            if STATS_AT_EXIT.load(core::sync::atomic::Ordering::Relaxed) {
                write_stats(2);
            }
            (passthrough(nr, a), Resume::Normal)
        }
        libc::SYS_rt_sigaction => (signal::sigaction(a[0] as i32, a[1], a[2], a[3]), Resume::Normal),
        libc::SYS_rt_sigreturn => signal::sigreturn(ctx),
        _ => (passthrough(nr, a), Resume::Normal),
    }
}

/// `getdents64`, without the runtime's descriptors in a listing of `/proc/self/fd`
/// (`guard::filter_fd_listing`). Reads at most 16 KiB at a time so the listing can
/// be filtered in a fixed buffer; reads on when a whole batch was the runtime's.
fn getdents64(a: [u64; 6]) -> i64 {
    let count = a[2].min(16 * 1024);
    // The directory is read and recognised through one duplicate at the runtime's
    // numbers (the same open file, so the same offset): a sibling thread renumbering
    // the program's descriptor between the read and the check changes nothing.
    let dup = match reserved::with_fd_room(|| reserved::dup_high(a[0] as i32)) {
        Ok(d) => d,
        Err(e) => return -(e as i64),
    };
    let r = loop {
        let ret = passthrough(libc::SYS_getdents64 as u64, [dup as u64, a[1], count, 0, 0, 0]);
        if ret <= 0 {
            break ret;
        }
        let kept = guard::filter_fd_listing(dup as u64, a[1], ret as usize);
        if kept > 0 {
            break kept as i64;
        }
    };
    // SAFETY: the duplicate made above, owned here alone.
    unsafe { sys::syscall(libc::SYS_close, dup as u64, 0, 0) };
    r
}

/// Runs `f` when the call succeeded; a failure of `f` means the VM could not follow a
/// change the kernel made, which leaves the guest unable to use that memory: report it.
/// `[start, end)` was free address space a moment ago: it holds no user memory.
fn fresh_space(start: u64, end: u64) {
    let _ = with_state(|st| if st.mem.is_user_anywhere(start, end) { st.mem.set_user(&st.vm, start, end, false) } else { Ok(()) });
}

/// Set by an application that keeps page tables of its own for ring 3 derived from
/// the memory map (`runtime::interrupt_sessions_on_map_change`).
pub static INTERRUPT_SESSIONS: AtomicBool = AtomicBool::new(false);

/// After a change of the memory map, for an application that asked: every vCPU
/// running ring 3 leaves its `run_user` session (a TLB-shootdown IPI, which ends one)
/// before the call returns, so its component looks at the map again before ring 3
/// runs on. One interrupt broadcast through the in-kernel local APICs
/// (`KVM_SIGNAL_MSI` to destination 0xff, every vCPU in x2APIC mode).
fn interrupt_sessions() {
    if !INTERRUPT_SESSIONS.load(Ordering::Acquire) {
        return;
    }
    crate::guest::shootdown::from_host(|| crate::host::state::send_msi(crate::host::state::MSI_BROADCAST, crate::guest::shootdown::VECTOR).is_ok());
}

fn after_ok(ret: i64, f: impl FnOnce() -> crate::Result<()>) -> (i64, Resume) {
    if sys::check(ret).is_ok() {
        if let Err(e) = f() {
            warn_runtime_error("updating the guest page table", &e);
        }
    }
    (ret, Resume::FlushTlb)
}

fn mem_sync(start: u64, end: u64) -> crate::Result<()> {
    with_state(|st| st.mem.sync(&st.vm, start, end))
}

fn arch_prctl(ctx: &mut ThreadCtx, nr: u64, a: [u64; 6]) -> (i64, Resume) {
    // GS base belongs to the runtime in Dune mode (it points at the vCPU's Percpu, as in
    // libdune); the process's own value is kept aside and reported back.
    let code = a[0] as i32;
    let pc = ctx.vcpu.percpu();
    if code == sys::ARCH_GET_GS {
        // SAFETY: Percpu is this vCPU's runtime memory.
        let gs = unsafe { (*pc).saved_gs };
        return (if sys::write_guest(a[1], &gs.to_le_bytes()).is_ok() { 0 } else { -(libc::EFAULT as i64) }, Resume::Normal);
    }
    if code == sys::ARCH_SET_GS {
        if a[1] >= USER_END {
            return (-(libc::EPERM as i64), Resume::Normal);
        }
        // SAFETY: as above.
        unsafe { (*pc).saved_gs = a[1] };
        return (0, Resume::Normal);
    }
    let ret = passthrough(nr, a);
    if sys::check(ret).is_err() {
        return (ret, Resume::Normal);
    }
    // The host thread keeps the same bases, so signal handlers run by the kernel on the
    // host side and the guest see the same thread pointer.
    if code == sys::ARCH_SET_FS {
        match ctx.vcpu.fd.get_sregs() {
            Ok(mut s) => {
                s.fs.base = a[1];
                if let Err(e) = ctx.vcpu.fd.set_sregs(&s) {
                    die_runtime_error("KVM_SET_SREGS", &e);
                }
            }
            Err(e) => die_runtime_error("KVM_GET_SREGS", &e),
        }
    }
    (ret, Resume::Normal)
}

/// Calls that create or end execution contexts (`clone`, `clone3`, `fork`, `vfork`,
/// `rt_sigreturn`): they need the `syscall` instruction's own return path, so a
/// ring-3 passthrough or a hypercall gets `ENOSYS` for them.
pub(super) fn needs_syscall_return(nr: u64) -> bool {
    matches!(nr as i64, libc::SYS_clone | libc::SYS_clone3 | libc::SYS_fork | libc::SYS_vfork | libc::SYS_rt_sigreturn)
}

/// A runtime service the guest asked for (`guest::dispatch::service`): rdi says which,
/// rsi is its argument, the result goes to rax.
pub fn service(ctx: &mut ThreadCtx) {
    let (which, arg) = {
        let r = &ctx.vcpu.fd.sync_regs().regs;
        (r.rdi, r.rsi)
    };
    let ret = match which {
        entry::SERVICE_DUP_APP => match reserved::dup_app(arg as i32) {
            Ok(fd) => fd as i64,
            Err(e) => -(e as i64),
        },
        entry::SERVICE_DUP_MAPS => match crate::host::procmap::own_fd().and_then(reserved::dup_app) {
            Ok(fd) => fd as i64,
            Err(e) => -(e as i64),
        },
        _ => -(libc::ENOSYS as i64),
    };
    ctx.vcpu.fd.sync_regs_mut().regs.rax = ret as u64;
    ctx.vcpu.fd.set_sync_dirty_reg(SyncReg::Register);
}

/// A system call made in ring 3 that a ring-0 handler passes to Linux
/// (`guest::dispatch::passthrough`): performed with the frame's registers, result in
/// the frame's rax. Calls that would create or end execution contexts from ring 3
/// (clone, fork, sigreturn) are refused with ENOSYS.
pub fn passthrough_tf(ctx: &mut ThreadCtx, thread_start: ThreadEntry) {
    let tf_addr = ctx.vcpu.fd.sync_regs().regs.rdi;
    if !ctx.vcpu.area_contains(tf_addr, core::mem::size_of::<DuneTf>() as u64) {
        die_fatal(&ctx.vcpu.fd, "passthrough exit with a frame outside the vCPU's trap stack");
    }
    // SAFETY: inside this vCPU's area (checked); the guest waits in its `out`.
    let mut tf = unsafe { core::ptr::read(tf_addr as *const DuneTf) };
    let nr = tf.rax;
    let args = [tf.rdi, tf.rsi, tf.rdx, tf.r10, tf.r8, tf.r9];
    let (ret, resume) = if needs_syscall_return(nr) {
        (-(libc::ENOSYS as i64), Resume::Normal)
    } else {
        let mut regs = tf.to_regs();
        regs.rcx = tf.rip;
        regs.r11 = tf.rflags;
        dispatch(ctx, &regs, thread_start, nr, args)
    };
    tf.rax = ret as u64;
    // SAFETY: as above.
    unsafe { core::ptr::write(tf_addr as *mut DuneTf, tf) };
    let r = &mut ctx.vcpu.fd.sync_regs_mut().regs;
    r.rax = matches!(resume, Resume::FlushTlb) as u64;
    ctx.vcpu.fd.set_sync_dirty_reg(SyncReg::Register);
}
