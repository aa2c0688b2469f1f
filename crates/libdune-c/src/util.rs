//! Utilities (libdune's `util.c` and the inline helpers of `dune.h`): `dune_printf`,
//! `dune_die`, `dune_get_ticks`, `dune_mmap`, `dune_signal`, the ring-3 FS base
//! (`dune_get_user_fs`, `dune_set_user_fs`: libdune's `entry.c`).
//!
//! In Dune mode system calls are forwarded by the runtime, so these are ordinary
//! libc calls where the original issued `vmcall`s by hand.

use std::cell::Cell;
use std::ffi::{c_char, c_int, c_void};

/// Writes all of `buf` to `fd` with `write(2)`, retrying on EINTR and short writes.
pub(crate) fn write_all(fd: c_int, mut buf: &[u8]) {
    while !buf.is_empty() {
        // SAFETY: `buf` is a valid slice for its length.
        let n = unsafe { libc::write(fd, buf.as_ptr().cast(), buf.len()) };
        if n > 0 {
            buf = &buf[n as usize..];
        } else if n < 0 && std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted {
            continue;
        } else {
            return;
        }
    }
}

extern "C" {
    /// C's `vsnprintf`; `ap` is a `va_list`, which on x86-64 is a pointer to a
    /// `__va_list_tag`.
    fn vsnprintf(s: *mut c_char, n: usize, fmt: *const c_char, ap: *mut c_void) -> c_int;
}

/// Formats into a 1 KiB stack buffer and writes it with one `write(2)` (no stdio
/// buffer, no allocation: usable in trap handlers, as libdune's).
extern "C" fn vprintf_impl(fmt: *const c_char, ap: *mut c_void) -> c_int {
    if fmt.is_null() {
        return -libc::EINVAL;
    }
    let mut buf = [0u8; 1024];
    // SAFETY: `buf` is writable for its length; `fmt` and `ap` are the caller's format
    // string and argument list (dune_printf's contract).
    let n = unsafe { vsnprintf(buf.as_mut_ptr().cast(), buf.len(), fmt, ap) };
    if n < 0 {
        return n;
    }
    let len = (n as usize).min(buf.len() - 1);
    write_all(1, &buf[..len]);
    len as c_int
}

/// Writes `s` to stdout as `dune_printf` does (one write, no stdio buffer).
pub(crate) fn print(s: &str) {
    write_all(1, s.as_bytes());
}

/// `int dune_vprintf(const char *fmt, va_list ap)` (an addition).
///
/// # Safety
/// `fmt` must be a format string and `ap` a `va_list` matching it.
#[no_mangle]
pub unsafe extern "C" fn dune_vprintf(fmt: *const c_char, ap: *mut c_void) -> c_int {
    vprintf_impl(fmt, ap)
}

/// `int dune_printf(const char *fmt, ...)`.
///
/// Rust cannot define a variadic function on stable, so this one is naked: it stores
/// the argument registers in a register save area and builds the `va_list` a C
/// prologue would (System V AMD64 ABI, section 3.5.7), then calls `vprintf_impl`.
/// Frame (rsp is 16-byte aligned after `push rbp; sub 208`):
/// `[rsp, rsp+48)` rdi..r9; `[rsp+48, rsp+176)` xmm0..7 (saved only when al != 0,
/// the caller's count of vector registers used); `[rsp+176, rsp+200)` the `va_list`:
/// gp_offset = 8 (fmt is taken), fp_offset = 48, overflow_arg_area = the caller's
/// stack arguments at rbp+16, reg_save_area = rsp.
///
/// # Safety
/// Called from C with a format string and matching arguments.
#[unsafe(naked)]
#[no_mangle]
pub unsafe extern "C" fn dune_printf(fmt: *const c_char) -> c_int {
    core::arch::naked_asm!(
        "push rbp",
        "mov rbp, rsp",
        "sub rsp, 208",
        "mov [rsp], rdi",
        "mov [rsp + 8], rsi",
        "mov [rsp + 16], rdx",
        "mov [rsp + 24], rcx",
        "mov [rsp + 32], r8",
        "mov [rsp + 40], r9",
        "test al, al",
        "je 2f",
        "movaps [rsp + 48], xmm0",
        "movaps [rsp + 64], xmm1",
        "movaps [rsp + 80], xmm2",
        "movaps [rsp + 96], xmm3",
        "movaps [rsp + 112], xmm4",
        "movaps [rsp + 128], xmm5",
        "movaps [rsp + 144], xmm6",
        "movaps [rsp + 160], xmm7",
        "2:",
        "mov dword ptr [rsp + 176], 8",
        "mov dword ptr [rsp + 180], 48",
        "lea rax, [rbp + 16]",
        "mov [rsp + 184], rax",
        "mov [rsp + 192], rsp",
        "lea rsi, [rsp + 176]",
        "call {vprintf}",
        "leave",
        "ret",
        vprintf = sym vprintf_impl,
    )
}

/// `void dune_die(void)`: ends the process with status 1 at once (like libdune's, it
/// does not flush stdio: it may be called where a stdio lock is held).
#[no_mangle]
pub extern "C" fn dune_die() -> ! {
    // SAFETY: _exit only ends the process.
    unsafe { libc::_exit(1) }
}

/// `unsigned long dune_get_ticks(void)`: the time-stamp counter.
#[no_mangle]
pub extern "C" fn dune_get_ticks() -> u64 {
    // SAFETY: rdtsc reads a counter; every x86-64 CPU has it and it is allowed in
    // rings 0 and 3 (CR4.TSD is clear).
    unsafe { core::arch::x86_64::_rdtsc() }
}

/// `void *dune_mmap(void *addr, size_t length, int prot, int flags, int fd, off_t
/// offset)`: the raw system call's result, as libdune (an address, or -errno).
///
/// # Safety
/// As `mmap(2)`: with `MAP_FIXED` it replaces whatever is mapped at `addr`.
#[no_mangle]
pub unsafe extern "C" fn dune_mmap(addr: *mut c_void, length: usize, prot: c_int, flags: c_int, fd: c_int, offset: libc::off_t) -> *mut c_void {
    // SAFETY: the caller asks for this mapping, as it would call mmap(2).
    let p = unsafe { libc::mmap(addr, length, prot, flags, fd, offset) };
    if p == libc::MAP_FAILED {
        let e = std::io::Error::last_os_error().raw_os_error().unwrap_or(libc::EINVAL);
        return (-(e as isize)) as *mut c_void;
    }
    p
}

/// `sighandler_t dune_signal(int sig, sighandler_t cb)`: installs `cb` (it runs in
/// Dune mode); NULL on success and SIG_ERR on failure, as libdune.
#[no_mangle]
pub extern "C" fn dune_signal(sig: c_int, cb: libc::sighandler_t) -> libc::sighandler_t {
    // SAFETY: signal(2) with a handler the program provides.
    if unsafe { libc::signal(sig, cb) } == libc::SIG_ERR {
        return libc::SIG_ERR;
    }
    0
}

thread_local! {
    /// The vCPU (its per-vCPU block, GS base in Dune mode) whose ring-3 FS base this
    /// thread has set, by the program or to the thread's own FS base on first use;
    /// 0: none. Percpu.user_fs starts at 0, and a pooled vCPU keeps the last thread's
    /// value, so the C API sets it once per thread and vCPU.
    static USER_FS_VCPU: Cell<u64> = const { Cell::new(0) };
}

/// An MSR, read in guest ring 0 (the callers check Dune mode).
fn rdmsr(msr: u32) -> u64 {
    let (lo, hi): (u32, u32);
    // SAFETY: rdmsr of an MSR KVM emulates (FS and GS base) in guest ring 0; no side effects.
    unsafe { core::arch::asm!("rdmsr", in("ecx") msr, out("eax") lo, out("edx") hi, options(nomem, nostack, preserves_flags)) };
    ((hi as u64) << 32) | lo as u64
}

/// In Dune mode, makes sure ring 3 starts with the thread's own FS base unless the
/// program set one (the original initialised it so at dune_enter).
pub(crate) fn init_user_fs() {
    let vcpu = rdmsr(dune_x86::msr::GS_BASE);
    if USER_FS_VCPU.with(Cell::get) != vcpu {
        libdune::user::set_user_fs(rdmsr(dune_x86::msr::FS_BASE));
        USER_FS_VCPU.with(|c| c.set(vcpu));
    }
}

/// `void dune_set_user_fs(unsigned long fs_base)`: ignored outside Dune mode.
#[no_mangle]
pub extern "C" fn dune_set_user_fs(fs_base: u64) {
    if libdune::in_dune_mode() {
        libdune::user::set_user_fs(fs_base);
        USER_FS_VCPU.with(|c| c.set(rdmsr(dune_x86::msr::GS_BASE)));
    }
}

/// `unsigned long dune_get_user_fs(void)`: 0 outside Dune mode.
#[no_mangle]
pub extern "C" fn dune_get_user_fs() -> u64 {
    if !libdune::in_dune_mode() {
        return 0;
    }
    init_user_fs();
    libdune::user::user_fs()
}
