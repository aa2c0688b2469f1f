//! Fatal reports and the end of a process that faults in Dune mode.
//!
//! The one-screen report (vector, decoded error code, registers, the mapping that
//! holds the faulting address), death by the signal Linux would send, and the
//! warnings and aborts for runtime steps that fail. Everything here writes with
//! fixed buffers and raw system calls: it runs on exit paths and may run while the
//! guest side of the same thread holds glibc's locks (no heap allocation, no stdio).
//!
//! Uses only `sys`, `procmap` and the guest's trap-frame layout: every other part of
//! the host sits above it.

use core::fmt::Write;

use dune_x86::exception;
use kvm_bindings::{kvm_regs, kvm_sregs};
use kvm_ioctls::VcpuFd;

use crate::guest::DuneTf;
use super::procmap;
use super::sys::{self, FixedBuf};

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

/// Writes the fault report to stderr: `regs` are the interrupted registers.
pub fn report(what: &str, fault: Option<&Fault>, regs: &kvm_regs, sregs: Option<&kvm_sregs>) {
    let mut b = FixedBuf::<4096>::new();
    let tid = sys::gettid();
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
    EXITS.with(|h| {
        let (n, ring) = h.get();
        if n > 0 {
            let _ = writeln!(b, "  last exits of this thread, oldest first (kind, rip, rax, rip written before the run):");
            for i in n.saturating_sub(HISTORY as u64)..n {
                let e = ring[(i % HISTORY as u64) as usize];
                let _ = writeln!(b, "    {:<12} rip {:#x} rax {:#x} written {:#x}", e.0, e.1, e.2, e.3);
            }
        }
    });
    sys::write_all(2, b.as_bytes());
}

const HISTORY: usize = 8;
type ExitNote = (&'static str, u64, u64, u64);

std::thread_local! {
    /// The last exits of this thread (for the report of a fatal error): no allocation.
    static EXITS: core::cell::Cell<(u64, [ExitNote; HISTORY])> = const { core::cell::Cell::new((0, [("", 0, 0, 0); HISTORY])) };
}

/// Notes an exit of this thread's vCPU: its kind, where the guest stood, rax, and the
/// rip the runtime had written before the run (0 if none).
pub fn note_exit(kind: &'static str, rip: u64, rax: u64, written_rip: u64) {
    EXITS.with(|h| {
        let (n, mut ring) = h.get();
        ring[(n % HISTORY as u64) as usize] = (kind, rip, rax, written_rip);
        h.set((n + 1, ring));
    });
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
        sys::raise(sig);
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

/// A fatal condition of the guest running on `vcpu`: report and die by SIGSEGV.
pub fn die_fatal(vcpu: &VcpuFd, what: &str) -> ! {
    die_fatal_by(vcpu, what, libc::SIGSEGV)
}

/// Like [`die_fatal`], ending the process with `signal` (SIGBUS for a file page past
/// the file's end, as Linux does).
pub fn die_fatal_by(vcpu: &VcpuFd, what: &str, signal: i32) -> ! {
    let regs = vcpu.get_regs().unwrap_or_default();
    let sregs = vcpu.get_sregs().ok();
    report(what, None, &regs, sregs.as_ref());
    die_by_signal(signal)
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
