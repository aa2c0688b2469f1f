//! Audit lines and `--trace`: one line per denial always, one line per system call
//! under `--trace`. Written to the monitor's own duplicate of the standard error it
//! started with, a descriptor the program can neither see nor close.

use core::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::io::Write;

static FD: AtomicI32 = AtomicI32::new(2);
static TRACE: AtomicBool = AtomicBool::new(false);

/// The descriptor audit lines go to.
pub fn fd() -> i32 {
    FD.load(Ordering::Relaxed)
}

/// Sets where lines go and whether every call is traced.
pub fn configure(fd: i32, trace: bool) {
    FD.store(fd, Ordering::Relaxed);
    TRACE.store(trace, Ordering::Relaxed);
}

/// Whether `--trace` is on.
pub fn tracing() -> bool {
    TRACE.load(Ordering::Relaxed)
}

/// Writes one line (`text` without its newline) in a single `write`.
pub fn line(text: &str) {
    let mut b = Vec::with_capacity(text.len() + 32);
    // SAFETY: getpid and gettid have no effect.
    let (pid, tid) = unsafe { (libc::getpid(), libc::syscall(libc::SYS_gettid)) };
    let _ = write!(b, "[dune-sandbox {pid}");
    if tid != pid as i64 {
        let _ = write!(b, "/{tid}");
    }
    let _ = writeln!(b, "] {text}");
    // SAFETY: writes the buffer to the audit descriptor (one write: lines from several
    // threads do not interleave).
    unsafe { libc::write(fd(), b.as_ptr().cast(), b.len()) };
}

/// A denied call or killed program: always written.
pub fn deny(what: &str, why: &str) {
    line(&format!("denied {what}: {why}"));
}
