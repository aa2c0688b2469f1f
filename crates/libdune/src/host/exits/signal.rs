//! Signals in Dune mode: user handlers run in the guest, with Linux's frame.
//!
//! The guest's `rt_sigaction` is recorded in `ACTIONS`; on the host, every signal
//! with a user handler is caught by `host_handler` instead (no `SA_RESTART`, so a
//! blocking call the host makes for the guest returns `EINTR`; no `SA_ONSTACK`, so the
//! guest's alternate stack is never touched by the host). The host handler marks the
//! signal pending for its thread and sets `immediate_exit`; the host loop then builds
//! an `rt_sigframe` on the guest's stack (or its alternate stack) exactly as the kernel
//! lays it out for x86-64 user space — return address = `sa_restorer`, `ucontext_t`
//! with the registers and signal mask, `siginfo_t`, XSAVE image — and resumes the
//! guest in the handler. The guest's `rt_sigreturn` comes back to `sigreturn`.
//!
//! `SIG_DFL` and `SIG_IGN` are left to the kernel, so default actions (termination,
//! core dumps, stop) are the kernel's own. Threads not in Dune mode run user
//! handlers natively from `host_handler`.
//!
//! Guest memory is read and written with `process_vm_readv`/`writev` on the process
//! itself: a bad stack pointer becomes `EFAULT`, never a crash of the host side.

use core::sync::atomic::{AtomicU64, Ordering};

use kvm_bindings::kvm_regs;
use dune_x86::exception;
use kvm_ioctls::SyncReg;

use crate::guest::entry;
use crate::host::report::{self, Fault};
use crate::host::state::{current, Resume, ThreadCtx, COUNTERS, NSIG};
use crate::host::sys::{read_guest, write_guest};
use crate::host::{procmap, sys};

const SIG_DFL: u64 = 0;
const SIG_IGN: u64 = 1;
const SA_SIGINFO: u64 = libc::SA_SIGINFO as u64;
const SA_ONSTACK: u64 = libc::SA_ONSTACK as u64;
const SA_RESTART: u64 = libc::SA_RESTART as u64;
const SA_NODEFER: u64 = libc::SA_NODEFER as u64;
const SA_RESETHAND: u64 = libc::SA_RESETHAND as u64;
const SA_RESTORER: u64 = 0x0400_0000;
/// RFLAGS bits a signal handler may change through its ucontext (arch/x86 FIX_EFLAGS).
const FIX_EFLAGS: u64 = 0x40dd5 | (1 << 16);
/// RFLAGS bits cleared on handler entry: TF, DF, RF.
const HANDLER_CLEAR_FLAGS: u64 = (1 << 8) | (1 << 10) | (1 << 16);
const UC_FP_XSTATE: u64 = 1;

/// The kernel's `struct sigaction` for `rt_sigaction` (x86-64).
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct KSigaction {
    handler: u64,
    flags: u64,
    restorer: u64,
    mask: u64,
}

struct Slot {
    handler: AtomicU64,
    flags: AtomicU64,
    restorer: AtomicU64,
    mask: AtomicU64,
}

/// The guest's signal actions (what it asked for, not what the host installed).
static ACTIONS: [Slot; NSIG] = [const { Slot { handler: AtomicU64::new(0), flags: AtomicU64::new(0), restorer: AtomicU64::new(0), mask: AtomicU64::new(0) } }; NSIG];

fn load(sig: usize) -> KSigaction {
    let s = &ACTIONS[sig];
    KSigaction { handler: s.handler.load(Ordering::Acquire), flags: s.flags.load(Ordering::Relaxed), restorer: s.restorer.load(Ordering::Relaxed), mask: s.mask.load(Ordering::Relaxed) }
}

fn store(sig: usize, a: &KSigaction) {
    let s = &ACTIONS[sig];
    s.flags.store(a.flags, Ordering::Relaxed);
    s.restorer.store(a.restorer, Ordering::Relaxed);
    s.mask.store(a.mask, Ordering::Relaxed);
    s.handler.store(a.handler, Ordering::Release);
}

fn is_function(handler: u64) -> bool {
    handler != SIG_DFL && handler != SIG_IGN
}

fn bit(sig: usize) -> u64 {
    1 << (sig - 1)
}

fn raw_sigaction(sig: usize, act: Option<&KSigaction>, old: Option<&mut KSigaction>) -> i64 {
    let a = act.map_or(0, |a| a as *const KSigaction as u64);
    let o = old.map_or(0, |o| o as *mut KSigaction as u64);
    // SAFETY: both pointers are to live locals (or null); the size is the kernel's sigset.
    unsafe { sys::syscall6(libc::SYS_rt_sigaction as u64, [sig as u64, a, o, 8, 0, 0]) }
}

/// What the host installs for a guest action.
fn host_action(guest: &KSigaction) -> KSigaction {
    if is_function(guest.handler) {
        KSigaction {
            handler: host_handler as *const () as u64,
            flags: SA_SIGINFO | SA_RESTORER | (guest.flags & SA_NODEFER),
            restorer: entry::addr_of(entry::dune_signal_restorer),
            mask: guest.mask,
        }
    } else {
        *guest
    }
}

/// Takes over the handlers installed before Dune mode (at `init`): they now run in
/// the guest too.
pub fn import_handlers() {
    for sig in 1..NSIG {
        if sig == libc::SIGKILL as usize || sig == libc::SIGSTOP as usize {
            continue;
        }
        let mut cur = KSigaction::default();
        if raw_sigaction(sig, None, Some(&mut cur)) < 0 {
            continue;
        }
        if cur.handler == host_handler as *const () as u64 {
            continue;
        }
        store(sig, &cur);
        if is_function(cur.handler) {
            raw_sigaction(sig, Some(&host_action(&cur)), None);
        }
    }
}

/// `rt_sigaction(sig, act, oldact, sigsetsize)` made in Dune mode.
pub fn sigaction(sig: i32, act: u64, oldact: u64, size: u64) -> i64 {
    if size != 8 || sig < 1 || sig as usize >= NSIG {
        return -(libc::EINVAL as i64);
    }
    let sig = sig as usize;
    let old = load(sig);
    if act != 0 {
        let mut new = KSigaction::default();
        if read_guest(act, as_bytes_mut(&mut new)).is_err() {
            return -(libc::EFAULT as i64);
        }
        // The kernel validates (SIGKILL, SIGSTOP, bad flags) on the host action.
        let r = raw_sigaction(sig, Some(&host_action(&new)), None);
        if r < 0 {
            return r;
        }
        store(sig, &new);
    }
    if oldact != 0 && write_guest(oldact, as_bytes(&old)).is_err() {
        return -(libc::EFAULT as i64);
    }
    0
}

/// The host's handler for every signal the guest handles.
extern "C" fn host_handler(sig: i32, info: *mut libc::siginfo_t, uc: *mut libc::c_void) {
    let sig_u = sig as usize;
    let ctx = current();
    if ctx.is_null() {
        // A thread outside Dune mode: run the user's handler right here.
        let a = load(sig_u);
        if a.flags & SA_RESETHAND != 0 {
            store(sig_u, &KSigaction::default());
            raw_sigaction(sig_u, Some(&KSigaction::default()), None);
        }
        if !is_function(a.handler) {
            return;
        }
        // SAFETY: the handler is the function the process installed for this signal,
        // called with the kernel's own arguments, as the kernel would have called it.
        unsafe {
            if a.flags & SA_SIGINFO != 0 {
                let f: extern "C" fn(i32, *mut libc::siginfo_t, *mut libc::c_void) = core::mem::transmute(a.handler as usize);
                f(sig, info, uc);
            } else {
                let f: extern "C" fn(i32) = core::mem::transmute(a.handler as usize);
                f(sig);
            }
        }
        return;
    }
    // SAFETY: the kernel passes a valid siginfo to an SA_SIGINFO handler.
    let code = if info.is_null() { 0 } else { unsafe { (*info).si_code } };
    let synchronous = matches!(sig, libc::SIGSEGV | libc::SIGBUS | libc::SIGILL | libc::SIGFPE | libc::SIGTRAP);
    if synchronous && code > 0 {
        // The kernel raised a fault on the host side of a Dune thread: guest faults go
        // through the IDT, so this is the runtime itself. Retrying would loop forever.
        sys::write_all(2, b"dune: fatal: the runtime faulted on the host side of a thread in Dune mode\n");
        report::die_by_signal(sig);
    }
    // SAFETY: ctx is this thread's own context (set by its host loop); the loop reads
    // `pending` atomically and `infos[sig]` only after seeing the bit.
    unsafe {
        let ctx = &*ctx;
        if !info.is_null() {
            core::ptr::write_volatile(ctx.sig.infos[sig_u].get(), core::ptr::read(info as *const [u8; 128]));
        }
        ctx.sig.pending.fetch_or(bit(sig_u), Ordering::SeqCst);
        // KVM_RUN returns at once if the signal came while the host was busy.
        core::ptr::write_volatile(&mut (*ctx.sig.run).immediate_exit, 1);
    }
}

fn current_mask() -> u64 {
    let mut m = 0u64;
    // SAFETY: a query: writes 8 bytes into m.
    unsafe { sys::syscall6(libc::SYS_rt_sigprocmask as u64, [libc::SIG_BLOCK as u64, 0, &mut m as *mut u64 as u64, 8, 0, 0]) };
    m
}

fn set_mask(m: u64) {
    let m = m & !(bit(libc::SIGKILL as usize) | bit(libc::SIGSTOP as usize));
    // SAFETY: reads 8 bytes from m.
    unsafe { sys::syscall6(libc::SYS_rt_sigprocmask as u64, [libc::SIG_SETMASK as u64, &m as *const u64 as u64, 0, 8, 0, 0]) };
}

/// Called by the host loop before each `KVM_RUN`: delivers pending, unblocked signals.
pub fn deliver_pending(ctx: &mut ThreadCtx) {
    // SAFETY: run is this vCPU's mapped kvm_run; cleared before looking at `pending`,
    // so a signal arriving after the check makes KVM_RUN return at once.
    unsafe { core::ptr::write_volatile(&mut (*ctx.sig.run).immediate_exit, 0) };
    // SAFETY: the vCPU's Percpu is runtime memory; its guest side is stopped.
    let (depth, in_user) = unsafe { ((*ctx.vcpu.percpu()).trap_depth, (*ctx.vcpu.percpu()).in_user) };
    // Stopped inside the syscall stub before its exit (see `entry::in_syscall_stub`):
    // the call exits first, and its signals are delivered after it.
    if depth == 0 && in_user == 0 {
        let rip = ctx.vcpu.fd.sync_regs().regs.rip;
        if crate::guest::entry::in_syscall_stub(rip) {
            return;
        }
        // Stopped on the way into ring 3, interrupts off (ring 3's FS base may be
        // loaded already): no ring-0 handler may run there. The vCPU's local APIC is
        // sent the signal vector, which ring 3 takes at its first instruction: the
        // session ends and the signal is delivered in ring 0 after it, even if ring 3
        // never makes a call. A vCPU whose x2APIC ID does not fit an MSI's 8-bit
        // destination (255 and up; 255 is broadcast) is not sent it: its signal waits
        // for the thread's next exit.
        if crate::guest::entry::in_jump_to_user(rip) {
            if ctx.sig.pending.load(Ordering::SeqCst) & !current_mask() != 0 {
                if let Some(dest) = u8::try_from(ctx.vcpu.id).ok().filter(|&d| d != crate::host::state::MSI_BROADCAST) {
                    let _ = crate::host::state::send_msi(dest, crate::guest::session::SIGNAL_VECTOR);
                }
            }
            return;
        }
    }
    if depth != 0 || in_user != 0 {
        // In the trap path or in ring 3: delivered once the guest is back in ordinary
        // ring-0 code (at its next exit there). Ring 3 is told with an interrupt, so
        // a session returns to ring 0 even if ring 3 never makes a system call.
        if depth == 0 && ctx.sig.pending.load(Ordering::SeqCst) & !current_mask() != 0 {
            kick_ring3(ctx);
        }
        return;
    }
    loop {
        let pending = ctx.sig.pending.load(Ordering::SeqCst);
        if pending == 0 {
            ctx.sig.ignore_mask_once = false;
            return;
        }
        let blocked = if ctx.sig.ignore_mask_once { 0 } else { current_mask() };
        let ready = pending & !blocked;
        if ready == 0 {
            return;
        }
        let sig = ready.trailing_zeros() as usize + 1;
        ctx.sig.pending.fetch_and(!bit(sig), Ordering::SeqCst);
        // SAFETY: the handler wrote this slot before setting the bit we just cleared.
        let info = unsafe { core::ptr::read_volatile(ctx.sig.infos[sig].get()) };
        let act = load(sig);
        if !is_function(act.handler) {
            // The action changed since the signal was caught (the program installed
            // SIG_IGN or SIG_DFL meanwhile). As Linux decides at delivery: ignored
            // signals are dropped; for SIG_DFL the signal is raised again with the
            // kernel's disposition, now SIG_DFL too, so the kernel takes the default
            // action (end, stop, or nothing).
            if act.handler == SIG_DFL {
                sys::raise(sig as i32);
            }
            continue;
        }
        let regs = ctx.vcpu.fd.sync_regs().regs;
        match push_frame(ctx, sig, &act, &info, &regs, None) {
            Ok(new) => {
                COUNTERS.signals.fetch_add(1, Ordering::Relaxed);
                ctx.vcpu.fd.sync_regs_mut().regs = new;
                ctx.vcpu.fd.set_sync_dirty_reg(SyncReg::Register);
            }
            Err(()) => bad_frame(ctx, sig),
        }
        ctx.sig.ignore_mask_once = false;
    }
}

/// Raises `user::SIGNAL_VECTOR` in a vCPU stopped in ring 3 (CPL 3 at an instruction
/// boundary, interrupts on), unless an event is already on its way in.
fn kick_ring3(ctx: &mut ThreadCtx) {
    let Ok(sregs) = ctx.vcpu.fd.get_sregs() else { return };
    if sregs.cs.selector & 3 != 3 {
        return;
    }
    let Ok(mut ev) = ctx.vcpu.fd.get_vcpu_events() else { return };
    if ev.exception.injected != 0 || ev.exception.pending != 0 || ev.interrupt.injected != 0 || ev.nmi.injected != 0 {
        return;
    }
    ev.interrupt.injected = 1;
    ev.interrupt.nr = crate::guest::session::SIGNAL_VECTOR;
    ev.interrupt.soft = 0;
    ev.flags = 0;
    let _ = ctx.vcpu.fd.set_vcpu_events(&ev);
}

/// Whether an interrupted call should restart after the handler (SA_RESTART), for
/// the calls Linux restarts (those that return ERESTARTSYS).
pub fn should_restart(ctx: &ThreadCtx, nr: u64, args: &[u64; 6]) -> bool {
    let pending = ctx.sig.pending.load(Ordering::SeqCst);
    if pending == 0 {
        return false;
    }
    let sig = pending.trailing_zeros() as usize + 1;
    if load(sig).flags & SA_RESTART == 0 {
        return false;
    }
    let n = nr as i64;
    const FUTEX_CMD_MASK: u64 = 0x7f;
    matches!(
        n,
        libc::SYS_read | libc::SYS_write | libc::SYS_readv | libc::SYS_writev | libc::SYS_pread64 | libc::SYS_pwrite64
            | libc::SYS_preadv | libc::SYS_pwritev | libc::SYS_preadv2 | libc::SYS_pwritev2 | libc::SYS_ioctl
            | libc::SYS_wait4 | libc::SYS_waitid | libc::SYS_accept | libc::SYS_accept4 | libc::SYS_recvfrom
            | libc::SYS_recvmsg | libc::SYS_sendto | libc::SYS_sendmsg | libc::SYS_open | libc::SYS_openat
            | libc::SYS_flock | libc::SYS_fcntl | libc::SYS_msgrcv | libc::SYS_msgsnd | libc::SYS_semop
            | libc::SYS_sendfile | libc::SYS_splice | libc::SYS_getrandom
    ) || (n == libc::SYS_futex && args[1] & FUTEX_CMD_MASK == libc::FUTEX_WAIT as u64 && args[3] == 0)
}

/// Notes that a call with a temporary signal mask returned (see `ignore_mask_once`).
pub fn after_masked_wait(ctx: &mut ThreadCtx, nr: u64, ret: i64) {
    let n = nr as i64;
    if ret == -(libc::EINTR as i64)
        && matches!(n, libc::SYS_rt_sigsuspend | libc::SYS_ppoll | libc::SYS_pselect6 | libc::SYS_epoll_pwait | libc::SYS_epoll_pwait2)
    {
        ctx.sig.ignore_mask_once = true;
    }
}

fn as_bytes<T>(v: &T) -> &[u8] {
    // SAFETY: plain-old-data structs of this module viewed as bytes for copying.
    unsafe { core::slice::from_raw_parts(v as *const T as *const u8, core::mem::size_of::<T>()) }
}

fn as_bytes_mut<T>(v: &mut T) -> &mut [u8] {
    // SAFETY: only used on plain-old-data types for which any byte pattern is valid.
    unsafe { core::slice::from_raw_parts_mut(v as *mut T as *mut u8, core::mem::size_of::<T>()) }
}

/// Bytes of the XSAVE image that carry state for the enabled features (CPUID 0xD.0 EBX).
fn xsave_size() -> usize {
    static SIZE: AtomicU64 = AtomicU64::new(0);
    let s = SIZE.load(Ordering::Relaxed);
    if s != 0 {
        return s as usize;
    }
    let l = core::arch::x86_64::__cpuid_count(0xd, 0);
    let size = (l.ebx as usize).clamp(576, 4096);
    SIZE.store(size as u64, Ordering::Relaxed);
    size
}

/// Builds the signal frame on the guest stack for the interrupted `regs`; returns the
/// registers that enter the handler.
/// Builds the frame for handler `act` of `sig` (the action read once by the caller:
/// another thread may change it meanwhile, and Linux uses the action in force when it
/// delivers).
fn push_frame(ctx: &mut ThreadCtx, sig: usize, act: &KSigaction, info: &[u8; 128], regs: &kvm_regs, fault: Option<&Fault>) -> Result<kvm_regs, ()> {
    let act = *act;
    if !is_function(act.handler) || act.flags & SA_RESTORER == 0 {
        return Err(());
    }
    let mut ss: libc::stack_t = libc::stack_t { ss_sp: core::ptr::null_mut(), ss_flags: 0, ss_size: 0 };
    // SAFETY: a query of the thread's alternate stack into a local.
    unsafe { sys::syscall(libc::SYS_sigaltstack, 0, &mut ss as *mut _ as u64, 0) };
    let (ss_lo, ss_hi) = (ss.ss_sp as u64, ss.ss_sp as u64 + ss.ss_size as u64);
    let on_alt = ss.ss_flags & libc::SS_DISABLE == 0 && (ss_lo..ss_hi).contains(&regs.rsp);
    let mut sp = if act.flags & SA_ONSTACK != 0 && ss.ss_flags & libc::SS_DISABLE == 0 && !on_alt {
        ss_hi
    } else {
        regs.rsp - entry::RED_ZONE as u64
    };
    let mut xsave = ctx.vcpu.fd.get_xsave().map_err(|_| ())?;
    let xs = xsave_size();
    if let Some(f) = fault {
        // The FPU state of the interrupted code is the image the entry code saved below
        // the frame, not the vCPU's current one (the dispatcher ran since).
        if let Some(img) = ctx.vcpu.trap_fpu_image(f.tf_addr) {
            let n = img.len().min(xs);
            as_bytes_mut(&mut xsave.region)[..n].copy_from_slice(&img[..n]);
        }
    }
    sp = (sp - xs as u64) & !63;
    let fp_addr = sp;
    let uc_size = core::mem::size_of::<libc::ucontext_t>() as u64;
    sp -= uc_size + 128;
    sp = (sp & !15) - 8;
    let uc_addr = sp + 8;
    let info_addr = uc_addr + uc_size;

    // SAFETY: ucontext_t is plain data; all-zero is a valid value.
    let mut uc: libc::ucontext_t = unsafe { core::mem::zeroed() };
    uc.uc_flags = UC_FP_XSTATE;
    uc.uc_stack = libc::stack_t { ss_sp: ss.ss_sp, ss_flags: if on_alt { libc::SS_ONSTACK } else { ss.ss_flags }, ss_size: ss.ss_size };
    let g = &mut uc.uc_mcontext.gregs;
    let r = regs;
    let (rip, rsp, rflags) = (r.rip, r.rsp, r.rflags);
    for (i, v) in [r.r8, r.r9, r.r10, r.r11, r.r12, r.r13, r.r14, r.r15, r.rdi, r.rsi, r.rbp, r.rbx, r.rdx, r.rax, r.rcx, rsp, rip, rflags].into_iter().enumerate() {
        g[i] = v as i64;
    }
    g[libc::REG_CSGSFS as usize] = dune_x86::gdt::KERNEL_CS as i64;
    if let Some(f) = fault {
        g[libc::REG_ERR as usize] = f.tf.err as i64;
        g[libc::REG_TRAPNO as usize] = f.vector as i64;
        g[libc::REG_CR2 as usize] = f.addr as i64;
    }
    uc.uc_mcontext.fpregs = fp_addr as *mut _;
    let old_mask = current_mask();
    // SAFETY: sigset_t is at least 8 bytes; the kernel's sigset is its first 8.
    unsafe { core::ptr::write_unaligned(&mut uc.uc_sigmask as *mut libc::sigset_t as *mut u64, old_mask) };

    let region = as_bytes(&xsave.region);
    write_guest(fp_addr, &region[..xs])?;
    write_guest(info_addr, info)?;
    write_guest(uc_addr, as_bytes(&uc))?;
    write_guest(sp, &act.restorer.to_le_bytes())?;

    let mut mask = old_mask | act.mask;
    if act.flags & SA_NODEFER == 0 {
        mask |= bit(sig);
    }
    set_mask(mask);
    if act.flags & SA_RESETHAND != 0 {
        store(sig, &KSigaction::default());
        raw_sigaction(sig, Some(&KSigaction::default()), None);
    }
    let mut out = *regs;
    out.rip = act.handler;
    out.rsp = sp;
    out.rdi = sig as u64;
    out.rsi = info_addr;
    out.rdx = uc_addr;
    out.rax = 0;
    out.rflags = rflags & !HANDLER_CLEAR_FLAGS;
    Ok(out)
}

/// The frame could not be written (bad stack) or the action has no restorer: as
/// Linux, the thread gets SIGSEGV, which kills it if that is what failed.
fn bad_frame(ctx: &mut ThreadCtx, sig: usize) -> ! {
    let regs = ctx.vcpu.fd.sync_regs().regs;
    let sregs = ctx.vcpu.fd.get_sregs().ok();
    let mut b = sys::FixedBuf::<128>::new();
    let _ = core::fmt::Write::write_fmt(&mut b, format_args!("cannot deliver signal {sig}: bad stack or no sa_restorer"));
    // SAFETY: the bytes come from a str and are truncated only at a char boundary-free ASCII message.
    let what = core::str::from_utf8(b.as_bytes()).unwrap_or("cannot deliver a signal");
    report::report(what, None, &regs, sregs.as_ref());
    report::die_by_signal(libc::SIGSEGV)
}

/// `rt_sigreturn` made in Dune mode: restores what `push_frame` saved.
pub fn sigreturn(ctx: &mut ThreadCtx) -> (i64, Resume) {
    let regs = ctx.vcpu.fd.sync_regs().regs;
    let uc_addr = regs.rsp;
    // SAFETY: ucontext_t is plain data; all-zero is valid and it is overwritten below.
    let mut uc: libc::ucontext_t = unsafe { core::mem::zeroed() };
    if read_guest(uc_addr, as_bytes_mut(&mut uc)).is_err() {
        bad_frame(ctx, libc::SIGSEGV as usize);
    }
    let g = &uc.uc_mcontext.gregs;
    let mut r = regs;
    let v: [&mut u64; 17] = [&mut r.r8, &mut r.r9, &mut r.r10, &mut r.r11, &mut r.r12, &mut r.r13, &mut r.r14, &mut r.r15, &mut r.rdi, &mut r.rsi, &mut r.rbp, &mut r.rbx, &mut r.rdx, &mut r.rax, &mut r.rcx, &mut r.rsp, &mut r.rip];
    for (i, slot) in v.into_iter().enumerate() {
        *slot = g[i] as u64;
    }
    // Flags as at the syscall (r11 holds them), with the bits a handler may change.
    r.rflags = (regs.r11 & !FIX_EFLAGS) | (g[libc::REG_EFL as usize] as u64 & FIX_EFLAGS);
    let fp = uc.uc_mcontext.fpregs as u64;
    if fp != 0 {
        match ctx.vcpu.fd.get_xsave() {
            Ok(mut xsave) => {
                let xs = xsave_size();
                if read_guest(fp, &mut as_bytes_mut(&mut xsave.region)[..xs]).is_err() {
                    bad_frame(ctx, libc::SIGSEGV as usize);
                }
                // SAFETY: a full kvm_xsave from KVM_GET_XSAVE with its prefix replaced by
                // the image this runtime saved (and the handler may have edited).
                if let Err(e) = unsafe { ctx.vcpu.fd.set_xsave(&xsave) } {
                    report::die_runtime_error("KVM_SET_XSAVE", &e);
                }
            }
            Err(e) => report::die_runtime_error("KVM_GET_XSAVE", &e),
        }
    }
    // SAFETY: reading the first 8 bytes of a sigset_t.
    let mask = unsafe { core::ptr::read_unaligned(&uc.uc_sigmask as *const libc::sigset_t as *const u64) };
    set_mask(mask);
    ctx.vcpu.fd.sync_regs_mut().regs = r;
    (r.rax as i64, Resume::Restored)
}

/// A guest exception nobody fixed: the signal Linux would send, to the guest's
/// handler if it has one (and does not block it), else report and die. Exceptions in
/// ring 3 that no ring-0 handler took end the process the same way.
pub fn deliver_fault(ctx: &mut ThreadCtx, fault: &Fault) {
    let v = fault.vector;
    let pf = v == dune_x86::exception::PF;
    let found = if pf { procmap::find_checked(fault.addr).ok().flatten() } else { None };
    // A file mapping beyond the end of its file: SIGBUS (BUS_ADRERR), as in Linux.
    let bus = found.is_some_and(|(_, beyond)| beyond);
    let sig = if bus { libc::SIGBUS as usize } else { signal_for(v) as usize };
    let act = load(sig);
    let regs = fault.tf.to_regs();
    if !fault.tf.from_user() && is_function(act.handler) && current_mask() & bit(sig) == 0 {
        let mut info = [0u8; 128];
        // As Linux: SEGV_ACCERR when a mapping covers the address, SEGV_MAPERR otherwise.
        let mapped = found.is_some();
        let code: i32 = match sig as i32 {
            libc::SIGBUS if bus => 2,                           // BUS_ADRERR
            libc::SIGSEGV if mapped => 2,                       // SEGV_ACCERR
            libc::SIGSEGV if v == dune_x86::exception::PF => 1, // SEGV_MAPERR
            libc::SIGSEGV => 128,                               // SI_KERNEL (#GP)
            libc::SIGILL => 2,                                  // ILL_ILLOPN
            _ => 1,                                             // FPE_INTDIV, TRAP_BRKPT, BUS_ADRALN
        };
        let addr = if v == dune_x86::exception::PF { fault.addr } else { fault.tf.rip };
        info[0..4].copy_from_slice(&(sig as i32).to_le_bytes());
        info[8..12].copy_from_slice(&code.to_le_bytes());
        info[16..24].copy_from_slice(&addr.to_le_bytes());
        if let Ok(new) = push_frame(ctx, sig, &act, &info, &regs, Some(fault)) {
            COUNTERS.signals.fetch_add(1, Ordering::Relaxed);
            let mut tf = fault.tf;
            tf.set_regs(&new);
            // SAFETY: the frame lies in this vCPU's trap stack (checked by fault::handle);
            // the guest resumes from it when the dispatcher returns.
            unsafe { core::ptr::write(fault.tf_addr as *mut crate::guest::DuneTf, tf) };
            return;
        }
    }
    let sregs = ctx.vcpu.fd.get_sregs().ok();
    report::report("unhandled exception", Some(fault), &regs, sregs.as_ref());
    report::die_by_signal(sig as i32)
}

/// Linux's signal for an exception vector (arch/x86/kernel/traps.c).
pub fn signal_for(vector: u8) -> i32 {
    match vector {
        exception::DE | exception::MF | exception::XM => libc::SIGFPE,
        exception::DB | exception::BP => libc::SIGTRAP,
        exception::UD => libc::SIGILL,
        exception::NP | exception::SS | exception::AC => libc::SIGBUS,
        _ => libc::SIGSEGV,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ksigaction_matches_the_kernel_layout() {
        assert_eq!(core::mem::size_of::<KSigaction>(), 32);
        assert_eq!(core::mem::offset_of!(KSigaction, restorer), 16);
    }

    #[test]
    fn guest_memory_access_fails_cleanly_on_bad_addresses() {
        let mut buf = [0u8; 8];
        assert!(read_guest(0x10, &mut buf).is_err());
        let v = 0x1122_3344_5566_7788u64;
        assert!(read_guest(&v as *const u64 as u64, &mut buf).is_ok());
        assert_eq!(u64::from_le_bytes(buf), v);
        assert!(write_guest(8, &buf).is_err());
    }

    #[test]
    fn function_handlers_are_intercepted_defaults_are_not() {
        let dfl = KSigaction::default();
        assert_eq!(host_action(&dfl), dfl);
        let f = KSigaction { handler: 0x1234, flags: SA_SIGINFO | SA_RESTART | SA_ONSTACK | SA_RESTORER, restorer: 0x99, mask: 0b10 };
        let h = host_action(&f);
        assert_eq!(h.handler, host_handler as *const () as u64);
        assert_eq!(h.flags & (SA_RESTART | SA_ONSTACK), 0, "host must see EINTR and keep off the guest's altstack");
        assert_eq!(h.mask, 0b10);
    }
}
