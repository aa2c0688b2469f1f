//! Signals in Dune mode.
//!
//! Synchronous faults of the guest become the signal Linux would send; with no user
//! handler the process dies by it after a report.

use kvm_bindings::kvm_sregs;

use crate::runtime::ThreadCtx;
use crate::syscall::Resume;
use crate::sys;
use crate::trap::{self, Fault};

/// `rt_sigaction(sig, act, oldact, sigsetsize)` made in Dune mode.
pub fn sigaction(sig: i32, act: u64, oldact: u64, size: u64) -> i64 {
    // SAFETY: forwarded as the guest made it.
    unsafe { sys::syscall6(libc::SYS_rt_sigaction as u64, [sig as u64, act, oldact, size, 0, 0]) }
}

/// `rt_sigreturn` made in Dune mode.
pub fn sigreturn(_ctx: &mut ThreadCtx) -> (i64, Resume) {
    (-(libc::ENOSYS as i64), Resume::Normal)
}

/// A guest exception nobody fixed: the signal Linux would send.
pub fn deliver_fault(ctx: &mut ThreadCtx, fault: &Fault, sregs: &kvm_sregs) -> ! {
    let _ = ctx;
    let v = fault.frame.vector as u8;
    trap::report("unhandled exception", Some(fault), &fault.regs, Some(sregs));
    trap::die_by_signal(trap::signal_for(v))
}
