//! Exceptions that reach the host, and the end of a process that faults in Dune mode.
//!
//! Every IDT stub exits to the host with the vector, the error code and the CPU's
//! exception frame on the vCPU's IST stack. A page fault on memory the process has
//! mapped (mapped behind the runtime's back, or a main-thread stack that grows) is
//! fixed by registering the mapping, and the guest resumes at the faulting
//! instruction. Anything else ends the process as Linux would: a signal whose user
//! handler runs in Dune mode if one is installed, otherwise a one-screen report on
//! stderr and death by the signal's default action (SIGSEGV: status 139).
//!
//! Runs on exit paths: no heap allocation (see `runtime`).

use core::fmt::Write;

use dune_x86::exception::{self, PageFaultError};
use kvm_bindings::{kvm_regs, kvm_sregs};

use crate::guest::DuneTf;
use kvm_ioctls::SyncReg;

use crate::memory::PAGE;
use crate::procmap::{self, Vma};
use crate::runtime::{self, ThreadCtx};
use crate::sys::{self, FixedBuf};

/// What the host knows about a guest exception.
#[derive(Debug, Clone, Copy)]
pub struct Fault {
    /// The frame the entry code built (the interrupted registers).
    pub tf: DuneTf,
    /// Its address in the vCPU's IST stack.
    pub tf_addr: u64,
    /// The vector.
    pub vector: u8,
    /// CR2 for page faults, else 0.
    pub addr: u64,
}

/// Handles a trap the guest's dispatcher passed on (`guest::dispatch::to_host`).
pub fn handle(ctx: &mut ThreadCtx) {
    runtime::COUNTERS.traps.fetch_add(1, core::sync::atomic::Ordering::Relaxed);
    let regs = ctx.vcpu.fd.sync_regs().regs;
    let (tf_addr, vector, cr2) = (regs.rdi, regs.rsi, regs.rdx);
    let tf_len = core::mem::size_of::<DuneTf>() as u64;
    if !ctx.vcpu.area_contains(tf_addr, tf_len) || vector > 255 {
        die_fatal(ctx, "trap exit with a frame outside the vCPU's trap stack");
    }
    // SAFETY: the frame lies inside this vCPU's area (checked above), runtime memory
    // that only this thread uses while its guest side waits in the `out`.
    let tf = unsafe { core::ptr::read(tf_addr as *const DuneTf) };
    let fault = Fault { tf, tf_addr, vector: vector as u8, addr: if vector == exception::PF as u64 { cr2 } else { 0 } };
    if fault.vector == exception::PF && ctx.vcpu.is_guard_page(fault.addr) {
        // A handler (or a chain of nested faults) ran off its trap stack: nothing on
        // this vCPU's trap path can run safely any more.
        let regs = tf.to_regs();
        let sregs = ctx.vcpu.fd.get_sregs().ok();
        report("trap stack overflow: a trap handler used more than its stack (about 12 KiB per nesting level)", Some(&fault), &regs, sregs.as_ref());
        die_by_signal(libc::SIGSEGV);
    }
    if fault.vector == exception::PF && !tf.from_user() && lazy_map(ctx, &fault) {
        // The dispatcher reloads CR3 when rax is 1: the page table changed.
        ctx.vcpu.fd.sync_regs_mut().regs.rax = 1;
        ctx.vcpu.fd.set_sync_dirty_reg(SyncReg::Register);
        return;
    }
    ctx.last_fault = (0, 0);
    crate::signal::deliver_fault(ctx, &fault)
}

/// A page fault on memory the process has: register it and retry. Returns false when
/// the access is not allowed, or when the same fault repeats right after a fix.
fn lazy_map(ctx: &mut ThreadCtx, f: &Fault) -> bool {
    let key = (f.addr & !(PAGE - 1), f.tf.rip);
    if ctx.last_fault == key {
        return false;
    }
    // Runtime memory is mapped once and for all: a fault there is never lazy.
    if runtime::with_state(|st| Ok(st.mem.is_runtime(f.addr))).unwrap_or(true) {
        return false;
    }
    let Ok(found) = procmap::find(f.addr) else { return false };
    let vma = match found {
        Some(v) => v,
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
    if runtime::with_state(|st| st.mem.sync(&st.vm, vma.start, vma.end)).is_err() {
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
/// map; if nothing changes, the guest is stuck on a bad address.
pub fn stale_mapping(ctx: &mut ThreadCtx) {
    ctx.stale_streak += 1;
    if ctx.stale_streak > 3 {
        die_fatal(ctx, "guest access to memory that is no longer mapped");
    }
    let res = runtime::with_state(|st| {
        let before = st.mem.stats();
        st.mem.resync_all(&st.vm)?;
        Ok(before != st.mem.stats())
    });
    match res {
        Ok(true) => {}
        Ok(false) => die_fatal(ctx, "guest access to memory that is no longer mapped"),
        Err(e) => die_runtime_error_value("re-reading /proc/self/maps", &e),
    }
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

/// Writes the fault report to stderr: `regs` are the interrupted registers.
pub fn report(what: &str, fault: Option<&Fault>, regs: &kvm_regs, sregs: Option<&kvm_sregs>) {
    let mut b = FixedBuf::<4096>::new();
    let tid = unsafe_gettid();
    let _ = writeln!(b, "dune: fatal: {what} (thread {tid}, in Dune mode)");
    if let Some(f) = fault {
        let v = f.vector;
        let _ = write!(b, "  exception {} ({}), vector {}, error code {:#x}", exception::exception_mnemonic(v), exception::exception_name(v), v, f.tf.err);
        if v == exception::PF {
            let _ = write!(b, ": {}", exception::PageFaultError(f.tf.err));
        }
        let _ = writeln!(b, "{}", if f.tf.from_user() { " (in ring 3)" } else { "" });
    }
    let cr2 = fault.map_or(sregs.map_or(0, |s| s.cr2), |f| f.addr);
    let r = regs;
    let _ = writeln!(b, "  rip {:#018x}  rsp {:#018x}  rflags {:#010x}  cr2 {cr2:#018x}", r.rip, r.rsp, r.rflags);
    let _ = writeln!(b, "  rax {:#018x}  rbx {:#018x}  rcx {:#018x}  rdx {:#018x}", r.rax, r.rbx, r.rcx, r.rdx);
    let _ = writeln!(b, "  rsi {:#018x}  rdi {:#018x}  rbp {:#018x}  r8  {:#018x}", r.rsi, r.rdi, r.rbp, r.r8);
    let _ = writeln!(b, "  r9  {:#018x}  r10 {:#018x}  r11 {:#018x}  r12 {:#018x}", r.r9, r.r10, r.r11, r.r12);
    let _ = writeln!(b, "  r13 {:#018x}  r14 {:#018x}  r15 {:#018x}", r.r13, r.r14, r.r15);
    if let Some(s) = sregs {
        let _ = writeln!(b, "  cr0 {:#x}  cr3 {:#x}  cr4 {:#x}  efer {:#x}  fs.base {:#x}", s.cr0, s.cr3, s.cr4, s.efer, s.fs.base);
    }
    describe_mapping(&mut b, "rip", r.rip);
    if fault.is_some_and(|f| f.vector == exception::PF) {
        describe_mapping(&mut b, "cr2", cr2);
    }
    sys::write_all(2, b.as_bytes());
}

fn describe_mapping(b: &mut FixedBuf<4096>, name: &str, addr: u64) {
    match procmap::find(addr) {
        Ok(Some(v)) => {
            let p = |c: bool, ch: char| if c { ch } else { '-' };
            let _ = writeln!(b, "  {name} is in mapping {:#x}-{:#x} {}{}{}{}", v.start, v.end, p(v.read, 'r'), p(v.write, 'w'), p(v.exec, 'x'), if v.shared { 's' } else { 'p' });
        }
        Ok(None) => {
            let _ = writeln!(b, "  {name} is not in any mapping");
        }
        Err(_) => {}
    }
}

fn unsafe_gettid() -> i64 {
    // SAFETY: gettid has no arguments or side effects.
    unsafe { sys::syscall(libc::SYS_gettid, 0, 0, 0) }
}

/// Ends the process by `sig` with its default action (core dump and all), as the
/// kernel would for an unhandled fault.
pub fn die_by_signal(sig: i32) -> ! {
    // SAFETY: resetting one disposition, unblocking, and raising the signal at this
    // thread; if it somehow returns, exit_group ends the process.
    unsafe {
        let dfl = [libc::SIG_DFL as u64, 0u64, 0, 0];
        sys::syscall6(libc::SYS_rt_sigaction as u64, [sig as u64, dfl.as_ptr() as u64, 0, 8, 0, 0]);
        let set: u64 = 1 << (sig - 1);
        sys::syscall6(libc::SYS_rt_sigprocmask as u64, [libc::SIG_UNBLOCK as u64, &set as *const u64 as u64, 0, 8, 0, 0]);
        let pid = sys::syscall(libc::SYS_getpid, 0, 0, 0);
        sys::syscall(libc::SYS_tgkill, pid as u64, unsafe_gettid() as u64, sig as u64);
        sys::syscall(libc::SYS_exit_group, 128 + sig as u64, 0, 0);
    }
    unreachable_exit()
}

fn unreachable_exit() -> ! {
    loop {
        // SAFETY: exit_group does not return.
        unsafe { sys::syscall(libc::SYS_exit_group, 127, 0, 0) };
    }
}

/// A fatal condition of the guest: report and die by SIGSEGV.
pub fn die_fatal(ctx: &mut ThreadCtx, what: &str) -> ! {
    let regs = ctx.vcpu.fd.get_regs().unwrap_or_default();
    let sregs = ctx.vcpu.fd.get_sregs().ok();
    report(what, None, &regs, sregs.as_ref());
    die_by_signal(libc::SIGSEGV)
}

/// A KVM call of the runtime failed where nothing can be undone: report and abort.
pub fn die_runtime_error(step: &str, e: &kvm_ioctls::Error) -> ! {
    let mut b = FixedBuf::<256>::new();
    let _ = writeln!(b, "dune: fatal: {step} failed: {e}");
    sys::write_all(2, b.as_bytes());
    die_by_signal(libc::SIGABRT)
}

/// Like `die_runtime_error`, for a runtime `Error`.
pub fn die_runtime_error_value(step: &str, e: &crate::Error) -> ! {
    let mut b = FixedBuf::<512>::new();
    let _ = writeln!(b, "dune: fatal: {step}: {e}");
    sys::write_all(2, b.as_bytes());
    die_by_signal(libc::SIGABRT)
}

/// A runtime step failed but the process can go on; say so on stderr.
pub fn warn_runtime_error(step: &str, e: &crate::Error) {
    let mut b = FixedBuf::<512>::new();
    let _ = writeln!(b, "dune: warning: {step}: {e}");
    sys::write_all(2, b.as_bytes());
}
