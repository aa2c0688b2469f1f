//! Copies between the program's memory and the monitor's, from guest ring 0.
//!
//! The program's memory is ordinary process memory; the monitor reads and writes it
//! directly, after checking that the whole range is the program's (`mem`). A range
//! can still fault: a page the program made inaccessible, a file mapping beyond its
//! end, a read-only page written. The copy is one `rep movsb` whose fault the
//! runtime hands to the monitor's SIGSEGV/SIGBUS handler, which resumes at the
//! fix-up label with an error instead (Linux's exception tables, done with signals).
//! Any other SIGSEGV/SIGBUS in the monitor is a monitor bug: it is reported and the
//! process dies.

use core::sync::atomic::{AtomicBool, Ordering};

core::arch::global_asm!(
    r#"
    .pushsection .text.dune_sandbox_uaccess, "ax"
    // extern "C" fn dune_sandbox_copy(dst, src, len) -> u64: 0, or 1 on a fault
    .globl dune_sandbox_copy
    .type dune_sandbox_copy, @function
dune_sandbox_copy:
    mov %rdx, %rcx
    .globl dune_sandbox_copy_insn
dune_sandbox_copy_insn:
    rep movsb
    xor %eax, %eax
    ret
    .globl dune_sandbox_copy_fixup
dune_sandbox_copy_fixup:
    mov $1, %eax
    ret
    .size dune_sandbox_copy, . - dune_sandbox_copy
    .popsection
"#,
    options(att_syntax)
);

extern "C" {
    fn dune_sandbox_copy(dst: *mut u8, src: *const u8, len: usize) -> u64;
    fn dune_sandbox_copy_insn();
    fn dune_sandbox_copy_fixup();
}

static INSTALLED: AtomicBool = AtomicBool::new(false);

/// Copies `len` bytes from `src` to `dst`; false if either faulted.
///
/// # Safety
/// One side is monitor memory valid for `len` bytes; the other lies in the program's
/// ranges (checked by the caller), which no Rust object refers to.
unsafe fn copy(dst: *mut u8, src: *const u8, len: usize) -> bool {
    if len == 0 {
        return true;
    }
    debug_assert!(INSTALLED.load(Ordering::Relaxed));
    // SAFETY: as the caller promises; a fault resumes at the fix-up (see on_fault).
    unsafe { dune_sandbox_copy(dst, src, len) == 0 }
}

/// Reads `buf.len()` bytes of program memory at `addr`.
pub fn read(addr: u64, buf: &mut [u8]) -> bool {
    // SAFETY: `buf` is monitor memory; `addr` was checked against the program's ranges.
    unsafe { copy(buf.as_mut_ptr(), addr as *const u8, buf.len()) }
}

/// Writes `data` to program memory at `addr`.
pub fn write(addr: u64, data: &[u8]) -> bool {
    // SAFETY: as in read.
    unsafe { copy(addr as *mut u8, data.as_ptr(), data.len()) }
}

extern "C" fn on_fault(sig: libc::c_int, _info: *mut libc::siginfo_t, uc: *mut libc::c_void) {
    let uc = uc as *mut libc::ucontext_t;
    // SAFETY: the kernel (or the runtime, which builds the same frame) passes a valid
    // ucontext for this handler's duration.
    let rip = unsafe { &mut (*uc).uc_mcontext.gregs[libc::REG_RIP as usize] };
    if *rip as u64 == dune_sandbox_copy_insn as *const () as u64 {
        *rip = dune_sandbox_copy_fixup as *const () as i64;
        return;
    }
    // A fault in the monitor itself: report and die by the signal.
    let msg = b"dune sandbox: the monitor itself faulted (a bug); ending the process\n";
    // SAFETY: write and signal calls are async-signal-safe; the action is reset first
    // so the re-raised signal kills the process.
    unsafe {
        libc::write(super::audit::fd(), msg.as_ptr().cast(), msg.len());
        libc::signal(sig, libc::SIG_DFL);
        libc::raise(sig);
    }
}

/// Installs the fix-up handler for SIGSEGV and SIGBUS (before the program runs).
pub fn install() -> std::io::Result<()> {
    for sig in [libc::SIGSEGV, libc::SIGBUS] {
        // SAFETY: a zeroed sigaction is valid; the handler only edits the frame or dies.
        let mut sa: libc::sigaction = unsafe { core::mem::zeroed() };
        sa.sa_sigaction = on_fault as *const () as usize;
        sa.sa_flags = libc::SA_SIGINFO | libc::SA_NODEFER;
        // SAFETY: installs a handler for a signal the monitor owns.
        if unsafe { libc::sigaction(sig, &sa, core::ptr::null_mut()) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    INSTALLED.store(true, Ordering::Relaxed);
    Ok(())
}
