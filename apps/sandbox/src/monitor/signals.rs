//! Signals of the program: its actions and masks, delivery to its ring-3 handlers
//! with the frame Linux builds, `rt_sigreturn`, and its exceptions.
//!
//! Host dispositions mirror the program's: `SIG_DFL` and `SIG_IGN` stay the kernel's
//! (so default actions — termination with the right status, stop, core — are the
//! kernel's own), and a signal with a program handler is caught by `on_signal` in
//! ring 0 (the runtime delivers it there) and queued for the thread. Before the
//! thread returns to ring 3 the monitor pushes an `rt_sigframe` on the program's
//! stack and enters its handler. SIGSEGV and SIGBUS are always the monitor's (its
//! copy fix-ups); sent by a process, they are queued like any other signal.
//!
//! The host mask of each thread is the program's mask, minus SIGSEGV and SIGBUS.

use core::cell::UnsafeCell;
use core::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use libdune::user;

use super::state::{m, Flow, Thread};
use super::user::{read_user, write_user};
use super::{audit, uaccess};

pub const NSIG: usize = 65;
const SIG_DFL: u64 = 0;
const SIG_IGN: u64 = 1;
const SA_RESTORER: u64 = 0x0400_0000;
const SA_ONSTACK: u64 = libc::SA_ONSTACK as u64;
const SA_RESTART: u64 = libc::SA_RESTART as u64;
const SA_NODEFER: u64 = libc::SA_NODEFER as u64;
const SA_RESETHAND: u64 = libc::SA_RESETHAND as u64;
const SA_SIGINFO: u64 = libc::SA_SIGINFO as u64;
/// RFLAGS bits a handler may change through its ucontext (arch/x86 FIX_EFLAGS).
const FIX_EFLAGS: u64 = 0x40dd5 | (1 << 16);
const FP_XSTATE_MAGIC1: u32 = 0x4650_5853;
const FP_XSTATE_MAGIC2: u32 = 0x4650_5845;
const USER_CS: u64 = dune_x86::gdt::USER_CS as u64;
const USER_DS: u64 = dune_x86::gdt::USER_DS as u64;

/// A `struct sigaction` as the kernel takes it.
#[derive(Clone, Copy, Default, Debug)]
#[repr(C)]
pub struct KSigaction {
    pub handler: u64,
    pub flags: u64,
    pub restorer: u64,
    pub mask: u64,
}

static ACTIONS: Mutex<[KSigaction; NSIG]> = Mutex::new([KSigaction { handler: 0, flags: 0, restorer: 0, mask: 0 }; NSIG]);

/// The program's signal actions, locked (a forking thread holds it across `fork`).
pub fn actions() -> std::sync::MutexGuard<'static, [KSigaction; NSIG]> {
    ACTIONS.lock().unwrap_or_else(|e| e.into_inner())
}

/// Signal numbers the program may ask the kernel to send (to itself): not the
/// monitor's, nor the faults the monitor keeps.
pub fn sendable(sig: i64) -> bool {
    (0..64).contains(&sig) && sig as i32 != libc::SIGSEGV && sig as i32 != libc::SIGBUS
}

pub fn bit(sig: usize) -> u64 {
    1u64 << (sig - 1)
}

/// The monitor's own signal (the last real-time one): brings a program thread back
/// to the monitor (in ring 3 or blocked in a call) when another thread calls
/// `execve`. The program cannot handle, block or send it.
pub const MONITOR_SIGNAL: i32 = 64;

/// Signals the host mask never blocks (the monitor's fix-ups and its own signal, and
/// the unblockable).
const HOST_UNBLOCKABLE: u64 = (1 << (libc::SIGSEGV - 1)) | (1 << (libc::SIGBUS - 1)) | (1 << (libc::SIGKILL - 1)) | (1 << (libc::SIGSTOP - 1)) | (1 << (MONITOR_SIGNAL - 1));

extern "C" fn on_monitor_signal(_sig: libc::c_int) {}

/// Installs the handler of [`MONITOR_SIGNAL`] (it only interrupts).
pub fn install_monitor_signal() -> std::io::Result<()> {
    // SAFETY: a zeroed sigaction is valid; the handler does nothing.
    let mut sa: libc::sigaction = unsafe { core::mem::zeroed() };
    sa.sa_sigaction = on_monitor_signal as *const () as usize;
    // SAFETY: installs a handler for the signal the monitor keeps for itself.
    if unsafe { libc::sigaction(MONITOR_SIGNAL, &sa, core::ptr::null_mut()) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

struct Queue {
    pending: AtomicU64,
    infos: [UnsafeCell<[u8; 128]>; NSIG],
}

thread_local! {
    static QUEUE: Queue = const { Queue { pending: AtomicU64::new(0), infos: [const { UnsafeCell::new([0; 128]) }; NSIG] } };
}

/// The host handler for signals with a program handler: queues it for this thread.
extern "C" fn on_signal(sig: libc::c_int, info: *mut libc::siginfo_t, _uc: *mut libc::c_void) {
    queue(sig as usize, info as *const u8);
}

fn queue(sig: usize, info: *const u8) {
    if !(1..NSIG).contains(&sig) {
        return;
    }
    QUEUE.with(|q| {
        // SAFETY: info points to the kernel's 128-byte siginfo for this handler; the
        // slot is written only by this thread (handlers run with all signals blocked).
        unsafe { core::ptr::copy_nonoverlapping(info, q.infos[sig].get() as *mut u8, 128) };
        q.pending.fetch_or(bit(sig), Ordering::SeqCst);
    });
}

/// Whether a signal for the program waits in this thread's queue.
pub fn program_signal_pending() -> bool {
    QUEUE.with(|q| q.pending.load(Ordering::SeqCst) != 0)
}

/// A SIGSEGV or SIGBUS that a process sent (not a fault): the program's.
pub fn queue_sent(sig: i32, info: *const libc::siginfo_t) {
    queue(sig as usize, info as *const u8);
}

fn host_action(sig: usize, handler: u64) {
    if sig == MONITOR_SIGNAL as usize || sig == libc::SIGSEGV as usize || sig == libc::SIGBUS as usize || sig == libc::SIGKILL as usize || sig == libc::SIGSTOP as usize {
        return;
    }
    // SAFETY: a zeroed sigaction is valid; the handler only queues.
    let mut sa: libc::sigaction = unsafe { core::mem::zeroed() };
    sa.sa_sigaction = match handler {
        SIG_DFL => libc::SIG_DFL,
        // An ignored SIGCHLD makes the kernel reap children by itself, behind the
        // monitor's back (their pids could then be reused while the monitor still
        // counts them as children): the monitor catches it and reaps them itself.
        SIG_IGN if sig == libc::SIGCHLD as usize => on_signal as *const () as usize,
        SIG_IGN => libc::SIG_IGN,
        _ => on_signal as *const () as usize,
    };
    sa.sa_flags = libc::SA_SIGINFO;
    // SAFETY: fills the mask; all signals are blocked while the handler queues.
    unsafe { libc::sigfillset(&mut sa.sa_mask) };
    // SAFETY: installs a disposition for a signal the program controls.
    unsafe { libc::sigaction(sig as i32, &sa, core::ptr::null_mut()) };
}

/// AT_HWCAP2 for the program: the FSGSBASE bit cleared (those instructions are off
/// in Dune mode).
pub fn hwcap2() -> u64 {
    // SAFETY: getauxval reads the process's auxiliary vector.
    (unsafe { libc::getauxval(libc::AT_HWCAP2) }) & !2
}

/// The calling thread's host signal mask.
pub fn current_host_mask() -> u64 {
    let mut m = 0u64;
    // SAFETY: a query: writes 8 bytes into m.
    unsafe { libc::syscall(libc::SYS_rt_sigprocmask, libc::SIG_BLOCK, 0, &mut m as *mut u64, 8) };
    m
}

fn set_host_mask(m: u64) {
    let m = m & !HOST_UNBLOCKABLE;
    // SAFETY: reads 8 bytes from m.
    unsafe { libc::syscall(libc::SYS_rt_sigprocmask, libc::SIG_SETMASK, &m as *const u64, 0, 8) };
}

/// Sets the program's mask for this thread (and the host's to match).
pub fn set_mask(t: &mut Thread, m: u64) {
    let m = m & !(bit(libc::SIGKILL as usize) | bit(libc::SIGSTOP as usize));
    t.mask = m;
    set_host_mask(m);
}

/// `rt_sigaction(sig, act, oact, size)`.
pub fn sigaction(sig: u64, act: u64, oact: u64, size: u64) -> i64 {
    let sig = sig as usize;
    if size != 8 || !(1..NSIG).contains(&sig) || sig == MONITOR_SIGNAL as usize {
        return -(libc::EINVAL as i64);
    }
    let mut new = None;
    if act != 0 {
        if sig == libc::SIGKILL as usize || sig == libc::SIGSTOP as usize {
            return -(libc::EINVAL as i64);
        }
        let mut b = [0u8; 32];
        if !read_user(act, &mut b) {
            return -(libc::EFAULT as i64);
        }
        let w = |i: usize| u64::from_le_bytes(b[i * 8..i * 8 + 8].try_into().unwrap_or_default());
        let a = KSigaction { handler: w(0), flags: w(1), restorer: w(2), mask: w(3) };
        // Handlers and restorers run in ring 3: they must be the program's code.
        let code = |p: u64| p <= SIG_IGN || m().space().contains(p, 1);
        if !code(a.handler) || (a.flags & SA_RESTORER != 0 && !code(a.restorer)) {
            audit::deny(&format!("rt_sigaction({sig}, handler {:#x}, restorer {:#x})", a.handler, a.restorer), "not the program's memory");
            return -(libc::EFAULT as i64);
        }
        new = Some(a);
    }
    let mut acts = actions();
    let old = acts[sig];
    if oact != 0 {
        let mut b = [0u8; 32];
        for (i, v) in [old.handler, old.flags, old.restorer, old.mask].iter().enumerate() {
            b[i * 8..i * 8 + 8].copy_from_slice(&v.to_le_bytes());
        }
        if !write_user(oact, &b) {
            return -(libc::EFAULT as i64);
        }
    }
    if let Some(a) = new {
        acts[sig] = a;
        host_action(sig, a.handler);
    }
    0
}

/// After `execve`: handlers go back to `SIG_DFL`; ignored signals stay ignored.
pub fn reset_on_exec() {
    let mut acts = actions();
    for (sig, a) in acts.iter_mut().enumerate().skip(1) {
        if a.handler != SIG_IGN {
            *a = KSigaction::default();
            host_action(sig, SIG_DFL);
        }
    }
}

/// `sigaltstack(ss, old)`.
pub fn sigaltstack(t: &mut Thread, ss: u64, old: u64) -> i64 {
    if old != 0 {
        let on = on_altstack(t, t.ctx.tf.rsp);
        let flags = if on { libc::SS_ONSTACK } else { t.altstack.1 };
        let mut b = [0u8; 24];
        b[0..8].copy_from_slice(&t.altstack.0.to_le_bytes());
        b[8..12].copy_from_slice(&flags.to_le_bytes());
        b[16..24].copy_from_slice(&t.altstack.2.to_le_bytes());
        if !write_user(old, &b) {
            return -(libc::EFAULT as i64);
        }
    }
    if ss != 0 {
        let mut b = [0u8; 24];
        if !read_user(ss, &mut b) {
            return -(libc::EFAULT as i64);
        }
        if on_altstack(t, t.ctx.tf.rsp) {
            return -(libc::EPERM as i64);
        }
        let sp = u64::from_le_bytes(b[0..8].try_into().unwrap_or_default());
        let flags = i32::from_le_bytes(b[8..12].try_into().unwrap_or_default());
        let size = u64::from_le_bytes(b[16..24].try_into().unwrap_or_default());
        if flags & !(libc::SS_DISABLE | (1 << 31)) != 0 {
            return -(libc::EINVAL as i64);
        }
        if flags & libc::SS_DISABLE != 0 {
            t.altstack = (0, libc::SS_DISABLE, 0);
        } else {
            if size < libc::MINSIGSTKSZ as u64 {
                return -(libc::ENOMEM as i64);
            }
            t.altstack = (sp, 0, size);
        }
    }
    0
}

fn on_altstack(t: &Thread, sp: u64) -> bool {
    let (base, flags, size) = t.altstack;
    flags & libc::SS_DISABLE == 0 && sp > base && sp - base <= size
}

/// Whether a call interrupted by a signal is restarted after a handler with
/// SA_RESTART (the calls Linux restarts).
fn restartable(nr: u64, a: &[u64; 6]) -> bool {
    let n = nr as i64;
    matches!(
        n,
        libc::SYS_read | libc::SYS_write | libc::SYS_readv | libc::SYS_writev | libc::SYS_pread64 | libc::SYS_pwrite64
            | libc::SYS_preadv | libc::SYS_pwritev | libc::SYS_ioctl | libc::SYS_wait4 | libc::SYS_waitid
            | libc::SYS_accept | libc::SYS_accept4 | libc::SYS_recvfrom | libc::SYS_recvmsg | libc::SYS_sendto
            | libc::SYS_sendmsg | libc::SYS_open | libc::SYS_openat | libc::SYS_flock | libc::SYS_fcntl
            | libc::SYS_sendfile | libc::SYS_splice | libc::SYS_getrandom | libc::SYS_connect
    ) || (n == libc::SYS_futex && a[1] & 0x7f == libc::FUTEX_WAIT as u64 && a[3] == 0)
}

/// Delivers the pending signals the thread does not block: a frame per signal on
/// the program's stack, the last one's handler runs first (as Linux nests them).
pub fn deliver(t: &mut Thread) {
    loop {
        let pending = QUEUE.with(|q| q.pending.load(Ordering::SeqCst));
        let ready = pending & !t.mask;
        if ready == 0 {
            t.saved_mask = None;
            return;
        }
        let sig = ready.trailing_zeros() as usize + 1;
        let mut info = [0u8; 128];
        QUEUE.with(|q| {
            q.pending.fetch_and(!bit(sig), Ordering::SeqCst);
            // SAFETY: the slot was written before the bit was set; handlers for this
            // thread run only on this thread.
            info = unsafe { *q.infos[sig].get() };
        });
        let act = actions()[sig];
        // SIGCHLD ignored or with SA_NOCLDWAIT: the children the kernel would have
        // reaped by itself, the monitor reaps.
        if sig == libc::SIGCHLD as usize && (act.handler == SIG_IGN || act.flags & libc::SA_NOCLDWAIT as u64 != 0) {
            super::state::reap_children();
        }
        match act.handler {
            SIG_IGN => continue,
            SIG_DFL => {
                default_action(sig);
                continue;
            }
            _ => {}
        }
        // A call this signal interrupted: restart it after the handler, or EINTR.
        if t.ctx.tf.rax as i64 == -(libc::EINTR as i64) && t.last_call.0 != u64::MAX {
            if act.flags & SA_RESTART != 0 && restartable(t.last_call.0, &t.last_call.1) {
                t.ctx.tf.rax = t.last_call.0;
                t.ctx.tf.rip -= 2;
            }
            t.last_call.0 = u64::MAX;
        }
        audit::STATS.signals.fetch_add(1, Ordering::Relaxed);
        if push_frame(t, sig, &act, &info).is_err() {
            kill(t, libc::SIGSEGV, &format!("signal {sig}: the program's stack cannot take a signal frame (rsp {:#x})", t.ctx.tf.rsp));
        }
    }
}

/// The default action of `sig` for a signal that reached the monitor although the
/// program's action is SIG_DFL (it changed meanwhile, or SIGSEGV/SIGBUS sent by a
/// process): the kernel takes it.
fn default_action(sig: usize) {
    if matches!(sig as i32, libc::SIGCHLD | libc::SIGURG | libc::SIGWINCH | libc::SIGCONT) {
        return;
    }
    // SAFETY: resets the disposition and raises the signal on this thread.
    unsafe {
        libc::signal(sig as i32, libc::SIG_DFL);
        libc::syscall(libc::SYS_tgkill, libc::getpid(), libc::syscall(libc::SYS_gettid), sig);
    }
    user::poll_signals();
}

/// Ends the program by `sig` (default action), with a report line.
pub fn kill(t: &Thread, sig: i32, why: &str) -> ! {
    audit::at_exit();
    audit::line(&format!("killed the program with signal {sig}: {why} (rip {:#x})", t.ctx.tf.rip));
    // SAFETY: resets the disposition and raises the signal; SIGKILL if it returns.
    unsafe {
        libc::signal(sig, libc::SIG_DFL);
        let m = 0u64;
        libc::syscall(libc::SYS_rt_sigprocmask, libc::SIG_SETMASK, &m as *const u64, 0, 8);
        libc::syscall(libc::SYS_tgkill, libc::getpid(), libc::syscall(libc::SYS_gettid), sig);
    }
    user::poll_signals();
    // SAFETY: ends the process.
    unsafe { libc::kill(libc::getpid(), libc::SIGKILL) };
    loop {
        user::poll_signals();
    }
}

fn put(buf: &mut [u8], off: usize, v: u64) {
    buf[off..off + 8].copy_from_slice(&v.to_le_bytes());
}

fn get(buf: &[u8], off: usize) -> u64 {
    u64::from_le_bytes(buf[off..off + 8].try_into().unwrap_or_default())
}

// Offsets in struct ucontext (x86-64): uc_flags 0, uc_link 8, uc_stack 16 (24
// bytes), uc_mcontext 40 (struct sigcontext, 256 bytes), uc_sigmask 296.
const UC_STACK: usize = 16;
const UC_MCONTEXT: usize = 40;
const UC_SIGMASK: usize = 296;
const UC_SIZE: usize = 304;
// struct sigcontext: r8..r15, rdi, rsi, rbp, rbx, rdx, rax, rcx, rsp, rip, eflags,
// cs/gs/fs/ss (u16 each), err, trapno, oldmask, cr2, fpstate, reserved[8].
const SC_REGS: usize = 0;
const SC_RIP: usize = 16 * 8;
const SC_EFLAGS: usize = 17 * 8;
const SC_CS: usize = 18 * 8;
const SC_ERR: usize = 19 * 8;
const SC_TRAPNO: usize = 20 * 8;
const SC_OLDMASK: usize = 21 * 8;
const SC_CR2: usize = 22 * 8;
const SC_FPSTATE: usize = 23 * 8;

fn regs_out(t: &Thread) -> [u64; 16] {
    let f = &t.ctx.tf;
    [f.r8, f.r9, f.r10, f.r11, f.r12, f.r13, f.r14, f.r15, f.rdi, f.rsi, f.rbp, f.rbx, f.rdx, f.rax, f.rcx, f.rsp]
}

/// Builds Linux's `rt_sigframe` for `sig` on the program's stack and enters its
/// handler. Err when the stack is not the program's writable memory.
fn push_frame(t: &mut Thread, sig: usize, act: &KSigaction, info: &[u8; 128]) -> Result<(), ()> {
    let fpu_len = t.ctx.fpu().len() as u64;
    let xsave = user::fpu_is_xsave();
    let mut sp = t.ctx.tf.rsp;
    if act.flags & SA_ONSTACK != 0 && t.altstack.1 & libc::SS_DISABLE == 0 && !on_altstack(t, sp) {
        sp = t.altstack.0.wrapping_add(t.altstack.2);
    } else {
        sp = sp.wrapping_sub(128);
    }
    let fp = (sp.wrapping_sub(fpu_len + 4)) & !63;
    let frame = ((fp.wrapping_sub(8 + UC_SIZE as u64 + 128)) & !15).wrapping_sub(8);
    let total = sp.wrapping_sub(frame);
    if frame >= sp || !m().space().contains(frame, total) {
        return Err(());
    }
    // The FPU image, with the software bytes Linux adds for XSAVE frames.
    let mut img = t.ctx.fpu().to_vec();
    if xsave {
        img[464..468].copy_from_slice(&FP_XSTATE_MAGIC1.to_le_bytes());
        img[468..472].copy_from_slice(&((fpu_len + 4) as u32).to_le_bytes());
        img[472..480].copy_from_slice(&user::xfeatures().to_le_bytes());
        img[480..484].copy_from_slice(&(fpu_len as u32).to_le_bytes());
        img.extend_from_slice(&FP_XSTATE_MAGIC2.to_le_bytes());
    }
    let mut f = vec![0u8; 8 + UC_SIZE + 128];
    let restorer = if act.flags & SA_RESTORER != 0 { act.restorer } else { 0 };
    put(&mut f, 0, restorer);
    let uc = 8;
    put(&mut f, uc, if xsave { 1 | 2 | 4 } else { 2 | 4 });
    put(&mut f, uc + UC_STACK, t.altstack.0);
    f[uc + UC_STACK + 8..uc + UC_STACK + 12].copy_from_slice(&(if on_altstack(t, t.ctx.tf.rsp) { libc::SS_ONSTACK } else { t.altstack.1 }).to_le_bytes());
    put(&mut f, uc + UC_STACK + 16, t.altstack.2);
    let mc = uc + UC_MCONTEXT;
    for (i, v) in regs_out(t).iter().enumerate() {
        put(&mut f, mc + SC_REGS + i * 8, *v);
    }
    put(&mut f, mc + SC_RIP, t.ctx.tf.rip);
    put(&mut f, mc + SC_EFLAGS, t.ctx.tf.rflags);
    // cs, gs, fs, ss as four u16.
    put(&mut f, mc + SC_CS, USER_CS | (USER_DS << 48));
    put(&mut f, mc + SC_ERR, 0);
    put(&mut f, mc + SC_TRAPNO, 0);
    let old_mask = t.saved_mask.take().unwrap_or(t.mask);
    put(&mut f, mc + SC_OLDMASK, old_mask);
    put(&mut f, mc + SC_CR2, 0);
    put(&mut f, mc + SC_FPSTATE, fp);
    put(&mut f, uc + UC_SIGMASK, old_mask);
    f[8 + UC_SIZE..].copy_from_slice(info);
    if !uaccess::write(fp, &img) || !uaccess::write(frame, &f) {
        return Err(());
    }
    // Enter the handler: Linux's register state on handler entry.
    let tf = &mut t.ctx.tf;
    tf.rsp = frame;
    tf.rip = act.handler;
    tf.rdi = sig as u64;
    tf.rsi = if act.flags & SA_SIGINFO != 0 { frame + 8 + UC_SIZE as u64 } else { 0 };
    tf.rdx = if act.flags & SA_SIGINFO != 0 { frame + 8 } else { 0 };
    tf.rax = 0;
    tf.rflags &= !((1 << 8) | (1 << 10) | (1 << 16));
    // The handler starts with a clean FPU (its state is in the frame).
    let fresh = libdune::user::UserContext::new(0, 0).map_err(|_| ())?;
    t.ctx.fpu_mut().copy_from_slice(fresh.fpu());
    let mut m = t.mask | act.mask;
    if act.flags & SA_NODEFER == 0 {
        m |= bit(sig);
    }
    set_mask(t, m);
    if act.flags & SA_RESETHAND != 0 {
        actions()[sig] = KSigaction::default();
        host_action(sig, SIG_DFL);
    }
    Ok(())
}

/// `rt_sigreturn`: restores the context saved in the frame at the program's stack.
/// A frame that would load another privilege level's selectors or a malformed FPU
/// image kills the program (Linux: SIGSEGV).
pub fn sigreturn(t: &mut Thread) -> Flow {
    let uc_addr = t.ctx.tf.rsp;
    let mut uc = vec![0u8; UC_SIZE];
    if !read_user(uc_addr, &mut uc) {
        kill(t, libc::SIGSEGV, "rt_sigreturn: the frame is not the program's memory");
    }
    let mc = UC_MCONTEXT;
    let sel = get(&uc, mc + SC_CS);
    let (cs, ss) = (sel & 0xffff, (sel >> 48) & 0xffff);
    if cs != USER_CS || (ss != USER_DS && ss != 0) {
        audit::deny("rt_sigreturn", &format!("the frame loads cs {cs:#x} ss {ss:#x}, not ring 3's"));
        kill(t, libc::SIGSEGV, "rt_sigreturn with a frame for another privilege level");
    }
    let fpstate = get(&uc, mc + SC_FPSTATE);
    if fpstate != 0 {
        let mut img = vec![0u8; t.ctx.fpu().len()];
        if !read_user(fpstate, &mut img) || !user::fpu_image_ok(&img) {
            audit::deny("rt_sigreturn", "malformed FPU state in the frame");
            kill(t, libc::SIGSEGV, "rt_sigreturn with a malformed FPU state");
        }
        // The software-reserved bytes are not part of the hardware image.
        t.ctx.fpu_mut().copy_from_slice(&img);
    }
    let r: Vec<u64> = (0..16).map(|i| get(&uc, mc + SC_REGS + i * 8)).collect();
    let rip = get(&uc, mc + SC_RIP);
    if rip >= super::space::USER_END {
        kill(t, libc::SIGSEGV, "rt_sigreturn to a non-user address");
    }
    let tf = &mut t.ctx.tf;
    (tf.r8, tf.r9, tf.r10, tf.r11, tf.r12, tf.r13, tf.r14, tf.r15) = (r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7]);
    (tf.rdi, tf.rsi, tf.rbp, tf.rbx, tf.rdx, tf.rax, tf.rcx, tf.rsp) = (r[8], r[9], r[10], r[11], r[12], r[13], r[14], r[15]);
    tf.rip = rip;
    tf.rflags = (tf.rflags & !FIX_EFLAGS) | (get(&uc, mc + SC_EFLAGS) & FIX_EFLAGS);
    let stack_sp = get(&uc, UC_STACK);
    let stack_flags = i32::from_le_bytes(uc[UC_STACK + 8..UC_STACK + 12].try_into().unwrap_or_default());
    let stack_size = get(&uc, UC_STACK + 16);
    if stack_flags & libc::SS_DISABLE == 0 && stack_size >= libc::MINSIGSTKSZ as u64 && !on_altstack(t, t.ctx.tf.rsp) {
        t.altstack = (stack_sp, 0, stack_size);
    }
    set_mask(t, get(&uc, UC_SIGMASK));
    t.last_call.0 = u64::MAX;
    Flow::Continue
}

/// An exception in ring 3: the signal Linux would send, to the program's handler if
/// it has one and does not block it; otherwise the program ends by that signal with
/// a report. A privileged instruction always ends it.
pub fn exception(t: &mut Thread, vector: u8, err: u64, addr: u64) -> Flow {
    audit::STATS.exceptions.fetch_add(1, Ordering::Relaxed);
    let (sig, code, what): (i32, i32, &str) = match vector {
        0 => (libc::SIGFPE, 1, "divide error"),
        1 | 3 => (libc::SIGTRAP, 1, "debug trap"),
        4 => (libc::SIGSEGV, 0x80, "overflow"),
        5 => (libc::SIGSEGV, 0x80, "bound range"),
        6 => (libc::SIGILL, 2, "invalid opcode"),
        13 if privileged(t.ctx.tf.rip) => {
            audit::deny("privileged instruction", &format!("at rip {:#x}", t.ctx.tf.rip));
            kill(t, libc::SIGSEGV, "privileged instruction in ring 3");
        }
        13 => (libc::SIGSEGV, 0x80, "general protection"),
        14 => (libc::SIGSEGV, if err & 1 != 0 { 2 } else { 1 }, "page fault"),
        16 | 19 => (libc::SIGFPE, 0, "floating-point exception"),
        17 => (libc::SIGBUS, 1, "alignment check"),
        _ => (libc::SIGSEGV, 0x80, "exception"),
    };
    let act = actions()[sig as usize];
    let blocked = t.mask & bit(sig as usize) != 0;
    if act.handler == SIG_DFL || act.handler == SIG_IGN || blocked {
        kill(t, sig, &format!("{what} (vector {vector}, error {err:#x}, address {addr:#x})"));
    }
    let mut info = [0u8; 128];
    info[0..4].copy_from_slice(&sig.to_le_bytes());
    info[8..12].copy_from_slice(&code.to_le_bytes());
    info[16..24].copy_from_slice(&(if vector == 14 { addr } else { 0 }).to_le_bytes());
    t.last_call.0 = u64::MAX;
    if push_frame(t, sig as usize, &act, &info).is_err() {
        kill(t, libc::SIGSEGV, &format!("{what}: the stack cannot take a signal frame"));
    }
    Flow::Continue
}

/// Whether the instruction at `rip` (program memory) is one only ring 0 may run:
/// hlt, cli, sti, in, out, the control- and debug-register moves, wrmsr/rdmsr,
/// descriptor-table loads, invd/wbinvd, clts, swapgs, int n.
fn privileged(rip: u64) -> bool {
    let mut b = [0u8; 4];
    if !m().space().contains(rip, 4) || !uaccess::read(rip, &mut b) {
        return false;
    }
    // Skip one prefix (rex or operand size).
    let b = if (0x40..=0x4f).contains(&b[0]) || b[0] == 0x66 { [b[1], b[2], b[3], 0] } else { b };
    match b[0] {
        0xf4 | 0xfa | 0xfb | 0xe4..=0xe7 | 0xec..=0xef | 0x6c..=0x6f | 0xcd => true,
        0x0f => matches!(b[1], 0x00 | 0x01 | 0x06 | 0x08 | 0x09 | 0x20..=0x23 | 0x30 | 0x32 | 0x35 | 0x07),
        _ => false,
    }
}

/// `rt_sigpending(set, size)`.
pub fn sigpending(t: &Thread, set: u64) -> i64 {
    // Blocked signals wait in the kernel (the host mask is the program's); those the
    // monitor caught before the program blocked them wait in its queue.
    let mut host = 0u64;
    // SAFETY: writes 8 bytes into `host`.
    unsafe { libc::syscall(libc::SYS_rt_sigpending, &mut host as *mut u64, 8) };
    let p = (QUEUE.with(|q| q.pending.load(Ordering::SeqCst)) | host) & t.mask;
    if write_user(set, &p.to_le_bytes()) { 0 } else { -(libc::EFAULT as i64) }
}

/// A host mask for a call that waits with a temporary program mask.
pub fn host_wait_mask(m: u64) -> u64 {
    m & !HOST_UNBLOCKABLE
}
