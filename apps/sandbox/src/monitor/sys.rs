//! Making system calls for the program: the result type every handler returns, the
//! raw call, forwarding (through an exitless helper where the thread has one) and
//! denials with their audit line.

use super::{audit, exitless};

/// Result of a call: `Ok(value)` or `Err(-errno)`.
pub type R = Result<i64, i64>;

/// `-errno` for `e`.
pub const fn neg(e: i32) -> i64 {
    -(e as i64)
}

pub const EFAULT: i64 = neg(libc::EFAULT);
pub const EBADF: i64 = neg(libc::EBADF);
pub const EINVAL: i64 = neg(libc::EINVAL);
pub const EPERM: i64 = neg(libc::EPERM);
pub const ENOSYS: i64 = neg(libc::ENOSYS);
pub const EACCES: i64 = neg(libc::EACCES);

std::thread_local! {
    /// System calls this thread made in Linux (to tell forwarded calls from emulated).
    static RAW_CALLS: core::cell::Cell<u64> = const { core::cell::Cell::new(0) };
}

/// System calls this thread has made in Linux so far.
pub fn raw_calls() -> u64 {
    RAW_CALLS.with(|c| c.get())
}

/// Performs a system call in Linux (one exit to the host, through the runtime).
pub fn raw(nr: i64, a: [u64; 6]) -> i64 {
    RAW_CALLS.with(|c| c.set(c.get() + 1));
    let r: i64;
    // SAFETY: the arguments were checked by the caller for this call: descriptors
    // and pointers are the program's (or the monitor's own copies).
    unsafe {
        core::arch::asm!("syscall", inlateout("rax") nr => r, in("rdi") a[0], in("rsi") a[1], in("rdx") a[2], in("r10") a[3], in("r8") a[4], in("r9") a[5], lateout("rcx") _, lateout("r11") _, options(nostack));
    }
    r
}

/// Whether `tid` is a thread of this process (the main thread's is the pid).
pub fn own_thread(tid: i32) -> bool {
    // SAFETY: getpid has no effect; tgkill with signal 0 only checks that `tid` is a
    // thread of this process.
    unsafe { libc::syscall(libc::SYS_tgkill, libc::getpid(), tid, 0) == 0 }
}

/// A raw result as `Ok(value)` or `Err(-errno)`.
pub fn ret(r: i64) -> R {
    if r < 0 && r > -4096 { Err(r) } else { Ok(r) }
}

/// Forwards a checked call to Linux: through this thread's exitless helper when the
/// call does not depend on the calling thread and there is one, else [`raw`].
pub fn fwd(nr: i64, a: [u64; 6]) -> R {
    if exitless::thread_agnostic(nr) {
        if let Some(r) = exitless::call(nr, a) {
            // Forwarded, through the thread's helper (no exit).
            RAW_CALLS.with(|c| c.set(c.get() + 1));
            return ret(r);
        }
    }
    ret(raw(nr, a))
}

/// The name of system call `nr` (`syscall_N` for a number the table does not know).
pub fn name(nr: u64) -> String {
    crate::policy::syscalls::name(nr).map_or_else(|| format!("syscall_{nr}"), str::to_string)
}

/// A denial: one audit line, then `-errno`.
pub fn deny(what: &str, why: &str, errno: i32) -> R {
    audit::deny(what, why);
    Err(neg(errno))
}

/// [`deny`] for a check that returns `()`.
pub fn refuse(what: &str, why: &str, errno: i32) -> Result<(), i64> {
    deny(what, why, errno).map(|_| ())
}
