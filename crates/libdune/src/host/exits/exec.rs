//! `execve` in Dune mode: the next image enters Dune mode too (`Options::exec_preload`).
//!
//! The kernel replaces the process image, VM and all; the runtime cannot follow it.
//! What it can do is make sure the new image enters Dune mode again from its own
//! start: its environment gets the preload library first in `LD_PRELOAD` (whatever
//! environment the program passes: `env={}`, a cleaned environment), and the
//! runtime's open KVM descriptor, made inheritable for the call, in `DUNE_KVM_FD`. The
//! new image adopts that descriptor, so a program that drops its privileges (to a
//! user who may not open `/dev/kvm`) before `execve` still runs in Dune mode.
//!
//! The rewritten environment is built in a scratch mapping of the runtime's (exit
//! path: no heap), from the program's pointers, which the kernel then reads as usual.
//! The program's own strings are never written.

use core::fmt::Write;
use core::sync::atomic::{AtomicI32, AtomicUsize, Ordering};

use crate::host::{reserved, sys};

/// `LD_PRELOAD=<library>` for the next image, NUL-terminated, in a runtime mapping
/// made at `configure`; 0 when Dune mode is not carried across `execve`.
static PRELOAD_ENTRY: AtomicUsize = AtomicUsize::new(0);
static PRELOAD_LEN: AtomicUsize = AtomicUsize::new(0);
/// The runtime's KVM descriptor.
static KVM_FD: AtomicI32 = AtomicI32::new(-1);

/// Environment entries read from one `execve`, at most.
const MAX_ENV: usize = 1 << 16;
/// Scratch space: the new pointer array, then the strings the runtime adds.
const SCRATCH: usize = MAX_ENV * 8 + 3 * 8192;
/// Longest `LD_PRELOAD` value of the program's that is kept.
const MAX_PRELOAD: usize = 4096;

/// Called once at `init`: remembers the library to preload into new images (None: do
/// not carry Dune mode across `execve`) and the KVM descriptor to pass on.
pub fn configure(preload: Option<&std::path::Path>, kvm_fd: i32) {
    use std::os::unix::ffi::OsStrExt;
    KVM_FD.store(kvm_fd, Ordering::Release);
    let Some(lib) = preload else { return };
    let lib = lib.as_os_str().as_bytes();
    let len = b"LD_PRELOAD=".len() + lib.len();
    if lib.contains(&0) || lib.contains(&b':') || len + 1 > 8192 {
        return;
    }
    let Ok(p) = reserved::map(8192, 0) else { return };
    // SAFETY: the fresh 8 KiB mapping holds the entry and its NUL.
    unsafe {
        core::ptr::copy_nonoverlapping(b"LD_PRELOAD=".as_ptr(), p, 11);
        core::ptr::copy_nonoverlapping(lib.as_ptr(), p.add(11), lib.len());
        *p.add(len) = 0;
    }
    PRELOAD_LEN.store(len, Ordering::Release);
    PRELOAD_ENTRY.store(p as usize, Ordering::Release);
}

/// Reads up to `buf.len()` bytes of the C string at `addr`; returns how many bytes
/// were read (the string may end, or its mapping may, before that).
fn read_prefix(addr: u64, buf: &mut [u8]) -> usize {
    if sys::read_guest(addr, buf).is_ok() {
        return buf.len();
    }
    let mut n = 0;
    while n < buf.len() && sys::read_guest(addr + n as u64, &mut buf[n..n + 1]).is_ok() {
        if buf[n] == 0 {
            return n + 1;
        }
        n += 1;
    }
    n
}

/// Performs `execve` (`nr` is execve or execveat, arguments `a`) with the environment
/// rewritten as the module doc says. Returns only when the call fails.
pub fn execve(nr: u64, a: [u64; 6]) -> i64 {
    let entry = PRELOAD_ENTRY.load(Ordering::Acquire);
    let plain = || {
        // SAFETY: the program's own call, unchanged.
        unsafe { sys::syscall6(nr, a) }
    };
    if entry == 0 {
        return plain();
    }
    let env_at = if nr == libc::SYS_execveat as u64 { 3 } else { 2 };
    let Ok(scratch) = reserved::map(SCRATCH, libc::MAP_NORESERVE) else { return plain() };
    let ret = rewrite_and_exec(nr, a, env_at, scratch, entry);
    // SAFETY: the call failed; nothing refers to the scratch space any more.
    unsafe { reserved::unmap(scratch, SCRATCH) };
    ret
}

fn rewrite_and_exec(nr: u64, a: [u64; 6], env_at: usize, scratch: *mut u8, entry: usize) -> i64 {
    let ptrs = scratch as *mut u64;
    let strings = (scratch as usize + MAX_ENV * 8) as *mut u8;
    let mut n = 0usize;
    let mut theirs: Option<u64> = None;
    let envp = a[env_at];
    // A null envp is an empty environment, as in Linux.
    for i in 0..if envp == 0 { 0 } else { MAX_ENV } {
        let mut p = [0u8; 8];
        if sys::read_guest(envp + 8 * i as u64, &mut p).is_err() {
            return -(libc::EFAULT as i64);
        }
        let p = u64::from_le_bytes(p);
        if p == 0 {
            break;
        }
        if n + 4 >= MAX_ENV {
            return -(libc::E2BIG as i64);
        }
        let mut head = [0u8; 12];
        let got = read_prefix(p, &mut head);
        let head = &head[..got];
        if head.starts_with(b"LD_PRELOAD=") {
            theirs = Some(p + 11);
        } else if !head.starts_with(b"DUNE_KVM_FD=") {
            // SAFETY: n < MAX_ENV: inside the pointer area of the scratch mapping.
            unsafe { *ptrs.add(n) = p };
            n += 1;
        }
    }
    // LD_PRELOAD=<ours>[:<theirs>]
    let len = PRELOAD_LEN.load(Ordering::Acquire);
    // SAFETY: the entry (len bytes) was written at configure; the first 8 KiB of the
    // strings area receive it.
    unsafe { core::ptr::copy_nonoverlapping(entry as *const u8, strings, len) };
    let mut end = len;
    if let Some(t) = theirs {
        let mut val = [0u8; MAX_PRELOAD];
        let got = read_prefix(t, &mut val);
        let val = &val[..got];
        let val = &val[..val.iter().position(|&c| c == 0).unwrap_or(val.len())];
        // SAFETY: the entry (without "LD_PRELOAD=") is ours, read back from the mapping.
        let ours = unsafe { core::slice::from_raw_parts((entry + 11) as *const u8, len - 11) };
        for part in val.split(|&c| c == b':' || c == b' ').filter(|p| !p.is_empty() && *p != ours) {
            if end + 1 + part.len() + 1 > 8192 {
                break;
            }
            // SAFETY: bounded by the check above, inside the first 8 KiB of strings.
            unsafe {
                *strings.add(end) = b':';
                core::ptr::copy_nonoverlapping(part.as_ptr(), strings.add(end + 1), part.len());
            }
            end += 1 + part.len();
        }
    }
    // SAFETY: end < 8192 (checked above).
    unsafe { *strings.add(end) = 0 };
    let kvm = KVM_FD.load(Ordering::Acquire);
    let mut b = sys::FixedBuf::<32>::new();
    let _ = write!(b, "DUNE_KVM_FD={kvm}\0");
    let fd_entry = (strings as usize + 8192) as *mut u8;
    // SAFETY: the second 8 KiB of strings holds the short entry.
    unsafe { core::ptr::copy_nonoverlapping(b.as_bytes().as_ptr(), fd_entry, b.as_bytes().len()) };
    // SAFETY: n + 3 < MAX_ENV (checked in the loop): the last entries and the null.
    unsafe {
        *ptrs.add(n) = strings as u64;
        *ptrs.add(n + 1) = if kvm >= 0 { fd_entry as u64 } else { 0 };
        *ptrs.add(n + 2) = 0;
    }
    let mut args = a;
    args[env_at] = ptrs as u64;
    // The descriptor is inherited by the new image only; it goes back to close-on-exec
    // if the call fails.
    // SAFETY: fcntl on the runtime's own KVM descriptor.
    let inheritable = kvm >= 0 && unsafe { sys::syscall(libc::SYS_fcntl, kvm as u64, libc::F_SETFD as u64, 0) } == 0;
    // SAFETY: the program's execve with its own path, arguments and flags, and an
    // environment made of its own strings plus the runtime's, all alive across the call.
    let ret = unsafe { sys::syscall6(nr, args) };
    if inheritable {
        // SAFETY: as above.
        unsafe { sys::syscall(libc::SYS_fcntl, kvm as u64, libc::F_SETFD as u64, libc::FD_CLOEXEC as u64) };
    }
    ret
}
