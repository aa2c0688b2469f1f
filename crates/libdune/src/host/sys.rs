//! Raw system calls made by the host side on behalf of the guest.
//!
//! The host thread shares its TLS with the guest thread it runs, so it must not go
//! through libc wrappers that write `errno`: the guest's `errno` would change where
//! Linux leaves it alone. These return the kernel's raw result (`-errno` on failure).

/// Performs system call `nr` with six arguments and returns the raw result.
///
/// # Safety
/// The call must be sound for the process: pointer arguments must be what the
/// guest passed (the guest's addresses are the host's), and calls that change the
/// process (memory, threads) must be followed by the runtime's bookkeeping.
#[inline(always)]
pub unsafe fn syscall6(nr: u64, a: [u64; 6]) -> i64 {
    let ret: i64;
    // SAFETY: `syscall` clobbers only rax, rcx, r11 (declared); the caller vouches for
    // the call itself.
    unsafe {
        core::arch::asm!(
            "syscall",
            inlateout("rax") nr as i64 => ret,
            in("rdi") a[0],
            in("rsi") a[1],
            in("rdx") a[2],
            in("r10") a[3],
            in("r8") a[4],
            in("r9") a[5],
            lateout("rcx") _,
            lateout("r11") _,
            options(nostack),
        );
    }
    ret
}

/// `syscall6` for calls whose arguments the runtime built itself.
///
/// # Safety
/// As for [`syscall6`].
#[inline(always)]
pub unsafe fn syscall(nr: i64, a0: u64, a1: u64, a2: u64) -> i64 {
    // SAFETY: forwarded contract.
    unsafe { syscall6(nr as u64, [a0, a1, a2, 0, 0, 0]) }
}

/// `arch_prctl` codes (asm/prctl.h), which the libc crate does not export.
pub const ARCH_SET_GS: i32 = 0x1001;
/// See [`ARCH_SET_GS`].
pub const ARCH_SET_FS: i32 = 0x1002;
/// See [`ARCH_SET_GS`].
pub const ARCH_GET_FS: i32 = 0x1003;
/// See [`ARCH_SET_GS`].
pub const ARCH_GET_GS: i32 = 0x1004;

/// This process's id.
pub fn getpid() -> i64 {
    // SAFETY: getpid has no arguments or side effects.
    unsafe { syscall(libc::SYS_getpid, 0, 0, 0) }
}

/// The calling thread's id.
pub fn gettid() -> i64 {
    // SAFETY: gettid has no arguments or side effects.
    unsafe { syscall(libc::SYS_gettid, 0, 0, 0) }
}

/// Sends `sig` to the calling thread (`tgkill`); what happens is the signal's
/// disposition's business.
pub fn raise(sig: i32) {
    // SAFETY: tgkill to this very thread; no memory is passed.
    unsafe { syscall(libc::SYS_tgkill, getpid() as u64, gettid() as u64, sig as u64) };
}

/// Turns a raw result into `Ok(value)` or `Err(errno)`.
pub fn check(ret: i64) -> Result<u64, i32> {
    if (-4095..0).contains(&ret) {
        Err(-ret as i32)
    } else {
        Ok(ret as u64)
    }
}

/// Writes all of `buf` to `fd`, ignoring errors: used for reports on fatal paths.
pub fn write_all(fd: i32, mut buf: &[u8]) {
    while !buf.is_empty() {
        // SAFETY: `buf` is a valid readable slice for its length.
        let n = unsafe { syscall(libc::SYS_write, fd as u64, buf.as_ptr() as u64, buf.len() as u64) };
        match check(n) {
            Ok(0) => return,
            Ok(n) => buf = &buf[n as usize..],
            Err(libc::EINTR) => {}
            Err(_) => return,
        }
    }
}

/// Anonymous private mapping of `len` bytes, `PROT_READ | PROT_WRITE`.
pub fn mmap_anon(len: usize, extra_flags: i32) -> Result<*mut u8, i32> {
    // SAFETY: a fresh anonymous mapping does not alias anything.
    let ret = unsafe {
        syscall6(
            libc::SYS_mmap as u64,
            [
                0,
                len as u64,
                (libc::PROT_READ | libc::PROT_WRITE) as u64,
                (libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | extra_flags) as u64,
                u64::MAX,
                0,
            ],
        )
    };
    check(ret).map(|a| a as *mut u8)
}

/// Unmaps a range the runtime mapped itself.
///
/// # Safety
/// Nothing may reference the range afterwards.
pub unsafe fn munmap(addr: *mut u8, len: usize) {
    // SAFETY: the caller owns the range.
    unsafe { syscall(libc::SYS_munmap, addr as u64, len as u64, 0) };
}

/// Copies between guest memory (this process's own addresses, as the guest sees
/// them) and a local buffer with `process_vm_readv`/`writev` on the process itself.
fn vm_rw(nr: i64, guest: u64, local: *mut u8, len: usize) -> Result<(), ()> {
    let liov = libc::iovec { iov_base: local.cast(), iov_len: len };
    let riov = libc::iovec { iov_base: guest as *mut libc::c_void, iov_len: len };
    let pid = getpid() as u64;
    // SAFETY: process_vm_readv/writev on this process: the kernel checks the remote
    // (guest) range and fails with EFAULT instead of faulting; the local buffer is valid.
    let n = unsafe { syscall6(nr as u64, [pid, &liov as *const _ as u64, 1, &riov as *const _ as u64, 1, 0]) };
    if n == len as i64 { Ok(()) } else { Err(()) }
}

/// Copies guest memory at `addr` into `buf`; a bad address is an error, never a
/// fault of the host side.
pub fn read_guest(addr: u64, buf: &mut [u8]) -> Result<(), ()> {
    vm_rw(libc::SYS_process_vm_readv, addr, buf.as_mut_ptr(), buf.len())
}

/// Copies `buf` to guest memory at `addr`; a bad or read-only address is an error.
pub fn write_guest(addr: u64, buf: &[u8]) -> Result<(), ()> {
    vm_rw(libc::SYS_process_vm_writev, addr, buf.as_ptr() as *mut u8, buf.len())
}

/// A small formatter into a fixed buffer, for messages built where allocation is not allowed.
pub struct FixedBuf<const N: usize> {
    buf: [u8; N],
    len: usize,
}

impl<const N: usize> FixedBuf<N> {
    /// An empty buffer.
    pub const fn new() -> Self {
        FixedBuf { buf: [0; N], len: 0 }
    }

    /// What was written (truncated at `N` bytes).
    pub fn as_bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}

impl<const N: usize> Default for FixedBuf<N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize> core::fmt::Write for FixedBuf<N> {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        let n = s.len().min(N - self.len);
        self.buf[self.len..self.len + n].copy_from_slice(&s.as_bytes()[..n]);
        self.len += n;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::fmt::Write;

    #[test]
    fn getpid_matches_libc() {
        // SAFETY: getpid has no arguments and no side effects.
        let pid = unsafe { syscall(libc::SYS_getpid, 0, 0, 0) };
        // SAFETY: plain libc call.
        assert_eq!(pid, unsafe { libc::getpid() } as i64);
    }

    #[test]
    fn check_splits_errors() {
        assert_eq!(check(-libc::EBADF as i64), Err(libc::EBADF));
        assert_eq!(check(5), Ok(5));
        // A high user address is a value, not an error.
        assert_eq!(check(0x7fff_0000_0000), Ok(0x7fff_0000_0000));
    }

    #[test]
    fn fixed_buf_truncates() {
        let mut b = FixedBuf::<8>::new();
        write!(b, "0123456789").unwrap();
        assert_eq!(b.as_bytes(), b"01234567");
    }
}
